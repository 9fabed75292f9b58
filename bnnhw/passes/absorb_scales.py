"""Pass: move the matrix product's scale into the layer's float post-ops.

The importer records ``acc_scale`` = input scale x weight scale, so that the graph value
after the product is ``acc * acc_scale``. Prepending that multiplication to ``post_ops``
leaves a chain that is a function of the integer accumulator alone, which is what
threshold folding enumerates. A scale of exactly 1 needs no op.
"""

from __future__ import annotations

import copy

import numpy as np

from bnnhw.ir import ElementwiseOp, Network


def absorb_scales(net: Network) -> Network:
    net = copy.deepcopy(net)
    for layer in net.layers:
        if layer.acc_scale is None:
            continue
        scale = layer.acc_scale.astype(np.float32)
        if not np.all(scale == 1):
            op = ElementwiseOp("mul", {"c": scale}, f"{layer.name} (weight x input scale)")
            layer.post_ops.insert(0, op)
        layer.acc_scale = None
    return net
