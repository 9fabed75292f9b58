"""Random binary-MLP specs for property tests: edge-case weights, BatchNorms, inputs.

The BatchNorm kinds aim at the places where exact threshold folding can go wrong: ties
exactly on a reachable accumulator, negative and zero gamma, zero or tiny variance, and
thresholds outside the reachable range. ``binary_mlp_specs`` draws whole networks.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from hypothesis import strategies as st

from qonnx_graphs import (
    BatchNormSpec,
    InputKind,
    LayerSpec,
    LinearForm,
    MLPSpec,
    TensorNormSpec,
    _f32,
)


def reachable_unit(spec: MLPSpec, index: int) -> np.ndarray:
    """Per-channel step of layer ``index``'s accumulator (before bias), shape (out,)."""
    layer = spec.layers[index]
    ws = np.broadcast_to(np.abs(_f32(layer.weight_scale)).reshape(-1), (layer.out_features,))
    return (ws * np.float32(spec.input_unit(index))).astype(np.float32)


def reachable_counts(spec: MLPSpec, index: int) -> np.ndarray:
    """Integer multiples of the unit that the accumulator of layer ``index`` reaches.

    +-1 inputs: n, n-2, ..., -n.  8-bit inputs (k/128, k in [-128, 127]): every integer with
    |j| <= 127 n (the extra -128 and +128 depend on the weight signs, so they are left out).
    """
    n = spec.layers[index].in_features
    if index == 0 and spec.input_kind == "int8":
        return np.arange(-127 * n, 127 * n + 1)
    return np.arange(-n, n + 1, 2)


def pow2(rng: np.random.Generator, lo: int = -3, hi: int = 3, size: object = None) -> np.ndarray:
    """Random powers of two 2^lo .. 2^hi as float32 (Brevitas' power-of-two scales)."""
    return (np.float32(2.0) ** rng.integers(lo, hi + 1, size=size)).astype(np.float32)


def random_weight(rng: np.random.Generator, out: int, inp: int) -> np.ndarray:
    """Float weights as training leaves them, with some exact 0.0 and -0.0 (both give +1)."""
    w = rng.normal(size=(out, inp)).astype(np.float32)
    special = rng.random(size=w.shape)
    w[special < 0.05] = 0.0
    w[(special >= 0.05) & (special < 0.08)] = -0.0
    return w


BN_KINDS = (
    "generic",
    "negative_gamma",
    "zero_gamma",
    "zero_var",
    "tiny_var",
    "large_mean",
    "never",
    "always",
    "tie",
)


def random_bn(
    rng: np.random.Generator,
    spec: MLPSpec,
    index: int,
    kinds: tuple[str, ...] = BN_KINDS,
    epsilon: float = 1e-5,
) -> BatchNormSpec:
    """Per-channel BN for a hidden layer, each channel an edge case drawn from ``kinds``.

    "tie" puts the mean on a reachable accumulator value with beta = 0, so BN gives exactly 0
    there (and BipolarQuant +1); "never"/"always" put the threshold outside the reachable range;
    "large_mean" puts a large mean and a compensating beta, so the threshold is inside the range
    but computed with heavy float32 cancellation.
    """
    layer = spec.layers[index]
    out = layer.out_features
    unit = reachable_unit(spec, index).astype(np.float64)
    counts = reachable_counts(spec, index)
    bias = np.zeros(out) if layer.bias is None else layer.bias.astype(np.float64)
    reach = unit * np.max(np.abs(counts)) + np.abs(bias)
    gamma = np.empty(out, np.float32)
    beta = np.empty(out, np.float32)
    mean = np.empty(out, np.float32)
    var = np.empty(out, np.float32)
    for c in range(out):
        kind = kinds[int(rng.integers(len(kinds)))]
        g = float(rng.uniform(0.05, 3.0)) * (1 if rng.random() < 0.6 else -1)
        v = float(rng.uniform(0.01, 4.0) * unit[c] ** 2 * max(1, layer.in_features))
        m = float(rng.uniform(-1, 1) * reach[c] + bias[c])
        b = float(rng.normal() * abs(g))
        if kind == "negative_gamma":
            g = -abs(g)
        elif kind == "zero_gamma":
            g = 0.0
            b = float(rng.choice([0.0, -0.0, b]))
        elif kind == "zero_var":
            v = 0.0
        elif kind == "tiny_var":
            v = float(rng.choice([1e-30, 1e-12, 1e-7]))
        elif kind == "large_mean":
            m = float(rng.choice([-1, 1]) * rng.uniform(1e3, 1e5) * unit[c])
            t = float(rng.uniform(-1, 1) * reach[c] + bias[c])  # threshold inside the range
            b = g * (m - t) / np.sqrt(v + epsilon)
        elif kind in ("never", "always"):
            far = reach[c] + unit[c] * rng.uniform(1, 1e4)
            side = 1 if kind == "never" else -1
            m = float(side * far) if g > 0 else float(-side * far)
            b = 0.0
        elif kind == "tie":
            m = float(unit[c] * rng.choice(counts) + bias[c])
            b = 0.0
        gamma[c], beta[c], mean[c], var[c] = g, b, m, v
    return BatchNormSpec(gamma, beta, mean, var, epsilon)


def uniform_last_bn(rng: np.random.Generator, spec: MLPSpec, kind: str) -> BatchNormSpec:
    """BN on the last layer with the same parameters in every channel.

    The contract's scores are integers with ``float_outputs = out_scale * scores + out_bias``
    and ``predict = argmax(scores)``, which can only agree with the graph's argmax when the last
    layer's float tail is the same affine map for every class; per-channel BN there is outside
    what the contract can express.  ``kind``: "generic" (gamma > 0), "negative_gamma" (the
    graph's winner is the lowest accumulator) or "zero_gamma" (all classes tie: class 0).
    The bias is kept within ~1000 accumulator steps so distinct scores stay distinct in float32.
    """
    k = len(spec.layers) - 1
    out = spec.layers[k].out_features
    unit = float(np.min(reachable_unit(spec, k)))
    eps = float(rng.choice([1e-5, 1e-3]))
    var = float(rng.choice([0.0, rng.uniform(0.1, 4.0) * unit**2 * spec.layers[k].in_features]))
    g = {"negative_gamma": -1.0, "zero_gamma": 0.0}.get(kind, 1.0) * float(rng.uniform(0.1, 2))
    mean = float(rng.integers(-40, 41) * unit / 4)
    beta = float(rng.uniform(-1, 1) * 1000 * unit * abs(g) / np.sqrt(var + eps))
    if kind == "zero_gamma":
        beta = float(rng.normal())
    full = np.ones(out, np.float32)
    return BatchNormSpec(full * g, full * beta, full * mean, full * var, eps)


def random_tail(rng: np.random.Generator, spec: MLPSpec) -> TensorNormSpec:
    """A TensorNorm tail (scalar constants, weight > 0) that keeps distinct scores distinct."""
    k = len(spec.layers) - 1
    unit = float(np.min(reachable_unit(spec, k)))
    var = float(rng.choice([0.0, 1e-8, rng.uniform(0.1, 4.0) * unit**2]))
    eps = float(rng.choice([1e-4, 1e-5]))
    weight = float(rng.uniform(0.05, 4.0))
    step = unit * weight / np.sqrt(var + eps)
    return TensorNormSpec(
        mean=float(rng.uniform(-1000, 1000) * unit),
        var=var,
        epsilon=eps,
        weight=weight,
        bias=float(rng.uniform(-1000, 1000) * step),
    )


def make_spec(
    widths: list[int],
    seed: int = 0,
    *,
    input_kind: InputKind = "bipolar",
    linear: LinearForm = "gemm",
    per_channel_scale: bool = False,
    bn_kinds: tuple[str, ...] | None = BN_KINDS,
    last: Literal["none", "bn", "bn_negative_gamma", "bn_zero_gamma", "tensornorm"] = "none",
    with_bias: bool = False,
    last_per_channel_scale: bool | None = None,
    last_bias: bool | None = None,
    **options: object,
) -> MLPSpec:
    """A spec with random weights for ``widths`` = [inputs, hidden..., classes].

    ``bn_kinds`` picks the BN edge cases of the hidden layers (None: no BN); ``last`` picks the
    last layer's float tail; ``last_per_channel_scale`` / ``last_bias`` override the two flags
    for the last layer (per-class scales and biases there change the order of the classes);
    ``options`` go to MLPSpec (image_shape, dynamo_style, batch, ...).
    """
    rng = np.random.default_rng(seed)
    n_layers = len(widths) - 1
    layers = []
    for i in range(n_layers):
        out, inp = widths[i + 1], widths[i]
        per_channel = per_channel_scale
        if i == n_layers - 1 and last_per_channel_scale is not None:
            per_channel = last_per_channel_scale
        shape = (out, 1) if per_channel else ()
        layers.append(
            LayerSpec(
                weight=random_weight(rng, out, inp),
                weight_scale=pow2(rng, size=shape),
                act_scale=float(pow2(rng)),
            )
        )
    spec = MLPSpec(layers=layers, input_kind=input_kind, linear=linear, **options)  # type: ignore[arg-type]
    if input_kind == "bipolar":
        spec.input_scale = float(pow2(rng, -1, 1))
    for i, layer in enumerate(layers):
        if with_bias if (i < n_layers - 1 or last_bias is None) else last_bias:
            unit = reachable_unit(spec, i)
            layer.bias = (rng.integers(-8, 9, size=layer.out_features) * unit / 4).astype(
                np.float32
            )
        if i < len(layers) - 1 and bn_kinds:
            layer.bn = random_bn(rng, spec, i, bn_kinds, float(rng.choice([1e-5, 1e-3, 1e-12])))
    if last == "bn":
        layers[-1].bn = uniform_last_bn(rng, spec, "generic")
    elif last in ("bn_negative_gamma", "bn_zero_gamma"):
        layers[-1].bn = uniform_last_bn(rng, spec, last.removeprefix("bn_"))
    elif last == "tensornorm":
        spec.tail = random_tail(rng, spec)
    return spec


def edge_inputs(spec: MLPSpec, rng: np.random.Generator, rows: int) -> np.ndarray:
    """Inputs (rows, *frame_shape) float32 that hit the quantizers' edges.

    bipolar (2x-1 then BipolarQuant): 0.5 exactly (maps to 0, so +1), its float neighbours,
    0, 1, -0.0, values outside [0, 1].  int8 (Quant, scale 2^-7): rounding boundaries
    (2k+1)/256 (ties, half to even), exact k/128, +-1, values beyond +-1 (clipped), huge values.
    Some rows are constant, which drives first-layer accumulators onto exact BN ties.
    """
    n = spec.widths[0]
    if spec.input_kind == "bipolar":
        pool = np.array(
            [
                0.5,
                0.0,
                1.0,
                -0.0,
                np.nextafter(np.float32(0.5), np.float32(0)),
                np.nextafter(np.float32(0.5), np.float32(1)),
                -1.5,
                2.0,
                0.25,
                0.75,
            ],
            dtype=np.float32,
        )
        x = rng.uniform(-0.5, 1.5, size=(rows, n)).astype(np.float32)
    else:
        k = rng.integers(-130, 130, size=32)
        pool = np.concatenate(
            [(2 * k + 1) / 256.0, k / 128.0, [1.0, -1.0, 1.5, -3.0, 0.0, -0.0, 1e6, -1e6]]
        ).astype(np.float32)
        x = rng.uniform(-1.2, 1.2, size=(rows, n)).astype(np.float32)
    pick = rng.random(size=x.shape) < 0.6
    x[pick] = rng.choice(pool, size=int(pick.sum()))
    # constant rows: all +1 (0.5 -> 0 -> +1) or, for 8-bit, all zero after rounding
    const = [0.5, 0.0, 1.0] if spec.input_kind == "bipolar" else [0.0, 1 / 256, -3 / 256]
    for r in range(min(rows, len(const))):
        x[r] = const[r]
    return x.reshape((rows, *spec.frame_shape))


# --------------------------------------------------------------------------- strategies


@st.composite
def binary_mlp_specs(
    draw: st.DrawFn,
    max_layers: int = 4,
    max_width: int = 70,
    max_in: int = 100,
    last_forms: tuple[str, ...] = ("none", "bn", "tensornorm"),
    last_per_class: bool = True,
) -> MLPSpec:
    """Random binary-MLP specs covering the export forms and the BN edge cases.

    Structure (sizes, forms, which edge-case families) is drawn by hypothesis so it shrinks;
    the bulk numbers come from a NumPy generator seeded by hypothesis.  Hidden layers get every
    BN edge case; the last layer's tail by default keeps the class order (gamma > 0): pass
    ``last_forms`` with "bn_negative_gamma" / "bn_zero_gamma" for the order-reversing and
    all-tied tails, which the explicit tests cover one by one.  ``last_per_class=False`` keeps
    per-channel weight scales and biases out of the last layer (they are exact powers of two /
    dyadic, so integer scores on one common scale can still express them).
    """
    seed = draw(st.integers(0, 2**32 - 1))
    n_layers = draw(st.integers(1, max_layers))
    image = draw(st.booleans())
    if image:
        hw = (draw(st.integers(1, 10)), draw(st.integers(1, 10)))
        in_features = hw[0] * hw[1]
    else:
        hw = None
        in_features = draw(st.integers(1, max_in))
    widths = [in_features] + [draw(st.integers(1, max_width)) for _ in range(n_layers)]
    bn_family = draw(
        st.sampled_from(
            [
                None,
                BN_KINDS,
                ("tie",),
                ("zero_gamma", "zero_var", "tiny_var"),
                ("never", "always", "large_mean"),
                ("generic", "negative_gamma"),
            ]
        )
    )
    batch: int | str = draw(st.sampled_from([1, 1, "N"]))
    spec = make_spec(
        widths,
        seed,
        input_kind=draw(st.sampled_from(["bipolar", "int8"])),
        linear=draw(st.sampled_from(["gemm", "matmul"])),
        per_channel_scale=draw(st.booleans()),
        bn_kinds=bn_family,
        last=draw(st.sampled_from(last_forms)),
        with_bias=draw(st.booleans()),
        last_per_channel_scale=None if last_per_class else False,
        last_bias=None if last_per_class else False,
        image_shape=hw,
        flatten=draw(st.sampled_from(["flatten", "reshape"])),
        flatten_first=draw(st.booleans()),
        dynamo_style=draw(st.booleans()),
        batch=batch,
        opset=draw(st.sampled_from([13, 14, 17, 18])),
    )
    return spec
