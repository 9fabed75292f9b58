"""Read an ONNX file safely and check its structure before anything interprets it.

Everything that can be wrong with the *file* (missing, truncated, not ONNX, external data
outside the model's folder, dangling tensor names) is caught here with a message that
names the file or node, so the importer can assume a well-formed graph.
"""

from __future__ import annotations

import stat
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper

from bnnhw.errors import ModelError

QONNX_DOMAIN = "qonnx.custom_op.general"
# Brevitas has written its quantizers under these domains over the years.
QUANT_OPS = {"Quant", "BipolarQuant", "Trunc"}
# onnxruntime, which runs the reference, only guarantees ai.onnx opsets from 7 on
MIN_OPSET = 7


def node_label(node: onnx.NodeProto, index: int) -> str:
    """A name for messages: the node's own name, or its op type and position."""
    return f"{node.name!r} ({node.op_type})" if node.name else f"#{index} ({node.op_type})"


def read_model(path: str | Path) -> onnx.ModelProto:
    """Load ``path`` with its external data, refusing anything unsafe or malformed."""
    path = Path(path)
    try:
        mode = path.stat().st_mode  # path.exists() raises on a name too long
    except FileNotFoundError:
        raise ModelError(f"{path}: no such file") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        raise ModelError(f"{path}: not a file (give an .onnx model)")
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(
            f"{path}: not a readable ONNX model ({reason}); is the file truncated or of "
            "another format?"
        ) from None
    if not model.HasField("graph") or not model.graph.node:
        raise ModelError(f"{path}: not an ONNX model with a graph (no nodes found)")
    _load_external_data(model, path)
    _fix_quant_domains(model)
    check_structure(model, path)
    check_schema(model, path)
    return model


def _load_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Load external tensors, but only from files inside the model's own folder."""
    folder = path.resolve().parent
    for tensor in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(tensor):
            continue
        try:
            info = external_data_helper.ExternalDataInfo(tensor)
        except ValueError as exc:  # an offset or length that is negative or not a number
            raise ModelError(
                f"{path}: tensor {tensor.name!r} has a damaged external data entry ({exc}); "
                "re-export the model"
            ) from None
        target = (folder / info.location).resolve()
        if not target.is_relative_to(folder):
            raise ModelError(
                f"{path}: tensor {tensor.name!r} keeps its data in {info.location!r}, outside "
                "the model's folder; bnnhw only reads external data next to the model"
            )
        if not target.is_file():
            raise ModelError(
                f"{path}: tensor {tensor.name!r} keeps its data in {info.location!r}, which "
                "does not exist; copy that file next to the model"
            )
    try:
        external_data_helper.load_external_data_for_model(model, str(folder))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read external data ({exc})") from None


def _fix_quant_domains(model: onnx.ModelProto) -> None:
    """Put quantizer nodes in the qonnx domain, as qonnx's own cleanup does."""
    for node in model.graph.node:
        if node.op_type in QUANT_OPS and node.domain != QONNX_DOMAIN:
            node.domain = QONNX_DOMAIN
    if not any(o.domain == QONNX_DOMAIN for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(QONNX_DOMAIN, 1))


def check_structure(model: onnx.ModelProto, path: Path) -> None:
    """One data input, one output, every tensor defined before it is used."""
    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    data_inputs = [i.name for i in graph.input if i.name not in init_names]
    if len(data_inputs) != 1:
        raise ModelError(
            f"{path}: the graph has {len(data_inputs)} data inputs ({', '.join(data_inputs)}); "
            "bnnhw supports networks with exactly one input"
        )
    if len(graph.output) != 1:
        names = ", ".join(o.name for o in graph.output)
        raise ModelError(
            f"{path}: the graph has {len(graph.output)} outputs ({names}); bnnhw supports "
            "exactly one output (the class scores)"
        )
    (data_input,) = (i for i in graph.input if i.name not in init_names)
    elem_type = data_input.type.tensor_type.elem_type
    if not data_input.type.HasField("tensor_type") or elem_type != onnx.TensorProto.FLOAT:
        kind = onnx.TensorProto.DataType.Name(elem_type) if elem_type else "not a tensor"
        raise ModelError(
            f"{path}: input {data_input.name!r} has element type {kind}; bnnhw feeds float32 "
            "frames, so the graph input must be FLOAT"
        )
    seen: set[str] = set()
    for info in graph.value_info:
        if info.name in seen:
            raise ModelError(
                f"{path}: value_info describes tensor {info.name!r} twice; remove the "
                "duplicate entry (onnx.shape_inference rewrites value_info cleanly)"
            )
        seen.add(info.name)
    known = init_names | {i.name for i in graph.input} | {""}
    for index, node in enumerate(graph.node):
        for name in node.input:
            if name not in known:
                raise ModelError(
                    f"{path}: node {node_label(node, index)} reads tensor {name!r}, which no "
                    "initializer, graph input or earlier node provides"
                )
        known.update(node.output)
    if graph.output[0].name not in known:
        raise ModelError(f"{path}: graph output {graph.output[0].name!r} is never computed")


def check_schema(model: onnx.ModelProto, path: Path) -> None:
    """The graph is valid ONNX for the opset it declares, as onnxruntime would load it."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or opset < MIN_OPSET:
        raise ModelError(
            f"{path}: ai.onnx opset {opset} is not supported (onnxruntime, the reference, "
            f"guarantees opset {MIN_OPSET} and later); re-export with a recent opset"
        )
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise ModelError(
            f"{path}: not a valid ONNX graph for opset {opset}: {' '.join(lines)[:300]}"
        ) from None
