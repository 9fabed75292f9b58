"""Recognise which exporter wrote a graph and rewrite its patterns into QONNX form.

The importer understands one form: ``BipolarQuant``/``Quant`` quantizers, MatMul/Gemm/Conv
with ``+-s`` weights, float ops between them. FINN-ONNX, plain ``torch.onnx.export`` graphs
and Larq graphs through tf2onnx say the same things in other words (``MultiThreshold``,
``GreaterOrEqual``/``Cast``/``Mul``/``Sub``, ``Sign(Sign(x) + 0.1)``, ...). Each pass here
proves, from the constants, that a pattern computes what its QONNX replacement computes
for every float32 input, and otherwise refuses with the node named. The IR never sees the
dialect; ``Normalized.rewrites`` says what was done, for ``bnnhw inspect``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import onnx

from bnnhw.frontend.dialects import common, finn, finn_im2col, larq, layout, plain
from bnnhw.frontend.dialects.graph import Graph
from bnnhw.frontend.prepare import prepare
from bnnhw.frontend.reader import QUANT_OPS, read_model

QONNX, FINN, PLAIN, LARQ = "QONNX", "FINN-ONNX", "plain ONNX", "Larq (tf2onnx)"


@dataclass
class Normalized:
    """The graph in QONNX form, the dialect it came in, and the rewrites applied."""

    model: onnx.ModelProto
    dialect: str
    rewrites: list[str] = field(default_factory=list)


def detect(model: onnx.ModelProto) -> str:
    """The dialect, from the ops present (FINN custom ops first, then QONNX quantizers)."""
    if finn.is_finn(model):
        return FINN
    if any(n.op_type in QUANT_OPS for n in model.graph.node):
        return QONNX
    if model.producer_name.startswith("tf2onnx") or larq.has_sign_sign(model):
        return LARQ
    return PLAIN


def normalize(model: onnx.ModelProto, path: Path) -> Normalized:
    """Rewrite ``model`` (as read by ``read_model``) into the form the importer reads."""
    dialect = detect(model)
    common.check_quant_bits(model, path)
    if dialect == QONNX and not common.has_class_tail(model):
        return Normalized(model, dialect)  # untouched: the importer's own path
    if dialect == FINN:
        finn_im2col.precheck(model, path)
    g = Graph(prepare(model, path), path)
    log: list[str] = []
    common.class_tail(g, log)
    if dialect == FINN:
        finn_im2col.lower_back(g, log)
    if dialect != QONNX and layout.cancel_transposes(g, log):
        g = Graph(prepare(g.model(), path), path)  # shapes in the original layout again
    if dialect == FINN:
        finn.rewrite(g, log)
    elif dialect in (PLAIN, LARQ):
        larq.rewrite(g, log)
        plain.rewrite(g, log)
    common.layout_transposes(g, log)
    if dialect == QONNX and not log:
        return Normalized(model, dialect)  # untouched: the importer's own path
    return Normalized(g.model(), dialect, log)


def describe(path: str | Path) -> Normalized:
    """What ``import_onnx`` does to the file before importing it (for ``bnnhw inspect``)."""
    path = Path(path)
    return normalize(read_model(path), path)


__all__ = ["FINN", "LARQ", "PLAIN", "QONNX", "Normalized", "describe", "detect", "normalize"]
