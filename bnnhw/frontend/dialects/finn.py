"""FINN-ONNX: MultiThreshold activations, XnorPopcountMatMul, ``finn_datatype`` weights.

qonnx's ``MultiThreshold`` (``multithreshold.py``) outputs ``out_scale * n + out_bias`` where
``n`` counts the thresholds with ``x >= t``, per channel (the ``C`` of ``data_layout``, or
axis 1 for ranks 2 and 4, the last axis for rank 3). With one threshold per channel it has
two output values, ``lo = out_bias`` and ``hi = out_scale + out_bias`` (float32):

* ``lo == -hi < 0 < hi``: a sign, ``BipolarQuant(x - t, hi)`` (``x >= t`` iff
  ``x - t >= 0`` for float32, since ``x - t`` rounds to 0 only when ``x == t``);
* ``lo == 0, hi == 1`` (BINARY): the same sign relabelled, ``x01 = (c + 1) / 2``; its
  consumers are rewritten for ``c``: ``XnorPopcountMatMul(x01, W01)`` is exactly qonnx's
  ``((2x-1) @ (2W-1) + K) * 0.5``, and ``x01 @ W`` is ``(c @ W + colsum(W)) * 0.5``, exact
  when ``W`` is ``+-s`` with ``s`` a power of two.

Anything else (several thresholds, a falling step, other output values) is refused by node.
"""

from __future__ import annotations

import numpy as np
import onnx
from qonnx.core.datatype import DataType

from bnnhw.frontend.dialects.graph import SHAPE_OPS, Graph, first_threshold

FINN_OPS = {"MultiThreshold", "XnorPopcountMatMul", "Im2Col", "MaxPoolNHWC"}
LAYER_OPS = {"MatMul", "Gemm", "Conv", "XnorPopcountMatMul"}
RANK_LAYOUT = {2: "NC", 3: "NWC", 4: "NCHW"}


def is_finn(model: onnx.ModelProto) -> bool:
    """FINN custom ops, a finn domain, or ``finn_datatype`` annotations on weights."""
    if any(n.op_type in FINN_OPS or n.domain.startswith("finn") for n in model.graph.node):
        return True
    init = {t.name for t in model.graph.initializer}
    return any(
        a.tensor_name in init
        and any(kv.key == "finn_datatype" for kv in a.quant_parameter_tensor_names)
        for a in model.graph.quantization_annotation
    )


def _bits(dt: str) -> int | None:
    try:
        return int(DataType[dt].bitwidth())
    except (KeyError, AttributeError):
        return None


def check_weights(g: Graph) -> None:
    """Weights annotated with a ``finn_datatype`` must be what the annotation claims, and
    binary."""
    for node in g.nodes:
        if node.op_type not in LAYER_OPS or len(node.input) < 2:
            continue
        name = node.input[1]
        w, dt = g.const(name), g.datatype(name)
        if w is None or dt is None or dt.startswith("FLOAT"):
            continue
        if dt == "BIPOLAR":
            if not np.all(np.abs(np.asarray(w, np.float64)) == 1):
                raise g.fail(
                    node, f"weight {name!r} is annotated BIPOLAR but holds values other than +-1"
                )
        elif dt == "BINARY":
            if node.op_type != "XnorPopcountMatMul":
                raise g.fail(
                    node,
                    f"weight {name!r} is BINARY (0/1) on a {node.op_type}: that computes "
                    "W01 @ x, not an XNOR-popcount; export +-1 (BIPOLAR) weights",
                )
        else:
            bits = _bits(dt)
            raise g.fail(
                node,
                f"weight {name!r} is {dt} ({bits}-bit); bnnhw builds binary (+-1) weights only",
            )


def rewrite(g: Graph, log: list[str]) -> None:
    """Rewrite every MultiThreshold and XnorPopcountMatMul into QONNX form."""
    check_weights(g)
    relabelled: set[str] = set()  # tensors that hold c = 2*x01 - 1 in place of x01
    for node in g.nodes:
        if node.op_type == "MultiThreshold":
            if _threshold(g, node, log):
                relabelled.add(node.output[0])
            continue
        ins = [n for n in node.input if n in relabelled]
        if not ins:
            if node.op_type == "XnorPopcountMatMul":
                raise g.fail(node, "its input is not a BINARY MultiThreshold output")
            continue
        if node.op_type in SHAPE_OPS | {"MaxPool", "Transpose"}:
            relabelled.add(node.output[0])  # commutes with x01 -> 2*x01 - 1
        elif node.op_type in ("XnorPopcountMatMul", "MatMul") and node.input[0] in relabelled:
            _binary_matmul(g, node, log)
        else:
            raise g.fail(
                node,
                f"reads the BINARY (0/1) tensor {ins[0]!r}; bnnhw supports 0/1 activations "
                "only into XnorPopcountMatMul or MatMul (use a BIPOLAR MultiThreshold)",
            )
    for name in relabelled:
        if any(o.name == name for o in g.graph.output):
            raise g.fail(g.producer(name), "the graph output is a BINARY activation")


def _channel_axis(g: Graph, node: onnx.NodeProto, rank: int) -> int:
    layout = str(g.attr(node, "data_layout", "") or RANK_LAYOUT.get(rank, ""))
    if len(layout) != rank:
        raise g.fail(node, f"data_layout {layout!r} does not fit a rank-{rank} input")
    return layout.index("C") if "C" in layout else 1


def _threshold(g: Graph, node: onnx.NodeProto, log: list[str]) -> bool:
    """Rewrite one MultiThreshold; True if its output is BINARY 0/1 (relabelled)."""
    odt = str(g.attr(node, "out_dtype", ""))
    t = g.const(node.input[1]) if len(node.input) > 1 else None
    if t is None or t.ndim != 2:
        raise g.fail(node, "thresholds must be a constant (channels, steps) matrix")
    if t.shape[1] != 1 or odt not in ("BIPOLAR", "BINARY"):
        bits = _bits(odt) or int(np.ceil(np.log2(t.shape[1] + 1)))
        raise g.fail(
            node,
            f"has {t.shape[1]} thresholds per channel and out_dtype {odt or '?'}: a {bits}-bit "
            "activation; bnnhw builds binary activations (one threshold, BIPOLAR/BINARY)",
        )
    if not np.all(np.isfinite(t)):
        raise g.fail(node, "has an infinite or NaN threshold: a constant output, not a sign")
    scale = np.float32(g.attr(node, "out_scale", 1.0))
    bias = np.float32(g.attr(node, "out_bias", 0.0))
    lo, hi = bias, np.float32(scale + bias)
    binary = lo == 0 and hi == 1
    if not (binary or (lo == -hi and hi > 0)):
        raise g.fail(
            node,
            f"outputs {float(lo)} below and {float(hi)} at/above its threshold "
            f"(out_scale {float(scale)}, out_bias {float(bias)}): not a sign (-a/+a) nor 0/1",
        )
    shape = g.shape(node.input[0])
    if not shape:
        raise g.fail(node, "input shape unknown after shape inference")
    axis = _channel_axis(g, node, len(shape))
    if t.shape[0] not in (1, shape[axis]):
        raise g.fail(node, f"{t.shape[0]} threshold rows for {shape[axis]} channels")
    bshape = [1] * len(shape)
    bshape[axis] = t.shape[0]
    t32 = first_threshold(t[:, 0]).reshape(bshape)
    x, out, name = node.input[0], node.output[0], node.name or "MultiThreshold"
    new = []
    if np.any(t32 != 0):
        shifted = g.fresh(f"{name}_shifted")
        new.append(g.make("Sub", [x, g.add_const(t32, f"{name}_t")], shifted, f"{name}_sub"))
        x = shifted
    new.append(g.bipolar(x, 1.0 if binary else float(hi), out, name))
    g.replace([node], new)
    kind = "0/1 (BINARY, relabelled as +-1)" if binary else f"+-{float(hi)}"
    per = "per channel" if t.shape[0] > 1 else "shared"
    log.append(f"MultiThreshold {name} -> BipolarQuant: x >= t ({per} threshold) gives {kind}")
    return binary


def _binary_matmul(g: Graph, node: onnx.NodeProto, log: list[str]) -> None:
    """``x01 @ W`` rewritten on ``c = 2*x01 - 1``: ``(c @ W' + k) * 0.5``."""
    w = g.const(node.input[1])
    if w is None or w.ndim != 2:
        raise g.fail(node, "needs a constant 2-D weight")
    name = node.name or node.op_type
    if node.op_type == "XnorPopcountMatMul":
        if not np.all((w == 0) | (w == 1)):
            raise g.fail(node, f"weight {node.input[1]!r} is not BINARY (0/1)")
        weight = (2.0 * w.astype(np.float32) - 1.0).astype(np.float32)
        k = np.full(w.shape[1], w.shape[0], np.float32)
        what = f"XnorPopcountMatMul {name} -> MatMul on +-1 codes, + K, * 0.5"
    else:
        weight = w.astype(np.float32)
        s = np.abs(weight).max(axis=0, keepdims=True)
        mant, _ = np.frexp(s)
        if np.any(np.abs(weight) != s) or np.any(mant != 0.5):
            raise g.fail(
                node,
                "multiplies a 0/1 activation by a weight that is not +-(power of two) per "
                "neuron; bnnhw cannot reproduce that product exactly",
            )
        k = weight.sum(axis=0, dtype=np.float64).astype(np.float32)
        what = f"MatMul {name} on 0/1 input -> MatMul on +-1 codes, + column sums, * 0.5"
    acc, summed = g.fresh(f"{name}_acc"), g.fresh(f"{name}_sum")
    new = [
        g.make("MatMul", [node.input[0], g.add_const(weight, f"{name}_w")], acc, name),
        g.make("Add", [acc, g.add_const(k, f"{name}_k")], summed, f"{name}_k"),
        g.make(
            "Mul",
            [summed, g.add_const(np.float32(0.5), f"{name}_half")],
            node.output[0],
            f"{name}_half",
        ),
    ]
    g.replace([node], new)
    log.append(what)
