"""Checks shared by the dialect tests: golden vs the graph's own reference, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import bnnhw
from bnnhw import golden
from bnnhw.cli.main import main
from bnnhw.errors import ModelError
from bnnhw.frontend import describe
from bnnhw.frontend.dialects.finn_exec import execute_batched, has_im2col

from qonnx_graphs import execute_reference

LARQ_FIXTURE = Path(__file__).parent / "fixtures" / "larq_digits_cnn.onnx"


def reference(model: onnx.ModelProto, x: np.ndarray, *, every_tensor: bool = False):
    """``execute_reference``; a graph with ``Im2Col`` (qonnx runs it at batch 1 only) runs
    with ``execute_batched``: qonnx's ``execute_node`` per node, Im2Col frame by frame."""
    if not has_im2col(model):
        return execute_reference(model, x, every_tensor=every_tensor)
    context = execute_batched(model, x)
    return context if every_tensor else np.asarray(context[model.graph.output[0].name])


def agree(model: onnx.ModelProto, x: np.ndarray, folder: Path, dialect: str) -> np.ndarray:
    """Import ``model``; the golden classes (and scores, if the graph outputs scores) must
    equal ``execute_onnx`` on the original graph. Returns the classes."""
    path = folder / "model.onnx"
    onnx.save(model, path)
    assert describe(path).dialect == dialect
    net = bnnhw.load(path)
    ref = reference(model, x).reshape(len(x), -1)
    pred = golden.predict(net, x)
    if ref.dtype.kind in "iu":  # TopK / ArgMax: the graph outputs the class
        np.testing.assert_array_equal(pred, ref[:, 0])
        return pred
    np.testing.assert_array_equal(pred, np.argmax(ref, axis=1))
    if model.graph.node[-1].op_type != "Softmax":
        floats = golden.float_outputs(net, x)
        np.testing.assert_allclose(floats, ref, rtol=1e-6, atol=1e-6 * float(np.abs(ref).max()))
    return pred


def refused(model: onnx.ModelProto, folder: Path, node: str, *words: str) -> str:
    """The import is refused with a message naming ``node`` (and containing ``words``)."""
    path = folder / f"{node}.onnx"
    onnx.save(model, path)
    with pytest.raises(ModelError) as info:
        bnnhw.load(path)
    message = str(info.value)
    assert f"'{node}'" in message, message
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


def cli_refuses(model: onnx.ModelProto, folder: Path, node: str, capsys) -> None:
    """``bnnhw inspect`` prints one ``bnnhw: error:`` line naming the node, exit status 2."""
    path = folder / "bad.onnx"
    onnx.save(model, path)
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bnnhw: error: ") and f"'{node}'" in err[0]


def verify_on_verilator(
    model: onnx.ModelProto, folder: Path, capsys, name: str = "mlp.onnx", *extra: str
) -> str:
    """``bnnhw verify`` on Verilator passes; returns its output.

    The build folder is shared, so a dialect whose graph gives the same hardware as one
    verified before reuses its compiled Verilator model (the runner's stamp is the Verilog).
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name  # one name: the same network gives the same Verilog
    onnx.save(model, path)
    args = ["verify", str(path), "--sim", "verilator", "--vectors", "40", "-o", str(folder / "b")]
    args += list(extra)
    code = main(args)
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def cnn_spec():
    """The Larq fixture's network (tests/fixtures), for the other dialects to write: the
    same integer IR, hence the same Verilog, so one Verilator build serves all four."""
    from dialect_graphs import spec_from_network

    return spec_from_network(bnnhw.load(LARQ_FIXTURE))


def verify_cnn_on_verilator(model: onnx.ModelProto, tmp_path_factory, capsys) -> str:
    """``verify_on_verilator`` for the shared CNN (one build folder, one file name)."""
    folder = tmp_path_factory.getbasetemp() / "dialect_verify_cnn"
    args = ("--dataset", "digits", "--vectors", "359")  # the whole digits test split
    return verify_on_verilator(model, folder, capsys, "cnn.onnx", *args)


def node_named(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.name == name)


def set_const(model: onnx.ModelProto, name: str, value: object) -> None:
    """Replace initializer ``name`` keeping its dtype."""
    for i, t in enumerate(model.graph.initializer):
        if t.name == name:
            dtype = onnx.numpy_helper.to_array(t).dtype
            model.graph.initializer[i].CopyFrom(
                onnx.numpy_helper.from_array(np.asarray(value, dtype), name)
            )
            return
    raise KeyError(name)


def set_attr(node: onnx.NodeProto, **attrs: object) -> None:
    for key, value in attrs.items():
        for i, a in enumerate(node.attribute):
            if a.name == key:
                del node.attribute[i]
                break
        node.attribute.append(onnx.helper.make_attribute(key, value))
