"""Host side of the input: the graph's float preprocessing and quantizer, in float32.

What the hardware receives are the codes this produces: bits for a bipolar input, integers
for an n-bit input. They are bit-exact with the graph's own quantizer (qonnx semantics:
``clip(x / scale)`` then round; bipolar is ``x >= 0``).
"""

from __future__ import annotations

import os

import numpy as np

from bnnhw.errors import InputError
from bnnhw.ir import InputSpec
from bnnhw.ir.elementwise import apply_ops

ROUNDING = {"ROUND": np.round, "HALF_EVEN": np.round, "FLOOR": np.floor, "CEIL": np.ceil}


def check_inputs(spec: InputSpec, x: np.ndarray, what: str = "inputs") -> np.ndarray:
    """Validate a batch of frames; returns it as float32 (N, *shape)."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu" or (x.dtype.kind == "f" and x.dtype.itemsize > 8):
        raise InputError(
            f"{what}: dtype {x.dtype} is not numeric; give float32 values as the model takes them"
        )
    if x.dtype.kind != "f":
        raise InputError(
            f"{what}: dtype {x.dtype}; the model takes float32 values (convert with "
            "x.astype(np.float32) after scaling them as during training)"
        )
    if x.shape[1:] != tuple(spec.shape):
        raise InputError(
            f"{what}: shape {x.shape}, expected (N, {', '.join(map(str, spec.shape))}) — "
            "N frames of the model's input shape without its batch dimension"
        )
    refuse_nan(x, what)
    return x.astype(np.float32, copy=False)


def refuse_nan(x: np.ndarray, what: str | os.PathLike[str]) -> None:
    """NaN frames are refused for every model: a bipolar quantizer would silently read NaN
    as -1 (NaN >= 0 is false) and an n-bit one has no code for it."""
    if x.dtype.kind != "f":
        return
    bad = np.argwhere(np.isnan(x))
    if len(bad):
        frame, *element = (int(i) for i in bad[0])
        more = f" (and {len(bad) - 1} more NaN values)" if len(bad) > 1 else ""
        raise InputError(
            f"{what}: frame {frame}, element {tuple(element)} is NaN{more}; give finite "
            "pixel values"
        )


def encode_inputs(spec: InputSpec, x: np.ndarray) -> np.ndarray:
    """Float frames -> codes (N, size): 0/1 bits (bipolar) or integers (n-bit), int32."""
    x = check_inputs(spec, x).reshape(len(x), -1)
    y = apply_ops(spec.preprocess, x)
    if spec.channels_last > 1:  # stream order: pixels, each with its channels together
        y = y.reshape(len(y), spec.channels_last, -1).transpose(0, 2, 1).reshape(len(y), -1)
    if spec.bits == 1:
        return (y >= 0).astype(np.int32)
    lo, hi = spec.code_range
    with np.errstate(all="ignore"):
        q = y / np.float32(spec.scale)
        q = np.where(q > hi, np.float32(hi), q)
        q = np.where(q < lo, np.float32(lo), q)
        q = ROUNDING[spec.rounding](q)
    if np.isnan(q).any():
        raise InputError("inputs: NaN reaches the input quantizer")
    return q.astype(np.int32)
