"""NumPy golden model on the folded IR: the reference every hardware stage must match."""

from bnnhw.golden.bits import pack_bits, unpack_bits
from bnnhw.golden.encode import check_inputs, encode_inputs
from bnnhw.golden.model import code_scores, float_outputs, layer_outputs, predict, scores

__all__ = [
    "check_inputs",
    "code_scores",
    "encode_inputs",
    "float_outputs",
    "layer_outputs",
    "pack_bits",
    "predict",
    "scores",
    "unpack_bits",
]
