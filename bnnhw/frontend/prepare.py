"""Normalise a graph with qonnx before it is interpreted.

Shape inference, folding of everything that depends only on initializers (weight
quantizers, Transposes of weights, dynamo's merged constants) and removal of initializers
listed as graph inputs (dynamo export). Node names are kept: errors must name the user's
nodes, so qonnx's renaming cleanup steps are not run.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.fold_constants import FoldConstants
from qonnx.transformation.general import RemoveStaticGraphInputs
from qonnx.transformation.infer_shapes import InferShapes

from bnnhw.errors import ModelError


def prepare(model: onnx.ModelProto, path: Path) -> ModelWrapper:
    """Return a qonnx ModelWrapper whose only nodes compute on the data input."""
    wrapper = ModelWrapper(onnx.ModelProto.FromString(model.SerializeToString()))
    steps = (
        ("removing initializers listed as inputs", RemoveStaticGraphInputs()),
        ("shape inference", InferShapes()),
        ("constant folding", FoldConstants(exclude_op_types=[])),
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
