"""Float32 replay of the graph's elementwise arithmetic, rounding step for rounding.

Thresholds are exact only if every float operation is reproduced the way the reference
executor (qonnx node by node, onnxruntime for standard ops) performs it. Each function here
does one ONNX op in float32 with the same operation order as onnxruntime's CPU kernels:
BatchNormalization is ``x * new_scale + new_bias`` with ``new_scale = gamma / sqrt(var + eps)``
and ``new_bias = beta - mean * new_scale``, as in onnxruntime's ``batch_norm.h``.
"""

from __future__ import annotations

import numpy as np

from bnnhw.ir.network import ElementwiseOp

f32 = np.float32


def batchnorm_coefficients(params: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(new_scale, new_bias) exactly as onnxruntime derives them, in float32."""
    scale, bias = params["scale"].astype(f32), params["bias"].astype(f32)
    mean, var = params["mean"].astype(f32), params["var"].astype(f32)
    eps = f32(params["epsilon"])
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_std = f32(1) / np.sqrt(var + eps)
        new_scale = inv_std * scale
        new_bias = bias - mean * new_scale
    return new_scale.astype(f32), new_bias.astype(f32)


def apply_op(op: ElementwiseOp, x: np.ndarray) -> np.ndarray:
    """One op on a float32 array; parameters broadcast against ``x``'s trailing axes."""
    x = x.astype(f32, copy=False)
    with np.errstate(all="ignore"):
        if op.kind == "batchnorm":
            new_scale, new_bias = batchnorm_coefficients(op.params)
            return x * new_scale + new_bias
        if op.kind == "maxpool":
            return x  # the pool itself acts across pixels: see fold_thresholds
        c = op.params["c"].astype(f32)
        match op.kind:
            case "mul":
                return x * c
            case "add":
                return x + c
            case "sub":
                return x - c
            case "rsub":
                return c - x
            case "div":
                return x / c
            case "rdiv":
                return c / x
    raise ValueError(f"unknown elementwise op kind {op.kind!r}")


def apply_ops(ops: list[ElementwiseOp], x: np.ndarray) -> np.ndarray:
    """Run a chain of ops in order, in float32."""
    y = np.asarray(x, dtype=f32)
    for op in ops:
        y = apply_op(op, y)
    return y


def affine_coefficients(ops: list[ElementwiseOp], width: int) -> tuple[np.ndarray, np.ndarray]:
    """The chain as ``y = a * x + b`` per element, in float64 (exact maths, no rounding).

    Every op kind except ``rdiv`` is affine; ``rdiv`` raises ValueError.
    """
    a, b = np.ones(width), np.zeros(width)
    for op in ops:
        if op.kind == "batchnorm":
            p = {k: np.asarray(v, dtype=np.float64) for k, v in op.params.items()}
            s = p["scale"] / np.sqrt(p["var"] + p["epsilon"])
            a, b = a * s, (b - p["mean"]) * s + p["bias"]
            continue
        c = np.broadcast_to(np.asarray(op.params["c"], dtype=np.float64), (width,))
        match op.kind:
            case "mul":
                a, b = a * c, b * c
            case "add":
                b = b + c
            case "sub":
                b = b - c
            case "rsub":
                a, b = -a, c - b
            case "div":
                a, b = a / c, b / c
            case _:
                raise ValueError(f"op {op.source or op.kind!r} ({op.kind}) is not affine")
    return a, b
