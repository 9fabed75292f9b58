"""The compiled streaming harness (sim/fast_tb.py) against the golden model.

One MLP and one CNV (the small digits models), on Verilator and Icarus, under random
input gaps and output stalls. Expected results come from ``golden.scores`` packed with
``PortFormat.pack_result``, not from the vectors the harness was fed. The harness build
of each design is made once for the module (Verilator at -O0: it compiles ~2x faster and
these runs are short).
"""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest

from bnnhw import datasets, golden
from bnnhw.build import compile_model, load_build
from bnnhw.cli.main import main
from bnnhw.rtl_gen import to_verilog
from bnnhw.sim.fast import verify_fast
from bnnhw.sim.vectors import make_vectors

from conftest import ROOT

MLP, CNV = "digits_w1a1_in1_classic", "cnv_digits_pad_w1a1_in8_classic"
FRAMES = {MLP: 60, CNV: 8}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    old = os.environ.get("BNNHW_FAST_OPT")
    os.environ["BNNHW_FAST_OPT"] = "-O0"
    yield {
        m: compile_model(ROOT / "models" / f"{m}.onnx", tmp_path_factory.mktemp(m))
        for m in (MLP, CNV)
    }
    if old is None:
        os.environ.pop("BNNHW_FAST_OPT", None)
    else:
        os.environ["BNNHW_FAST_OPT"] = old


def _digits(build, frames):
    _, _, x, labels = datasets.load_digits_split()
    return x[:frames].reshape(frames, *build.net.input.shape), labels[:frames]


@pytest.mark.slow  # RTL simulators
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
@pytest.mark.parametrize("model", [MLP, CNV])
def test_fast_harness_is_bit_exact_under_stalls(builds, model, simulator):
    build = builds[model]
    x, _ = _digits(build, FRAMES[model])
    measure = simulator == "verilator" or model == MLP  # Icarus runs a CNV at ~300 cycles/s
    vectors = make_vectors(build, x)
    result = verify_fast(
        build, vectors, simulator=simulator, in_gap=0.3, out_gap=0.3, seed=7, measure=measure
    )
    fmt, scores = build.port_format(), golden.scores(build.net, x)
    expected = [fmt.pack_result(np.argmax(s), s.tolist()) for s in scores]
    assert result.results == expected
    assert result.ok and result.count_errors == [] and result.matched == len(x)
    if not measure:
        return
    # cycles per frame and latency, measured without gaps, against the report
    report = build.report
    assert report["initiation_interval"] <= result.cycles_per_frame
    assert result.cycles_per_frame <= 1.05 * report["initiation_interval"]
    if model == MLP:  # a dense network's latency is exact; a convolution's is a bound
        assert result.latency == report["latency_cycles"]
    else:
        assert 0 < result.latency <= report["latency_cycles"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"drop_word": 10}, "the harness sent 29 of 30 input words"),
        ({"dup_beat": 20}, "31 results for 30 frames"),
        # the repeated last result leaves every frame matching: only the count catches it
        ({"dup_beat": 29}, "the results file holds 31 output beats, the harness counted 30"),
    ],
)
def test_a_dropped_or_repeated_frame_fails(builds, fault, message):
    build = builds[MLP]
    x, _ = _digits(build, 30)
    vectors = make_vectors(build, x)
    result = verify_fast(build, vectors, simulator="icarus", faults=fault, measure=False)
    assert not result.ok and any(message in error for error in result.count_errors)
    if fault == {"dup_beat": 29}:
        assert result.matched == 30


@pytest.mark.slow
def test_chunks_stream_from_reset_and_a_fault_in_any_of_them_fails(builds):
    """Three processes of ten frames: bit exact together; a word dropped in the last fails."""
    build = builds[MLP]
    x, _ = _digits(build, 30)
    vectors = make_vectors(build, x)
    fmt, scores = build.port_format(), golden.scores(build.net, x)
    expected = [fmt.pack_result(np.argmax(s), s.tolist()) for s in scores]
    clean = verify_fast(build, vectors, simulator="icarus", measure=False, jobs=3)
    assert clean.extra["jobs"] == 3 and clean.ok and clean.results == expected
    word = 25 * fmt.frame_words + 3  # frame 25: the third chunk's sixth frame
    bad = verify_fast(
        build, vectors, simulator="icarus", measure=False, jobs=3, faults={"drop_word": word}
    )
    assert not bad.ok
    words = 10 * fmt.frame_words
    assert bad.count_errors[0] == f"chunk 2: the harness sent {words - 1} of {words} input words"
    assert bad.results[:20] == expected[:20]  # the other chunks are untouched


@pytest.mark.slow
def test_flipped_weight_is_caught_and_located(builds, tmp_path, capsys):
    """Fast path finds the bad frames; the cocotb rerun names layer 1 and the neuron."""
    folder = tmp_path / "bad"
    shutil.copytree(builds[MLP].folder, folder, ignore=shutil.ignore_patterns("sim_*", "fast_*"))
    bad = load_build(folder)
    x, _ = _digits(bad, 40)
    before, clean = golden.layer_outputs(bad.net, x)[2], golden.scores(bad.net, x)
    weights = bad.net.layers[1].weights
    for neuron, i in np.ndindex(*weights.shape):
        weights[neuron, i] ^= 1
        if (golden.layer_outputs(bad.net, x)[2] != before).any():
            break
        weights[neuron, i] ^= 1
    bad.verilog.write_text(to_verilog(bad.accelerator(), bad.top))  # the IR on disk stays right
    same = int(np.all(golden.scores(bad.net, x) == clean, axis=1).sum())
    args = ["verify", str(folder), "--sim", "icarus", "--dataset", "digits", "--vectors", "40"]
    assert main(args) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("icarus: fast harness") for line in lines)
    first = next(line for line in lines if line.startswith("MISMATCH"))
    assert "layer 1 (" in first and f"neuron(s) {neuron} (1 differ)" in first
    m = re.fullmatch(r"RTL accuracy [\d.]+ % \(golden [\d.]+ %\), (\d+)/40 frames match", lines[-1])
    assert m and int(m[1]) == same < 40  # the frames whose scores the flipped bit changes


@pytest.mark.slow
def test_cli_dataset_accuracy_on_verilator(builds, capsys):
    build = builds[MLP]
    args = ["verify", str(build.folder), "--sim", "verilator", "--dataset", "digits"]
    assert main([*args, "--vectors", "50"]) == 0
    x, labels = _digits(build, 50)
    accuracy = 100 * np.mean(golden.predict(build.net, x) == labels)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"RTL accuracy {accuracy:.2f} % (golden {accuracy:.2f} %), 50/50 frames match"


def test_cli_refuses_two_frame_sources(builds, capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 8, 8), np.float32))
    folder = str(builds[MLP].folder)
    args = ["verify", folder, "--dataset", "digits", "--inputs", str(tmp_path / "x.npy")]
    assert main(args) == 2
    assert "give one of them" in capsys.readouterr().err
    assert main(["verify", folder, "--dataset", "mnist", "--sim", "icarus"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pass the --dataset it was trained on" in err
