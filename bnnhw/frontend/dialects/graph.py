"""A small editable view of a prepared graph, shared by the dialect passes.

The passes rewrite patterns in place: they look nodes up by the tensors they produce and
read, replace a run of nodes by its QONNX equivalent, and name the user's node when a
pattern does not compute what it looks like. Constants are those left after qonnx's
constant folding (``prepare``), so a weight written as ``Sign(Sign(W) + 0.1)`` or a
Transpose of an initializer is already a plain array here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper

from bnnhw.errors import ModelError
from bnnhw.frontend.operands import node_attr
from bnnhw.frontend.prepare import constants
from bnnhw.frontend.reader import QONNX_DOMAIN, node_label

ELEMENTWISE = {"Add", "Sub", "Mul", "Div"}
SHAPE_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}


class Graph:
    """The prepared graph's node list plus lookups; ``model()`` writes it back."""

    def __init__(self, wrapper: ModelWrapper, path: Path) -> None:
        self.wrapper = wrapper
        self.path = path
        self.graph = wrapper.graph
        self.consts = constants(wrapper)
        # our own copies: protobuf containers copy on insertion, so edits work on a list
        self.node_list = [copy_node(n) for n in self.graph.node]
        self.original = list(self.node_list)
        self._fresh = 0

    # -- lookups --------------------------------------------------------------------------
    @property
    def nodes(self) -> list[onnx.NodeProto]:
        return list(self.node_list)

    def producer(self, name: str) -> onnx.NodeProto | None:
        return next((n for n in self.node_list if name in n.output), None)

    def users(self, name: str) -> list[onnx.NodeProto]:
        return [n for n in self.node_list if name in n.input]

    def only_user(self, name: str) -> onnx.NodeProto | None:
        users = self.users(name)
        is_output = any(o.name == name for o in self.graph.output)
        return users[0] if len(users) == 1 and not is_output else None

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name) if name else None

    def dynamic_input(self, node: onnx.NodeProto) -> tuple[int, str] | None:
        """(index, name) of the one non-constant input, or None if not exactly one."""
        dyn = [(i, n) for i, n in enumerate(node.input) if n and n not in self.consts]
        return dyn[0] if len(dyn) == 1 else None

    def shape(self, name: str) -> list[int] | None:
        shape = self.wrapper.get_tensor_shape(name)
        return [int(d) if isinstance(d, int) else -1 for d in shape] if shape else None

    def attr(self, node: onnx.NodeProto, name: str, default: object) -> object:
        return node_attr(node, name, default)

    def datatype(self, name: str) -> str | None:
        """The ``finn_datatype`` annotation of a tensor, if any."""
        for ann in self.graph.quantization_annotation:
            if ann.tensor_name == name:
                for kv in ann.quant_parameter_tensor_names:
                    if kv.key == "finn_datatype":
                        return kv.value
        return None

    # -- errors ---------------------------------------------------------------------------
    def label(self, node: onnx.NodeProto) -> str:
        if node.name:
            return node_label(node, 0)
        for nodes in (self.original, self.node_list):
            for i, n in enumerate(nodes):
                if n is node:
                    return node_label(node, i)
        return node_label(node, 0)

    def fail(self, node: onnx.NodeProto, message: str) -> ModelError:
        return ModelError(f"{self.path.name}: node {self.label(node)}: {message}")

    # -- edits ----------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self._fresh += 1
        return f"{hint}__bnnhw{self._fresh}"

    def add_const(self, value: np.ndarray, hint: str) -> str:
        name = self.fresh(hint)
        array = np.asarray(value)
        self.graph.initializer.append(numpy_helper.from_array(array, name))
        self.consts[name] = array
        return name

    def make(
        self, op: str, inputs: list[str], output: str, name: str, domain: str = ""
    ) -> onnx.NodeProto:
        return helper.make_node(op, inputs, [output], name=name, domain=domain)

    def bipolar(self, x: str, scale: float, output: str, name: str) -> onnx.NodeProto:
        """``BipolarQuant(x, scale)``: ``+scale`` where ``x >= 0``, else ``-scale``."""
        s = self.add_const(np.float32(scale), f"{name}_scale")
        return self.make("BipolarQuant", [x, s], output, name, QONNX_DOMAIN)

    def replace(self, old: list[onnx.NodeProto], new: list[onnx.NodeProto]) -> None:
        """Put ``new`` where the first of ``old`` was, and drop ``old``."""
        nodes = self.node_list
        at = min(i for i, n in enumerate(nodes) if any(n is o for o in old))
        kept = [n for n in nodes if all(n is not o for o in old)]
        before = sum(1 for n in nodes[:at] if all(n is not o for o in old))
        kept[before:before] = new
        self.node_list = kept

    def rename_output(self, new: str) -> None:
        """Make tensor ``new`` the graph's output (its shape is re-inferred later)."""
        out = self.graph.output[0]
        out.name = new
        out.type.tensor_type.ClearField("shape")
        out.type.tensor_type.elem_type = onnx.TensorProto.FLOAT

    def model(self) -> onnx.ModelProto:
        del self.graph.node[:]
        self.graph.node.extend(self.node_list)
        del self.graph.value_info[:]  # shapes are re-inferred by prepare()
        return self.wrapper.model


def copy_node(node: onnx.NodeProto) -> onnx.NodeProto:
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    return copy


def first_threshold(t: np.ndarray) -> np.ndarray:
    """The float32 ``t'`` with ``x >= t  <=>  x >= t'`` for every float32 ``x``.

    ``t`` may be stored in float64 (numpy then compares in float64); rounding it up to
    float32 keeps the comparison exact.
    """
    t = np.asarray(t)
    t32 = t.astype(np.float32)
    if t.dtype != np.float32:
        up = t32.astype(np.float64) < t.astype(np.float64)
        t32 = np.where(up, np.nextafter(t32, np.float32(np.inf)), t32).astype(np.float32)
    return t32


def above(t: np.ndarray) -> np.ndarray:
    """The float32 ``t'`` with ``x > t  <=>  x >= t'`` for every float32 ``x``."""
    t = np.asarray(t)
    t32 = t.astype(np.float32)
    exact = t32.astype(np.float64) == t.astype(np.float64)
    bumped = np.nextafter(t32, np.float32(np.inf))
    # x > t (exact t32): next float; t not representable: rounding up already gives x > t
    up = np.where(t32.astype(np.float64) > t.astype(np.float64), t32, bumped)
    return np.where(exact, bumped, up).astype(np.float32)
