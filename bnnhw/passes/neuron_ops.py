"""Evaluate a layer's float post-ops on candidate accumulator values, neuron by neuron."""

from __future__ import annotations

import numpy as np

from bnnhw.errors import ModelError
from bnnhw.ir import ElementwiseOp, Layer
from bnnhw.ir.elementwise import apply_ops

FLOAT32_EXACT_INT = 2**24
CHUNK_ELEMENTS = 1 << 22  # values x neurons evaluated at once (16 MiB of float32)


def slice_ops(ops: list[ElementwiseOp], neurons: int, sel: slice) -> list[ElementwiseOp]:
    """The ops restricted to the neurons in ``sel`` (per-neuron parameters are sliced)."""

    def cut(value: np.ndarray) -> np.ndarray:
        value = np.asarray(value)
        return value[sel] if value.ndim == 1 and value.shape[0] == neurons else value

    return [
        ElementwiseOp(op.kind, {k: cut(v) for k, v in op.params.items()}, op.source) for op in ops
    ]


def evaluate_chunks(layer: Layer, values: np.ndarray):
    """Yield (neuron slice, float32 outputs of shape (len(values), chunk)) for a layer."""
    if np.abs(values).max(initial=0) >= FLOAT32_EXACT_INT:
        raise ModelError(
            f"layer {layer.name!r}: accumulators reach {np.abs(values).max()}, beyond the "
            "integers float32 represents exactly; the float graph cannot be reproduced"
        )
    x = values.astype(np.float32)[:, None]
    step = max(1, CHUNK_ELEMENTS // max(1, len(values)))
    for start in range(0, layer.neurons, step):
        sel = slice(start, min(start + step, layer.neurons))
        y = apply_ops(slice_ops(layer.post_ops, layer.neurons, sel), x)
        yield sel, np.broadcast_to(y, (len(values), sel.stop - sel.start))
