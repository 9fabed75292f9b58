"""Normalise a graph with qonnx before it is interpreted.

Shape inference, folding of everything that depends only on initializers (weight
quantizers, Transposes of weights, dynamo's merged constants) and removal of initializers
listed as graph inputs (dynamo export). Node names are kept: errors must name the user's
nodes, so qonnx's renaming cleanup steps are not run.

qonnx's transformations cost time quadratic in the number of nodes, so the nodes that
do nothing at inference (Identity, a Dropout without mask) are removed first in one
linear pass, constants are folded in one pass (not qonnx's pass per node), and a graph
still longer than ``MAX_NODES`` is refused before qonnx runs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_node
from qonnx.transformation.base import Transformation
from qonnx.transformation.general import RemoveStaticGraphInputs
from qonnx.transformation.infer_shapes import InferShapes

from bnnhw.errors import ModelError

# qonnx's shape inference and cleanup look tensors up by scanning the graph: ~3 s for 200
# nodes on a loaded 2-core machine, 45 s for 1,000; the bundled networks have at most 26
MAX_NODES = 200
NO_OPS = {"Identity", "Dropout"}

# onnxruntime (run by qonnx per node) logs to stderr; its errors reach bnnhw as exceptions
onnxruntime.set_default_logger_severity(4)


def _is_no_op(node: onnx.NodeProto) -> bool:
    """Identity, or a Dropout at inference: one input (no ratio/training flag), one output."""
    outputs = [o for o in node.output if o]
    inputs = [i for i in node.input if i]
    plain = node.op_type in NO_OPS and node.domain in ("", "ai.onnx")
    return plain and len(outputs) == 1 and len(inputs) == 1


def drop_no_ops(model: onnx.ModelProto) -> None:
    """Remove no-op nodes in place, in one pass: their readers read the no-op's input.

    A no-op that writes a graph output is kept (its input may be a graph input).
    """
    graph = model.graph
    outputs = {o.name for o in graph.output}
    alias: dict[str, str] = {}
    kept = []
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]
        if _is_no_op(node) and node.output[0] not in outputs:
            alias[node.output[0]] = node.input[0]
            continue
        kept.append(node)
    if not alias:
        return
    infos = [v for v in graph.value_info if v.name not in alias]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.value_info[:]
    graph.value_info.extend(infos)


class FoldConstantsOnce(Transformation):
    """qonnx's FoldConstants in one pass over the nodes, in order.

    qonnx folds one node per pass and re-infers every shape after it (its issue 104), so
    a graph of n nodes costs n passes. Here each node whose inputs are all constants (or a
    Shape of a known shape, or a node without inputs) is run with qonnx's own
    ``execute_node``, as FoldConstants does, and its output becomes an initializer that
    later nodes see as constant; shapes are inferred again once, afterwards.
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        known = {t.name for t in graph.initializer}
        context = model.make_empty_exec_context()
        opset = model.model.opset_import[0].version
        kept, folded = [], []
        for node in graph.node:
            shape_only = node.op_type == "Shape" and node.input and node.input[0] not in known
            if shape_only:
                shape_only = model.get_tensor_shape(node.input[0]) is not None
            if node.input and not shape_only and not all(i in known for i in node.input):
                kept.append(node)
                continue
            for name in node.input:
                model.get_tensor_shape(name, fix_missing_init_shape=True)
            execute_node(node, context, graph, opset_version=opset)
            out = node.output[0]
            folded.append(onnx.numpy_helper.from_array(np.asarray(context[out]), out))
            known.add(out)
        if not folded:
            return model, False
        del graph.node[:]
        graph.node.extend(kept)
        graph.initializer.extend(folded)
        return model, False


def prepare(model: onnx.ModelProto, path: Path) -> ModelWrapper:
    """Return a qonnx ModelWrapper whose only nodes compute on the data input."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    drop_no_ops(model)
    if len(model.graph.node) > MAX_NODES:
        raise ModelError(
            f"{path}: the graph has {len(model.graph.node)} nodes (after removing no-ops); "
            f"bnnhw imports graphs of up to {MAX_NODES} nodes"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # qonnx notes old finn.* domains as it renames them
        wrapper = ModelWrapper(model)
    steps = (
        ("removing initializers listed as inputs", RemoveStaticGraphInputs()),
        ("shape inference", InferShapes()),
        ("constant folding", FoldConstantsOnce()),
        ("shape inference", InferShapes()),
    )
    for what, step in steps:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wrapper = wrapper.transform(step)
        except Exception as exc:  # qonnx and onnx raise many types; all mean a broken graph
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise ModelError(f"{path}: {what} failed: {reason}") from None
    return wrapper


def constants(wrapper: ModelWrapper) -> dict[str, np.ndarray]:
    """Every tensor with a known value after folding: initializers and Constant nodes."""
    values = {t.name: onnx.numpy_helper.to_array(t) for t in wrapper.graph.initializer}
    for node in wrapper.graph.node:
        if node.op_type == "Constant" and not node.input:
            attr = next((a for a in node.attribute if a.name == "value"), None)
            if attr is not None:
                values[node.output[0]] = onnx.numpy_helper.to_array(attr.t)
    return values
