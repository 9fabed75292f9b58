"""Issue 11: a tampered IR folder is refused by name, never predicted with or crashed on.

A saved IR (``network.json`` + ``network.npz``) is user data. Each test saves the folded
IR of the bundled digits model, damages one thing the way a hand edit or a broken copy
would, and runs ``bnnhw predict`` on the folder in process: exit status 2, one
``bnnhw: error:`` line naming ``network.json`` (or ``.npz``) and the layer at fault.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import bnnhw
from bnnhw.cli.main import main
from bnnhw.frontend.reference import ReferenceExecutor
from bnnhw.ir import save_network

from conftest import ROOT

DIGITS = ROOT / "models" / "digits_w1a1_in1_classic.onnx"
PREFIX = "bnnhw: error: "


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ir") / "good"
    save_network(bnnhw.load(DIGITS), folder)
    return folder


@pytest.fixture
def ir(saved: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "ir"
    folder.mkdir()
    for name in ("network.json", "network.npz"):
        (folder / name).write_bytes((saved / name).read_bytes())
    return folder


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    x = np.random.default_rng(1).random((4, 1, 8, 8), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    return tmp_path / "x.npy"


def refused(capsys: pytest.CaptureFixture[str], ir: Path, frames: Path, *names: str) -> str:
    capsys.readouterr()
    rc = main(["predict", str(ir), str(frames), "-o", str(frames.parent / "out.npy")])
    err = capsys.readouterr().err
    assert rc == 2, f"exit {rc}: {err}"
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX), err
    for name in names:
        assert name in lines[0], f"{name!r} not in: {lines[0]}"
    assert not (frames.parent / "out.npy").exists()
    return lines[0]


def edit_json(ir: Path, change: Callable[[dict], object]) -> None:
    doc = json.loads((ir / "network.json").read_text())
    change(doc)
    (ir / "network.json").write_text(json.dumps(doc))


def edit_array(ir: Path, key: str, change: Callable[[np.ndarray], np.ndarray]) -> None:
    with np.load(ir / "network.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays[key] = change(arrays[key])
    np.savez(ir / "network.npz", **arrays)


def test_untouched_folder_predicts_as_the_graph(
    ir: Path, frames: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control: the saved IR is accepted and agrees with execute_onnx on the graph."""
    out = frames.parent / "out.npy"
    assert main(["predict", str(ir), str(frames), "-o", str(out)]) == 0
    expected = ReferenceExecutor(DIGITS)(np.load(frames)).argmax(axis=1)
    np.testing.assert_array_equal(np.load(out), expected)


def test_json_that_is_a_list(ir: Path, frames: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ir / "network.json").write_text("[1, 2, 3]")
    refused(capsys, ir, frames, "network.json", "list")


def test_json_nested_100000_deep(
    ir: Path, frames: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (ir / "network.json").write_text("[" * 100_000 + "]" * 100_000)
    refused(capsys, ir, frames, "network.json", "nested too deeply")


def test_json_not_json(ir: Path, frames: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ir / "network.json").write_bytes(b"\xff\xfe not json")
    refused(capsys, ir, frames, "network.json", "not readable JSON")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_npz(
    damage: str, ir: Path, frames: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = (ir / "network.npz").read_bytes()
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:  # keep the zip directory, overwrite the members' bytes
        data = data[:40] + bytes(len(data) // 2) + data[40 + len(data) // 2 :]
    (ir / "network.npz").write_bytes(data)
    refused(capsys, ir, frames, "network.npz")


def _layer(i: int, key: str, value: object) -> Callable[[dict], object]:
    return lambda doc: doc["layers"][i].__setitem__(key, value)


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (_layer(1, "name", {"x": 1}), ["layer 1", "name"]),
        (_layer(0, "in_bits", 3), ["layer 0", "in_bits"]),
        (_layer(2, "in_range", "abc"), ["layer 2", "in_range"]),
        (_layer(1, "pe", "eight"), ["layer 1", "pe"]),
        (_layer(1, "pe", 5), ["layer 1", "pe 5"]),
        (_layer(1, "simd", 100000), ["layer 1", "simd 100000 is more than the fan-in"]),
        (_layer(0, "window", {"channels": 1}), ["layer 0", "height"]),
        (_layer(3, "is_output", False), ["layer 3", "hidden layer"]),
        (lambda doc: doc["input"].__setitem__("bits", 0), ["input bits"]),
        (lambda doc: doc["input"].__setitem__("scale", -1.0), ["input scale"]),
        (lambda doc: doc["input"].__setitem__("shape", [1, 8]), ["input preprocess", "8 values"]),
        (lambda doc: doc.__setitem__("layers", []), ["no layers"]),
        (lambda doc: doc.__setitem__("layers", {"a": 1}), ["not a list"]),
        (lambda doc: doc["layers"].__setitem__(0, 7), ["layer 0"]),
        (lambda doc: doc.__setitem__("version", 99), ["version 99"]),
        (lambda doc: doc.pop("input"), ["missing 'input'"]),
        (_layer(0, "thresholds", "nowhere"), ["layer 0", "'nowhere'"]),
    ],
)
def test_tampered_json(
    change: Callable[[dict], object],
    names: list[str],
    ir: Path,
    frames: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    edit_json(ir, change)
    refused(capsys, ir, frames, "network.json", *names)


@pytest.mark.parametrize(
    ("key", "change", "names"),
    [
        ("layer0.weights", lambda w: w.reshape(-1), ["layer 0", "weights have shape"]),
        ("layer1.weights", lambda w: np.where(w == 1, 7, 0).astype(np.uint8), ["layer 1", "0/1"]),
        ("layer1.weights", lambda w: np.full(w.shape, np.nan), ["layer 1", "weights"]),
        ("layer0.thresholds", lambda t: t[:-1], ["layer 0", "thresholds has shape"]),
        ("layer2.thresholds", lambda t: t.astype(np.float64), ["layer 2", "thresholds has dtype"]),
        ("layer1.directions", lambda d: np.zeros_like(d), ["layer 1", "directions must be"]),
        ("layer3.out_scale", lambda s: np.full_like(s, np.nan), ["layer 3", "NaN"]),
        ("layer3.score_mul", lambda s: s[:3], ["layer 3", "score_mul"]),
    ],
)
def test_tampered_arrays(
    key: str,
    change: Callable[[np.ndarray], np.ndarray],
    names: list[str],
    ir: Path,
    frames: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    edit_array(ir, key, change)
    refused(capsys, ir, frames, "network.json", *names)
