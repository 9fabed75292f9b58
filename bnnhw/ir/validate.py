"""Check a Network read from disk before anything computes with it.

A saved IR folder is user data: it can be edited by hand, truncated or tampered with.
:func:`check_network` refuses anything the importer and passes could not have written
(input bits 0, weight values other than 0/1, NaN parameters, a direction of 0,
per-neuron arrays of the wrong length, integer parts without their partner) with a
ValueError naming the layer. Layers may be folded or not, each on its own: the passes
fold only what is not folded yet.
"""

from __future__ import annotations

import numpy as np

from bnnhw.ir.network import ElementwiseOp, InputSpec, Layer, Network

ROUNDING_MODES = {"ROUND", "HALF_EVEN", "FLOOR", "CEIL"}
MAX_INPUT_BITS = 16
OP_PARAMS = {
    **{kind: {"c"} for kind in ("mul", "add", "sub", "rsub", "div", "rdiv")},
    "batchnorm": {"scale", "bias", "mean", "var", "epsilon"},
    "maxpool": set(),
}


def _int(value: object, what: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{what} is {value!r}; expected an integer >= {low}")
    return int(value)


def _per_neuron(array: np.ndarray | None, n: int, what: str, kind: str) -> np.ndarray | None:
    """None, or an array of ``n`` values of dtype kind ``kind`` ('i' int, 'f' finite float,
    'b' bool), returned flat."""
    if array is None:
        return None
    array = np.asarray(array)
    if array.shape != (n,):
        raise ValueError(f"{what} has shape {array.shape}, expected ({n},) (one per neuron)")
    ok = {"i": "iu", "f": "fiu", "b": "b"}[kind]
    if array.dtype.kind not in ok:
        raise ValueError(f"{what} has dtype {array.dtype}")
    if kind == "f" and not np.all(np.isfinite(array)):
        raise ValueError(f"{what} holds NaN or infinite values")
    return array


def _check_op(op: ElementwiseOp, n: int, what: str) -> None:
    where = f"{what} op {op.kind!r}"
    if op.kind not in OP_PARAMS:
        raise ValueError(f"{what}: unknown op kind {op.kind!r}; known: {sorted(OP_PARAMS)}")
    if not isinstance(op.source, str):
        raise ValueError(f"{where}: source is {op.source!r}, not a node name")
    if set(op.params) != OP_PARAMS[op.kind]:
        raise ValueError(f"{where}: parameters {sorted(op.params)}, expected {OP_PARAMS[op.kind]}")
    for key, value in op.params.items():
        value = np.asarray(value)
        if value.dtype != np.float32 or not np.all(np.isfinite(value)):
            raise ValueError(f"{where}: {key} must be finite float32 values")
        if value.ndim > 1 or value.size not in (1, n):
            raise ValueError(f"{where}: {key} has shape {value.shape}, expected 1 or {n} values")


def _check_input(spec: InputSpec) -> None:
    if not isinstance(spec.shape, tuple) or not spec.shape:
        raise ValueError(f"input shape {spec.shape!r} is not a list of sizes")
    for d in spec.shape:
        _int(d, f"input shape {list(spec.shape)}: size")
    _int(spec.bits, "input bits")
    if spec.bits > MAX_INPUT_BITS:
        raise ValueError(f"input bits {spec.bits}: bnnhw supports 1 to {MAX_INPUT_BITS}")
    for name in ("signed", "narrow"):
        if not isinstance(getattr(spec, name), bool):
            raise ValueError(f"input {name} is {getattr(spec, name)!r}, not true/false")
    scale = spec.scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < np.inf:
        raise ValueError(f"input scale {scale!r} is not a positive finite number")
    if spec.rounding not in ROUNDING_MODES:
        raise ValueError(f"input rounding {spec.rounding!r}; known: {sorted(ROUNDING_MODES)}")
    if not isinstance(spec.source, str):
        raise ValueError(f"input source {spec.source!r} is not a node name")
    _int(spec.channels_last, "input channels_last", low=0)
    if spec.channels_last and spec.size % spec.channels_last:
        raise ValueError(f"input channels_last {spec.channels_last} does not divide its size")
    for op in spec.preprocess:
        _check_op(op, spec.size, "input preprocess")


def _check_layer(
    layer: Layer, i: int, in_codes: tuple[int, int], in_bits: int, pixels: bool = False
) -> None:
    """``pixels``: the layer's input arrives pixel by pixel (a convolution's window, or a
    dense layer after a map), so its SIMD must divide its fan-in rather than pad it."""
    w = np.asarray(layer.weights)
    if w.ndim != 2 or min(w.shape) < 1:
        raise ValueError(f"weights have shape {w.shape}; expected (neurons, fan_in), both >= 1")
    if w.dtype.kind not in "biu" or not np.all((w == 0) | (w == 1)):
        raise ValueError(f"weights must be bits 0/1 (uint8), got dtype {w.dtype}")
    layer.weights = w.astype(np.uint8)
    n = layer.neurons
    if layer.in_bits != in_bits or isinstance(layer.in_bits, bool):
        raise ValueError(f"in_bits is {layer.in_bits!r}, but its input has {in_bits}-bit codes")
    if tuple(layer.in_range) != in_codes:
        raise ValueError(f"in_range is {list(layer.in_range)}, its input codes span {in_codes}")
    if not isinstance(layer.is_output, bool):
        raise ValueError(f"is_output is {layer.is_output!r}, not true/false")
    if layer.pe is not None and n % _int(layer.pe, "pe"):
        raise ValueError(f"pe {layer.pe} does not divide {n}")
    simd = layer.simd
    if simd is not None and _int(simd, "simd") > layer.fan_in:
        raise ValueError(f"simd {simd} is more than the fan-in {layer.fan_in}")
    if simd is not None and pixels and layer.fan_in % simd:
        raise ValueError(
            f"simd {simd} does not divide {layer.fan_in}, and a layer fed pixel by pixel "
            "cannot pad its input"
        )
    layer.acc_scale = _per_neuron(layer.acc_scale, n, "acc_scale", "f")
    layer.thresholds = _per_neuron(layer.thresholds, n, "thresholds", "i")
    layer.directions = _per_neuron(layer.directions, n, "directions", "i")
    layer.score_mul = _per_neuron(layer.score_mul, n, "score_mul", "i")
    layer.score_add = _per_neuron(layer.score_add, n, "score_add", "i")
    layer.out_scale = _per_neuron(layer.out_scale, n, "out_scale", "f")
    layer.out_bias = _per_neuron(layer.out_bias, n, "out_bias", "f")
    layer.pool_and = _per_neuron(layer.pool_and, n, "pool_and", "b")
    if layer.directions is not None and not np.all(np.abs(layer.directions) == 1):
        raise ValueError("directions must be +1 (acc >= t) or -1 (acc <= t)")
    for op in layer.post_ops:
        _check_op(op, n, "post")
    if (layer.score_mul is None) != (layer.score_add is None):
        raise ValueError("score_mul and score_add come together")
    if (layer.out_scale is None) != (layer.out_bias is None):
        raise ValueError("out_scale and out_bias come together")
    if (layer.thresholds is None) != (layer.directions is None):
        raise ValueError("thresholds and directions come together")
    if layer.is_output and layer.thresholds is not None:
        raise ValueError("the output layer has thresholds; it emits scores")
    if not layer.is_output and (layer.out_scale is not None or layer.score_mul is not None):
        raise ValueError("a hidden layer has output scores")
    if layer.pool_and is not None and layer.pool is None:
        raise ValueError("pool_and is set but the layer does not pool")


def check_network(net: Network) -> None:
    """Raise ValueError (naming the layer) unless ``net`` is an IR bnnhw could have made."""
    if not isinstance(net.name, str) or not isinstance(net.source, str):
        raise ValueError("name and source must be strings")
    _check_input(net.input)
    codes, bits = net.input.code_range, net.input.bits
    for i, layer in enumerate(net.layers):
        label = f"layer {i} ({layer.name!r})" if isinstance(layer.name, str) else f"layer {i}"
        if not isinstance(layer.name, str) or not layer.name:
            raise ValueError(f"{label}: name {layer.name!r} is not a non-empty string")
        pixels = layer.window is not None or (i > 0 and net.layers[i - 1].window is not None)
        try:
            _check_layer(layer, i, codes, bits, pixels)
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
        codes, bits = (-1, 1), 1
    net.validate()
