"""FINN's lowered convolutions (``Im2Col -> MatMul`` in NHWC) read back as Conv nodes, and
its NHWC pools (``MaxPoolNHWC``) as MaxPool.

qonnx's ``LowerConvsToMatMul`` writes a Conv as ``Transpose(0,2,3,1) -> Im2Col -> MatMul ->
Transpose(0,3,1,2)``. ``Im2Col`` (``qonnx/custom_op/general/im2col.py``) takes an NHWC map
``(1, H, W, C)``, pads it with ``pad_value`` (``pad_amount`` = top, left, bottom, right, as
ONNX Conv's ``pads``) and gives, per output pixel, the window's elements in ``(kh, kw, c)``
order; the MatMul's weight is ``W_conv.transpose(0, 2, 3, 1).reshape(OC, -1).T``. So the
pair is exactly ``Transpose(0,3,1,2) -> Conv(W_conv) -> Transpose(0,2,3,1)`` when the pad value
is 0 (Conv's), and the layout pass then cancels these Transposes against the ones the
lowering (and ``AbsorbTransposeIntoMultiThreshold``) left. A MatMul on an NHWC map without
Im2Col is a 1x1 convolution (the lowering skips Im2Col there). Anything else is refused with
the node named.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from bnnhw.errors import ModelError
from bnnhw.frontend.dialects.finn import check_weights
from bnnhw.frontend.dialects.graph import Graph
from bnnhw.frontend.operands import node_attr
from bnnhw.frontend.reader import node_label

NCHW, NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def _ints(node: onnx.NodeProto, name: str, default: list[int]) -> list[int]:
    return [int(v) for v in node_attr(node, name, default)]


def parse_shape(text: str) -> list[int] | None:
    """Im2Col's ``input_shape`` string ``"(1, H, W, C)"`` as integers, or None."""
    try:
        dims = [int(d) for d in text.strip().strip("()").split(",") if d.strip()]
    except ValueError:
        return None
    return dims if len(dims) == 4 and min(dims) >= 1 else None


def precheck(model: onnx.ModelProto, path: Path) -> None:
    """Refuse malformed Im2Col attributes by node, before qonnx's shape inference (which
    reads them) fails without naming it."""
    for index, node in enumerate(model.graph.node):
        if node.op_type != "Im2Col":
            continue
        problem = None
        if len(_ints(node, "kernel_size", [])) != 2 or min(_ints(node, "kernel_size", [0])) < 1:
            problem = "kernel_size must be two sizes >= 1"
        elif len(_ints(node, "stride", [])) != 2 or min(_ints(node, "stride", [0])) < 1:
            problem = "stride must be two strides >= 1"
        elif len(_ints(node, "pad_amount", [0] * 4)) != 4:
            problem = "pad_amount must be four pads (top, left, bottom, right)"
        elif len(_ints(node, "dilations", [1, 1])) != 2:
            problem = "dilations must be two values"
        elif parse_shape(str(node_attr(node, "input_shape", ""))) is None:
            problem = "input_shape must read '(1, H, W, C)'"
        if problem is not None:
            raise ModelError(f"{path.name}: node {node_label(node, index)}: Im2Col {problem}")


def lower_back(g: Graph, log: list[str]) -> None:
    """Rewrite every ``Im2Col -> MatMul`` (and MatMul on an NHWC map) into a Conv.

    Weight annotations are checked first, while the MatMuls still hold the annotated
    weights."""
    check_weights(g)
    for node in g.nodes:
        if node.op_type == "Im2Col":
            _im2col(g, node, log)
        elif node.op_type == "MaxPoolNHWC":
            _maxpool(g, node, log)
        elif node.op_type in ("MatMul", "XnorPopcountMatMul") and _on_nhwc_map(g, node):
            _pointwise(g, node, g.shape(node.input[0]), log)


def _on_nhwc_map(g: Graph, node: onnx.NodeProto) -> bool:
    """A MatMul reading a rank-4 map that a Transpose (0,2,3,1) or an NHWC MultiThreshold
    wrote: the lowering of a 1x1 convolution."""
    shape = g.shape(node.input[0])
    producer = g.producer(node.input[0])
    if not shape or len(shape) != 4 or producer is None or node.input[0] in g.consts:
        return False
    if producer.op_type == "Transpose":
        return [int(p) for p in g.attr(producer, "perm", [])] == NHWC
    return producer.op_type == "MultiThreshold" and g.attr(producer, "data_layout", "") == "NHWC"


def _matmul_after(g: Graph, node: onnx.NodeProto) -> onnx.NodeProto:
    user = g.only_user(node.output[0])
    if user is not None and user.op_type == "XnorPopcountMatMul":
        raise g.fail(
            user,
            "XnorPopcountMatMul on an Im2Col (a lowered convolution on 0/1 activations) is not "
            "supported; import the graph before ConvertBipolarMatMulToXnorPopcount",
        )
    if user is None or user.op_type != "MatMul" or user.input[0] != node.output[0]:
        raise g.fail(
            node,
            "does not feed one MatMul; bnnhw reads Im2Col as half of a lowered convolution "
            "(Im2Col -> MatMul)",
        )
    return user


def _conv(
    g: Graph,
    x: str,
    matmul: onnx.NodeProto,
    kernel: list[int],
    channels: int,
    **attrs: object,
) -> list[onnx.NodeProto]:
    """``Transpose -> Conv -> Transpose`` computing ``matmul`` on the NHWC windows of ``x``."""
    w = g.const(matmul.input[1])
    if w is None or w.ndim != 2:
        raise g.fail(matmul, "needs a constant 2-D weight (k*k*C, OC)")
    kh, kw = kernel
    if w.shape[0] != kh * kw * channels:
        raise g.fail(
            matmul,
            f"weight of {w.shape[0]} rows does not fit a {kh}x{kw} window of {channels} channels",
        )
    conv_w = np.asarray(w).T.reshape(w.shape[1], kh, kw, channels).transpose(0, 3, 1, 2)
    name = matmul.name or "MatMul"
    nchw, conv_out = g.fresh(f"{name}_nchw"), g.fresh(f"{name}_conv")
    weight = g.add_const(np.ascontiguousarray(conv_w), f"{name}_w")
    return [
        helper.make_node("Transpose", [x], [nchw], name=f"{name}_to_nchw", perm=NCHW),
        helper.make_node("Conv", [nchw, weight], [conv_out], name=name, **attrs),
        helper.make_node(
            "Transpose", [conv_out], [matmul.output[0]], name=f"{name}_to_nhwc", perm=NHWC
        ),
    ]


def _im2col(g: Graph, node: onnx.NodeProto, log: list[str]) -> None:
    kernel, stride = _ints(node, "kernel_size", []), _ints(node, "stride", [])
    pads = _ints(node, "pad_amount", [0, 0, 0, 0])
    if int(node_attr(node, "depthwise", 0)):
        raise g.fail(node, "is a depthwise (grouped) convolution; bnnhw supports group 1")
    if _ints(node, "dilations", [1, 1]) != [1, 1]:
        raise g.fail(node, "dilated convolution is not supported (dilations 1)")
    pad_value = int(node_attr(node, "pad_value", 0))
    if any(pads) and pad_value != 0:
        raise g.fail(
            node,
            f"pads with the value {pad_value}; bnnhw reads padding as a Conv's zeros (pad_value 0)",
        )
    shape = g.shape(node.input[0])
    declared = parse_shape(str(node_attr(node, "input_shape", "")))
    if not shape or len(shape) != 4 or declared is None or shape[1:] != declared[1:]:
        raise g.fail(
            node,
            f"input_shape {node_attr(node, 'input_shape', '')!r} differs from its input's "
            f"NHWC shape {shape}",
        )
    matmul = _matmul_after(g, node)
    new = _conv(
        g,
        node.input[0],
        matmul,
        kernel,
        shape[3],
        kernel_shape=kernel,
        strides=stride,
        pads=pads,
    )
    g.replace([node, matmul], new)
    log.append(
        f"Im2Col {node.name or ''} + MatMul {matmul.name or ''} -> Conv {kernel[0]}x{kernel[1]} "
        f"(strides {stride}, pads {pads}): FINN's lowered convolution read back"
    )


def _pointwise(g: Graph, node: onnx.NodeProto, shape: list[int], log: list[str]) -> None:
    if node.op_type == "XnorPopcountMatMul":
        raise g.fail(
            node,
            "XnorPopcountMatMul on a map (a lowered 1x1 convolution on 0/1 activations) is not "
            "supported; import the graph before ConvertBipolarMatMulToXnorPopcount",
        )
    new = _conv(g, node.input[0], node, [1, 1], shape[3], kernel_shape=[1, 1])
    g.replace([node], new)
    log.append(
        f"MatMul {node.name or ''} on an NHWC map -> Conv 1x1: FINN's lowered pointwise "
        "convolution read back"
    )


def _maxpool(g: Graph, node: onnx.NodeProto, log: list[str]) -> None:
    """``MaxPoolNHWC`` (``MakeMaxPoolNHWC``) is ONNX MaxPool on the NCHW view of its input
    (qonnx runs it so): ``Transpose -> MaxPool -> Transpose``, same attributes, same name
    (the importer then checks kernel, pads and ceil_mode by that name)."""
    name = node.name or "MaxPoolNHWC"
    nchw, pooled = g.fresh(f"{name}_nchw"), g.fresh(f"{name}_pool")
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    g.replace(
        [node],
        [
            helper.make_node(
                "Transpose", [node.input[0]], [nchw], name=f"{name}_to_nchw", perm=NCHW
            ),
            helper.make_node("MaxPool", [nchw], [pooled], name=name, **attrs),
            helper.make_node(
                "Transpose", [pooled], [node.output[0]], name=f"{name}_to_nhwc", perm=NHWC
            ),
        ],
    )
    log.append(f"MaxPoolNHWC {name} -> MaxPool between Transposes (NHWC pool read back)")
