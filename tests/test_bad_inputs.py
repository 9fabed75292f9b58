"""Bad models and bad user inputs through the real CLI (`python -m bnnhw ...` as a subprocess).

Contract: a user error is ONE line on stderr starting with "bnnhw: error: ", exit status 2,
never a traceback, and the line names what is wrong (file, node, op type or tensor).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mlp_specs import edge_inputs, make_spec
from qonnx_graphs import MLPSpec, build_model, execute_reference, save_model

REPO = Path(__file__).resolve().parents[1]
PREFIX = "bnnhw: error: "


def run_cli(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m bnnhw ARGS` the way a user would (no debug variable, repo importable)."""
    env = {k: v for k, v in os.environ.items() if k != "BNNHW_DEBUG"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "bnnhw", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        env=env,
        timeout=300,
        check=False,
    )


def assert_user_error(proc: subprocess.CompletedProcess[str], *names: str) -> str:
    """Exit 2, one stderr line with the prefix, no traceback, every name in ``names`` in it."""
    err = proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}, stderr:\n{err}"
    assert "Traceback" not in err and "Traceback" not in proc.stdout
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{err}"
    line = lines[0]
    assert line.startswith(PREFIX) and len(line) > len(PREFIX) + 5, line
    for name in names:
        assert name in line, f"{name!r} not named in: {line}"
    return line


def assert_names_one_of(line: str, *names: str) -> None:
    """Some errors can fairly be described by either of two names (node or tensor)."""
    assert any(n in line for n in names), f"none of {names} named in: {line}"


# ----------------------------------------------------------------------------- models

GOOD = dict(widths=[12, 8, 4], seed=0, bn_kinds=("generic",))


def good_spec(**kw: object) -> MLPSpec:
    """12 -> 8 -> 4, nodes Mul_0 Sub_0 BipolarQuant_0..3 Gemm_0 BatchNormalization_0 Gemm_1."""
    options = {**GOOD, **kw}
    widths = options.pop("widths")
    seed = options.pop("seed")
    return make_spec(widths, seed, **options)  # type: ignore[arg-type]


def node(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.name == name)


def init(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def write(model: onnx.ModelProto, path: Path) -> Path:
    """Serialize without onnx.save's checks or external-data handling (bad models on purpose)."""
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture
def good_model(tmp_path: Path) -> Path:
    path = tmp_path / "good_model.onnx"
    save_model(build_model(good_spec()), path)
    return path


# ----------------------------------------------------------------------------- files


def test_model_file_missing(tmp_path: Path) -> None:
    proc = run_cli("inspect", tmp_path / "no_such_model.onnx")
    assert_user_error(proc, "no_such_model.onnx")


def test_model_file_missing_in_predict(tmp_path: Path) -> None:
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 12), np.float32))
    proc = run_cli("predict", tmp_path / "absent_model.onnx", x, "-o", tmp_path / "out.npy")
    assert_user_error(proc, "absent_model.onnx")
    assert not (tmp_path / "out.npy").exists()


def test_truncated_onnx(tmp_path: Path, good_model: Path) -> None:
    data = good_model.read_bytes()
    bad = tmp_path / "truncated_model.onnx"
    bad.write_bytes(data[: len(data) // 2])
    assert_user_error(run_cli("inspect", bad), "truncated_model.onnx")


def test_text_file_named_onnx(tmp_path: Path) -> None:
    bad = tmp_path / "notes_not_a_model.onnx"
    bad.write_text("name,value\nweights,0.5\nthis is a CSV file, not an ONNX protobuf\n")
    assert_user_error(run_cli("inspect", bad), "notes_not_a_model.onnx")


# ----------------------------------------------------------------------------- graphs


@pytest.mark.parametrize("op_type", ["Softmax", "Tanh"])
def test_unsupported_op_in_the_middle(tmp_path: Path, op_type: str) -> None:
    """An op outside the supported set between BN and the activation: name node and op type."""
    model = build_model(good_spec())
    act = node(model, "BipolarQuant_2")  # the hidden activation, fed by BatchNormalization_0
    odd = helper.make_node(op_type, [act.input[0]], ["odd_out"], name="mystery_node_7")
    if op_type == "Softmax":
        odd.attribute.append(helper.make_attribute("axis", 1))
    act.input[0] = "odd_out"
    index = list(model.graph.node).index(act)
    model.graph.node.insert(index, odd)
    onnx.checker.check_model(model)
    line = assert_user_error(run_cli("inspect", write(model, tmp_path / "m.onnx")))
    assert "mystery_node_7" in line and op_type in line, line


def test_float_weights_without_bipolarquant(tmp_path: Path) -> None:
    """Transpose + MatMul on a plain float initializer: not a binary layer; name the MatMul."""
    model = build_model(good_spec(linear="matmul"))
    mm = node(model, "MatMul_1")
    w = numpy_helper.to_array(init(model, "fc1_weight"))
    model.graph.initializer.append(numpy_helper.from_array(w.T.copy(), "fc1_float_weight_t"))
    mm.input[1] = "fc1_float_weight_t"
    for name in ("BipolarQuant_3", "Transpose_1"):
        model.graph.node.remove(node(model, name))
    model.graph.initializer.remove(init(model, "fc1_weight"))
    model.graph.initializer.remove(init(model, "fc1_weight_scale"))
    onnx.checker.check_model(model)
    assert_user_error(run_cli("inspect", write(model, tmp_path / "float_w.onnx")), "MatMul_1")


def test_bipolarquant_scale_is_a_graph_input(tmp_path: Path) -> None:
    """A scale the graph receives at run time is not a constant the hardware can fold."""
    model = build_model(good_spec())
    scale = init(model, "act0_scale")
    model.graph.initializer.remove(scale)
    model.graph.input.append(helper.make_tensor_value_info("act0_scale", TensorProto.FLOAT, []))
    onnx.checker.check_model(model)
    line = assert_user_error(run_cli("inspect", write(model, tmp_path / "dyn_scale.onnx")))
    assert_names_one_of(line, "BipolarQuant_2", "act0_scale")


def test_weight_shape_does_not_match_input_width(tmp_path: Path) -> None:
    """Gemm_0 gets 12 inputs but its weight is (8, 15)."""
    model = build_model(good_spec())
    w = np.random.default_rng(0).normal(size=(8, 15)).astype(np.float32)
    init(model, "fc0_weight").CopyFrom(numpy_helper.from_array(w, "fc0_weight"))
    line = assert_user_error(run_cli("inspect", write(model, tmp_path / "shape.onnx")))
    assert_names_one_of(line, "Gemm_0", "fc0_weight")


def test_node_input_refers_to_missing_tensor(tmp_path: Path) -> None:
    model = build_model(good_spec())
    node(model, "BipolarQuant_3").input[0] = "missing_weight_tensor"
    assert_user_error(
        run_cli("inspect", write(model, tmp_path / "dangling.onnx")), "missing_weight_tensor"
    )


def test_external_data_outside_model_folder(tmp_path: Path) -> None:
    """A weight stored 'externally' at ../../etc/passwd must be refused, not read."""
    model = build_model(good_spec())
    t = init(model, "fc0_weight")
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../../etc/passwd"), ("offset", "0"), ("length", "384")):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    proc = run_cli("inspect", write(model, folder / "external.onnx"))
    line = assert_user_error(proc)
    assert_names_one_of(line, "../../etc/passwd", "fc0_weight")
    assert "root:" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("attr", "value", "what"),
    [("zeropt", 3.0, "zero point"), ("bitwidth", 24.0, "bit width")],
)
def test_input_quant_outside_supported_range(
    tmp_path: Path, attr: str, value: float, what: str
) -> None:
    """Only Quant(x, scale, zero_point 0, bit width <= 16) is a supported input quantizer."""
    model = build_model(good_spec(input_kind="int8"))
    name = f"in_quant_{attr}"
    init(model, name).CopyFrom(numpy_helper.from_array(np.float32(value), name))
    onnx.checker.check_model(model)
    line = assert_user_error(run_cli("inspect", write(model, tmp_path / f"quant_{attr}.onnx")))
    assert "Quant_0" in line, f"{what}: {line}"


def test_graph_with_two_inputs(tmp_path: Path) -> None:
    model = build_model(good_spec())
    model.graph.input.append(
        helper.make_tensor_value_info("extra_input", TensorProto.FLOAT, [1, 3])
    )
    onnx.checker.check_model(model)
    assert_user_error(run_cli("inspect", write(model, tmp_path / "two_in.onnx")), "extra_input")


# ----------------------------------------------------------------------------- predict inputs


def test_predict_inputs_wrong_shape(tmp_path: Path, good_model: Path) -> None:
    x = tmp_path / "wrong_shape_inputs.npy"
    np.save(x, np.zeros((5, 7), np.float32))
    proc = run_cli("predict", good_model, x, "-o", tmp_path / "out.npy")
    assert_user_error(proc, "wrong_shape_inputs.npy", "12")
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize(
    "array",
    [np.array([["a", "bb"]] * 2 * 6).reshape(2, 12), np.zeros((2, 12), np.int64),
     np.zeros((2, 12), np.complex64)],
    ids=["str", "int64", "complex64"],
)  # fmt: skip
def test_predict_inputs_wrong_dtype(tmp_path: Path, good_model: Path, array: np.ndarray) -> None:
    """The error says which dtype is expected (float32, what the graph takes)."""
    x = tmp_path / "wrong_dtype_inputs.npy"
    np.save(x, array)
    proc = run_cli("predict", good_model, x, "-o", tmp_path / "out.npy")
    assert_user_error(proc, "wrong_dtype_inputs.npy", "float32")


def test_predict_inputs_missing(tmp_path: Path, good_model: Path) -> None:
    proc = run_cli("predict", good_model, tmp_path / "absent_inputs.npy", "-o", tmp_path / "o.npy")
    assert_user_error(proc, "absent_inputs.npy")


def test_predict_inputs_not_npy(tmp_path: Path, good_model: Path) -> None:
    x = tmp_path / "inputs_as_text.csv"
    x.write_text(",".join(["0.5"] * 12) + "\n")
    proc = run_cli("predict", good_model, x, "-o", tmp_path / "o.npy")
    assert_user_error(proc, "inputs_as_text.csv")


def test_predict_inputs_object_array_needs_no_pickle(tmp_path: Path, good_model: Path) -> None:
    """An object .npy needs pickle to load: refuse it (never unpickle user files)."""
    x = tmp_path / "pickled_inputs.npy"
    np.save(x, np.array([object()] * 12, dtype=object).reshape(1, 12), allow_pickle=True)
    proc = run_cli("predict", good_model, x, "-o", tmp_path / "o.npy")
    assert_user_error(proc, "pickled_inputs.npy")


def test_predict_refuses_to_overwrite_without_force(tmp_path: Path, good_model: Path) -> None:
    spec = good_spec()
    x_path = tmp_path / "x.npy"
    x = edge_inputs(spec, np.random.default_rng(0), 9)
    np.save(x_path, x)
    out = tmp_path / "existing_output.npy"
    out.write_bytes(b"precious")
    proc = run_cli("predict", good_model, x_path, "-o", out)
    assert_user_error(proc, "--force")
    assert out.read_bytes() == b"precious"

    proc = run_cli("predict", good_model, x_path, "-o", out, "--force")
    assert proc.returncode == 0, proc.stderr
    got = np.load(out)
    assert got.dtype == np.int64 and got.shape == (9,)
    want = np.argmax(execute_reference(build_model(spec), x), axis=1)
    np.testing.assert_array_equal(got, want)


# ----------------------------------------------------------------------------- good graphs


def test_inspect_prints_every_layer_width(tmp_path: Path) -> None:
    widths = [53, 37, 23, 11]
    spec = make_spec(widths, 3, linear="matmul", dynamo_style=True)
    path = tmp_path / "wide.onnx"
    save_model(build_model(spec), path)
    proc = run_cli("inspect", path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    for w in widths:
        assert re.search(rf"(?<!\d){w}(?!\d)", proc.stdout), f"width {w} missing:\n{proc.stdout}"


def test_predict_matches_reference(tmp_path: Path) -> None:
    spec = make_spec([20, 9, 5], 4, input_kind="int8", image_shape=(4, 5), flatten="reshape")
    path = tmp_path / "img.onnx"
    model = build_model(spec)
    save_model(model, path)
    x = edge_inputs(spec, np.random.default_rng(1), 16)
    np.save(tmp_path / "x.npy", x)
    proc = run_cli("predict", path, tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "y.npy")
    np.testing.assert_array_equal(got, np.argmax(execute_reference(model, x), axis=1))
