"""Build QONNX binary-MLP graphs the way Brevitas ``export_qonnx`` writes them, for tests.

The graphs are made with ``onnx.helper`` so the tests need neither torch nor Brevitas, yet they
carry the forms a real export has: ``BipolarQuant(float W, scale)`` weights, ``Gemm`` (transB=1)
or ``Transpose`` + ``MatMul``, standard ``BatchNormalization``, a TensorNorm tail as
Sub/Div/Mul/Add, a 2x-1 (Mul/Sub) or 8-bit ``Quant`` input, a Flatten/Reshape for image inputs,
and optionally the dynamo exporter's habits (initializers listed as graph inputs, equal constants
merged into one).

``execute_reference`` runs a graph with qonnx's node-by-node executor, the project's reference;
``numpy_reference`` re-computes the same graph from its spec in NumPy, float32 operation by
float32 operation, so the builder itself can be checked bit for bit.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QONNX_DOMAIN = "qonnx.custom_op.general"
INT8_SCALE = np.float32(2.0**-7)

InputKind = Literal["bipolar", "int8"]
LinearForm = Literal["gemm", "matmul"]
FlattenForm = Literal["flatten", "reshape"]


@dataclass
class BatchNormSpec:
    """Parameters of one standard ONNX BatchNormalization (inference form), per channel."""

    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    epsilon: float = 1e-5


@dataclass
class TensorNormSpec:
    """Brevitas' TensorNorm after export: Sub mean, Div sqrt(var+eps), Mul weight, Add bias."""

    mean: float
    var: float
    epsilon: float
    weight: float
    bias: float


@dataclass
class LayerSpec:
    """One binary linear layer: BipolarQuant(weight, weight_scale) then optional bias and BN.

    ``weight`` is the float (out, in) initializer (``>= 0`` binarises to +1, so 0.0 and -0.0
    do too); ``weight_scale`` is a power of two, shape () or (out, 1); ``act_scale`` is the
    scale of the BipolarQuant activation after a hidden layer (unused for the last layer).
    """

    weight: np.ndarray
    weight_scale: np.ndarray
    bias: np.ndarray | None = None
    bn: BatchNormSpec | None = None
    act_scale: float = 1.0

    @property
    def out_features(self) -> int:
        """Width of this layer's output."""
        return int(self.weight.shape[0])

    @property
    def in_features(self) -> int:
        """Width of this layer's input."""
        return int(self.weight.shape[1])


@dataclass
class MLPSpec:
    """A whole binary MLP graph and how it is written out."""

    layers: list[LayerSpec]
    input_kind: InputKind = "bipolar"
    input_scale: float = 1.0  # scale of the input BipolarQuant ("bipolar" inputs)
    linear: LinearForm = "gemm"
    image_shape: tuple[int, int] | None = None  # input (B, 1, h, w) then Flatten/Reshape
    flatten: FlattenForm = "flatten"
    flatten_first: bool = True  # flatten before (True) or after the input mapping
    tail: TensorNormSpec | None = None
    dynamo_style: bool = False
    batch: int | str = 1  # fixed batch dimension, or a symbolic dim name
    opset: int = 13
    name: str = "bnn_mlp"

    @property
    def widths(self) -> list[int]:
        """Input width followed by every layer's output width."""
        return [self.layers[0].in_features] + [layer.out_features for layer in self.layers]

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """Per-frame input shape (graph input shape without the batch dimension)."""
        if self.image_shape is not None:
            return (1, *self.image_shape)
        return (self.widths[0],)

    def input_unit(self, index: int) -> float:
        """Magnitude step of the values entering layer ``index`` (bipolar: exactly +-unit)."""
        if index == 0:
            return float(INT8_SCALE) if self.input_kind == "int8" else self.input_scale
        return self.layers[index - 1].act_scale


def _f32(value: object) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


class _GraphWriter:
    """Collects nodes and initializers with readable, unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count: dict[str, int] = {}

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], domain: str = "", **attrs: object) -> str:
        index = self._count.get(op, 0)
        self._count[op] = index + 1
        name = f"{op}_{index}"
        out = f"{name}_out0"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, domain=domain, **attrs))
        return out


def build_model(spec: MLPSpec) -> onnx.ModelProto:
    """Write ``spec`` as a QONNX ModelProto (opset ``spec.opset`` + qonnx.custom_op.general v1)."""
    g = _GraphWriter()
    batch = spec.batch
    x = "global_in"
    in_shape = [batch, *spec.frame_shape]

    def flatten(t: str) -> str:
        if spec.image_shape is None:
            return t
        if spec.flatten == "flatten":
            return g.node("Flatten", [t], axis=1)
        first = batch if isinstance(batch, int) else -1
        rest = -1 if isinstance(batch, int) else spec.widths[0]
        shape = g.const("flatten_shape", np.array([first, rest], dtype=np.int64))
        return g.node("Reshape", [t, shape])

    t = flatten(x) if spec.flatten_first else x
    if spec.input_kind == "bipolar":
        t = g.node("Mul", [t, g.const("in_mul", _f32(2.0))])
        t = g.node("Sub", [t, g.const("in_sub", _f32(1.0))])
        if not spec.flatten_first:
            t = flatten(t)
        t = g.node("BipolarQuant", [t, g.const("in_scale", _f32(spec.input_scale))], QONNX_DOMAIN)
    else:
        if not spec.flatten_first:
            t = flatten(t)
        quant_inputs = [
            t,
            g.const("in_quant_scale", _f32(INT8_SCALE)),
            g.const("in_quant_zeropt", _f32(0.0)),
            g.const("in_quant_bitwidth", _f32(8.0)),
        ]
        t = g.node("Quant", quant_inputs, QONNX_DOMAIN, signed=1, narrow=0, rounding_mode="ROUND")

    last = len(spec.layers) - 1
    for i, layer in enumerate(spec.layers):
        w = g.const(f"fc{i}_weight", _f32(layer.weight))
        ws = g.const(f"fc{i}_weight_scale", _f32(layer.weight_scale))
        wq = g.node("BipolarQuant", [w, ws], QONNX_DOMAIN)
        if spec.linear == "gemm":
            gemm_in = [t, wq]
            if layer.bias is not None:
                gemm_in.append(g.const(f"fc{i}_bias", _f32(layer.bias)))
            t = g.node("Gemm", gemm_in, transB=1)
        else:
            wt = g.node("Transpose", [wq], perm=[1, 0])
            t = g.node("MatMul", [t, wt])
            if layer.bias is not None:
                t = g.node("Add", [t, g.const(f"fc{i}_bias", _f32(layer.bias))])
        if layer.bn is not None:
            bn = layer.bn
            t = g.node(
                "BatchNormalization",
                [
                    t,
                    g.const(f"bn{i}_weight", _f32(bn.gamma)),
                    g.const(f"bn{i}_bias", _f32(bn.beta)),
                    g.const(f"bn{i}_running_mean", _f32(bn.mean)),
                    g.const(f"bn{i}_running_var", _f32(bn.var)),
                ],
                epsilon=float(bn.epsilon),
            )
        if i < last:
            act_scale = g.const(f"act{i}_scale", _f32(layer.act_scale))
            t = g.node("BipolarQuant", [t, act_scale], QONNX_DOMAIN)
    if spec.tail is not None:
        tn = spec.tail
        denom = np.sqrt(np.float32(tn.var) + np.float32(tn.epsilon), dtype=np.float32)
        t = g.node("Sub", [t, g.const("tn_mean", _f32(tn.mean))])
        t = g.node("Div", [t, g.const("tn_std", _f32(denom))])
        t = g.node("Mul", [t, g.const("tn_weight", _f32(tn.weight))])
        t = g.node("Add", [t, g.const("tn_bias", _f32(tn.bias))])
    # rename the last tensor to the graph output name
    g.nodes[-1].output[0] = "global_out"

    inits = g.inits
    if spec.dynamo_style:
        inits = _merge_equal_constants(g.nodes, inits)
    inputs = [helper.make_tensor_value_info(x, TensorProto.FLOAT, in_shape)]
    if spec.dynamo_style:
        inputs += [helper.make_tensor_value_info(i.name, i.data_type, list(i.dims)) for i in inits]
    outputs = [
        helper.make_tensor_value_info(
            "global_out", TensorProto.FLOAT, [batch, spec.layers[-1].out_features]
        )
    ]
    graph = helper.make_graph(g.nodes, spec.name, inputs, outputs, inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", spec.opset), helper.make_opsetid(QONNX_DOMAIN, 1)],
        producer_name="bnnhw-tests",
    )
    model.ir_version = min(model.ir_version, 8 if spec.opset <= 17 else 9)
    return model


def _merge_equal_constants(
    nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]
) -> list[onnx.TensorProto]:
    """Merge initializers with equal dtype, shape and bytes, as torch's dynamo exporter does."""
    keep: dict[tuple[int, tuple[int, ...], bytes], str] = {}
    rename: dict[str, str] = {}
    kept: list[onnx.TensorProto] = []
    for init in inits:
        key = (init.data_type, tuple(init.dims), numpy_helper.to_array(init).tobytes())
        if key in keep:
            rename[init.name] = keep[key]
        else:
            keep[key] = init.name
            kept.append(init)
    for node in nodes:
        for k, name in enumerate(node.input):
            if name in rename:
                node.input[k] = rename[name]
    return kept


def save_model(model: onnx.ModelProto, path: object) -> None:
    """Save a model as one self-contained .onnx file."""
    onnx.save_model(model, str(path))


# --------------------------------------------------------------------------- reference


def data_input_name(model: onnx.ModelProto) -> str:
    """The one graph input that is not an initializer (dynamo graphs list both)."""
    inits = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    if len(names) != 1:
        raise ValueError(f"expected one data input, found {names}")
    return names[0]


def _set_batch(value_info: onnx.ValueInfoProto, batch: int) -> None:
    dim = value_info.type.tensor_type.shape.dim[0]
    dim.Clear()
    dim.dim_value = batch


def execute_reference(model: onnx.ModelProto, x: np.ndarray, *, every_tensor: bool = False):
    """Run ``model`` on the rows of ``x`` with qonnx's node-by-node ``execute_onnx``.

    ``execute_onnx`` allocates every tensor from its static shape and rejects an input whose
    shape differs, and a symbolic batch dim becomes size 0.  So, like qonnx's ChangeBatchSize,
    the batch dim of the data input and the outputs is set to ``len(x)``, stale value_info is
    dropped, the first entry of constant Reshape shapes is set to the batch, and shapes are
    inferred again.  Returns the first graph output as float32, or with ``every_tensor``
    the whole execution context (every tensor by name).
    """
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    m = copy.deepcopy(model)
    n = int(x.shape[0])
    name = data_input_name(m)
    for vi in m.graph.input:
        if vi.name == name:
            _set_batch(vi, n)
    for vi in m.graph.output:
        _set_batch(vi, n)
    del m.graph.value_info[:]
    inits = {t.name: t for t in m.graph.initializer}
    for node in m.graph.node:
        if node.op_type == "Reshape" and node.input[1] in inits:
            shape = numpy_helper.to_array(inits[node.input[1]]).copy()
            shape[0] = n
            inits[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
    wrapper = ModelWrapper(m).transform(InferShapes())
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = execute_onnx(wrapper, {name: x}, return_full_exec_context=every_tensor)
    return out if every_tensor else np.asarray(out[m.graph.output[0].name])


def bipolar(x: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    """QONNX BipolarQuant: +scale where x >= 0 (so 0.0 and -0.0 give +scale) else -scale."""
    return np.where(x >= 0, np.float32(1), np.float32(-1)).astype(np.float32) * _f32(scale)


def batchnorm_f32(t: np.ndarray, bn: BatchNormSpec) -> np.ndarray:
    """onnxruntime's CPU BatchNormalization, bit for bit (checked in test_qonnx_graphs).

    inv_std = 1 / sqrt(var + eps); new_scale = inv_std * gamma; new_bias = beta - mean *
    new_scale; y = t * new_scale + new_bias -- every step rounded to float32, no FMA.
    """
    eps = np.float32(bn.epsilon)
    inv_std = np.float32(1) / np.sqrt(_f32(bn.var) + eps)
    scale = (inv_std * _f32(bn.gamma)).astype(np.float32)
    bias = (_f32(bn.beta) - _f32(bn.mean) * scale).astype(np.float32)
    return (t * scale + bias).astype(np.float32)


def numpy_reference(spec: MLPSpec, x: np.ndarray) -> np.ndarray:
    """Compute the graph of ``spec`` in NumPy with the same float32 rounding as the executor."""
    t = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    if spec.input_kind == "bipolar":
        t = bipolar(t * np.float32(2) - np.float32(1), spec.input_scale)
    else:
        q = np.clip(t / INT8_SCALE, -128, 127)
        t = (np.round(q) * INT8_SCALE).astype(np.float32)
    for i, layer in enumerate(spec.layers):
        w = bipolar(_f32(layer.weight), layer.weight_scale)
        # every product and partial sum is a small multiple of a power of two: exact
        t = (t.astype(np.float64) @ w.astype(np.float64).T).astype(np.float32)
        if layer.bias is not None:
            t = (t + _f32(layer.bias)).astype(np.float32)
        if layer.bn is not None:
            t = batchnorm_f32(t, layer.bn)
        if i < len(spec.layers) - 1:
            t = bipolar(t, layer.act_scale)
    if spec.tail is not None:
        tn = spec.tail
        denom = np.sqrt(np.float32(tn.var) + np.float32(tn.epsilon), dtype=np.float32)
        t = (t - np.float32(tn.mean)).astype(np.float32)
        t = (t / denom).astype(np.float32)
        t = (t * np.float32(tn.weight)).astype(np.float32)
        t = (t + np.float32(tn.bias)).astype(np.float32)
    return t


def output_magnitude(spec: MLPSpec) -> float:
    """Bound on the magnitude of every intermediate value of the last layer's float tail.

    float32 rounding errors are relative to those intermediates, not to the final output (e.g.
    ``acc * s + b`` with ``b`` ~ ``-acc * s`` cancels), so tolerances on float outputs scale
    with this bound.
    """
    k = len(spec.layers) - 1
    layer = spec.layers[k]
    unit = spec.input_unit(k) * (128 if spec.input_kind == "int8" and k == 0 else 1)
    v = layer.in_features * unit * float(np.max(np.abs(layer.weight_scale)))
    if layer.bias is not None:
        v += float(np.max(np.abs(layer.bias)))
    if layer.bn is not None:
        bn = layer.bn
        ns = np.abs(_f32(bn.gamma).astype(np.float64)) / np.sqrt(
            _f32(bn.var).astype(np.float64) + bn.epsilon
        )
        v = float(np.max(ns * (v + np.abs(bn.mean)) + np.abs(bn.beta)))
    if spec.tail is not None:
        tn = spec.tail
        v = (v + abs(tn.mean)) / np.sqrt(tn.var + tn.epsilon) * tn.weight + abs(tn.bias)
    return float(v)
