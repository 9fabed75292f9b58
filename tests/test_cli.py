"""The command line on a bundled model: what it writes is what the golden model says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

import bnnhw
from bnnhw.cli.main import main

from conftest import MODELS

MODEL = MODELS[0]


def _inputs(tmp_path, n=20):
    net = bnnhw.load(MODEL)
    x = np.random.default_rng(5).random((n, *net.input.shape), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    return net, x


def test_predict_writes_classes_and_scores(tmp_path, capsys):
    net, x = _inputs(tmp_path)
    assert (
        main(["predict", str(MODEL), str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 0
    )
    assert np.array_equal(np.load(tmp_path / "y.npy"), bnnhw.golden.predict(net, x))
    assert (
        main(
            [
                "predict",
                str(MODEL),
                str(tmp_path / "x.npy"),
                "-o",
                str(tmp_path / "s.npy"),
                "--scores",
            ]
        )
        == 0
    )
    scores = np.load(tmp_path / "s.npy")
    assert scores.shape == (len(x), net.classes)
    assert np.array_equal(np.argmax(scores, axis=1), np.load(tmp_path / "y.npy"))
    assert "wrote 20 class indices" in capsys.readouterr().out


def test_predict_overwrites_only_with_force(tmp_path, capsys):
    _inputs(tmp_path)
    out = tmp_path / "y.npy"
    out.write_text("precious")
    assert main(["predict", str(MODEL), str(tmp_path / "x.npy"), "-o", str(out)]) == 2
    assert out.read_text() == "precious"
    assert "--force" in capsys.readouterr().err
    assert main(["predict", str(MODEL), str(tmp_path / "x.npy"), "-o", str(out), "--force"]) == 0


def test_inspect_lists_every_layer(capsys):
    net = bnnhw.load(MODEL)
    assert main(["inspect", str(MODEL)]) == 0
    text = capsys.readouterr().out
    for layer in net.layers:
        assert layer.name in text and f"{layer.fan_in} -> {layer.neurons}" in text


def test_evaluate_against_reference(capsys):
    assert main(["evaluate", str(MODEL), "--limit", "100", "--reference"]) == 0
    out = capsys.readouterr().out
    assert "100/100 same class" in out


def test_module_entry_point_and_help():
    for verb in ([], ["inspect"], ["predict"], ["evaluate"]):
        result = subprocess.run(
            [sys.executable, "-m", "bnnhw", *verb, "--help"], capture_output=True, text=True
        )
        assert result.returncode == 0 and "usage: bnnhw" in result.stdout


def test_a_closed_pipe_is_not_an_internal_error():
    """``bnnhw inspect M | head -0``: the reader is gone before bnnhw writes; no traceback,
    no bug report, and a shell's SIGPIPE status."""
    bnnhw = Path(sys.executable).parent / "bnnhw"
    inspect = subprocess.Popen(
        [str(bnnhw), "inspect", str(MODELS[0].parent / "tfc_w1a1_in1_classic.onnx")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    inspect.stdout.close()  # before bnnhw has imported anything, let alone printed
    stderr = inspect.stderr.read().decode()
    assert inspect.wait(timeout=120) == 141
    assert "internal error" not in stderr and "Traceback" not in stderr
