"""Larq through tf2onnx: ``Sign(Sign(x) + c)`` binarization and NHWC flattening.

Larq's ``ste_sign`` exports as ``Sign(Sign(x) + 0.1)``: the inner Sign gives -1, 0, +1, the
shift and the outer Sign send the 0 to +1, so the whole is ``+1 iff x >= 0``, exactly
BipolarQuant. The three values are computed in float32 from the graph's own constant, so
any ``c`` that does not give (-1, +1, +1) is refused. tf2onnx writes maps NHWC: a
``Transpose(0, 2, 3, 1)`` of a convolution's output feeding a Flatten/Reshape into a
MatMul is dropped by reordering the MatMul's weight rows from HWC to CHW.
"""

from __future__ import annotations

import numpy as np
import onnx

from bnnhw.frontend.dialects.graph import ELEMENTWISE, SHAPE_OPS, Graph
from bnnhw.frontend.dialects.layout import move_const
from bnnhw.frontend.dialects.plain import unclamp

PATH_OPS = SHAPE_OPS | ELEMENTWISE | {"BipolarQuant"}


def _sign_sign(
    g: Graph, outer: onnx.NodeProto
) -> tuple[onnx.NodeProto, onnx.NodeProto, float] | None:
    add = g.producer(outer.input[0])
    if add is None or add.op_type not in ("Add", "Sub"):
        return None
    dyn = g.dynamic_input(add)
    if dyn is None:
        return None
    inner = g.producer(dyn[1])
    if inner is None or inner.op_type != "Sign" or g.only_user(dyn[1]) is not add:
        return None
    c = np.asarray(g.const(add.input[1 - dyn[0]]), np.float32)
    if c.size == 0 or np.any(c != c.reshape(-1)[0]):
        raise g.fail(add, "shifts the Sign by a constant that is not one value")
    if add.op_type == "Sub" and dyn[0] == 1:
        raise g.fail(add, "computes c - Sign(x): the binarization is reversed")
    c0 = c.reshape(-1)[0]
    return inner, add, float(-c0 if add.op_type == "Sub" else c0)


def has_sign_sign(model: onnx.ModelProto) -> bool:
    producers = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.op_type == "Sign" and node.input:
            add = producers.get(node.input[0])
            if (
                add is not None
                and add.op_type in ("Add", "Sub")
                and any(
                    producers.get(i) is not None and producers[i].op_type == "Sign"
                    for i in add.input
                )
            ):
                return True
    return False


def rewrite(g: Graph, log: list[str]) -> None:
    """Rewrite every ``Sign(Sign(x) + c)`` into BipolarQuant, then the NHWC flattens."""
    for node in g.nodes:
        if node.op_type != "Sign" or not any(node is n for n in g.node_list):
            continue
        found = _sign_sign(g, node)
        if found is None:
            continue
        inner, add, c = found
        v = np.sign(np.sign(np.array([-1.0, 0.0, 1.0], np.float32)) + np.float32(c))
        if v.tolist() != [-1.0, 1.0, 1.0]:
            raise g.fail(
                node,
                f"Sign(Sign(x) + {c}) gives {v.tolist()} for x < 0, x = 0, x > 0: not the "
                "binarization x >= 0 (use a shift between 0 and 1, as Larq's 0.1)",
            )
        x, clamp_nodes = unclamp(g, inner.input[0], np.zeros(1, np.float32), low_open=True)
        name = node.name or "Sign"
        g.replace([*clamp_nodes, inner, add, node], [g.bipolar(x, 1.0, node.output[0], name)])
        log.append(f"Sign(Sign(x) + {c:g}) {name} -> BipolarQuant (x >= 0 gives +1)")
    _nhwc_flatten(g, log)


def _nhwc_flatten(g: Graph, log: list[str]) -> None:
    """``Transpose(0,2,3,1)`` -> elementwise-free path -> Flatten -> MatMul: reorder rows."""
    for node in g.nodes:
        if node.op_type != "Transpose" or [int(p) for p in g.attr(node, "perm", [])] != [
            0,
            2,
            3,
            1,
        ]:
            continue
        shape = g.shape(node.input[0])
        if not shape or len(shape) != 4 or (shape[2], shape[3]) == (1, 1) or shape[1] == 1:
            continue
        path, t = [], node.output[0]
        while (user := g.only_user(t)) is not None and user.op_type in PATH_OPS:
            if user.op_type in ELEMENTWISE and g.dynamic_input(user) is None:
                break
            path.append(user)
            t = user.output[0]
        flat = [n for n in path if n.op_type in ("Flatten", "Reshape")]
        if user is None or user.op_type not in ("MatMul", "Gemm") or not flat:
            raise g.fail(
                node,
                "transposes a map to NHWC without a Flatten into a MatMul "
                "after it; bnnhw reads maps as NCHW",
            )
        if user.op_type == "Gemm" and g.attr(user, "transB", 0):
            raise g.fail(user, "Gemm with transB after an NHWC flatten is not supported")
        w = g.const(user.input[1])
        c, h, wd = shape[1:]
        if w is None or w.shape[0] != c * h * wd:
            raise g.fail(user, f"weight rows do not match the {h}x{wd}x{c} map")
        # row (h, w, c) of the NHWC flattening becomes row (c, h, w)
        rows = np.asarray(w).reshape(h, wd, c, -1).transpose(2, 0, 1, 3).reshape(w.shape)
        new_w = g.add_const(rows.astype(w.dtype), f"{user.name}_chw")
        user.input[1] = new_w
        flat_at = path.index(flat[0])
        for n in path[:flat_at]:  # per-channel constants move from NHWC to NCHW
            if n.op_type in ELEMENTWISE:
                move_const(g, n, 1 - g.dynamic_input(n)[0], [0, 3, 1, 2])
            elif n.op_type not in ("BipolarQuant", "Identity"):
                raise g.fail(n, "reshapes an NHWC map before its flatten")
        for n in path[flat_at + 1 :]:
            if n.op_type in ELEMENTWISE and g.const(n.input[1 - g.dynamic_input(n)[0]]).size != 1:
                raise g.fail(n, "applies per-element constants to an NHWC-flattened vector")
        if flat[0].op_type == "Reshape":
            flat[0].input[1] = g.add_const(np.asarray([0, -1], np.int64), f"{flat[0].name}_flat")
        g.replace([node], [g.make("Identity", [node.input[0]], node.output[0], node.name)])
        log.append(
            f"Transpose {node.name} to NHWC before the flatten dropped: rows of "
            f"{user.name} reordered from HWC to CHW"
        )
