"""Rewrites every dialect needs: the class-output tail, layout-only transposes, and the
refusal of multi-bit quantizers with their bit width."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from bnnhw.errors import ModelError
from bnnhw.frontend.dialects.graph import Graph
from bnnhw.frontend.reader import node_label

LAYER_OPS = {"MatMul", "Gemm", "Conv", "XnorPopcountMatMul"}


def check_quant_bits(model: onnx.ModelProto, path: Path) -> None:
    """A QONNX ``Quant`` of 2+ bits on weights, or between layers, is a multi-bit network.

    Checked before constant folding, while weight quantizers are still nodes.
    """
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and not node.input and node.attribute:
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    after_layer: set[str] = set()
    for index, node in enumerate(graph.node):
        dynamic = [n for n in node.input if n and n not in consts]
        if node.op_type in LAYER_OPS or any(n in after_layer for n in dynamic):
            after_layer.update(node.output)
        if node.op_type != "Quant" or len(node.input) < 4 or node.input[3] not in consts:
            continue
        bits = float(np.asarray(consts[node.input[3]]).reshape(-1)[0])
        if bits < 2:
            continue
        where = None
        if node.input[0] in consts:
            where = "weights"
        elif node.input[0] in after_layer:
            where = "activations between layers"
        if where is not None:
            raise ModelError(
                f"{path.name}: node {node_label(node, index)}: quantizes {where} to "
                f"{bits:g} bits; bnnhw builds binary (1-bit) weights and activations, with "
                "only the input allowed n bits"
            )


TAIL_OPS = {"ArgMax", "TopK", "Softmax", "LogSoftmax"}


def has_class_tail(model: onnx.ModelProto) -> bool:
    """Whether the graph output comes from an ArgMax/TopK/Softmax (before any rewriting)."""
    out = model.graph.output[0].name
    return any(n.op_type in TAIL_OPS and out in n.output for n in model.graph.node)


def _drop(g: Graph, node: onnx.NodeProto, scores: str) -> None:
    if len(g.users(scores)) != 1:
        raise g.fail(node, f"its input {scores!r} feeds other nodes too")
    g.replace([node], [])
    g.rename_output(scores)


def class_tail(g: Graph, log: list[str]) -> None:
    """A trailing ArgMax/TopK(k=1) becomes the argmax bnnhw computes; a trailing Softmax
    is dropped, since it keeps the largest score largest."""
    out = g.graph.output[0].name
    node = g.producer(out)
    if node is not None and node.op_type in ("ArgMax", "TopK"):
        rank = len(g.shape(node.input[0]) or [0, 0])
        axis = int(g.attr(node, "axis", -1 if node.op_type == "TopK" else 0))
        if axis not in (-1, rank - 1) or rank != 2:
            raise g.fail(node, f"axis {axis} of a rank-{rank} input: not a class per frame")
        if node.op_type == "TopK":
            k = g.const(node.input[1])
            if k is None or np.asarray(k).reshape(-1).tolist() != [1]:
                raise g.fail(node, "TopK with k other than 1; bnnhw outputs one class")
            if not g.attr(node, "largest", 1):
                raise g.fail(node, "TopK with largest=0 is an argmin, not a class output")
            if list(node.output).index(out) != 1:
                raise g.fail(node, "the graph outputs TopK's values; output its indices")
        elif g.attr(node, "select_last_index", 0):
            raise g.fail(
                node,
                "select_last_index=1 sends ties to the last class; bnnhw (and "
                "ArgMax by default) sends them to the first",
            )
        _drop(g, node, node.input[0])
        log.append(
            f"{node.op_type} {node.name or ''} dropped: it is the class output bnnhw "
            "computes (argmax, ties to the lowest index)"
        )
        node = g.producer(node.input[0])
    if node is not None and node.op_type in ("Softmax", "LogSoftmax"):
        rank = len(g.shape(node.input[0]) or [0, 0])
        axis = int(g.attr(node, "axis", -1))
        if axis not in (-1, rank - 1):
            raise g.fail(node, f"axis {axis}: not the class axis")
        _drop(g, node, node.input[0])
        log.append(
            f"{node.op_type} {node.name or ''} dropped: argmax unchanged (the "
            "reported scores are the logits before it)"
        )


def layout_transposes(g: Graph, log: list[str]) -> None:
    """A Transpose that moves only size-1 axes (NHWC <-> NCHW with one channel) keeps the
    data order: it becomes a Reshape."""
    for node in g.nodes:
        if node.op_type != "Transpose" or g.dynamic_input(node) is None:
            continue
        shape = g.shape(node.input[0])
        perm = [int(p) for p in g.attr(node, "perm", [])]
        if not shape or not perm or perm[0] != 0 or min(shape) < 1:
            continue
        big = [a for a in perm if shape[a] != 1]
        if big != sorted(big) or perm == sorted(perm):
            continue
        out_shape = [0] + [shape[a] for a in perm[1:]]
        target = g.add_const(np.asarray(out_shape, np.int64), f"{node.name}_shape")
        g.replace([node], [g.make("Reshape", [node.input[0], target], node.output[0], node.name)])
        log.append(f"Transpose {node.name or ''} {perm} moves only size-1 axes: a Reshape")
