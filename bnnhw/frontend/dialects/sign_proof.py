"""Prove that a ``Sign`` never sees an exact 0, so it is a binarization.

Behind the Sign there must be one binary layer (MatMul/Gemm/Conv on ``+-a`` codes with
``+-s`` weight rows) and then only per-channel float ops (Add/Sub/Mul/Div, BatchNorm,
MaxPool). The layer's reachable accumulators are the integers ``-n..n`` (step 2 without
padding); the float value of each, per neuron, is replayed in float32 through the ops,
as onnxruntime computes them. The layer's own product is exact only when every
``acc * s * a`` is a float32 number, which is checked too.
"""

from __future__ import annotations

import numpy as np
import onnx

from bnnhw.frontend.dialects.graph import ELEMENTWISE, SHAPE_OPS, Graph
from bnnhw.ir import ElementwiseOp
from bnnhw.ir.elementwise import apply_op

KINDS = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}
REVERSED = {"Add": "add", "Sub": "rsub", "Mul": "mul", "Div": "rdiv"}


def _per_channel(g: Graph, c: np.ndarray, shape: list[int]) -> np.ndarray | None:
    """A constant on a (N, C, ...) tensor as one value per channel, or None."""
    try:
        full = np.broadcast_to(np.asarray(c, np.float32), [1, *shape[1:]])[0]
    except ValueError:
        return None
    rows = full.reshape(shape[1], -1)
    return rows[:, 0].copy() if np.all(rows == rows[:, :1]) else None


def _layer_values(g: Graph, layer: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray] | str:
    """(accumulators, float32 outputs per neuron) of a binary layer, or why not."""
    src = layer.input[0]
    while (p := g.producer(src)) is not None and p.op_type in SHAPE_OPS | {"MaxPool"}:
        src = p.input[0]
    if p is None or p.op_type != "BipolarQuant" or g.const(p.input[1]) is None:
        return f"the input of {layer.name or layer.op_type} is not binarized before it"
    a = np.float64(np.float32(g.const(p.input[1]).reshape(-1)[0]))
    w = g.const(layer.input[1])
    if w is None:
        return f"the weight of {layer.name} is not constant"
    w = np.asarray(w, np.float32)
    padded = False
    if layer.op_type == "MatMul":
        rows = w.T
    elif layer.op_type == "Gemm":
        rows = w if g.attr(layer, "transB", 0) else w.T
    else:
        rows = w.reshape(w.shape[0], -1)
        padded = any(int(v) for v in g.attr(layer, "pads", []))
    s = np.abs(rows).max(axis=1).astype(np.float64)
    if rows.ndim != 2 or np.any(np.abs(rows) != s[:, None].astype(np.float32)) or np.any(s == 0):
        return f"the weight of {layer.name} is not +-s per neuron"
    n = rows.shape[1]
    acc = np.arange(-n, n + 1, 1 if padded else 2, dtype=np.float64)
    exact = acc[None, :] * s[:, None] * a
    y = exact.astype(np.float32)
    if np.any(y.astype(np.float64) != exact):
        return f"the products of {layer.name} are not exact in float32"
    if layer.op_type == "Gemm":
        y = y * np.float32(g.attr(layer, "alpha", 1.0))
    if len(layer.input) > 2 and layer.input[2]:
        if g.const(layer.input[2]) is None:
            return f"the bias of {layer.name} is not constant"
        bias = np.asarray(g.const(layer.input[2]), np.float32).reshape(-1)
        if layer.op_type == "Gemm":
            bias = np.float32(g.attr(layer, "beta", 1.0)) * bias
        y = y + np.broadcast_to(bias, (rows.shape[0],))[:, None]
    return acc, y


def never_zero(g: Graph, x: str) -> str | None:
    """None if ``x`` is never exactly 0; otherwise the reason, for the error message."""
    chain: list[onnx.NodeProto] = []
    t = x
    while (p := g.producer(t)) is not None and p.op_type not in ("MatMul", "Gemm", "Conv"):
        dyn = g.dynamic_input(p)
        if dyn is None or p.op_type not in ELEMENTWISE | {"BatchNormalization", "MaxPool"}:
            return f"it is fed by {p.op_type} {p.name!r}, not by a binary layer's arithmetic"
        chain.insert(0, p)
        t = dyn[1]
    if p is None:
        return "it reads the raw input, which may be exactly 0"
    found = _layer_values(g, p)
    if isinstance(found, str):
        return found
    acc, y = found
    shape = g.shape(p.output[0])
    for node in chain:
        if node.op_type == "MaxPool":
            continue  # the max of nonzero values is one of them
        if node.op_type == "BatchNormalization":
            if any(g.const(name) is None for name in node.input[1:5]) or len(node.input) < 5:
                return f"the parameters of {node.name!r} are not constant"
            params = {
                k: np.asarray(g.const(node.input[i]), np.float32).reshape(-1)
                for i, k in enumerate(("scale", "bias", "mean", "var"), start=1)
            }
            params["epsilon"] = np.float32(g.attr(node, "epsilon", 1e-5))
            y = apply_op(
                ElementwiseOp(
                    "batchnorm", {k: v[:, None] if v.ndim else v for k, v in params.items()}
                ),
                y,
            )
            continue
        dyn = g.dynamic_input(node)
        c = _per_channel(g, g.const(node.input[1 - dyn[0]]), shape)
        if c is None:
            return f"{node.name!r} applies a constant that is not one value per channel"
        kind = (KINDS if dyn[0] == 0 else REVERSED)[node.op_type]
        y = apply_op(ElementwiseOp(kind, {"c": c[:, None]}), y)
    zero = np.argwhere(y == 0)
    if len(zero):
        neuron, k = zero[0]
        return f"it is 0 for neuron {neuron} at accumulator {int(acc[k])}"
    return None
