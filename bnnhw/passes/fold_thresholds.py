"""Pass: fold a hidden layer's float math and its sign into integer thresholds, exactly.

The graph decides ``+1`` where ``post_ops(acc) >= 0`` (BipolarQuant). Rather than solving
that inequality with real numbers (which breaks on rounding, ties, negative gamma, zero
variance or infinities) the pass replays the graph's float32 arithmetic on *every*
accumulator value the layer can produce and reads the threshold off the decisions. The
result equals the float graph at every reachable input by construction; a decision that is
not a single step (NaN in the arithmetic) is refused.
"""

from __future__ import annotations

import copy

import numpy as np

from bnnhw.errors import ModelError
from bnnhw.ir import Layer, Network
from bnnhw.passes.neuron_ops import evaluate_chunks


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
    layer.thresholds, layer.directions = thresholds, directions
    layer.post_ops = []
