"""Plain ONNX (``torch.onnx.export`` without Brevitas): signs written with standard ops.

A binarization is recognised by what it computes on every float32 input:

* ``Cmp(x, c)`` (GreaterOrEqual, Greater, LessOrEqual, Less) then ``Cast`` to float or
  ``Where(cond, A, B)`` with constant branches, then any scalar Mul/Add/Sub/Div: the two
  output values are computed in float32; the pattern is a sign iff the value for
  ``x >= t`` is ``+a`` and the other ``-a`` (``x > c`` is ``x >= nextafter(c, inf)``);
* ``Sign(x)`` is 0 at ``x == 0``, so it is binary only where ``x`` can never be 0: the
  preceding layer's every reachable accumulator is replayed through the float ops between
  it and the Sign, and any exact 0 refuses the node;
* a clamp (``Clip``, ``Min``/``Max`` or ``Where(Cmp(x, c), c, x)``) directly before a
  sign at ``t`` is dropped iff ``lo < t <= hi`` (it then never changes the sign).

A Where whose constant differs from its comparison's, or a clamp feeding anything but a
sign, is refused by node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from bnnhw.frontend.dialects.graph import ELEMENTWISE, Graph, above, first_threshold
from bnnhw.frontend.dialects.sign_proof import never_zero
from bnnhw.ir import ElementwiseOp
from bnnhw.ir.elementwise import apply_op

COMPARES = {"GreaterOrEqual", "Greater", "LessOrEqual", "Less"}
SWAPPED = {
    "GreaterOrEqual": "LessOrEqual",
    "Greater": "Less",
    "LessOrEqual": "GreaterOrEqual",
    "Less": "Greater",
}
FLOAT = onnx.TensorProto.FLOAT
KINDS = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}
REVERSED = {"Add": "add", "Sub": "rsub", "Mul": "mul", "Div": "rdiv"}


@dataclass
class Clamp:
    x: str
    lo: float
    hi: float
    nodes: list[onnx.NodeProto]


def _scalar(g: Graph, name: str) -> float | None:
    c = g.const(name)
    if c is None or c.size == 0 or np.any(c != c.reshape(-1)[0]):
        return None
    return float(np.float32(c.reshape(-1)[0]))


def _compare(g: Graph, node: onnx.NodeProto) -> tuple[str, str, np.ndarray] | None:
    """(op, x, c) with the tensor first: ``Cmp(c, x)`` becomes the swapped ``Cmp(x, c)``."""
    if node is None or node.op_type not in COMPARES or len(node.input) != 2:
        return None
    a, b = node.input
    if g.const(b) is not None and g.const(a) is None:
        return node.op_type, a, g.const(b)
    if g.const(a) is not None and g.const(b) is None:
        return SWAPPED[node.op_type], b, g.const(a)
    return None


def clamp_of(g: Graph, y: str) -> Clamp | None:
    """The clamp computing ``y``, through nested clamps, or None; refuses a Where that
    passes its input through yet is no clamp."""
    node = g.producer(y)
    if node is None:
        return None
    lo, hi = -np.inf, np.inf
    if node.op_type == "Clip":
        x = node.input[0]
        lo_in = node.input[1] if len(node.input) > 1 else ""
        hi_in = node.input[2] if len(node.input) > 2 else ""
        lo = _scalar(g, lo_in) if lo_in else float(g.attr(node, "min", -np.inf))
        hi = _scalar(g, hi_in) if hi_in else float(g.attr(node, "max", np.inf))
        if lo is None or hi is None:
            raise g.fail(node, "clips to bounds that are not one constant each")
        nodes = [node]
    elif node.op_type in ("Min", "Max") and len(node.input) == 2:
        dyn = g.dynamic_input(node)
        if dyn is None:
            return None
        c = _scalar(g, node.input[1 - dyn[0]])
        if c is None:
            raise g.fail(node, "takes the min/max with a constant that is not one value")
        x, nodes = dyn[1], [node]
        lo, hi = (c, np.inf) if node.op_type == "Max" else (-np.inf, c)
    elif node.op_type == "Where":
        cmp_node = g.producer(node.input[0])
        found = _compare(g, cmp_node)
        if found is None:
            return None
        op, x, c = found
        branches = list(node.input[1:])
        if x not in branches:
            return None
        k = g.const(branches[1 - branches.index(x)])
        if k is None or c.size != 1 or np.any(k != c.reshape(-1)[0]):
            raise g.fail(
                node,
                f"passes {x!r} through but replaces it by {k if k is None else k.tolist()} where "
                f"{cmp_node.op_type} against {c.tolist()} holds: not a clamp",
            )
        upper = (op in ("Greater", "GreaterOrEqual")) == (branches.index(x) == 1)
        lo, hi = (-np.inf, float(c.reshape(-1)[0])) if upper else (float(c.reshape(-1)[0]), np.inf)
        nodes = [cmp_node, node]
    else:
        return None
    users = g.users(x)
    inner = clamp_of(g, x) if all(any(u is n for n in nodes) for u in users) else None
    if inner is not None:
        lo, hi, x, nodes = max(lo, inner.lo), min(hi, inner.hi), inner.x, inner.nodes + nodes
    if not lo <= hi:
        raise g.fail(node, f"clamps to an empty range [{lo}, {hi}]")
    return Clamp(x, lo, hi, nodes)


def unclamp(g: Graph, x: str, t: np.ndarray, low_open: bool = True) -> tuple[str, list]:
    """``x`` itself, or the input of the clamp producing it when the clamp cannot change
    ``x >= t`` (``lo < t <= hi``)."""
    clamp = clamp_of(g, x)
    if clamp is None or g.only_user(x) is None:
        return x, []
    ok = (clamp.lo < t) if low_open else (clamp.lo <= t)
    if not np.all(ok & (t <= clamp.hi)):
        raise g.fail(
            clamp.nodes[-1],
            f"clamps to [{clamp.lo}, {clamp.hi}], which changes a sign taken at "
            f"{np.unique(t).tolist()[:4]}: the clamp is not transparent",
        )
    return clamp.x, clamp.nodes


def _affine_tail(g: Graph, out: str) -> tuple[list[onnx.NodeProto], list[ElementwiseOp]]:
    nodes, ops = [], []
    while (user := g.only_user(out)) is not None and user.op_type in ELEMENTWISE:
        dyn = g.dynamic_input(user)
        if dyn is None or dyn[1] != out:
            break
        c = _scalar(g, user.input[1 - dyn[0]])
        if c is None:
            break
        kind = (KINDS if dyn[0] == 0 else REVERSED)[user.op_type]
        nodes.append(user)
        ops.append(ElementwiseOp(kind, {"c": np.full(1, c, np.float32)}))
        out = user.output[0]
    return nodes, ops


def _binarizer(g: Graph, cmp_node: onnx.NodeProto, log: list[str]) -> None:
    op, x, c = _compare(g, cmp_node) or (None, None, None)
    if op is None:
        return
    user = g.only_user(cmp_node.output[0])
    if user is None:
        raise g.fail(cmp_node, "its result feeds several nodes (or the output): not a sign")
    if user.op_type == "Cast":
        if int(g.attr(user, "to", 0)) != FLOAT:
            raise g.fail(user, "casts a comparison to a non-float type")
        values = np.array([1.0, 0.0], np.float32)
    elif user.op_type == "Where":
        a, b = g.const(user.input[1]), g.const(user.input[2])
        if a is None or b is None:
            return  # a clamp: handled with the sign it feeds
        if (a.size != 1 and np.any(a != a.reshape(-1)[0])) or (
            b.size != 1 and np.any(b != b.reshape(-1)[0])
        ):
            raise g.fail(user, "chooses between values that differ per element: not a sign")
        values = np.array([a.reshape(-1)[0], b.reshape(-1)[0]], np.float32)
    else:
        raise g.fail(cmp_node, f"feeds a {user.op_type}: bnnhw reads comparisons as Cast or Where")
    tail, ops = _affine_tail(g, user.output[0])
    for e in ops:
        values = apply_op(e, values)
    v_true, v_false = (float(v) for v in values)
    t = first_threshold(c) if op in ("GreaterOrEqual", "Less") else above(c)
    hi, lo = (v_true, v_false) if op in ("GreaterOrEqual", "Greater") else (v_false, v_true)
    if not (hi > 0 and lo == -hi):
        raise g.fail(
            cmp_node,
            f"gives {lo} below and {hi} at/above its threshold (after {user.op_type} and "
            f"{len(tail)} scalar op(s)): not a sign (-a/+a)",
        )
    x, clamp_nodes = unclamp(g, x, t)
    out, name = (tail[-1] if tail else user).output[0], cmp_node.name or op
    new = []
    if np.any(t != 0):
        shifted = g.fresh(f"{name}_shifted")
        new.append(g.make("Sub", [x, g.add_const(t, f"{name}_t")], shifted, f"{name}_sub"))
        x = shifted
    new.append(g.bipolar(x, hi, out, name))
    g.replace([*clamp_nodes, cmp_node, user, *tail], new)
    clamp = " (clamp before it dropped: it cannot change the sign)" if clamp_nodes else ""
    ops = f" and {len(tail)} scalar op(s)" if tail else ""
    log.append(
        f"{op} {name} with {user.op_type}{ops} -> BipolarQuant: proven +-{hi:g} at x >= t{clamp}"
    )


def rewrite(g: Graph, log: list[str]) -> None:
    """Rewrite comparisons and Signs into BipolarQuant, then refuse leftover clamps."""
    for node in g.nodes:
        if not any(node is n for n in g.node_list):
            continue  # consumed by an earlier rewrite
        if node.op_type in COMPARES:
            _binarizer(g, node, log)
        elif node.op_type == "Sign":
            x, clamp_nodes = unclamp(g, node.input[0], np.zeros(1, np.float32))
            reason = never_zero(g, x)
            if reason:
                raise g.fail(
                    node,
                    f"Sign is 0 where its input is 0, and {reason}; binarize "
                    "with x >= 0 (or Sign(Sign(x) + 0.1)) instead",
                )
            g.replace(
                [*clamp_nodes, node], [g.bipolar(x, 1.0, node.output[0], node.name or "Sign")]
            )
            log.append(
                f"Sign {node.name} -> BipolarQuant: its input is never exactly 0 "
                "(every reachable accumulator replayed)"
            )
    for node in g.nodes:
        if node.op_type in ("Where", "Clip", "Min", "Max"):
            clamp = clamp_of(g, node.output[0])
            what = f"clamps to [{clamp.lo}, {clamp.hi}]" if clamp else "is not a clamp or sign"
            raise g.fail(
                node,
                f"{what} and feeds no sign; bnnhw supports clamps only "
                "directly before a binarization",
            )
