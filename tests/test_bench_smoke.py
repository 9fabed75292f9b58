"""Every bench script runs: each one's --smoke mode as the README runs it, table printed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT


def _bench(script: str, *args: str) -> list[str]:
    """The script's stdout lines; fails with its stderr if it exits non-zero."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--smoke", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_golden_bench_covers_dense_and_conv_models():
    head, *rows = _bench("golden.py")
    assert head.split()[:2] == ["model", "layers"] and "speed-up" in head
    assert [row.split()[0] for row in rows] == [
        "digits_w1a1_in1_classic",
        "cnv_digits_pad_w1a1_in8_classic",
    ]
    assert all(row.endswith("x") for row in rows)


@pytest.mark.slow  # an RTL simulator run
def test_sim_bench_runs_on_icarus():
    head, row = _bench("sim.py")
    assert "frames/s" in head and "fast cycles/s" in head and "cycles/frame" in head
    assert row.split()[:2] == ["digits_w1a1_in1_classic", "icarus"]


def test_boards_bench_prints_a_refusal_without_synthesis(tmp_path):
    lines = _bench("boards.py", "-o", str(tmp_path))
    table = [line for line in lines if line.startswith("|")]
    assert table[0].startswith("| model | board |") and len(table) == 3
    assert table[2].startswith("| sfc_w1a1_in1_classic | icestick |")
    assert "kbit of block RAM" in table[2]
    assert (tmp_path / "boards.md").read_text().splitlines() == table


@pytest.mark.slow  # six small syntheses and place-and-routes
def test_lanes_bench_measures_the_popcount_slope():
    lines = _bench("lanes.py")
    rows = [line.split("|")[1:-1] for line in lines if line.startswith("| ")]
    kinds = [row[0].strip() for row in rows]
    lean = "popcount: xnor_popcount, register every level"
    before = "popcount before: XNOR terms, register every 2nd level"
    assert kinds[:7] == ["design"] + ["MVTU (PE 1, ROM in EBR)"] * 2 + [lean] * 2 + [before] * 2
    slopes = {row[0].strip(): float(row[1]) for row in rows if len(row) == 2 and "." in row[1]}
    # the budget for one lane on iCE40 (measured 2.47 between 16 and 32 lanes)
    assert slopes[lean] <= 2.5


def test_qor_points_take_a_clock_and_a_folding_file():
    """``--points MODEL:BOARD[@MHZ][:FOLDING]``, each part optional after the board."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("qor", ROOT / "bench" / "qor.py")
    qor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(qor)
    assert qor._point("tfc:icebreaker") == ("tfc", "icebreaker", None, None)
    assert qor._point("cnv:ulx3s-85f@115") == ("cnv", "ulx3s-85f", "115", None)
    assert qor._point("cnv:ulx3s-85f@115:f.json") == ("cnv", "ulx3s-85f", "115", "f.json")
    assert qor._point("cnv:ulx3s-85f:f.json") == ("cnv", "ulx3s-85f", None, "f.json")


@pytest.mark.slow  # one synthesis and place-and-route
def test_qor_bench_builds_a_point_and_plots_it(tmp_path):
    lines = _bench("qor.py", "-o", str(tmp_path), "--scratch", str(tmp_path / "builds"))
    row = next(line for line in lines if line.startswith("| digits_w1a1_in1_classic |"))
    cells = [cell.strip() for cell in row.split("|")[1:-1]]
    assert cells[1] == "icebreaker" and cells[-1] == "ok"
    # digits folded for the iCEBreaker (boards/fit.py): PE x SIMD 8x16 for the three
    # 64-input layers (64 / 8 neuron groups x 64 / 16 words = 32 cycles) and 5x4 for the
    # 10-class layer (10 / 5 x 64 / 4 = 32 cycles, the interval): 3 x 128 + 20 = 404 lanes
    assert cells[2] == "8x16 8x16 8x16 5x4"
    assert cells[3] == "404" and cells[9] == "32"
    assert (tmp_path / "qor.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "qor.json").read_text())[0]["clock_mhz"] == 12


@pytest.mark.slow  # two small syntheses
def test_windows_bench_sets_the_row_buffer_beside_the_registers():
    """A 3x3 window over 8 channels, SIMD 4: the register window holds 72 bits twice (the
    window and its output register) where the row buffer holds a SIMD word a stage."""
    lines = _bench("windows.py")
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines if line.startswith("| ")]
    assert rows[0][:5] == ["layer", "map (C x H x W), kernel", "bits", "SIMD", "window unit"]
    registers, buffer = rows[1], rows[2]
    assert (registers[4], buffer[4]) == ("registers", "row buffer")
    flip_flops = int(registers[6].replace(",", "")), int(buffer[6].replace(",", ""))
    assert flip_flops[0] >= 2 * 72 > flip_flops[1]
