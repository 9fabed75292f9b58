"""Importer ops for convolutional networks: Conv, MaxPool, and layer creation.

A Conv becomes a layer with a :class:`~bnnhw.ir.Window`; its weight rows are reordered to
the window's ``(ky, kx, c)`` element order. A MaxPool after a binary activation pools the
activation bits (OR); one before the sign is kept as a ``maxpool`` marker in the layer's
float post-ops, and threshold folding decides per channel whether it is an OR or an AND.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np
import onnx

from bnnhw.frontend.values import Accumulator, Codes, Value
from bnnhw.ir import ElementwiseOp, InputSpec, Layer, Window

if TYPE_CHECKING:
    from qonnx.core.modelwrapper import ModelWrapper

    from bnnhw.errors import ModelError


class ConvMixin(ABC):
    """Methods of :class:`~bnnhw.frontend.importer.Importer` for feature maps.

    What they use of the importer is declared here (its walk state and the abstract
    helpers below), so a class without them cannot be instantiated.
    """

    layers: list[Layer]  # the layers made so far, in stream order
    input_spec: InputSpec | None  # the input quantizer, once seen
    wrapper: ModelWrapper  # the prepared graph, with inferred shapes

    @abstractmethod
    def fail(self, node: onnx.NodeProto, message: str) -> ModelError:
        """The error to raise for ``node``, naming it."""

    @abstractmethod
    def attr(self, node: onnx.NodeProto, name: str, default: object) -> object:
        """Attribute ``name`` of ``node``, or ``default``."""

    @abstractmethod
    def const(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray:
        """Input ``index`` of ``node``, which must be a constant."""

    @abstractmethod
    def require_codes(self, node: onnx.NodeProto, value: Value, verb: str, what: str) -> None:
        """Refuse a layer input that is not quantized codes."""

    @abstractmethod
    def per_neuron(self, node: onnx.NodeProto, c: np.ndarray, value: Accumulator) -> np.ndarray:
        """A constant operand on a layer's output as one value per neuron."""

    # -- shared with dense layers ---------------------------------------------------------
    def new_layer(
        self, node: onnx.NodeProto, rows: np.ndarray, row_scale: np.ndarray, value: Codes, **kw
    ) -> Layer:
        """A layer from +-s weight rows (already in stream order), consuming ``value``."""
        layer = Layer(
            name=node.name or f"layer{len(self.layers)}",
            weights=(rows > 0).astype(np.uint8),
            in_bits=value.bits,
            in_range=value.code_range,
            acc_scale=(np.float32(value.scale) * row_scale).astype(np.float32),
            **kw,
        )
        self.layers.append(layer)
        return layer

    def stream_columns(self, weight: np.ndarray, value: Codes) -> np.ndarray:
        """Dense weight columns reordered from the graph's (C, H, W) flattening to HWC."""
        if value.hwc_map is None:
            return weight
        c, h, w = value.hwc_map
        return weight.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)

    def binary_rows(self, node: onnx.NodeProto, w: np.ndarray) -> np.ndarray:
        """Per-row scale of a weight that is +-s per output neuron; refuses anything else."""
        magnitude = np.abs(w)
        row_scale = magnitude.max(axis=1)
        if (
            not np.all(np.isfinite(w))
            or np.any(magnitude != row_scale[:, None])
            or np.any(row_scale == 0)
        ):
            raise self.fail(
                node,
                f"weight {node.input[1]!r} is not binary (values other than +-s per neuron); "
                "binarize it with BipolarQuant (e.g. Brevitas SignedBinaryWeightPerTensorConst)",
            )
        return row_scale

    def ints(self, node: onnx.NodeProto, name: str, default: list[int]) -> list[int]:
        return [int(v) for v in self.attr(node, name, default)]

    def check_map(self, node: onnx.NodeProto, value: Value, what: str) -> tuple[int, int, int]:
        if len(value.frame) != 3:
            raise self.fail(
                node, f"{what} needs a (channels, height, width) map, got a frame {value.frame}"
            )
        return value.frame

    def make_window(
        self,
        node: onnx.NodeProto,
        map_: tuple[int, int, int],
        kernel: tuple[int, ...],
        stride: tuple[int, ...],
        pads: tuple[int, ...] = (0, 0, 0, 0),
    ) -> Window:
        """A Window from ONNX attributes, refusing (by node and attribute) what cannot be one.

        The IR's Window only raises ValueError; checking here names the attribute to fix.
        """
        c, h, w = map_
        if len(kernel) != 2 or min(kernel) < 1:
            raise self.fail(node, f"kernel {list(kernel)}: give two sizes >= 1 (a 2-D kernel)")
        if len(stride) != 2 or min(stride) < 1:
            raise self.fail(node, f"strides {list(stride)}: give two strides >= 1 (rows, columns)")
        if len(pads) != 4 or min(pads) < 0:
            raise self.fail(
                node, f"pads {list(pads)}: give four pads >= 0 (top, left, bottom, right)"
            )
        top, left, bottom, right = pads
        if kernel[0] > h + top + bottom or kernel[1] > w + left + right:
            raise self.fail(
                node,
                f"kernel {kernel[0]}x{kernel[1]} does not fit the {h}x{w} map "
                f"(padded to {h + top + bottom}x{w + left + right})",
            )
        return Window(c, h, w, (kernel[0], kernel[1]), (stride[0], stride[1]), tuple(pads))

    def check_out(self, node: onnx.NodeProto, frame: tuple[int, int, int]) -> None:
        shape = self.wrapper.get_tensor_shape(node.output[0])
        if shape and tuple(shape[1:]) != frame:
            raise self.fail(node, f"output shape {shape} differs from the computed {frame}")

    # -- ops ------------------------------------------------------------------------------
    def _op_Conv(self, node: onnx.NodeProto, value: Value) -> Value:
        self.require_codes(node, value, "convolves", "layer")
        c, h, w = self.check_map(node, value, "a convolution")
        if self.attr(node, "group", 1) != 1:
            raise self.fail(node, "grouped/depthwise convolution is not supported (group=1)")
        if set(self.ints(node, "dilations", [1, 1])) != {1}:
            raise self.fail(node, "dilated convolution is not supported (dilations 1)")
        if self.attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise self.fail(node, "auto_pad SAME_* is not supported; export explicit pads")
        weight = np.asarray(self.const(node, 1, "weight"), np.float32)
        if weight.ndim != 4 or weight.shape[1] != c:
            raise self.fail(node, f"weight of shape {weight.shape} does not fit {c} input channels")
        kernel = tuple(int(k) for k in weight.shape[2:])
        pads = tuple(self.ints(node, "pads", [0, 0, 0, 0]))
        stride = tuple(self.ints(node, "strides", [1, 1]))
        window = self.make_window(node, (c, h, w), kernel, stride, pads)
        if value.hwc_map is None and value.layer is not None:
            raise self.fail(
                node,
                "convolves the output of a dense layer reshaped into a map; bnnhw supports "
                "convolutions on the input image or on other convolutions' outputs",
            )
        if value.hwc_map is not None and value.hwc_map != (c, h, w):
            raise self.fail(node, f"receives a map reshaped from {value.hwc_map} to {(c, h, w)}")
        if value.layer is None and c > 1:
            self.input_spec.channels_last = c  # the host streams pixels, channels together
        flat = weight.reshape(weight.shape[0], -1)
        row_scale = self.binary_rows(node, flat)
        rows = weight.transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)  # (ky, kx, c)
        layer = self.new_layer(node, rows, row_scale, value, window=window)
        frame = (layer.neurons, window.out_height, window.out_width)
        self.check_out(node, frame)
        if len(node.input) > 2 and node.input[2]:
            bias = np.asarray(self.const(node, 2, "bias"), np.float32).reshape(-1, 1, 1)
            acc = Accumulator(frame, layer)
            op = ElementwiseOp("add", {"c": self.per_neuron(node, bias, acc)}, node.name)
            layer.post_ops.append(op)
        return Accumulator(frame, layer)

    def _op_MaxPool(self, node: onnx.NodeProto, value: Value) -> Value:
        if len([o for o in node.output if o]) > 1:
            raise self.fail(node, "returns indices; bnnhw supports MaxPool's values only")
        c, h, w = self.check_map(node, value, "a max-pool")
        kernel = tuple(self.ints(node, "kernel_shape", []))
        stride = tuple(self.ints(node, "strides", [1] * len(kernel)))
        if len(kernel) != 2:
            raise self.fail(node, f"kernel_shape {kernel}: bnnhw pools 2-D maps")
        if any(self.ints(node, "pads", [0, 0, 0, 0])) or self.attr(node, "ceil_mode", 0):
            raise self.fail(node, "padded or ceil_mode max-pools are not supported")
        if set(self.ints(node, "dilations", [1, 1])) != {1}:
            raise self.fail(node, "dilated max-pools are not supported")
        if self.attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise self.fail(node, "auto_pad SAME_* is not supported")
        layer = value.layer if isinstance(value, Codes | Accumulator) else None
        if layer is None:
            raise self.fail(node, "pools the input; bnnhw pools a layer's output")
        if layer.pool is not None:
            raise self.fail(node, f"pools layer {layer.name!r} a second time")
        if layer.window is None and (h, w) != (1, 1):
            raise self.fail(node, "pools the output of a dense layer reshaped into a map")
        if isinstance(value, Codes) and value.bits != 1:
            raise self.fail(node, "pools multi-bit values; bnnhw pools binary activations")
        layer.pool = self.make_window(node, (c, h, w), kernel, stride)
        layer.pool_and = np.zeros(layer.neurons, bool)
        frame = (c, layer.pool.out_height, layer.pool.out_width)
        self.check_out(node, frame)
        if isinstance(value, Accumulator):
            layer.post_ops.append(ElementwiseOp("maxpool", {}, node.name))
            return Accumulator(frame, layer)
        return Codes(frame, value.scale, value.bits, value.code_range, layer, layer.out_map)
