"""Build QONNX binary-CNN graphs the way Brevitas ``export_qonnx`` writes them, for tests.

Same style as ``qonnx_graphs`` (onnx.helper, no torch): an image input (N, C, H, W), an
input quantizer (BipolarQuant, ``2x - 1`` + BipolarQuant, or an n-bit Quant, optionally
after a per-channel BatchNormalization on the raw input), then conv stages ::

    Conv(x, BipolarQuant(W, s) | +-s constant, bias?) [-> Mul c -> MaxPool] -> BN
        [-> Mul c -> MaxPool] -> BipolarQuant [-> MaxPool]      (one pool at most)

then Flatten or Reshape, dense layers (``qonnx_graphs.LayerSpec``, Gemm or Transpose +
MatMul) and an optional Mul/Add head on the last one. The graph input may also be another
shape reshaped into the image (``input_frame``). Each stage's last tensor is named
``stage{i}_out`` and each hidden dense activation ``dense{i}_out`` (their shapes land in
``spec.tap_shapes``) so tests can compare intermediate bits with the executor's
(``execute_all``, ``tap_bits``). ``calibrate`` centres the BN thresholds on given frames.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, helper

from mlp_specs import pow2, random_weight
from qonnx_graphs import (
    QONNX_DOMAIN,
    BatchNormSpec,
    FlattenForm,
    LayerSpec,
    LinearForm,
    _f32,
    _GraphWriter,
    execute_reference,
)

ConvInput = Literal["bipolar", "2x-1", "int8", "uint4"]
WeightForm = Literal["bipolarquant", "constant"]
PoolAt = Literal["after_sign", "before_bn", "before_sign"]
# (bits, signed, scale) of the n-bit input quantizers
QUANT_INPUTS = {"int8": (8, True, 2.0**-7), "uint4": (4, False, 2.0**-4)}


@dataclass
class PoolSpec:
    """A MaxPool; ``stride=None`` omits the attribute (ONNX default: stride 1)."""

    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] | None = (2, 2)
    # after_sign: ... -> BipolarQuant -> MaxPool; before_bn: Conv [-> Mul] -> MaxPool -> BN
    # -> BipolarQuant; before_sign: Conv -> BN [-> Mul] -> MaxPool -> BipolarQuant
    at: PoolAt = "after_sign"
    scale: np.ndarray | None = None  # (C,) Mul just before a pool that precedes the sign

    def out(self, h: int, w: int) -> tuple[int, int]:
        sh, sw = self.stride or (1, 1)
        return (h - self.kernel[0]) // sh + 1, (w - self.kernel[1]) // sw + 1


@dataclass
class ConvSpec:
    """One binary conv stage; ``weight`` (out, in, kh, kw) binarises with ``>= 0`` -> +1."""

    weight: np.ndarray
    weight_scale: np.ndarray  # () or (out, 1, 1, 1), positive
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # ONNX order: top, left, bottom, right
    weight_form: WeightForm = "bipolarquant"
    bias: np.ndarray | None = None  # (out,)
    bn: BatchNormSpec | None = None
    act_scale: float = 1.0
    pool: PoolSpec | None = None

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weight.shape[2]), int(self.weight.shape[3])

    def conv_out(self, h: int, w: int) -> tuple[int, int]:
        top, left, bottom, right = self.pads
        oh = (h + top + bottom - self.kernel[0]) // self.stride[0] + 1
        ow = (w + left + right - self.kernel[1]) // self.stride[1] + 1
        return oh, ow


@dataclass
class ConvNetSpec:
    in_shape: tuple[int, int, int]  # (C, H, W)
    convs: list[ConvSpec]
    dense: list[LayerSpec]  # the last one is the output layer
    input_kind: ConvInput = "bipolar"
    input_bn: BatchNormSpec | None = None  # per-channel BN on the raw input
    flatten: FlattenForm = "flatten"
    linear: LinearForm = "gemm"
    head_mul: float | None = None
    head_add: np.ndarray | None = None  # () or (classes,)
    input_frame: tuple[int, ...] | None = None  # graph input frame; Reshape to in_shape first
    name: str = "bnn_cnv"
    tap_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)

    def maps(self) -> list[tuple[int, int, int]]:
        """(C, H, W) of the input and of every stage's output (after its pool)."""
        maps = [self.in_shape]
        for conv in self.convs:
            h, w = conv.conv_out(*maps[-1][1:])
            if conv.pool is not None:
                h, w = conv.pool.out(h, w)
            maps.append((conv.out_channels, h, w))
        return maps

    def check(self) -> None:
        """Geometry fits (kernels inside padded maps, widths chain); raises ValueError."""
        maps = self.maps()
        for i, conv in enumerate(self.convs):
            c, h, w = maps[i]
            if conv.weight.shape[1] != c or min(*conv.conv_out(h, w), *maps[i + 1][1:]) < 1:
                raise ValueError(f"stage {i}: {conv.weight.shape} does not fit map {maps[i]}")
        width = int(np.prod(maps[-1]))
        for layer in self.dense:
            if layer.in_features != width:
                raise ValueError(f"dense layer takes {layer.in_features}, receives {width}")
            width = layer.out_features


def build_conv_model(spec: ConvNetSpec) -> onnx.ModelProto:
    """Write ``spec`` as a QONNX ModelProto (opset 13 + qonnx.custom_op.general v1)."""
    spec.check()
    g = _GraphWriter()
    spec.tap_shapes.clear()

    def tap(name: str, shape: tuple[int, ...]) -> str:
        g.nodes[-1].output[0] = name
        spec.tap_shapes[name] = shape
        return name

    t = "global_in"
    if spec.input_frame is not None:
        t = g.node("Reshape", [t, g.const("in_shape", np.array([1, *spec.in_shape], np.int64))])
    if spec.input_bn is not None:
        t = _batchnorm(g, t, spec.input_bn, "in_bn")
    if spec.input_kind == "2x-1":
        t = g.node("Mul", [t, g.const("in_mul", _f32(2.0))])
        t = g.node("Sub", [t, g.const("in_sub", _f32(1.0))])
    if spec.input_kind in QUANT_INPUTS:
        bits, signed, scale = QUANT_INPUTS[spec.input_kind]
        q_in = [t, g.const("in_q_scale", _f32(scale)), g.const("in_q_zeropt", _f32(0.0))]
        q_in.append(g.const("in_q_bitwidth", _f32(bits)))
        t = g.node("Quant", q_in, QONNX_DOMAIN, signed=int(signed), narrow=0, rounding_mode="ROUND")
    else:
        t = _bipolar(g, t, "in_scale", 1.0)

    maps = spec.maps()
    for i, conv in enumerate(spec.convs):
        w = _f32(conv.weight)
        if conv.weight_form == "bipolarquant":
            wq = _bipolar(g, g.const(f"conv{i}_w", w), f"conv{i}_ws", conv.weight_scale)
        else:
            signs = np.where(w >= 0, np.float32(1), np.float32(-1))
            wq = g.const(f"conv{i}_w", signs * _f32(conv.weight_scale))
        conv_in = [t, wq] + ([] if conv.bias is None else [g.const(f"conv{i}_b", _f32(conv.bias))])
        geometry = {"strides": list(conv.stride), "pads": list(conv.pads)}
        t = g.node("Conv", conv_in, kernel_shape=list(conv.kernel), **geometry)
        pool_at = conv.pool.at if conv.pool is not None else None
        if pool_at == "before_bn":
            t = _maxpool(g, t, conv.pool, i)
        if conv.bn is not None:
            t = _batchnorm(g, t, conv.bn, f"bn{i}")
        if pool_at == "before_sign":
            t = _maxpool(g, t, conv.pool, i)
        t = _bipolar(g, t, f"act{i}_scale", conv.act_scale)
        if pool_at == "after_sign":
            t = _maxpool(g, t, conv.pool, i)
        t = tap(f"stage{i}_out", maps[i + 1])

    width = int(np.prod(maps[-1]))
    if spec.flatten == "flatten":
        t = g.node("Flatten", [t], axis=1)
    else:
        t = g.node("Reshape", [t, g.const("flat_shape", np.array([1, -1], np.int64))])
    last = len(spec.dense) - 1
    for i, layer in enumerate(spec.dense):
        wq = _bipolar(g, g.const(f"fc{i}_w", _f32(layer.weight)), f"fc{i}_ws", layer.weight_scale)
        bias = None if layer.bias is None else g.const(f"fc{i}_b", _f32(layer.bias))
        if spec.linear == "gemm":
            t = g.node("Gemm", [t, wq] + ([bias] if bias else []), transB=1)
        else:
            t = g.node("MatMul", [t, g.node("Transpose", [wq], perm=[1, 0])])
            t = g.node("Add", [t, bias]) if bias else t
        if layer.bn is not None:
            t = _batchnorm(g, t, layer.bn, f"fc_bn{i}")
        if i < last:
            t = _bipolar(g, t, f"fc_act{i}", layer.act_scale)
            t = tap(f"dense{i}_out", (layer.out_features,))
        width = layer.out_features
    if spec.head_mul is not None:
        t = g.node("Mul", [t, g.const("head_mul", _f32(spec.head_mul))])
    if spec.head_add is not None:
        t = g.node("Add", [t, g.const("head_add", _f32(spec.head_add))])
    g.nodes[-1].output[0] = "global_out"

    in_shape = [1, *(spec.input_frame or spec.in_shape)]
    graph = helper.make_graph(
        g.nodes,
        spec.name,
        [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("global_out", TensorProto.FLOAT, [1, width])],
        g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)],
        producer_name="bnnhw-tests",
    )
    model.ir_version = 8
    return model


def _bipolar(g: _GraphWriter, t: str, scale_name: str, scale: object) -> str:
    return g.node("BipolarQuant", [t, g.const(scale_name, _f32(scale))], QONNX_DOMAIN)


def _batchnorm(g: _GraphWriter, t: str, bn: BatchNormSpec, prefix: str) -> str:
    params = [g.const(f"{prefix}_{k}", _f32(getattr(bn, k))) for k in ("gamma", "beta", "mean")]
    params.append(g.const(f"{prefix}_var", _f32(bn.var)))
    return g.node("BatchNormalization", [t, *params], epsilon=float(bn.epsilon))


def _maxpool(g: _GraphWriter, t: str, pool: PoolSpec, i: int) -> str:
    if pool.scale is not None and pool.at != "after_sign":
        t = g.node("Mul", [t, g.const(f"pool{i}_c", _f32(pool.scale).reshape(-1, 1, 1))])
    attrs: dict[str, object] = {"kernel_shape": list(pool.kernel)}
    if pool.stride is not None:
        attrs["strides"] = list(pool.stride)
    return g.node("MaxPool", [t], **attrs)


# --------------------------------------------------------------------------- random specs


def random_bn(
    rng: np.random.Generator,
    channels: int,
    step: np.ndarray,
    spread: np.ndarray,
    center: np.ndarray | float = 0.0,
) -> BatchNormSpec:
    """Per-channel BN whose thresholds mostly fall inside the reachable range.

    ``step`` is the accumulator's grid (graph units), ``spread`` and ``center`` its typical
    deviation and value.
    Gammas of both signs (some exactly 0), means on the grid (ties: BipolarQuant(0) is
    +1) and off it, small betas.
    """
    gamma = rng.choice([-1.0, 1.0], channels) * rng.uniform(0.25, 2.0, channels)
    gamma[rng.random(channels) < 0.05] = 0.0
    mean = np.where(
        rng.random(channels) < 0.3,
        np.round((rng.normal(0, 1, channels) * spread + center) / step) * step,
        rng.normal(0, 1, channels) * spread + center,
    )
    beta = np.where(rng.random(channels) < 0.5, 0.0, rng.normal(0, 0.3, channels))
    var = rng.uniform(0.2, 2.0, channels) * spread**2
    return BatchNormSpec(*(_f32(v) for v in (gamma, beta, mean, var)))


def input_unit(kind: ConvInput) -> tuple[float, float, float]:
    """(code step, typical magnitude, mean) of the quantized input's values."""
    if kind in QUANT_INPUTS:
        bits, signed, scale = QUANT_INPUTS[kind]
        return scale, scale * 2 ** (bits - 2), 0.0 if signed else scale * (2 ** (bits - 1))
    return 1.0, 1.0, 0.0


def random_conv(
    rng: np.random.Generator,
    in_ch: int,
    out_ch: int,
    kernel: tuple[int, int],
    in_unit: tuple[float, float, float],
    *,
    bias: bool = False,
    per_channel_scale: bool = False,
    **kw: object,
) -> ConvSpec:
    """A conv stage with random weights and BN (geometry and pool from ``kw``)."""
    kh, kw_ = kernel
    weight = random_weight(rng, out_ch, in_ch * kh * kw_).reshape(out_ch, in_ch, kh, kw_)
    scale = pow2(rng, -2, 1, (out_ch, 1, 1, 1)) if per_channel_scale else pow2(rng, -1, 1)
    ws = np.broadcast_to(scale, (out_ch, 1, 1, 1)).reshape(-1).astype(np.float64)
    b = pow2(rng, -3, 0, out_ch) * rng.choice([-1, 1], out_ch) if bias else None
    spread = np.sqrt(in_ch * kh * kw_) * in_unit[1] * ws
    center = np.where(weight >= 0, 1, -1).reshape(out_ch, -1).sum(axis=1) * in_unit[2] * ws
    bn = random_bn(rng, out_ch, in_unit[0] * ws, spread, center)
    return ConvSpec(weight, _f32(scale), bias=b, bn=bn, **kw)


def random_dense(
    rng: np.random.Generator, widths: list[int], in_unit: float, *, bias: bool = False
) -> list[LayerSpec]:
    """Hidden dense layers with BN, then the output layer (scalar weight scale, opt. bias)."""
    layers = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        last = i == len(widths) - 2
        scale = pow2(rng, -1, 1)
        weight = random_weight(rng, n_out, n_in)
        if last:
            b = pow2(rng, -2, 0, n_out) * rng.integers(-3, 4, n_out) if bias else None
            layers.append(LayerSpec(weight, scale, bias=b))
        else:
            unit = np.full(n_out, in_unit * float(scale))
            bn = random_bn(rng, n_out, unit, np.sqrt(n_in) * unit)
            layers.append(LayerSpec(weight, scale, bn=bn, act_scale=float(pow2(rng, -1, 1))))
        in_unit = layers[-1].act_scale
    return layers


def calibrate(spec: ConvNetSpec, x: np.ndarray) -> ConvNetSpec:
    """Move each hidden BN's mean to where its sign splits the frames ``x`` about in half.

    Random weights otherwise leave many channels constant (and an OR pool over k taps
    almost always 1), which would hide errors. Layer by layer, the mean becomes a quantile
    of the BN's input on ``x`` (a value the accumulator takes: ties on some frames); a pool
    after the sign gets the quantile that makes its pooled bit ~50/50.
    """
    stages = [(f"bn{i}", c.bn, c.pool) for i, c in enumerate(spec.convs)]
    stages += [(f"fc_bn{i}", layer.bn, None) for i, layer in enumerate(spec.dense[:-1])]
    for prefix, bn, pool in stages:
        if bn is None:
            continue
        model = build_conv_model(spec)
        node = next(n for n in model.graph.node if n.input[1:2] == [f"{prefix}_gamma"])
        t = np.asarray(execute_all(model, x)[node.input[0]])
        t = np.moveaxis(t, 1, -1).reshape(-1, t.shape[1])
        q = np.full(t.shape[1], 0.5)
        if pool is not None and pool.at == "after_sign":
            r = 0.5 ** (1 / np.prod(pool.kernel))  # P(all k taps 0) = 1/2
            q = np.where(bn.gamma >= 0, r, 1 - r)
        bn.mean = np.array([np.quantile(t[:, j], q[j], method="nearest") for j in range(len(q))])
        bn.mean = bn.mean.astype(np.float32)
    return spec


def random_frames(spec: ConvNetSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    """Frames over the whole code range, with values on quantizer ties and beyond the clip."""
    shape = (n, *spec.in_shape)
    if spec.input_kind in QUANT_INPUTS:
        bits, signed, scale = QUANT_INPUTS[spec.input_kind]
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        codes = rng.integers(lo - 2, hi + 3, shape) + rng.choice([0, 0, 0.5, -0.5, 0.3], shape)
        x = codes * scale
    else:
        x = np.where(
            rng.random(shape) < 0.5, rng.uniform(-1, 1.5, shape), rng.choice([0, 0.5], shape)
        )
    if spec.input_bn is not None:  # undo the input BN so its output spreads the same way
        bn = spec.input_bn
        s = (bn.gamma / np.sqrt(bn.var + bn.epsilon)).reshape(-1, 1, 1)
        x = (x - bn.beta.reshape(-1, 1, 1)) / s + bn.mean.reshape(-1, 1, 1)
    x = x.astype(np.float32)
    return x.reshape(n, *(spec.input_frame or spec.in_shape))


def output_magnitude(spec: ConvNetSpec) -> float:
    """Bound on the magnitude of the last layer's float intermediates (for tolerances)."""
    last = spec.dense[-1]
    unit = spec.dense[-2].act_scale if len(spec.dense) > 1 else spec.convs[-1].act_scale
    v = last.in_features * unit * float(np.max(np.abs(last.weight_scale)))
    v += 0.0 if last.bias is None else float(np.max(np.abs(last.bias)))
    v *= abs(spec.head_mul or 1.0)
    return v + (0.0 if spec.head_add is None else float(np.max(np.abs(spec.head_add))))


# --------------------------------------------------------------------------- reference


def execute_all(model: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of ``model`` run on the rows of ``x`` by qonnx's ``execute_onnx``."""
    return execute_reference(model, x, every_tensor=True)


def tap_bits(spec: ConvNetSpec, tensors: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Each hidden activation as 0/1 bits in stream order (maps: NCHW -> HWC)."""
    out = []
    for name, shape in spec.tap_shapes.items():
        t = np.asarray(tensors[name]).reshape(-1, *shape)
        if t.ndim == 4:
            t = t.transpose(0, 2, 3, 1)
        out.append((t.reshape(len(t), -1) > 0).astype(np.uint8))
    return out
