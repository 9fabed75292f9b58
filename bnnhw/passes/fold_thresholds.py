"""Pass: fold a hidden layer's float math and its sign into integer thresholds, exactly.

The graph decides ``+1`` where ``post_ops(acc) >= 0`` (BipolarQuant). Rather than solving
that inequality with real numbers (which breaks on rounding, ties, negative gamma, zero
variance or infinities) the pass replays the graph's float32 arithmetic on *every*
accumulator value the layer can produce and reads the threshold off the decisions. The
result equals the float graph at every reachable input by construction; a decision that is
not a single step (NaN in the arithmetic) is refused.

A max-pool inside the float math (a ``maxpool`` marker: pool, then more ops, then the
sign) is exact as a pool of the per-pixel bits: with ``v`` the value at the marker and
``s(v)`` the decision after it, ``s(max v_i)`` is ``OR s(v_i)`` when ``s`` rises with
``v`` and ``AND s(v_i)`` when it falls. The pass checks which one holds over every
reachable ``v`` and refuses a decision that is neither.
"""

from __future__ import annotations

import copy

import numpy as np

from bnnhw.errors import ModelError
from bnnhw.ir import Layer, Network
from bnnhw.ir.elementwise import apply_ops
from bnnhw.passes.neuron_ops import evaluate_chunks, slice_ops


def fold_thresholds(net: Network) -> Network:
    net = copy.deepcopy(net)
    for layer in net.layers:
        if not layer.is_output and layer.thresholds is None:
            _fold_layer(layer)
    return net


def _fold_layer(layer: Layer) -> None:
    values = layer.acc_values()
    lo, hi = layer.acc_bounds()
    # each neuron only sees values in [lo, hi]: clamp row indices so others add no steps
    first = np.searchsorted(values, lo)
    last = np.searchsorted(values, hi, side="right") - 1
    rows = np.arange(len(values))[:, None]
    marks = [i for i, op in enumerate(layer.post_ops) if op.kind == "maxpool"]
    pool_at = marks[0] if marks else None
    pool_and = np.zeros(layer.neurons, bool)
    thresholds = np.empty(layer.neurons, np.int64)
    directions = np.empty(layer.neurons, np.int8)
    for sel, y in evaluate_chunks(layer, values):
        decide = y >= 0  # NaN decides -1, as BipolarQuant's np.where(x >= 0) does
        clamped = np.clip(rows, first[sel], last[sel])
        decide = np.take_along_axis(decide, clamped, axis=0)
        steps = np.diff(decide.astype(np.int8), axis=0)
        ups, downs = (steps > 0).sum(axis=0), (steps < 0).sum(axis=0)
        bad = np.flatnonzero((ups + downs) > 1)
        if bad.size:
            j = sel.start + int(bad[0])
            sources = ", ".join(sorted({op.source for op in layer.post_ops if op.source}))
            raise ModelError(
                f"layer {layer.name!r}, neuron {j}: the graph's sign decision flips "
                f"{int(ups[bad[0]] + downs[bad[0]])} times over the accumulator range, so it "
                f"is not a threshold (NaN or non-monotonic arithmetic in: {sources})"
            )
        all_true = decide.all(axis=0)
        first_true = values[np.argmax(decide, axis=0)]
        last_true = values[len(values) - 1 - np.argmax(decide[::-1], axis=0)]
        rising, falling = ups > 0, downs > 0
        t = np.where(rising, first_true, np.where(all_true, lo[sel], hi[sel] + 1))
        t = np.where(falling, last_true, t)
        thresholds[sel] = t
        directions[sel] = np.where(falling, -1, 1)
        if pool_at is not None:
            before = slice_ops(layer.post_ops[:pool_at], layer.neurons, sel)
            v = np.broadcast_to(apply_ops(before, values.astype(np.float32)[:, None]), y.shape)
            pool_and[sel] = _pool_falls(layer, sel, np.take_along_axis(v, clamped, 0), decide)
    layer.thresholds, layer.directions = thresholds, directions
    if pool_at is not None:
        layer.pool_and = pool_and
    layer.post_ops = []


def _pool_falls(layer: Layer, sel: slice, v: np.ndarray, decide: np.ndarray) -> np.ndarray:
    """Per neuron: True if the decision falls as the pooled value rises (pool by AND)."""
    order = np.argsort(v, axis=0, kind="stable")
    steps = np.diff(np.take_along_axis(decide, order, 0).astype(np.int8), axis=0)
    ups, downs = (steps > 0).any(axis=0), (steps < 0).any(axis=0)
    bad = np.flatnonzero(ups & downs)
    if bad.size:
        raise ModelError(
            f"layer {layer.name!r}, channel {sel.start + int(bad[0])}: the sign after the "
            "max-pool neither rises nor falls with the pooled value, so the pool is not a "
            "binary OR/AND; move the MaxPool after the activation"
        )
    return downs
