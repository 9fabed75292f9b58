"""Issue 11, first slice: bad input never ends in an internal error, a wrong answer or a lost file.

Each test runs the CLI in process (``bnnhw.cli.main.main``) and holds it to the contract
of tests/test_bad_inputs.py: a user error is exit status 2 and one stderr line
``bnnhw: error: ...`` naming what is wrong; a user's file is never replaced without --force.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from bnnhw.cli.main import main
from bnnhw.errors import ModelError
from bnnhw.frontend import import_onnx

from conftest import ROOT
from conv_graphs import ConvNetSpec, PoolSpec, build_conv_model, random_conv, random_dense
from qonnx_graphs import save_model

DIGITS = ROOT / "models" / "digits_w1a1_in1_classic.onnx"  # input (1, 8, 8), 4 dense layers
TFC = ROOT / "models" / "tfc_w1a1_in1_classic.onnx"  # input (1, 28, 28)
PREFIX = "bnnhw: error: "


def user_error(capsys: pytest.CaptureFixture[str], argv: list[object], *names: str) -> str:
    """Run ``bnnhw ARGV``: exit 2, one ``bnnhw: error:`` line naming every one of ``names``."""
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, f"exit {rc}, stderr:\n{err}"
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX), err
    for name in names:
        assert name in lines[0], f"{name!r} not named in: {lines[0]}"
    return lines[0]


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    x = np.random.default_rng(0).random((3, 1, 8, 8), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    return tmp_path / "x.npy"


# ------------------------------------------------------------- 1. output files are not lost


def test_predict_output_without_suffix_leaves_an_existing_npy_alone(
    tmp_path: Path, frames: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-o res`` writes ``res`` exactly; ``res.npy`` (np.save's suffix) is not touched."""
    (tmp_path / "res.npy").write_bytes(b"precious")
    assert main(["predict", str(DIGITS), str(frames), "-o", str(tmp_path / "res")]) == 0
    assert (tmp_path / "res.npy").read_bytes() == b"precious"
    assert np.load(tmp_path / "res").shape == (3,)
    user_error(capsys, ["predict", DIGITS, frames, "-o", tmp_path / "res"], "res", "--force")


def test_predict_refuses_a_dangling_symlink_without_force(
    tmp_path: Path, frames: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "link.npy"
    link.symlink_to(tmp_path / "elsewhere.npy")
    user_error(capsys, ["predict", DIGITS, frames, "-o", link], "link.npy", "--force")
    assert not (tmp_path / "elsewhere.npy").exists() and link.is_symlink()
    # --force replaces the link itself: nothing is written where it pointed
    assert main(["predict", str(DIGITS), str(frames), "-o", str(link), "--force"]) == 0
    assert not link.is_symlink() and np.load(link).shape == (3,)
    assert not (tmp_path / "elsewhere.npy").exists()


def test_predict_forced_over_a_file_keeps_no_temporary(
    tmp_path: Path, frames: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "y.npy"
    out.write_bytes(b"old")
    assert main(["predict", str(DIGITS), str(frames), "-o", str(out), "--force"]) == 0
    assert np.load(out).shape == (3,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "y.npy"]


def test_predict_to_dev_full_is_a_clean_error(
    frames: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # /dev/full (every write fails with ENOSPC) is on every Linux machine bnnhw supports,
    # CI's included: no skip, a missing device is a failure worth seeing
    assert os.path.exists("/dev/full")
    user_error(capsys, ["predict", DIGITS, frames, "-o", "/dev/full", "--force"], "/dev/full")
    assert not os.path.lexists("/dev/full.npy")


# ------------------------------------------------------------- 2. internal errors -> refusals


def test_predict_output_name_too_long(
    tmp_path: Path, frames: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "a" * 300 + ".npy"
    user_error(capsys, ["predict", DIGITS, frames, "-o", tmp_path / name], name)


def test_predict_input_name_too_long(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "b" * 300 + ".npy"
    user_error(capsys, ["predict", DIGITS, tmp_path / name, "-o", tmp_path / "o.npy"], name)


def test_model_name_too_long(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "m" * 300 + ".onnx"
    model = tmp_path / name
    user_error(capsys, ["inspect", model], name)
    user_error(capsys, ["evaluate", model], name)
    user_error(capsys, ["compile", model, "-o", tmp_path / "build"], name)
    with pytest.raises(ModelError, match="File name too long"):
        import_onnx(model)


def test_compile_folder_name_too_long(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "c" * 300
    user_error(capsys, ["compile", DIGITS, "-o", tmp_path / name], name)


def test_compile_folder_under_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("precious")
    user_error(capsys, ["compile", DIGITS, "-o", tmp_path / "notes.txt" / "build"], "notes.txt")


def test_predict_output_is_a_directory(
    tmp_path: Path, frames: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "out.npy"
    folder.mkdir()
    user_error(capsys, ["predict", DIGITS, frames, "-o", folder, "--force"], "out.npy", "directory")
    assert folder.is_dir() and not any(folder.iterdir())


def test_predict_output_in_proc(frames: Path, capsys: pytest.CaptureFixture[str]) -> None:
    user_error(capsys, ["predict", DIGITS, frames, "-o", "/proc/x.npy"], "/proc/x.npy")


def test_predict_empty_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = tmp_path / "no_frames.npy"
    np.save(x, np.zeros((0, 1, 8, 8), np.float32))
    user_error(capsys, ["predict", DIGITS, x, "-o", tmp_path / "o.npy"], "no_frames.npy")
    assert not (tmp_path / "o.npy").exists()


def test_compile_output_is_an_existing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("precious")
    user_error(capsys, ["compile", DIGITS, "-o", out], "notes.txt")
    user_error(capsys, ["compile", DIGITS, "-o", out, "--force"], "notes.txt")
    assert out.read_text() == "precious"


@pytest.mark.parametrize("lanes", ["0", "-3"])
def test_compile_max_lanes_not_positive(
    tmp_path: Path, lanes: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "build"
    user_error(capsys, ["compile", DIGITS, "-o", out, "--max-lanes", lanes], "--max-lanes", lanes)
    assert not out.exists()


@pytest.mark.parametrize("value", ["eight", None, 2.5, True])
def test_folding_file_pe_not_an_integer(
    tmp_path: Path, value: object, capsys: pytest.CaptureFixture[str]
) -> None:
    folding = tmp_path / "fold.json"
    folding.write_text(json.dumps({"0": {"pe": value, "simd": 8}}))
    user_error(
        capsys,
        ["compile", DIGITS, "-o", tmp_path / "build", "--folding", folding],
        "fold.json",
        "'0'",
        "pe",
    )


def test_evaluate_dataset_of_another_shape(capsys: pytest.CaptureFixture[str]) -> None:
    """An MNIST model on the 8x8 digits: name both shapes instead of a reshape error."""
    user_error(
        capsys, ["evaluate", TFC, "--dataset", "digits"], TFC.name, "(1, 28, 28)", "(1, 8, 8)"
    )


def _conv_model() -> onnx.ModelProto:
    """BipolarQuant_0, BipolarQuant_1 (weight), Conv_0 (3x3 on 2x8x8), BatchNormalization_0,
    BipolarQuant_2, MaxPool_0 (2x2 stride 2), Flatten_0, BipolarQuant_3, Gemm_0."""
    rng = np.random.default_rng(0)
    conv = random_conv(rng, 2, 4, (3, 3), (1.0, 1.0, 0.0), pool=PoolSpec())
    spec = ConvNetSpec((2, 8, 8), [conv], [], name="hard")
    spec.dense = random_dense(rng, [int(np.prod(spec.maps()[-1])), 3], conv.act_scale)
    return build_conv_model(spec)


def _node(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.name == name)


def _set(node: str, attr: str, value: list[int]):
    def mutate(model: onnx.ModelProto) -> None:
        n = _node(model, node)
        for a in [a for a in n.attribute if a.name == attr]:
            n.attribute.remove(a)
        n.attribute.append(helper.make_attribute(attr, value))

    return mutate


def _kernel_9x9(model: onnx.ModelProto) -> None:
    w = next(t for t in model.graph.initializer if t.name == "conv0_w")
    ones = np.ones((4, 2, 9, 9), np.float32)
    w.CopyFrom(numpy_helper.from_array(ones, "conv0_w"))
    _set("Conv_0", "kernel_shape", [9, 9])(model)


BAD_GEOMETRY = {
    "conv_strides_0": (_set("Conv_0", "strides", [0, 0]), "Conv_0", "strides"),
    "conv_strides_len_1": (_set("Conv_0", "strides", [1]), "Conv_0", "strides"),
    "conv_pads_len_2": (_set("Conv_0", "pads", [1, 1]), "Conv_0", "pads"),
    "conv_pads_negative": (_set("Conv_0", "pads", [-1, 0, 0, 0]), "Conv_0", "pads"),
    "conv_kernel_9x9_on_8x8": (_kernel_9x9, "Conv_0", "kernel"),
    "pool_strides_0": (_set("MaxPool_0", "strides", [0, 0]), "MaxPool_0", "strides"),
    "pool_strides_len_1": (_set("MaxPool_0", "strides", [2]), "MaxPool_0", "strides"),
}


@pytest.mark.parametrize("case", sorted(BAD_GEOMETRY))
def test_bad_conv_and_pool_attributes(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mutate, node, attr = BAD_GEOMETRY[case]
    model = _conv_model()
    mutate(model)
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    user_error(capsys, ["inspect", path], "model.onnx", repr(node), attr)


def test_unmutated_conv_model_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_model(_conv_model(), tmp_path / "model.onnx")
    assert main(["inspect", str(tmp_path / "model.onnx")]) == 0


# ------------------------------------------------------------- 3. refuse what is meaningless


@pytest.mark.parametrize("limit", ["-5", "0"])
def test_evaluate_limit_not_positive(limit: str, capsys: pytest.CaptureFixture[str]) -> None:
    user_error(capsys, ["evaluate", DIGITS, "--limit", limit], "--limit", limit)


# ------------------------------------------------------------- 4. a failed compile can be rerun


def _failing_compile(tmp_path: Path, out: Path, *extra: object) -> list[object]:
    folding = tmp_path / "fold.json"  # PE 3 does not divide layer 0's 64 neurons
    folding.write_text(json.dumps({str(i): {"pe": 3, "simd": 1} for i in range(4)}))
    return ["compile", DIGITS, "-o", out, "--folding", folding, *extra]


def test_failed_compile_leaves_nothing_and_reruns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a" / "build"
    argv = _failing_compile(tmp_path, out)
    first = user_error(capsys, argv, "PE=3")
    assert not (tmp_path / "a").exists()
    assert user_error(capsys, argv, "PE=3") == first


def test_failed_compile_keeps_the_users_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "build"
    (out / "steps").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "steps" / "mine.txt").write_text("mine too")
    user_error(capsys, _failing_compile(tmp_path, out, "--force"), "PE=3")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "notes.txt",
        "steps",
        "steps/mine.txt",
    ]


def test_failed_compile_into_an_empty_folder_keeps_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "build"
    out.mkdir()
    user_error(capsys, _failing_compile(tmp_path, out), "PE=3")
    assert out.is_dir() and not any(out.iterdir())


# ------------------------------------------------------------- 5. messages that say what is wrong


def test_input_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "frames").mkdir()
    line = user_error(
        capsys,
        ["predict", DIGITS, tmp_path / "frames", "-o", tmp_path / "o.npy"],
        "frames",
        "directory",
    )
    assert "no such file" not in line


def test_input_is_an_npz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = tmp_path / "frames.npz"
    np.savez(x, x=np.zeros((3, 1, 8, 8), np.float32))
    line = user_error(
        capsys, ["predict", DIGITS, x, "-o", tmp_path / "o.npy"], "frames.npz", ".npz"
    )
    assert "dtype" not in line


def test_text_file_named_npy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = tmp_path / "frames.npy"
    x.write_text("0.5, 0.5, 0.5\n")
    line = user_error(
        capsys, ["predict", DIGITS, x, "-o", tmp_path / "o.npy"], "frames.npy", "not a .npy file"
    )
    assert "pickle" not in line


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_quant_scale_not_stored_as_float32_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dtype: type
) -> None:
    # finding 2: with a scale of 0.1 in float64 qonnx quantizes in float64 and bnnhw in
    # float32, and the fuzzing found constant frames where the two gave other classes
    model = onnx.load(ROOT / "models" / "tfc_w1a1_in8_classic.onnx")
    quant = next(n for n in model.graph.node if n.op_type == "Quant")
    scale = next(t for t in model.graph.initializer if t.name == quant.input[1])
    scale.CopyFrom(numpy_helper.from_array(np.asarray(0.1, dtype), scale.name))
    path = tmp_path / "scale64.onnx"
    onnx.save(model, path)
    message = user_error(capsys, ["inspect", path], quant.name, quant.input[1])
    assert f"stored as {np.dtype(dtype).name}" in message and "store it as float32" in message
