"""Pass: turn the output layer's float math into an affine map of its integer scores.

The hardware ranks classes by the integer accumulator. That is the graph's argmax only if
the graph maps every class's accumulator through the same strictly increasing float32
function; the pass checks exactly that on every reachable value (so ties between classes
stay ties) and records ``out_scale * acc + out_bias``, the exact-maths form of the map.
"""

from __future__ import annotations

import copy

import numpy as np

from bnnhw.errors import ModelError
from bnnhw.ir import Layer, Network
from bnnhw.ir.elementwise import affine_coefficients
from bnnhw.passes.neuron_ops import evaluate_chunks


def derive_output_map(net: Network) -> Network:
    net = copy.deepcopy(net)
    layer = net.layers[-1]
    if layer.out_scale is None:
        _check_rank_preserving(layer)
        try:
            scale, bias = affine_coefficients(layer.post_ops, layer.neurons)
        except ValueError as exc:
            raise ModelError(f"layer {layer.name!r}: output map is not affine ({exc})") from None
        layer.out_scale, layer.out_bias = scale, bias
        layer.post_ops = []
    return net


def _check_rank_preserving(layer: Layer) -> None:
    values = layer.acc_values()
    reference = None
    for _, y in evaluate_chunks(layer, values):
        if reference is None:
            reference = y[:, 0]
        if not np.array_equal(y, np.broadcast_to(reference[:, None], y.shape)):
            raise ModelError(
                f"layer {layer.name!r}: the output arithmetic differs between classes (a "
                "per-class scale, bias or BatchNorm), so the graph's argmax is not the argmax "
                "of the integer scores; use one scale and offset for all classes (e.g. "
                "TensorNorm) or BatchNorm before the last quantizer"
            )
    if not np.all(np.diff(reference.astype(np.float64)) > 0):
        raise ModelError(
            f"layer {layer.name!r}: the output arithmetic is not strictly increasing in the "
            "score (negative or tiny scale), so argmax over scores would differ from the graph"
        )
