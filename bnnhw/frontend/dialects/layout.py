"""Cancel NHWC round trips: ``Transpose(p) -> per-element ops -> Transpose(p^-1)``.

tf2onnx wraps every convolution and pool in Transposes and applies BatchNorm and the sign
in NHWC between them; FINN moves thresholds to NHWC (``data_layout``). A transpose
commutes with elementwise work if each constant is transposed alike, so the pair is
dropped and the constants (and a MultiThreshold's ``data_layout``) are rewritten for the
original layout. Anything else between the two Transposes leaves them in place (the
importer then refuses the data transpose by name).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from bnnhw.frontend.dialects.graph import ELEMENTWISE, Graph

UNARY = {"Sign", "Identity", "BipolarQuant"}
DEFAULT_LAYOUT = {2: "NC", 3: "NWC", 4: "NCHW"}


def _path(g: Graph, start: onnx.NodeProto) -> tuple[list[onnx.NodeProto], onnx.NodeProto] | None:
    """The nodes after ``start`` up to the Transpose that undoes it, or None."""
    perm = [int(p) for p in g.attr(start, "perm", [])]
    path, t = [], start.output[0]
    while (user := g.only_user(t)) is not None:
        if user.op_type == "Transpose":
            back = [int(q) for q in g.attr(user, "perm", [])]
            undone = len(back) == len(perm) and [perm[q] for q in back] == list(range(len(perm)))
            return (path, user) if undone else None
        dyn = g.dynamic_input(user)
        if dyn is None or dyn[1] != t:
            return None
        if user.op_type not in ELEMENTWISE | UNARY | {"MultiThreshold"}:
            return None
        if user.op_type == "BipolarQuant" and g.const(user.input[1]).size != 1:
            return None
        path.append(user)
        t = user.output[0]
    return None


def move_const(g: Graph, node: onnx.NodeProto, index: int, inverse: list[int]) -> None:
    """Give ``node``'s constant operand the layout ``transpose(., inverse)``."""
    c = np.asarray(g.const(node.input[index]))
    if c.size == 1:
        return
    rank = len(inverse)
    c = c.reshape((1,) * (rank - c.ndim) + c.shape)
    node.input[index] = g.add_const(np.transpose(c, inverse), f"{node.name}_layout")


def cancel_transposes(g: Graph, log: list[str]) -> bool:
    """Drop every Transpose pair around per-element work; True if any was dropped."""
    changed = False
    for node in g.nodes:
        if node.op_type != "Transpose" or not any(node is n for n in g.node_list):
            continue
        found = _path(g, node)
        if found is None:
            continue
        path, back = found
        perm = [int(p) for p in g.attr(node, "perm", [])]
        inverse = list(np.argsort(perm))
        for n in path:
            if n.op_type in ELEMENTWISE:
                move_const(g, n, 1 - g.dynamic_input(n)[0], inverse)
            elif n.op_type == "MultiThreshold":
                seen = str(g.attr(n, "data_layout", "") or DEFAULT_LAYOUT.get(len(perm), ""))
                if len(seen) != len(perm):
                    return changed
                layout = [""] * len(perm)
                for i, axis in enumerate(perm):
                    layout[axis] = seen[i]
                kept = [a for a in n.attribute if a.name != "data_layout"]
                del n.attribute[:]
                n.attribute.extend([*kept, helper.make_attribute("data_layout", "".join(layout))])
        g.replace([node], [g.make("Identity", [node.input[0]], node.output[0], node.name)])
        g.replace([back], [g.make("Identity", [back.input[0]], back.output[0], back.name)])
        log.append(
            f"Transposes {node.name} {perm} and {back.name} cancel: the "
            f"{len(path)} per-element op(s) between them now run in the original layout"
        )
        changed = True
    return changed
