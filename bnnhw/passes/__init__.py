"""Streamlining passes: each takes a Network and returns a new one; each does one thing."""

from bnnhw.ir import Network
from bnnhw.passes.absorb_scales import absorb_scales
from bnnhw.passes.fold_thresholds import fold_thresholds
from bnnhw.passes.output_map import derive_output_map

PIPELINE = (absorb_scales, fold_thresholds, derive_output_map)


def streamline(net: Network) -> Network:
    """Run every pass in order: the result is fully integer (``net.folded``)."""
    for step in PIPELINE:
        net = step(net)
    return net


__all__ = ["PIPELINE", "absorb_scales", "derive_output_map", "fold_thresholds", "streamline"]
