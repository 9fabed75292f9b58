"""Board targets, flashing with a stub programmer, the host Link against a golden board, the
CLI verbs, and (slow) real bitstreams through YoWASP."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.vendor import LatticeECP5Platform, LatticeICE40Platform

from bnnhw import golden
from bnnhw.boards import BOARDS, BoardError, Link, flash, get_board
from bnnhw.boards.flash import flash_command
from bnnhw.boards.link import GoldenBoard
from bnnhw.boards.synth import check_report, parse_reports
from bnnhw.build import compile_model
from bnnhw.errors import BnnhwError, InputError
from bnnhw.rtl_gen.uart import baud_divisor

from conftest import ROOT
from ir_networks import random_frames

DIGITS = ROOT / "models" / "digits_w1a1_in1_classic.onnx"


def test_board_data_is_consistent():
    assert {"icebreaker", "ulx3s-85f", "icesugar", "icestick"} <= set(BOARDS)
    for board in BOARDS.values():
        platform = board.platform_class()()
        vendor = {"ice40": LatticeICE40Platform, "ecp5": LatticeECP5Platform}[board.family]
        assert isinstance(platform, vendor)  # the family the PLL and memory code assume
        platform.lookup(*board.uart)  # the UART resource exists
        assert baud_divisor(board.clock_hz, board.default_baud) >= 4
        assert board.programmer_env in ("ICEPROG", "OPENFPGALOADER")
    with pytest.raises(InputError, match="supported: icebreaker"):
        get_board("arty")


@pytest.fixture(scope="module")
def digits_build(tmp_path_factory):
    return compile_model(DIGITS, tmp_path_factory.mktemp("digits"), max_lanes=16)


def _stub(tmp_path: Path, status: int) -> Path:
    stub = tmp_path / "stub_programmer"
    stub.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(tmp_path / 'args.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"print('stub: no device found' if {status} else 'stub: done')\nsys.exit({status})\n"
    )
    stub.chmod(0o755)
    return stub


@pytest.mark.parametrize("name", ["icebreaker", "ulx3s-85f"])
def test_flash_runs_the_programmer_with_the_bitstream(tmp_path, monkeypatch, name):
    board = get_board(name)
    (tmp_path / "gateware").mkdir()
    (tmp_path / "gateware" / board.bitstream).write_bytes(b"bits")
    monkeypatch.setenv(board.programmer_env, str(_stub(tmp_path, 0)))
    printed = []
    command = flash(tmp_path, board, echo=printed.append)
    args = json.loads((tmp_path / "args.json").read_text())
    assert args == command[1:] and args[-1] == str(tmp_path / "gateware" / board.bitstream)
    if name == "ulx3s-85f":
        assert args[:2] == ["-b", "ulx3s"]
    assert printed[0].startswith("running: ") and str(tmp_path) in printed[0]


def test_flash_without_a_board_says_so(tmp_path, monkeypatch):
    board = get_board("icebreaker")
    (tmp_path / "gateware").mkdir()
    (tmp_path / "gateware" / "top.bin").write_bytes(b"bits")
    monkeypatch.setenv("ICEPROG", str(_stub(tmp_path, 2)))
    with pytest.raises(BoardError, match=r"status 2 .*no device found.*plugged in"):
        flash(tmp_path, board, echo=lambda s: None)
    monkeypatch.setenv("ICEPROG", str(tmp_path / "missing"))
    with pytest.raises(InputError, match="not found on PATH"):
        flash(tmp_path, board)
    with pytest.raises(InputError, match="no ulx3s-85f bitstream"):
        flash_command(tmp_path, get_board("ulx3s-85f"))


def test_link_classifies_and_resends_corrupted_frames(digits_build):
    x = random_frames(np.random.default_rng(3), digits_build.net.input, 12)
    board = GoldenBoard(digits_build, corrupt_every=5)
    with Link("fake", digits_build, serial=board, baud=10_000_000) as link:
        classes = link.classify(x)
        assert np.array_equal(classes, golden.predict(digits_build.net, x))
        assert np.array_equal(link.scores, golden.scores(digits_build.net, x))
        assert len(link.errors) == 2 and "bad checksum" in link.errors[0]
        assert link.frames_per_s > 0


def test_link_refuses_a_board_that_never_answers_right(digits_build):
    class Mute(GoldenBoard):
        def write(self, data):
            self.pending = b""

    x = random_frames(np.random.default_rng(4), digits_build.net.input, 1)
    with pytest.raises(BoardError, match="no response"):
        Link("fake", digits_build, serial=Mute(digits_build), baud=10_000_000).classify(x)
    board = GoldenBoard(digits_build, corrupt_every=1)
    with pytest.raises(BoardError, match=r"no valid answer after 4 tries.*bad checksum"):
        Link("fake", digits_build, serial=board, baud=10_000_000).classify(x)


def test_timing_miss_says_by_how_much():
    with pytest.raises(BoardError, match=r"Fmax 10.00 MHz is 2.00 MHz .*smaller --max-lanes"):
        check_report({"fmax_mhz": 10.0, "clock_mhz": 12.0}, get_board("icebreaker"))
    check_report({"fmax_mhz": 30.0, "clock_mhz": 12.0}, get_board("icebreaker"))


def test_a_failed_placement_reads_as_does_not_fit(tmp_path):
    from bnnhw.boards.synth import _failure
    from bnnhw.errors import DoesNotFit

    (tmp_path / "top.tim").write_text(
        "Info: Device utilisation:\nInfo: \t         ICESTORM_LC:    3816/   5280    72%\n"
        "ERROR: Unable to find legal placement for all cells, design is probably at "
        "utilisation limit.\n"
    )
    failure = _failure(tmp_path, get_board("icebreaker"))
    assert isinstance(failure, DoesNotFit) and failure.logic_cells == 3816  # for the sweeps
    message = str(failure)
    assert "does not fit: placement failed with 3816 of 5280 logic cells (72%)" in message
    assert "smaller --max-lanes" in message
    (tmp_path / "top.tim").write_text("Info: \t         ICESTORM_LC:    6000/   5280    113%\n")
    failure = _failure(tmp_path, get_board("icebreaker"))
    assert "6000 ICESTORM_LC needed, 5280 available (114%, over by 14%)" in str(failure)
    assert failure.logic_cells == 6000
    (tmp_path / "top.tim").write_text("ERROR: something else\n")  # not a size problem
    failure = _failure(tmp_path, get_board("icebreaker"))
    assert type(failure) is BoardError and "ERROR: something else" in str(failure)


def test_a_crashed_tool_is_not_blamed_on_a_signal_named_error(tmp_path):
    """A Yosys that died (a signal, no ``ERROR`` line) once read as a line of its log that
    names the UART's ``framing_error``."""
    from bnnhw.boards.synth import _failure

    (tmp_path / "top.rpt").write_text(
        "Adding SRST signal on $flatten\\uart_rx.$37 ($dff) (Q = \\uart_rx.framing_error)\n"
        "2.43.5. Executing TECHMAP pass (map to technology primitives).\n"
    )
    message = str(_failure(tmp_path, get_board("icebreaker"), -7))
    assert "framing_error" not in message
    assert "stopped with status -7 and no error line after '2.43.5. Executing TECHMAP" in message


def _board_cli(argv: list[str]) -> int:
    """The board verbs on their own parser (bnnhw/cli/main.py registers the same)."""
    import argparse

    from bnnhw.cli.board import add_parsers

    parser = argparse.ArgumentParser(prog="bnnhw")
    add_parsers(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_run_and_flash_errors(tmp_path, digits_build):
    x = random_frames(np.random.default_rng(1), digits_build.net.input, 2)
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(BoardError, match="cannot open serial port"):
        _board_cli(
            [
                "run",
                str(digits_build.folder),
                str(tmp_path / "x.npy"),
                "--port",
                str(tmp_path / "no_such_tty"),
            ]
        )
    with pytest.raises(InputError, match="no icebreaker bitstream"):
        _board_cli(["flash", str(tmp_path), "--board", "icebreaker"])


def test_cli_run_through_a_golden_board(tmp_path, digits_build, monkeypatch, capsys):
    import serial

    x = random_frames(np.random.default_rng(2), digits_build.net.input, 3)
    np.save(tmp_path / "x.npy", x)
    monkeypatch.setattr(serial, "serial_for_url", lambda *a, **k: GoldenBoard(digits_build))
    assert (
        _board_cli(
            ["run", str(digits_build.folder), str(tmp_path / "x.npy"), "--port", "fake", "--scores"]
        )
        == 0
    )
    out = capsys.readouterr().out
    for i, cls in enumerate(golden.predict(digits_build.net, x).tolist()):
        assert f"frame {i}: class {cls}" in out
    assert "frames/s measured on the host" in out


@pytest.mark.slow
@pytest.mark.parametrize(("name", "lanes"), [("icebreaker", 16), ("ulx3s-85f", 64)])
def test_synthesis_with_yowasp(tmp_path, name, lanes):
    from bnnhw.boards import synthesize

    board = get_board(name)
    build = compile_model(DIGITS, tmp_path, max_lanes=lanes)
    report = synthesize(build, board)
    assert Path(report["bitstream"]).stat().st_size > 10_000
    assert report["luts"] > 100 and report["ffs"] > 50
    assert 0 < report["logic_cells"] <= report["logic_cells_available"]
    assert report["fmax_mhz"] > board.clock_mhz
    assert report["pll"] is None and report["clock_mhz"] == board.clock_mhz
    if name == "icebreaker":  # memories Yosys would leave in logic go to EBR
        assert any(p.endswith("layer3.weights") for p in report["forced_into_block_ram"])
        assert report["bram"] > 4
        # 64-64-64-64-10 at 16 lanes (PE x SIMD 1x16, 1x16, 1x16, 1x3: the last layer's
        # 64 inputs padded to 22 words, 220 cycles): 3 x 64 x 64 + 64 x 10 = 12,928
        # weight bits per 256-cycle frame = 50.5 bits a cycle, of the 30 blocks x 16 bits
        # = 480 the UP5K reads: 10.52 %
        assert report["xnor_lanes"] == 51
        assert report["ebr_bandwidth_share"] == 0.1052
    check_report(report, board)
    assert report == {**report, **parse_reports(Path(build.folder) / "gateware", board)}
    with pytest.raises(BnnhwError):
        check_report({**report, "fmax_mhz": board.clock_mhz / 2}, board)


@pytest.mark.slow
def test_synthesis_with_a_pll_on_the_icebreaker(tmp_path):
    from bnnhw.boards import synthesize

    board = get_board("icebreaker")
    build = compile_model(DIGITS, tmp_path, max_lanes=8)
    report = synthesize(build, board, clock_mhz=15)  # digits: Fmax ~17 MHz on the UP5K
    assert report["clock_mhz"] == 15 and report["pll"] == {
        "DIVR": 0,
        "DIVF": 79,
        "DIVQ": 6,
        "FILTER_RANGE": 1,
    }
    assert report["utilisation"]["ICESTORM_PLL"]["used"] == 1
    assert report["fmax_mhz"] > 15  # nextpnr timed the PLL's output clock
    # and placed for it: the constraint found its net (it did not before ``keep``)
    log = (Path(build.folder) / "gateware" / "top.tim").read_text()
    assert "constraining clock net 'clock.clk_out' to 15.00 MHz" in log
    assert report["accelerator_frames_per_s"] == round(15e6 / report["initiation_interval_cycles"])
    check_report(report, board)


@pytest.mark.slow
def test_sfc_is_refused_on_the_ice40_before_synthesis(tmp_path):
    from bnnhw.boards import synthesize
    from bnnhw.boards.memories import BlockRamError

    build = compile_model(ROOT / "models" / "sfc_w1a1_in1_classic.onnx", tmp_path, max_lanes=16)
    with pytest.raises(BlockRamError, match=r"need 3\d\d kbit of ROM.*120 kbit of block RAM"):
        synthesize(build, get_board("icebreaker"))
    assert not (tmp_path / "gateware" / "top.rpt").exists()  # Yosys never ran
