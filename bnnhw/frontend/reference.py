"""The reference: run the original graph with qonnx's node-by-node executor.

This is what "agrees with the model" means in bnnhw: the golden model must give the same
argmax (and, mapped back, the same float outputs) as ``qonnx.core.onnx_exec.execute_onnx``
on the user's file. Exported graphs usually fix the batch size to 1, so the graph is
re-batched with qonnx's ChangeBatchSize and run in chunks.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.change_batchsize import ChangeBatchSize
from qonnx.transformation.general import RemoveStaticGraphInputs
from qonnx.transformation.infer_shapes import InferShapes

from bnnhw.frontend.dialects.finn_exec import execute_batched, has_im2col
from bnnhw.frontend.prepare import drop_no_ops
from bnnhw.frontend.reader import read_model


def _shapes_to_initializers(model: onnx.ModelProto) -> None:
    """Reshape targets given by Constant nodes become initializers, which ChangeBatchSize
    re-batches (it only looks at initializers); the values are unchanged."""
    targets = {n.input[1] for n in model.graph.node if n.op_type == "Reshape" and len(n.input) > 1}
    for node in list(model.graph.node):
        attrs = {a.name: a for a in node.attribute}
        if node.op_type == "Constant" and node.output[0] in targets and set(attrs) == {"value"}:
            tensor = onnx.TensorProto()
            tensor.CopyFrom(attrs["value"].t)
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
            model.graph.node.remove(node)


class ReferenceExecutor:
    """Runs one ONNX file on batches of frames, caching the re-batched graph."""

    def __init__(self, path: str | Path, chunk: int = 1000) -> None:
        self.model = read_model(Path(path))
        drop_no_ops(self.model)  # Identity chains would make qonnx's passes quadratic
        _shapes_to_initializers(self.model)
        self.chunk = chunk
        self._by_batch: dict[int, ModelWrapper] = {}

    def _graph(self, batch: int) -> ModelWrapper:
        if batch not in self._by_batch:
            wrapper = ModelWrapper(self.model.SerializeToString())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wrapper = wrapper.transform(RemoveStaticGraphInputs())
                wrapper = wrapper.transform(ChangeBatchSize(batch))
                wrapper = wrapper.transform(InferShapes())
            self._by_batch[batch] = wrapper
        return self._by_batch[batch]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Float32 outputs of the graph for frames ``x`` of shape (N, *input shape)."""
        x = np.asarray(x, dtype=np.float32)
        outputs = []
        for start in range(0, len(x), self.chunk):
            block = x[start : start + self.chunk]
            wrapper = self._graph(len(block))
            in_name, out_name = wrapper.graph.input[0].name, wrapper.graph.output[0].name
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if has_im2col(self.model):  # qonnx's Im2Col runs at batch 1 only
                    result = execute_batched(wrapper.model, block)[out_name]
                else:
                    result = execute_onnx(wrapper, {in_name: block})[out_name]
            outputs.append(np.asarray(result).reshape(len(block), -1))
        return np.concatenate(outputs)
