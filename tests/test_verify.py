"""Generated Verilog against the golden model, in Verilator and Icarus through cocotb.

One compiled build per model for the whole module: a Verilator build of a digits top takes
~15-20 s on this machine, a run of 100 frames well under a second.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bnnhw import golden
from bnnhw.build import compile_model, load_build, step_verilog
from bnnhw.cli.main import main
from bnnhw.rtl_gen import to_verilog
from bnnhw.sim import runner
from bnnhw.sim.vectors import load_vectors, make_vectors, random_inputs

from conftest import ROOT

MODELS = {m: ROOT / "models" / f"digits_w1a1_{m}_classic.onnx" for m in ("in1", "in8")}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    return {m: compile_model(p, tmp_path_factory.mktemp(m)) for m, p in MODELS.items()}


@pytest.fixture(scope="module")
def narrow_build(tmp_path_factory):
    """16-bit host words: a frame is 4 words, so a reset can land inside one."""
    return compile_model(MODELS["in1"], tmp_path_factory.mktemp("in1_w16"), in_word=16)


def _check(result, frames):
    assert result.mismatches == [], result.mismatches
    assert (result.matched, result.frames) == (frames, frames)
    assert result.tests["stream"]["received"] == frames
    assert result.cycles_per_frame <= 1.05 * max(result.ideal, result.frame_words)


@pytest.mark.parametrize("model", ["in1", "in8"])
@pytest.mark.parametrize(
    "simulator, out_gap, seed",
    [pytest.param("verilator", 0.3, 3, marks=pytest.mark.slow), ("icarus", 0.5, 4)],
)
def test_simulator_matches_golden(builds, model, simulator, out_gap, seed):
    vectors = make_vectors(builds[model], frames=100, seed=seed)
    result = runner.simulate(
        builds[model], vectors, simulator=simulator, in_gap=0.3, out_gap=out_gap, seed=seed
    )
    _check(result, 100)
    if simulator == "verilator":  # a compiled model is reused while the Verilog is the same
        assert result.build_seconds is not None
        again = runner.simulate(builds[model], vectors, simulator=simulator, tests=("stream",))
        assert again.build_seconds is None and again.ok


def test_vectors_round_trip(builds, tmp_path):
    build = builds["in8"]
    vectors = make_vectors(build, frames=30, seed=1)
    loaded = load_vectors(vectors.save(tmp_path / "v.npz"))
    fmt = build.port_format()
    codes = golden.encode_inputs(build.net.input, random_inputs(build.net.input, 30, seed=1))
    assert codes.min() < 0 < codes.max()  # random frames reach the negative 8-bit codes
    for n in range(30):
        assert loaded.frame_words(n) == fmt.pack_frames(codes[n : n + 1])[0]
        cls, scores = fmt.unpack_result(loaded.expected_word(n))
        assert (cls, scores) == (loaded.classes[n], loaded.scores[n].tolist())


def _corrupt(build, folder, layer=1):
    """A copy of ``build`` whose Verilog has one flipped weight bit; its IR stays right.

    Picks a bit that changes the layer's output on the frames verify will use, so the bench
    must name the neuron.
    """
    shutil.copytree(build.folder, folder, ignore=shutil.ignore_patterns("sim_*"))
    copy = load_build(folder)
    x = random_inputs(copy.net.input, 100, seed=0)  # what `verify --vectors 100` draws
    before = golden.layer_outputs(copy.net, x)[layer + 1]
    weights = copy.net.layers[layer].weights
    for neuron, i in np.ndindex(*weights.shape):
        weights[neuron, i] ^= 1
        if (golden.layer_outputs(copy.net, x)[layer + 1] != before).any():
            break
        weights[neuron, i] ^= 1
    copy.verilog.write_text(to_verilog(copy.accelerator(), copy.top))
    return neuron


def test_flipped_weight_is_caught_and_localised(builds, tmp_path, capsys):
    folder = tmp_path / "bad"
    neuron = _corrupt(builds["in1"], folder)
    args = ["verify", str(folder), "--sim", "icarus", "--vectors", "100", "--bench", "cocotb"]
    assert main(args) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    bad = [line for line in lines if line.startswith("MISMATCH")]
    assert bad and "layer 1 (" in bad[0] and f"neuron(s) {neuron} " in bad[0]
    matched, total = lines[-1].removesuffix(" frames match").split("/")
    assert int(matched) < int(total) == 100
    report = json.loads((folder / "sim_icarus" / "run" / "mismatch.json").read_text())
    assert report["stream"]["layer"] == 1 and report["stream"]["neurons"] == [neuron]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reset_mid_frame(narrow_build, seed):
    assert narrow_build.report["interface"]["frame_words"] == 4
    vectors = make_vectors(narrow_build, frames=40, seed=seed)
    result = runner.simulate(
        narrow_build,
        vectors,
        simulator="icarus",
        in_gap=0.2,
        out_gap=0.2,
        seed=seed,
        tests=("reset",),
    )
    assert result.ok, result.mismatches
    reset = result.tests["reset"]
    assert reset["words_before_reset"] % 4 and reset["matched"] == reset["frames"] > 0


@pytest.mark.slow
def test_reset_mid_frame_verilator(builds):
    vectors = make_vectors(builds["in8"], frames=40, seed=5)
    result = runner.simulate(builds["in8"], vectors, seed=5, tests=("reset",))
    assert result.ok and result.tests["reset"]["matched"] == 24


def test_cli_last_line_and_inputs(builds, tmp_path, capsys):
    build = builds["in1"]
    x = np.random.default_rng(0).random((12, *build.net.input.shape), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    args = ["verify", str(build.folder), "--sim", "icarus", "--inputs", str(tmp_path / "x.npy")]
    assert main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "12/12 frames match"
    assert any(line.startswith("cycles per frame: ") for line in out)
    assert main([*args, "--vectors", "5", "--in-gap", "0", "--out-gap", "0"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "5/5 frames match"


def test_cli_compiles_an_onnx_with_waves(tmp_path, capsys):
    out = tmp_path / "build"
    args = ["verify", str(MODELS["in1"]), "--sim", "icarus", "--vectors", "4", "--waves"]
    assert main([*args, "-o", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "4/4 frames match"
    vcd = out / "sim_icarus_waves" / "run" / "waves.vcd"
    assert f"waves: {vcd}" in lines and vcd.read_text(errors="ignore").startswith("$date")


def test_cli_errors_are_one_line(builds, tmp_path, capsys, monkeypatch):
    x = np.zeros((3, 5), np.float32)
    np.save(tmp_path / "x.npy", x)
    folder = str(builds["in1"].folder)
    assert main(["verify", folder, "--sim", "icarus", "--inputs", str(tmp_path / "x.npy")]) == 2
    assert "shape (3, 5)" in capsys.readouterr().err
    assert main(["verify", folder, "--sim", "icarus", "--in-gap", "1"]) == 2
    assert "probability" in capsys.readouterr().err
    monkeypatch.setattr(runner.shutil, "which", lambda _name: None)
    assert main(["verify", folder, "--sim", "icarus"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "apt-get install iverilog" in err


def test_results_in_narrow_output_words_on_icarus(tmp_path):
    """`--out-word 16`: each 84-bit result leaves in 6 words; every bit still checked."""
    build = compile_model(MODELS["in8"], tmp_path / "b", out_beat=16)
    assert build.report["interface"]["out_beats"] == 6
    vectors = make_vectors(build, frames=30, seed=6)
    result = runner.simulate(build, vectors, simulator="icarus", in_gap=0.3, out_gap=0.3, seed=6)
    _check(result, 30)


@pytest.mark.parametrize(
    ("simulator", "in_word", "board"),
    [
        pytest.param("verilator", None, None, marks=pytest.mark.slow),
        ("icarus", None, None),
        ("icarus", 8, None),
        pytest.param("verilator", None, "ulx3s-85f", marks=pytest.mark.slow),
        ("icarus", None, "ulx3s-85f"),
    ],
)
def test_padded_simd_on_both_simulators(tmp_path, simulator, in_word, board):
    """SIMD 12 and 10 do not divide the 64 inputs: the host sends six 12-bit words, the
    last zero-padded (or 8-bit words, which a Gearbox repacks so), and the hidden layer's
    converter pads the 64-bit vector to 70 bits: read in place, or for the ULX3S (read
    registers, 125 MHz) cut by a registered Downsizer, 7 pieces being too many for one
    LUT. Every output bit still matches golden under random backpressure."""
    folding = {
        "0": {"pe": 4, "simd": 12},
        "1": {"pe": 8, "simd": 10},
        "2": {"pe": 2, "simd": 64},
        "3": {"pe": 5, "simd": 16},
    }
    (tmp_path / "fold.json").write_text(json.dumps(folding))
    build = compile_model(
        MODELS["in1"],
        tmp_path / "b",
        folding=str(tmp_path / "fold.json"),
        in_word=in_word,
        board=board,
    )
    assert build.read_register == (board is not None)
    assert [layer["sf"] for layer in build.report["layers"]][:2] == [6, 7]
    assert build.report["interface"]["frame_words"] == (6 if in_word is None else 8)
    vectors = make_vectors(build, frames=40, seed=9)
    result = runner.simulate(build, vectors, simulator=simulator, in_gap=0.3, out_gap=0.4, seed=9)
    _check(result, 40)


@pytest.mark.parametrize("simulator", [pytest.param("verilator", marks=pytest.mark.slow), "icarus"])
def test_read_register_of_an_ecp5_build_on_both_simulators(tmp_path, simulator):
    """A build for the ULX3S registers every MVTU's memory reads (an ECP5 block RAM's
    read is slow without its output register), and its layers of 16 PEs (16x64 16x64
    16x64 5x32) copy their input word, one copy per 8 PEs: the Verilog it writes still
    matches golden bit for bit under random backpressure, 4 + 3 cycles later, and 4 more
    for its argmax tree's 4 levels, each compared a cycle before it chooses. Their
    weight ROMs (1,024 bits x 4 words, in logic) are sliced by copy, each slice read at
    its own copy of the address."""
    build = compile_model(MODELS["in8"], tmp_path / "b", max_lanes=1024, board="ulx3s-85f")
    plain = compile_model(MODELS["in8"], tmp_path / "p", max_lanes=1024)
    assert build.read_register and not plain.read_register
    assert [layer["pe"] for layer in build.report["layers"]] == [16, 16, 16, 5]
    assert [stage.weight_slices for stage in build.accelerator().stages] == [2, 2, 2, 1]
    assert build.late_slices == []  # the ULX3S has blocks for them
    assert build.report["latency_cycles"] == plain.report["latency_cycles"] + 4 + 3 + 4
    vectors = make_vectors(build, frames=30, seed=4)
    result = runner.simulate(build, vectors, simulator=simulator, in_gap=0.3, out_gap=0.4, seed=4)
    _check(result, 30)


@pytest.mark.parametrize("simulator", [pytest.param("verilator", marks=pytest.mark.slow), "icarus"])
def test_wired_weight_rom_slices_of_an_ecp5_build_on_both_simulators(tmp_path, simulator):
    """Digits 8-bit at 2048 lanes for the ULX3S (32x64 x3 5x64): the 32-PE layers' weight
    ROMs are 2 words deep, sliced by copy into 512-bit slices that are wires of their
    address, read at address copies two cycles late with no register after the read:
    the Verilog still matches golden bit for bit under random backpressure."""
    build = compile_model(MODELS["in8"], tmp_path / "b", max_lanes=2048, board="ulx3s-85f")
    stages = build.accelerator().stages
    assert [stage.slices_read_late for stage in stages] == [True, True, True, False]
    vectors = make_vectors(build, frames=30, seed=5)
    result = runner.simulate(build, vectors, simulator=simulator, in_gap=0.3, out_gap=0.4, seed=5)
    _check(result, 30)


@pytest.mark.parametrize("simulator", [pytest.param("verilator", marks=pytest.mark.slow), "icarus"])
def test_weight_rom_slices_read_late_on_both_simulators(tmp_path, simulator):
    """Digits 8-bit at 1024 lanes for the ULX3S (16x64 x3 5x32) with its 4-word weight ROM
    slices read late, as a build reads them where the board's blocks are full
    (``boards/late_slices.py``): address copies two cycles late, no register after the
    read. The same latency, and the Verilog matches golden bit for bit under random
    backpressure."""
    build = compile_model(MODELS["in8"], tmp_path / "b", max_lanes=1024, board="ulx3s-85f")
    latency = build.report["latency_cycles"]
    build.late_slices = [0, 1, 2]
    step_verilog(build)
    stages = build.accelerator().stages
    assert [stage.slices_read_late for stage in stages] == [True, True, True, False]
    assert [layer["weight_rom"]["depth"] for layer in build.report["layers"][:3]] == [4] * 3
    assert build.report["latency_cycles"] == latency
    vectors = make_vectors(build, frames=30, seed=8)
    result = runner.simulate(build, vectors, simulator=simulator, in_gap=0.3, out_gap=0.4, seed=8)
    _check(result, 30)


@pytest.mark.parametrize("simulator", [pytest.param("verilator", marks=pytest.mark.slow), "icarus"])
def test_banked_weight_rom_of_an_ecp5_build_on_both_simulators(tmp_path, simulator):
    """TFC's first layer folded 1x32 for the ULX3S: its weight ROM (32 bits x 1,600
    words) is four banks one DP16KD deep (512, 512, 512 and 64 words), each read into a
    register before the bank multiplexer, a cycle more than one ROM. The Verilog still
    matches golden bit for bit under random backpressure."""
    folding = {name: {"pe": 1, "simd": 32} for name in ("0", "1", "2", "3")}
    (tmp_path / "fold.json").write_text(json.dumps(folding))
    model = ROOT / "models" / "tfc_w1a1_in1_classic.onnx"
    fold = str(tmp_path / "fold.json")
    build = compile_model(model, tmp_path / "b", folding=fold, board="ulx3s-85f")
    banks = [stage.weight_banks for stage in build.accelerator().stages]
    assert banks == [4, 1, 1, 1]
    vectors = make_vectors(build, frames=20, seed=6)
    result = runner.simulate(build, vectors, simulator=simulator, in_gap=0.3, out_gap=0.4, seed=6)
    _check(result, 20)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_two_levels_of_bank_multiplexers_on_both_simulators(tmp_path, simulator):
    """SFC's first layer folded 1x32 for the ULX3S: its weight ROM (32 bits x 6,400
    words) is 13 banks of 512 words, more than one multiplexer takes: groups of 8 and 5
    banks are each chosen into a register, then the group, two cycles more than one ROM.
    The Verilog matches golden bit for bit under random backpressure."""
    folding = {name: {"pe": 1, "simd": 32} for name in ("0", "1", "2")} | {
        "3": {"pe": 1, "simd": 16}
    }
    (tmp_path / "fold.json").write_text(json.dumps(folding))
    model = ROOT / "models" / "sfc_w1a1_in1_classic.onnx"
    build = compile_model(
        model, tmp_path / "b", folding=str(tmp_path / "fold.json"), board="ulx3s-85f"
    )
    stages = build.accelerator().stages
    assert [stage.weight_banks for stage in stages] == [13, 4, 4, 1]
    assert [stage.read_stages for stage in stages] == [1 + 2, 1 + 1, 1 + 1, 1]
    vectors = make_vectors(build, frames=6, seed=8)
    result = runner.simulate(build, vectors, simulator=simulator, in_gap=0.3, out_gap=0.4, seed=8)
    _check(result, 6)
