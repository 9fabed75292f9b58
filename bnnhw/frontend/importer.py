"""Interpret a prepared QONNX graph as a chain of binary layers.

After constant folding, every remaining node computes on the data input. Walking them in
order, each tensor is one of three abstract values:

* ``RawInput``    float data before the input quantizer, plus the float ops applied so far;
* ``Codes``       ``scale * codes``: the output of a quantizer (input or binary activation);
* ``Accumulator`` ``post_ops(acc)``: a layer's matrix product (or convolution) followed by
  float ops.

Feature maps are ``(C, H, W)`` in the graph but stream in HWC order in the IR; a value
remembers the map its stream is laid out as (``hwc_map``), so a dense layer after a
Flatten gets its weight columns reordered to the stream order, reproducing the graph's
NCHW flattening exactly.

A node is understood if it maps abstract values to abstract values; anything else is an
error that names the node and says what is supported. Nothing is guessed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from bnnhw.errors import ModelError
from bnnhw.frontend.conv import ConvMixin
from bnnhw.frontend.operands import OperandsMixin
from bnnhw.frontend.prepare import constants, prepare
from bnnhw.frontend.reader import node_label, read_model
from bnnhw.frontend.values import Accumulator, Codes, RawInput, Value
from bnnhw.ir import ElementwiseOp, InputSpec, Layer, Network

ARITHMETIC = {"Mul": "mul", "Add": "add", "Sub": "sub", "Div": "div"}
REVERSED = {"Mul": "mul", "Add": "add", "Sub": "rsub", "Div": "rdiv"}
SHAPE_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}
PASS_THROUGH = {"Identity", "Dropout"}
SUPPORTED = sorted(
    {"BipolarQuant", "Quant", "MatMul", "Gemm", "Conv", "MaxPool", "BatchNormalization"}
    | {"Transpose"}
    | set(ARITHMETIC)
    | SHAPE_OPS
    | PASS_THROUGH
)
ROUNDING_MODES = {"ROUND", "HALF_EVEN", "FLOOR", "CEIL"}
MAX_INPUT_BITS = 16


class Importer(OperandsMixin, ConvMixin):
    """One import of one file; holds the walk's state."""

    def __init__(self, path: Path, model: onnx.ModelProto) -> None:
        self.path = path
        self.wrapper = prepare(model, path)
        self.graph = self.wrapper.graph
        self.consts = constants(self.wrapper)
        self.values: dict[str, Value] = {}
        self.layers: list[Layer] = []
        self.input_spec: InputSpec | None = None

    # -- errors ---------------------------------------------------------------------------
    def fail(self, node: onnx.NodeProto, message: str) -> ModelError:
        index = list(self.graph.node).index(node)
        return ModelError(f"{self.path.name}: node {node_label(node, index)}: {message}")

    # -- walk -----------------------------------------------------------------------------
    def run(self) -> Network:
        init = {t.name for t in self.graph.initializer}
        data_input = next(i for i in self.graph.input if i.name not in init)
        shape = self.wrapper.get_tensor_shape(data_input.name)
        if not shape or any(not isinstance(d, int) or d <= 0 for d in shape[1:]):
            raise ModelError(
                f"{self.path.name}: input {data_input.name!r} has shape {shape}; bnnhw needs a "
                "fixed shape (batch, ...) for one frame"
            )
        self.frame_shape = tuple(int(d) for d in shape[1:])
        self.batch = shape[0] if isinstance(shape[0], int) else None
        self.values[data_input.name] = RawInput(self.frame_shape)
        self._check_chain()
        for node in self.graph.node:
            if node.op_type == "Constant" or all(n in self.consts or n == "" for n in node.input):
                continue  # folded already (or a constant producer)
            self._visit(node)
        return self._finish()

    def _check_chain(self) -> None:
        """Every computed tensor feeds at most one node: the network must be a chain."""
        users: dict[str, list[onnx.NodeProto]] = {}
        for node in self.graph.node:
            for name in node.input:
                if name and name not in self.consts:
                    users.setdefault(name, []).append(node)
        for name, nodes in users.items():
            if len(nodes) > 1:
                labels = ", ".join(n.name or n.op_type for n in nodes)
                raise self.fail(
                    nodes[1],
                    f"tensor {name!r} feeds {len(nodes)} nodes ({labels}); bnnhw supports "
                    "chains of layers without branches",
                )

    def _finish(self) -> Network:
        out_name = self.graph.output[0].name
        value = self.values.get(out_name)
        if isinstance(value, Codes) and self.layers:
            raise ModelError(
                f"{self.path.name}: the graph output {out_name!r} is quantized; the last layer "
                "must output its scores (remove the quantizer after the last MatMul/Gemm)"
            )
        if not isinstance(value, Accumulator):
            raise ModelError(
                f"{self.path.name}: no binary layer reaches the graph output {out_name!r}; "
                "expected (BipolarQuant|Quant) -> MatMul/Gemm -> ... -> output"
            )
        value.layer.is_output = True
        net = Network(
            name=self.path.stem, input=self.input_spec, layers=self.layers, source=str(self.path)
        )
        try:
            net.validate()
        except ValueError as exc:
            raise ModelError(f"{self.path.name}: {exc}") from None
        return net

    def _visit(self, node: onnx.NodeProto) -> None:
        dynamic = [n for n in node.input if n and n not in self.consts]
        if len(dynamic) != 1 or (dynamic[0] != node.input[0] and node.op_type not in ARITHMETIC):
            raise self.fail(
                node,
                "computes on several tensors (or on a computed parameter); bnnhw supports "
                "ops whose only computed input is the data, with constant parameters",
            )
        value = self.values.get(dynamic[0])
        if value is None:
            raise self.fail(
                node,
                f"reads {dynamic[0]!r}, a second output of an earlier node (a mask or indices); "
                "bnnhw follows each node's first output only",
            )
        handler = getattr(self, f"_op_{node.op_type}", None)
        if handler is None:
            raise self.fail(
                node, f"op {node.op_type} is not supported; supported: {', '.join(SUPPORTED)}"
            )
        self.values[node.output[0]] = handler(node, value)

    # -- helpers --------------------------------------------------------------------------
    def out_frame(self, node: onnx.NodeProto, frame: tuple[int, ...]) -> tuple[int, ...]:
        shape = self.wrapper.get_tensor_shape(node.output[0])
        if not shape or any(not isinstance(d, int) for d in shape[1:]):
            raise self.fail(node, "output shape unknown after shape inference")
        out = tuple(int(d) for d in shape[1:])
        if self.batch is not None and shape[0] != self.batch:
            raise self.fail(
                node,
                f"makes a batch of {shape[0]} from the input's batch of {self.batch}; the "
                "batch axis must stay first and unchanged (reshape to (-1, ...))",
            )
        if int(np.prod(out)) != int(np.prod(frame)):
            raise self.fail(
                node, f"changes a frame of shape {frame} into {out}; the batch axis must stay first"
            )
        return out

    # -- ops ------------------------------------------------------------------------------
    def _arithmetic(self, node: onnx.NodeProto, value: Value) -> Value:
        if node.input[1] in self.consts:
            kind, c = ARITHMETIC[node.op_type], self.consts[node.input[1]]
        else:
            kind, c = REVERSED[node.op_type], self.consts[node.input[0]]
        if kind == "div" and np.any(np.asarray(c) == 0):
            raise self.fail(node, "divides by a constant that is 0; give a non-zero divisor")
        if isinstance(value, Accumulator):
            value.layer.post_ops.append(
                ElementwiseOp(kind, {"c": self.per_neuron(node, c, value)}, node.name)
            )
            return value
        op = ElementwiseOp(kind, {"c": self.per_frame(node, c, value.frame)}, node.name)
        if isinstance(value, RawInput):
            return RawInput(value.frame, [*value.ops, op])
        factor = op.params["c"]
        if kind in {"mul", "div"} and np.all(factor == factor[0]) and factor[0] > 0:
            scale = (
                np.float32(value.scale) * factor[0]
                if kind == "mul"
                else (np.float32(value.scale) / factor[0])
            )
            return Codes(
                value.frame,
                float(np.float32(scale)),
                value.bits,
                value.code_range,
                value.layer,
                value.hwc_map,
            )
        raise self.fail(
            node,
            "arithmetic on quantized activations is only supported as scaling by one positive "
            "constant; fold it into the previous layer instead",
        )

    _op_Mul = _op_Add = _op_Sub = _op_Div = _arithmetic

    def _op_BipolarQuant(self, node: onnx.NodeProto, value: Value) -> Value:
        scale = self.scalar(node, 1, "scale")
        if not scale > 0:
            raise self.fail(node, f"scale must be positive, got {scale}")
        if isinstance(value, RawInput):
            self._set_input(node, value, bits=1)
        elif isinstance(value, Codes):
            raise self.fail(node, "binarizes a tensor that is already quantized")
        else:
            return Codes(value.frame, scale, 1, (-1, 1), value.layer, value.hwc_map)
        return Codes(value.frame, scale, 1, (-1, 1))

    def _op_Quant(self, node: onnx.NodeProto, value: Value) -> Value:
        if not isinstance(value, RawInput):
            raise self.fail(
                node,
                "multi-bit quantization between layers is not supported; bnnhw builds w1a1 "
                "networks (BipolarQuant activations) with an optional n-bit input quantizer",
            )
        scale = self.scalar(node, 1, "scale")
        zero_point = self.scalar(node, 2, "zero point")
        bits = self.scalar(node, 3, "bit width", arithmetic=False)
        signed, narrow = bool(self.attr(node, "signed", 1)), bool(self.attr(node, "narrow", 0))
        rounding = str(self.attr(node, "rounding_mode", "ROUND")).upper()
        if not scale > 0:
            raise self.fail(node, f"scale must be positive, got {scale}")
        if zero_point != 0:
            raise self.fail(node, f"zero point {zero_point} is not supported; use zero point 0")
        if bits != int(bits) or not 1 <= bits <= MAX_INPUT_BITS:
            raise self.fail(
                node, f"bit width {bits} is not supported; use 1 to {MAX_INPUT_BITS} bits"
            )
        if rounding not in ROUNDING_MODES:
            raise self.fail(node, f"rounding mode {rounding} is not supported: {ROUNDING_MODES}")
        if bits == 1:
            if not signed:
                raise self.fail(node, "an unsigned 1-bit quantizer is not a binary (+-1) input")
            # qonnx treats a signed 1-bit Quant as bipolar on x / scale
            div = ElementwiseOp("div", {"c": np.full(1, scale, np.float32)}, node.name)
            self._set_input(node, RawInput(value.frame, [*value.ops, div]), bits=1)
            return Codes(value.frame, scale, 1, (-1, 1))
        spec = self._set_input(
            node,
            value,
            bits=int(bits),
            signed=signed,
            narrow=narrow,
            scale=scale,
            rounding=rounding,
        )
        return Codes(value.frame, scale, spec.bits, spec.code_range)

    def _set_input(self, node: onnx.NodeProto, value: RawInput, **quant: object) -> InputSpec:
        if self.input_spec is not None:
            raise self.fail(node, "quantizes the raw input a second time")
        self.input_spec = InputSpec(
            shape=self.frame_shape, preprocess=value.ops, source=node.name, **quant
        )
        return self.input_spec

    def _op_MatMul(self, node: onnx.NodeProto, value: Value) -> Value:
        weight = np.asarray(self.const(node, 1, "weight"))
        return self._linear(node, value, weight.T if weight.ndim == 2 else weight)

    def _op_Gemm(self, node: onnx.NodeProto, value: Value) -> Value:
        if self.attr(node, "transA", 0):
            raise self.fail(node, "transA=1 is not supported")
        weight = np.asarray(self.const(node, 1, "weight"))
        if weight.ndim == 2 and not self.attr(node, "transB", 0):
            weight = weight.T
        acc = self._linear(node, value, weight)
        alpha, beta = float(self.attr(node, "alpha", 1.0)), float(self.attr(node, "beta", 1.0))
        if not np.isfinite(np.float32([alpha, beta])).all():
            raise self.fail(node, f"alpha {alpha} and beta {beta} must be finite numbers")
        layer = acc.layer
        if alpha != 1.0:
            layer.post_ops.append(ElementwiseOp("mul", {"c": np.full(1, alpha, np.float32)}))
        if len(node.input) > 2 and node.input[2]:
            bias = np.float32(beta) * np.asarray(self.const(node, 2, "bias"), np.float32)
            c = self.per_frame(node, bias, acc.frame)
            layer.post_ops.append(ElementwiseOp("add", {"c": c}, node.name))
        return acc

    def require_codes(self, node: onnx.NodeProto, value: Value, verb: str, what: str) -> None:
        """A layer's input must be quantized codes: not the raw input, not another layer's
        accumulator."""
        if isinstance(value, RawInput):
            raise self.fail(
                node,
                f"{verb} the unquantized input; put a Quant (n-bit) or BipolarQuant on the "
                "input before the first layer",
            )
        if isinstance(value, Accumulator):
            raise self.fail(node, f"follows another {what} without a BipolarQuant between")

    def _linear(self, node: onnx.NodeProto, value: Value, weight: np.ndarray) -> Accumulator:
        """A matrix product with a (neurons, fan_in) weight that must be +-s per neuron."""
        self.require_codes(node, value, "multiplies", "matrix product")
        if len(value.frame) != 1:
            raise self.fail(node, f"receives a frame of shape {value.frame}; flatten it first")
        if weight.ndim != 2 or weight.shape[1] != value.frame[0]:
            raise self.fail(
                node,
                f"weight of shape {weight.shape} does not fit an input of width {value.frame[0]}",
            )
        w = self.stream_columns(weight.astype(np.float32), value)
        row_scale = self.binary_rows(node, w)
        layer = self.new_layer(node, w, row_scale, value)
        return Accumulator((layer.neurons,), layer)

    def _op_BatchNormalization(self, node: onnx.NodeProto, value: Value) -> Value:
        if len([o for o in node.output if o]) > 1 or self.attr(node, "training_mode", 0):
            raise self.fail(node, "is in training mode; export the model in eval() mode")
        if isinstance(value, Codes):
            raise self.fail(node, "normalizes quantized activations; it must follow a MatMul/Gemm")
        channels = value.frame[0]
        per_pixel = 1 if isinstance(value, Accumulator) else int(np.prod(value.frame[1:]))
        params = {}
        for index, key in enumerate(("scale", "bias", "mean", "var"), start=1):
            p = self.finite(node, index, key)
            if p.shape != (channels,):
                raise self.fail(
                    node, f"{key} has shape {p.shape}; give one value per channel ({channels},)"
                )
            # one value per element of the (channels, ...) frame, flattened
            params[key] = np.repeat(p, per_pixel)
        params["epsilon"] = np.float32(self.attr(node, "epsilon", 1e-5))
        if not np.all(params["var"] + params["epsilon"] > 0):
            raise self.fail(node, "var + epsilon must be positive (a square root is taken)")
        op = ElementwiseOp("batchnorm", params, node.name)
        if isinstance(value, RawInput):
            return RawInput(value.frame, [*value.ops, op])
        value.layer.post_ops.append(op)
        return value

    def _reshape(self, node: onnx.NodeProto, value: Value) -> Value:
        frame = self.out_frame(node, value.frame)
        if isinstance(value, Accumulator):
            return Accumulator(frame, value.layer)
        if isinstance(value, RawInput):
            return RawInput(frame, value.ops)
        return Codes(frame, value.scale, value.bits, value.code_range, value.layer, value.hwc_map)

    _op_Reshape = _op_Flatten = _op_Squeeze = _op_Unsqueeze = _reshape

    def _op_Identity(self, node: onnx.NodeProto, value: Value) -> Value:
        return value

    def _op_Dropout(self, node: onnx.NodeProto, value: Value) -> Value:
        """The identity at inference, but onnxruntime checks its ratio, so bnnhw does too."""
        ratio = self.finite(node, 1, "ratio") if len(node.input) > 1 and node.input[1] else None
        ratio = float(self.attr(node, "ratio", 0.5)) if ratio is None else ratio
        if np.size(ratio) != 1 or not 0 <= float(np.reshape(ratio, -1)[0]) < 1:
            raise self.fail(node, f"ratio {ratio} must be one value in [0, 1)")
        if len(node.input) > 2 and node.input[2] and np.any(self.const(node, 2, "training_mode")):
            raise self.fail(node, "is in training mode; export the model in eval() mode")
        return value

    def _op_Transpose(self, node: onnx.NodeProto, value: Value) -> Value:
        perm = list(self.attr(node, "perm", []))
        moved = [axis for i, axis in enumerate(perm) if axis != i]
        shape = (1, *value.frame)
        if perm and perm[0] == 0 and all(shape[axis] == 1 for axis in moved):
            return self._reshape(node, value)
        raise self.fail(node, "transposes the data; only transposes of weights are supported")


def import_onnx(path: str | Path) -> Network:
    """Read an ONNX file (QONNX, FINN-ONNX, plain ONNX or Larq via tf2onnx) into an
    unfolded IR Network (run the passes next); other dialects are first rewritten into
    QONNX form by ``bnnhw.frontend.dialects``."""
    from bnnhw.frontend.dialects import normalize

    path = Path(path)
    return Importer(path, normalize(read_model(path), path).model).run()
