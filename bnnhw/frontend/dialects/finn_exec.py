"""Run a FINN graph with ``Im2Col`` nodes through qonnx's executor on a batch of frames.

qonnx's ``Im2Col`` only runs at batch 1: its shape function fixes the batch to 1, and its
NumPy code interleaves the frames of a larger batch (``cols.transpose(1, 2, 0)`` puts the
batch innermost, the final reshape reads it outermost). FINN runs such graphs one frame at
a time; doing that for every node costs ~0.2 s a frame (one onnxruntime session per node
per frame). Here every node runs with qonnx's own ``execute_node`` on the whole batch,
except Im2Col, which runs frame by frame, and the tensor shapes after it are re-batched.
The result is what FINN's batch-1 execution gives for each frame (the tests check this).
"""

from __future__ import annotations

import numpy as np
import onnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_node
from qonnx.transformation.infer_shapes import InferShapes


def has_im2col(model: onnx.ModelProto) -> bool:
    return any(n.op_type == "Im2Col" for n in model.graph.node)


def _set_batch(value_info: onnx.ValueInfoProto, batch: int) -> None:
    dim = value_info.type.tensor_type.shape.dim[0]
    dim.Clear()
    dim.dim_value = batch


def _rebatch(infos, consts: set[str], batch: int) -> None:
    """Data tensors (rank >= 2) get the batch; weights and scalars keep their shapes."""
    for vi in infos:
        if vi.name not in consts and len(vi.type.tensor_type.shape.dim) >= 2:
            _set_batch(vi, batch)


def execute_batched(model: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of ``model`` (one data input, batch axis first) run on frames ``x``.

    Reshape targets with a fixed batch must already be re-batched by the caller.
    """
    m, n = onnx.ModelProto(), len(x)
    m.CopyFrom(model)
    consts = {t.name for t in m.graph.initializer}
    for vi in [*m.graph.input, *m.graph.output]:
        if vi.name not in consts:
            _set_batch(vi, n)
    _rebatch(m.graph.value_info, consts, n)  # kept: MaxPoolNHWC's shape needs its input's
    wrapper = ModelWrapper(m).transform(InferShapes())
    _rebatch(wrapper.graph.value_info, consts, n)  # Im2Col's outputs come out at batch 1
    graph = wrapper.graph
    opsets = {o.domain: o.version for o in m.opset_import}
    context = wrapper.make_empty_exec_context()
    data = next(i.name for i in graph.input if i.name not in consts)
    context[data] = np.ascontiguousarray(x, np.float32)
    for node in graph.node:
        opset = opsets.get(node.domain, opsets.get("", 13))
        if node.op_type != "Im2Col":
            execute_node(node, context, graph, opset)
            continue
        frames = []
        for i in range(n):
            one = {node.input[0]: context[node.input[0]][i : i + 1], node.output[0]: None}
            execute_node(node, one, graph, opset)
            frames.append(one[node.output[0]])
        context[node.output[0]] = np.concatenate(frames)
    return context
