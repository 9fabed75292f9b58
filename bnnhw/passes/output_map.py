"""Pass: turn the output layer's float math into exact integer scores.

The graph's class is the argmax of ``f_c(acc_c)``, where ``f_c`` is the float arithmetic
after class ``c``'s matrix product (scale, bias, TensorNorm, BatchNorm). The hardware
ranks integers. The ops are split into a per-class head (weight scales, biases) and the
longest tail that is the same for every class (TensorNorm, a shared BatchNorm): a single
monotone map ``g``. The head ``a_c * acc + b_c`` is written as ``u * (k_c * acc + m_c) +
b_0`` with small integers ``k_c, m_c``, where ``u`` is the greatest common divisor of the
(exactly dyadic) coefficients, and the scores are ``k_c * acc + m_c``, negated if ``g``
decreases. That covers the common map (``k = 1, m = 0``), a negative scale (``k = -1``),
per-class power-of-two scales and per-class biases on the grid of the scale.

Exact maths is not the graph, though: it rounds in float32. So the pass replays the
float32 arithmetic on every (class, accumulator) pair and checks that ordering the
integer scores orders the graph's floats identically, equal scores exactly where the
floats are equal. Only then does argmax (ties to the lowest index) agree; otherwise the
network is refused.
"""

from __future__ import annotations

import copy
import math
from fractions import Fraction

import numpy as np

from bnnhw.errors import ModelError
from bnnhw.ir import ElementwiseOp, Layer, Network
from bnnhw.ir.elementwise import affine_coefficients
from bnnhw.passes.neuron_ops import evaluate_chunks

MAX_SCORE_FACTOR = 2**16  # larger k or m would be no sane hardware multiplier


def derive_output_map(net: Network) -> Network:
    net = copy.deepcopy(net)
    layer = net.layers[-1]
    if layer.out_scale is not None:
        return net
    per_class, common = _split_common_tail(layer.post_ops)
    try:
        a, b = affine_coefficients(per_class, layer.neurons)
        a_common, b_common = (float(v[0]) for v in affine_coefficients(common, layer.neurons))
    except ValueError as exc:
        raise ModelError(f"layer {layer.name!r}: output map is not affine ({exc})") from None
    unit, k, m = _integer_form(layer, a, b)
    if a_common < 0:  # a common decreasing map (e.g. negative gamma): rank by -score
        k, m = -k, -m
    elif a_common == 0:  # every class gets the same constant: all scores tie
        k, m = np.zeros_like(k), np.zeros_like(m)
    _check_order_preserved(layer, k, m)
    layer.score_mul, layer.score_add = k, m
    out_scale = float(unit) * abs(a_common) or 1.0
    layer.out_scale = np.full(layer.neurons, out_scale)
    layer.out_bias = np.full(layer.neurons, a_common * float(b[0]) + b_common)
    layer.post_ops = []
    return net


def _split_common_tail(ops: list[ElementwiseOp]) -> tuple[list, list]:
    """(per-class ops, the longest tail of ops whose parameters are the same for all)."""
    split = len(ops)
    while split > 0 and all(
        np.all(np.asarray(v) == np.asarray(v).flat[0]) for v in ops[split - 1].params.values()
    ):
        split -= 1
    return ops[:split], ops[split:]


def _gcd(values: list[Fraction]) -> Fraction:
    """Greatest common divisor of rationals: gcd(numerators) / lcm(denominators)."""
    nonzero = [abs(v) for v in values if v != 0]
    if not nonzero:
        return Fraction(1)
    numerator = math.gcd(*(v.numerator for v in nonzero))
    denominator = math.lcm(*(v.denominator for v in nonzero))
    return Fraction(numerator, denominator)


def _integer_form(
    layer: Layer, a: np.ndarray, b: np.ndarray
) -> tuple[Fraction, np.ndarray, np.ndarray]:
    """The per-class map ``a*acc + b`` as ``unit * (k*acc + m) + b[0]`` with integers."""
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ModelError(f"layer {layer.name!r}: the output arithmetic is not finite")
    scale = [Fraction(float(v)) for v in a]
    shift = [Fraction(float(v)) - Fraction(float(b[0])) for v in b]
    unit = _gcd(scale + shift)
    k, m = [v / unit for v in scale], [v / unit for v in shift]
    if max(abs(v) for v in k + m) > MAX_SCORE_FACTOR:
        raise ModelError(
            f"layer {layer.name!r}: the output arithmetic differs between classes in a way "
            "integer scores cannot reproduce exactly (a per-class scale or BatchNorm with "
            "unrelated values); use one scale for all classes (e.g. TensorNorm), per-class "
            "power-of-two scales, or move the BatchNorm before the last quantizer"
        )
    return unit, np.array([int(v) for v in k], np.int64), np.array([int(v) for v in m], np.int64)


def _check_order_preserved(layer: Layer, k: np.ndarray, m: np.ndarray) -> None:
    values = layer.acc_values()
    floats = np.concatenate([y for _, y in evaluate_chunks(layer, values)], axis=1)
    if np.isnan(floats).any():
        raise ModelError(f"layer {layer.name!r}: the output arithmetic produces NaN")
    scores = values[:, None] * k + m
    order = np.argsort(scores, axis=None, kind="stable")
    s, f = scores.ravel()[order], floats.ravel()[order].astype(np.float64)
    ds, df = np.diff(s), np.diff(f)
    if np.any(df < 0) or np.any((ds == 0) != (df == 0)):
        raise ModelError(
            f"layer {layer.name!r}: float32 rounding in the output arithmetic reorders or "
            "merges scores (e.g. a tiny scale next to a large offset), so the graph's argmax "
            "cannot be reproduced with integer scores"
        )
