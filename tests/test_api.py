"""The Python API against the CLI: the same builds, results and one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import bnnhw
from bnnhw.cli.main import main

from conftest import ROOT

DIGITS = ROOT / "models" / "digits_w1a1_in1_classic.onnx"
# a 1-bit-input MLP and a padded 8-bit-input CNN (each compile takes seconds: not all 19)
MODELS = sorted((ROOT / "models").glob("*.onnx"))  # every bundled model


def cli(capsys, *argv) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def cli_error(capsys, *argv) -> str:
    """The message of a refused command: ``bnnhw: error: MESSAGE``, exit status 2."""
    status, _, err = cli(capsys, *argv)
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bnnhw: error: "), err
    return lines[0].removeprefix("bnnhw: error: ")


def api_error(call, *args, **kwargs) -> str:
    with pytest.raises(bnnhw.BnnhwError) as info:
        call(*args, **kwargs)
    return str(info.value)


def _report(folder: Path) -> dict:
    report = json.loads((folder / "report.json").read_text())
    report.pop("seconds")
    return report


@pytest.mark.parametrize("model", MODELS, ids=[m.stem for m in MODELS])
def test_compile_gives_the_cli_build(model, tmp_path, capsys) -> None:
    status, out, _ = cli(capsys, "compile", model, "-o", tmp_path / "cli", "--max-lanes", 32)
    assert status == 0
    result = bnnhw.compile(model, tmp_path / "api", max_lanes=32)
    cli_report = _report(tmp_path / "cli")
    assert _report(tmp_path / "api") == cli_report
    assert result.verilog.read_text() == (tmp_path / "cli" / result.verilog.name).read_text()
    # the typed result is the report, field by field
    assert result.initiation_interval == cli_report["initiation_interval"]
    assert result.latency_cycles == cli_report["latency_cycles"]
    assert [la.name for la in result.layers] == [la["name"] for la in cli_report["layers"]]
    assert result.folding == tuple((la["pe"], la["simd"]) for la in cli_report["layers"])
    assert result.port_format.interface() == cli_report["interface"]
    assert f"initiation interval {result.initiation_interval} cycles/frame" in out


def test_compile_of_an_ir_gives_the_same_verilog_as_the_file(tmp_path) -> None:
    from_file = bnnhw.compile(DIGITS, tmp_path / "file", max_lanes=16)
    from_ir = bnnhw.compile(bnnhw.load(DIGITS), tmp_path / "ir", max_lanes=16)
    assert from_ir.verilog.read_bytes() == from_file.verilog.read_bytes()
    assert from_ir.folding == from_file.folding
    # a folder compiled from an IR is a build folder like any other
    assert bnnhw.load(tmp_path / "ir" / "ir").layers[0].pe == from_file.folding[0][0]


def test_verify_gives_the_cli_verdict(tmp_path, capsys) -> None:
    folder = tmp_path / "digits"
    bnnhw.compile(DIGITS, folder)
    x = np.load(_digits_npy(tmp_path))
    status, out, _ = cli(
        capsys, "verify", folder, "--sim", "icarus", "--inputs", tmp_path / "x.npy"
    )
    assert status == 0
    lines = []
    check = bnnhw.verify(folder, sim="icarus", inputs=x, progress=lines.append)
    assert check.ok and check.frames == check.matched == len(x)
    assert check.summary == out.strip().splitlines()[-1] == f"{len(x)}/{len(x)} frames match"
    assert check.latency == check.build.latency_cycles  # measured = the report's
    assert f"latency: {check.latency} cycles" in out
    assert lines[-1] == check.summary


def _digits_npy(tmp_path: Path) -> Path:
    from bnnhw import datasets

    _, _, x, _ = datasets.load_digits_split()
    np.save(tmp_path / "x.npy", x[:24])
    return tmp_path / "x.npy"


def test_bad_inputs_give_the_cli_messages(tmp_path, capsys) -> None:
    """Each case: the CLI's refusal, then the API call with the same arguments."""
    folder = tmp_path / "built"
    bnnhw.compile(DIGITS, folder)
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "notonnx.onnx").write_text("plain text")
    missing = tmp_path / "missing.onnx"
    cases = [
        (
            ["compile", missing, "-o", tmp_path / "o1"],
            bnnhw.compile,
            (missing, tmp_path / "o1"),
            {},
        ),
        (["compile", DIGITS, "-o", folder], bnnhw.compile, (DIGITS, folder), {}),
        (
            ["compile", DIGITS, "-o", tmp_path / "file.txt"],
            bnnhw.compile,
            (DIGITS, tmp_path / "file.txt"),
            {},
        ),
        (
            ["compile", DIGITS, "-o", tmp_path / "o2", "--max-lanes", "0"],
            bnnhw.compile,
            (DIGITS, tmp_path / "o2"),
            {"max_lanes": 0},
        ),
        (
            ["compile", DIGITS, "-o", tmp_path / "o3", "--folding", tmp_path / "nofold.json"],
            bnnhw.compile,
            (DIGITS, tmp_path / "o3"),
            {"folding": tmp_path / "nofold.json"},
        ),
        (
            ["compile", DIGITS, "-o", tmp_path / "o4", "--in-word", "3"],
            bnnhw.compile,
            (DIGITS, tmp_path / "o4"),
            {"in_word": 3},
        ),
        (
            ["compile", tmp_path / "notonnx.onnx", "-o", tmp_path / "o5"],
            bnnhw.compile,
            (tmp_path / "notonnx.onnx", tmp_path / "o5"),
            {},
        ),
        (["compile", "", "-o", tmp_path / "o6"], bnnhw.compile, ("", tmp_path / "o6"), {}),
        (["verify", folder, "--vectors", "0"], bnnhw.verify, (folder,), {"vectors": 0}),
        (["verify", folder, "--in-gap", "1.5"], bnnhw.verify, (folder,), {"in_gap": 1.5}),
        (["verify", tmp_path, "--sim", "icarus"], bnnhw.verify, (tmp_path,), {"sim": "icarus"}),
        (
            ["verify", folder, "--inputs", missing],
            bnnhw.verify,
            (folder,),
            {"inputs": missing},
        ),
        (
            ["build", folder, "--board", "icebreaker", "-o", tmp_path / "else"],
            bnnhw.build,
            (folder, tmp_path / "else"),
            {"board": "icebreaker"},
        ),
        (
            ["build", folder, "--board", "icebreaker", "-o", folder, "--bench-frames", "300"],
            bnnhw.build,
            (folder,),
            {"board": "icebreaker", "bench_frames": 300},
        ),
        (
            ["build", DIGITS, "--board", "icebreaker", "-o", tmp_path / "b", "--max-lanes", "-3"],
            bnnhw.build,
            (DIGITS, tmp_path / "b"),
            {"board": "icebreaker", "max_lanes": -3},
        ),
        (
            ["asic", folder, "-o", folder, "--activity-frames", "-1"],
            bnnhw.asic,
            (folder,),
            {"activity_frames": -1},
        ),
        (
            ["sweep", DIGITS, "--board", "icebreaker", "-o", tmp_path / "s1", "--points", "0"],
            bnnhw.sweep,
            (DIGITS, tmp_path / "s1"),
            {"board": "icebreaker", "points": 0},
        ),
        (
            ["sweep", DIGITS, "--board", "icebreaker", "-o", tmp_path / "s2", "--scheduler", "x"],
            bnnhw.sweep,
            (DIGITS, tmp_path / "s2"),
            {"board": "icebreaker", "scheduler": "x"},
        ),
        (
            ["sweep", missing, "--board", "icebreaker", "-o", tmp_path / "s3"],
            bnnhw.sweep,
            (missing, tmp_path / "s3"),
            {"board": "icebreaker"},
        ),
    ]
    for argv, call, args, kwargs in cases:
        expected = cli_error(capsys, *argv)
        assert api_error(call, *args, **kwargs) == expected, argv
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "built",
        "file.txt",
        "notonnx.onnx",
    ]  # nothing left behind by a refused call


def test_verify_of_an_ir_refuses_a_folder_that_is_not_a_build(tmp_path) -> None:
    """An IR is compiled into ``out_dir`` first: never into a folder of the user's files."""
    (tmp_path / "mine.txt").write_text("the user's")
    message = api_error(bnnhw.verify, bnnhw.load(DIGITS), out_dir=tmp_path)
    assert message == f"{tmp_path} is not empty and not a bnnhw build folder"
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def _untimed(line: str) -> str:
    return re.sub(r"\d+\.\d+ s\b", "T s", line)


def _fake_board_report(build, board, *, baud=None, progress=None, fmax=40.0) -> dict:
    """What ``synthesize_fastest`` returns, without running Yosys and nextpnr (minutes)."""
    bitstream = Path(build.folder) / "gateware" / "top.bin"
    bitstream.parent.mkdir(parents=True, exist_ok=True)
    bitstream.write_bytes(b"\0")
    if progress:
        progress("  place and route (nextpnr) ... (1 s)")
    return {
        "board": board.name,
        "bitstream": str(bitstream),
        "luts": 1800,
        "ffs": 1500,
        "logic_cells": 2300,
        "logic_cells_available": 5280,
        "bram": 9,
        "bram_available": 30,
        "spram": 0,
        "fmax_mhz": fmax,
        "clock_mhz": 30.0,
        "pll": None,
        "clock_search": [{"clock_mhz": 30.0, "fmax_mhz": fmax, "met": fmax >= 30}],
        "baud": baud or board.default_baud,
        "accelerator_frames_per_s": 1_000_000,
        "accelerator_frames_per_s_at_fmax": 1_333_333,
        "initiation_interval_cycles": 30,
        "latency_cycles": 300,
        "latency_us": 10.0,
        "uart_frames_per_s": 900.0,
        "uart_bytes_per_frame": 100,
        "xnor_lanes": 52,
        "lut4_per_lane": 34.6,
        "ebr_bandwidth_share": 0.1,
    }


def test_build_gives_the_cli_report_and_errors(tmp_path, capsys, monkeypatch) -> None:
    """Synthesis faked (it takes minutes): the same lines, report and BoardError."""
    from bnnhw.boards import clock_search

    fmax = 40.0

    def fake(build, board, *, baud=None, progress=None):
        return _fake_board_report(build, board, baud=baud, progress=progress, fmax=fmax)

    monkeypatch.setattr(clock_search, "synthesize_fastest", fake)
    cli_dir, api_dir = tmp_path / "cli", tmp_path / "api"
    argv = ["build", DIGITS, "--board", "icebreaker", "--max-lanes", "16", "-o"]
    status, out, _ = cli(capsys, *argv, cli_dir)
    assert status == 0
    lines: list[str] = []
    kwargs = {"board": "icebreaker", "progress": lines.append}
    board = bnnhw.build(DIGITS, api_dir, max_lanes=16, **kwargs)
    assert (board.fmax_mhz, board.logic_cells, board.bram) == (fmax, 2300, 9)
    assert board.timing_met and board.bitstream.is_file()
    assert board.build.folding == ((1, 16), (1, 16), (1, 16), (1, 3))  # 64 inputs in 22 words of 3
    # every line the CLI printed, in order (step times aside), with the API's folder names
    printed = out.replace(str(cli_dir), str(api_dir)).splitlines()
    assert [_untimed(line) for line in printed] == [_untimed(line) for line in lines]
    assert len(lines) >= 6
    cli_report = json.dumps(_report(cli_dir)).replace(str(cli_dir), str(api_dir))
    assert _report(api_dir) == json.loads(cli_report)
    # timing missed, rebuilding the same folders: the same BoardError after the same report
    fmax = 20.0
    status, _, err = cli(capsys, "build", cli_dir, "--board", "icebreaker", "-o", cli_dir)
    message = api_error(bnnhw.build, api_dir, **kwargs)
    assert status == 2 and "timing missed" in message
    assert err.strip() == f"bnnhw: error: {message}"


def test_asic_result_is_the_report(tmp_path) -> None:
    """A tiny 16-8-4 MLP through Yosys, OpenSTA and the gate-level simulation (seconds)."""
    from bnnhw.asic.report import summary

    from qonnx_graphs import LayerSpec, MLPSpec, build_model, save_model

    rng = np.random.default_rng(3)
    layers = [
        LayerSpec(rng.normal(size=(out, inp)).astype(np.float32), np.float32(1.0))
        for out, inp in ((8, 16), (4, 8))
    ]
    save_model(build_model(MLPSpec(layers)), tmp_path / "tiny.onnx")
    lines: list[str] = []
    result = bnnhw.asic(
        tmp_path / "tiny.onnx",
        tmp_path / "build",
        max_lanes=8,
        activity_frames=2,
        timed_frames=2,
        progress=lines.append,
    )
    full = json.loads((tmp_path / "build" / "report.json").read_text())
    report = full["asic"]
    assert result.ok  # the gate-level netlist agreed with the golden model
    assert result.netlist.is_file()
    assert (result.cells, result.area_um2, result.fmax_mhz) == (
        report["cells"],
        report["area_um2"],
        report["timing"]["fmax_mhz"],
    )
    assert result.energy_per_frame_nj == report["energy"]["energy_per_frame_nj"] > 0
    assert result.build.folding == tuple((la["pe"], la["simd"]) for la in full["layers"])
    assert summary(report).splitlines()[0] in lines  # what the CLI prints


def test_sweep_gives_the_cli_sweep(tmp_path, capsys) -> None:
    """A dry-run sweep (the estimate stands in for synthesis) on a 1-worker LocalCluster."""
    argv = ["sweep", DIGITS, "--board", "icebreaker", "--points", "6", "--estimate-only"]
    status, out, _ = cli(capsys, *argv, "--workers", "1", "-o", tmp_path / "cli")
    assert status == 0 and "6 built, 0 failed" in out
    lines: list[str] = []
    result = bnnhw.sweep(
        DIGITS,
        tmp_path / "api",
        board="icebreaker",
        points=6,
        estimate_only=True,
        workers=1,
        progress=lines.append,
    )
    printed = out.replace(str(tmp_path / "cli"), str(tmp_path / "api"))
    assert [_untimed(line) for line in printed.splitlines()] == [_untimed(line) for line in lines]
    recorded = json.loads((tmp_path / "cli" / "sweep.json").read_text())["points"]
    varying = ("seconds", "cached", "worker")
    assert [{k: v for k, v in r.items() if k not in varying} for r in recorded] == [
        {k: v for k, v in p.record.items() if k not in varying} for p in result.points
    ]
    assert len(result.points) == 6 and not result.failed
    assert result.folder == tmp_path / "api" and (result.folder / "pareto.png").is_file()
    # the point marked as the pick is the folding `bnnhw compile --board` chooses
    picked = bnnhw.compile(DIGITS, tmp_path / "fold", board="icebreaker").folding
    assert result.picked.folding == " ".join(f"{pe}x{simd}" for pe, simd in picked)
    front = {r["folding"] for r in recorded if r["pareto"]}
    assert {p.folding for p in result.pareto} == front and front
    cells = [p.logic_cells for p in result.pareto]
    assert cells == sorted(cells)
