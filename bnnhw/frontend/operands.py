"""Importer helpers that read a node's constant operands and attributes.

Every constant that enters the replayed float arithmetic is checked here once: it must be
finite (a NaN or infinite scale, zero point, bit width or TensorNorm weight is named as
such, not as a shape problem), so later passes never meet NaN from the graph's constants.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import onnx
from onnx import helper

from bnnhw.errors import ModelError


def node_attr(node: onnx.NodeProto, name: str, default: object) -> object:
    """A node attribute's value (strings decoded), or ``default`` when it is absent."""
    for a in node.attribute:
        if a.name == name:
            value = helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


class OperandsMixin(ABC):
    """Methods of :class:`~bnnhw.frontend.importer.Importer` for constant operands."""

    consts: dict[str, np.ndarray]  # every tensor with a known value after folding

    @abstractmethod
    def fail(self, node: onnx.NodeProto, message: str) -> ModelError:
        """The error to raise for ``node``, naming it."""

    def const(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray:
        name = node.input[index] if index < len(node.input) else ""
        if not name:
            raise self.fail(node, f"needs its {what} input")
        if name not in self.consts:
            raise self.fail(node, f"{what} {name!r} must be a constant (an initializer)")
        return self.consts[name]

    def finite(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray:
        """A numeric constant input with no NaN or infinity, as float32."""
        raw = np.asarray(self.const(node, index, what))
        if raw.dtype.kind not in "fiub":
            raise self.fail(node, f"{what} {node.input[index]!r} is of type {raw.dtype}")
        with np.errstate(over="ignore"):
            c = raw.astype(np.float32)
        if not np.all(np.isfinite(c)):
            bad = "NaN" if np.any(np.isnan(c)) else "an infinite value"
            raise self.fail(
                node, f"{what} {node.input[index]!r} holds {bad} (in float32); give finite values"
            )
        return c

    def scalar(
        self, node: onnx.NodeProto, index: int, what: str, *, arithmetic: bool = True
    ) -> float:
        """A constant input with one value; ``arithmetic``: it enters the quantizer's float
        arithmetic, which qonnx runs in the constant's own precision and bnnhw replays in
        float32, so it must be stored as float32."""
        raw = np.asarray(self.const(node, index, what))
        if arithmetic and raw.dtype != np.float32:
            raise self.fail(
                node,
                f"{what} {node.input[index]!r} is stored as {raw.dtype}: the reference would "
                "quantize in that precision and bnnhw in float32, which can round to other "
                "codes; store it as float32",
            )
        c = self.finite(node, index, what)
        if c.size == 0 or np.any(c != c.flat[0]):
            raise self.fail(node, f"{what} must be one value per tensor, got shape {c.shape}")
        return float(c.flat[0])

    def attr(self, node: onnx.NodeProto, name: str, default: object) -> object:
        return node_attr(node, name, default)

    def per_frame(self, node: onnx.NodeProto, c: np.ndarray, frame: tuple[int, ...]) -> np.ndarray:
        """A constant operand as one float32 value per element of a frame (flattened)."""
        with np.errstate(over="ignore"):
            c = np.asarray(c, dtype=np.float32)
        if not np.all(np.isfinite(c)):
            bad = "NaN" if np.any(np.isnan(c)) else "an infinite value"
            raise self.fail(node, f"its constant operand holds {bad} (in float32)")
        full = (1, *frame)
        try:
            shape = np.broadcast_shapes(c.shape, full)
        except ValueError:
            shape = None
        if shape != full:
            raise self.fail(
                node, f"constant of shape {c.shape} does not broadcast over a frame {frame}"
            )
        return np.ascontiguousarray(np.broadcast_to(c, full)[0].reshape(-1))

    def per_neuron(self, node: onnx.NodeProto, c: np.ndarray, value) -> np.ndarray:
        """A constant operand on a layer's output as one float32 value per neuron (channel).

        The frame is channel-major (``(neurons,)`` or ``(C, H, W)``), so each neuron's
        values are one row; they must agree across the map's pixels.
        """
        rows = self.per_frame(node, c, value.frame).reshape(value.layer.neurons, -1)
        if np.any(rows != rows[:, :1]):
            raise self.fail(
                node,
                "applies a different constant at different pixels of a channel; bnnhw supports "
                "one value per channel (as BatchNorm and biases have)",
            )
        return np.ascontiguousarray(rows[:, 0])
