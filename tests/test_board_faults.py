"""The host link against a fake board on a pseudo-terminal: bytes dropped, corrupted and
delayed, a board that goes silent mid-batch, ``bnnhw run --resume``, and ``--bench``.

The board is ``PtyBoard``: a thread on the pty's master side that parses the byte stream
as the bitstream's state machine does and answers from the golden model; the oracle for
every class and score is ``golden.predict`` / ``golden.scores`` on the inputs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bnnhw import golden
from bnnhw import link_protocol as lp
from bnnhw.boards import Link
from bnnhw.boards.golden_board import GoldenBoard, PtyBoard
from bnnhw.build import compile_model, load_build
from bnnhw.cli.main import main

from conftest import ROOT
from ir_networks import random_frames

DIGITS = ROOT / "models" / "digits_w1a1_in1_classic.onnx"
BAUD = 19_200  # on a pty only the host's resync pause depends on it: 2 x 640 / 19,200 s


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    compile_model(DIGITS, folder, max_lanes=16)
    report = json.loads((folder / "report.json").read_text())
    report["board"] = {"clock_mhz": 12.0, "baud": BAUD, "accelerator_frames_per_s": 46_875}
    (folder / "report.json").write_text(json.dumps(report))
    return load_build(folder)


@pytest.fixture
def board_factory():
    boards = []

    def make(build, **faults):
        boards.append(PtyBoard(build, **faults))
        return boards[-1]

    yield make
    for board in boards:
        board.stop()


def test_link_survives_dropped_corrupted_and_delayed_bytes(build, board_factory):
    x = random_frames(np.random.default_rng(11), build.net.input, 24)
    board = board_factory(build, seed=3, drop=0.01, corrupt=0.01, delay=0.02)
    with Link(board.port, build, baud=BAUD, timeout=0.3, retries=10) as link:
        classes = link.classify(x)
        assert np.array_equal(classes, golden.predict(build.net, x))
        assert np.array_equal(link.scores, golden.scores(build.net, x))
    assert link.errors  # faults were injected and recovered from


def test_a_silent_board_stops_the_run_and_resume_finishes_it(
    build, board_factory, tmp_path, capsys
):
    x = random_frames(np.random.default_rng(12), build.net.input, 9)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "classes.npy"
    argv = ["run", str(build.folder), str(tmp_path / "x.npy"), "-o", str(out)]
    argv += ["--timeout", "0.2", "--baud", str(BAUD)]
    dying = board_factory(build, answers=5)
    assert main([*argv, "--port", dying.port]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("bnnhw: error: ")
    assert "frame 5 got no answer; last frame acknowledged: frame 4" in err
    assert "no response within 0.2 s" in err and "--resume" in err
    expected = golden.predict(build.net, x)
    assert np.array_equal(np.load(out), expected[:5])  # the results so far are written

    assert main([*argv, "--port", dying.port]) == 2  # the file exists: no silent overwrite
    assert "--force" in capsys.readouterr().err

    healthy = board_factory(build)
    assert main([*argv, "--port", healthy.port, "--resume"]) == 0
    assert np.array_equal(np.load(out), expected)
    assert len(healthy.replies) == 4  # frames 5 to 8 only
    printed = capsys.readouterr().out
    assert "frame 5: class" in printed and "frame 4: class" not in printed


def test_bench_through_the_pty(build, board_factory, capsys):
    x = random_frames(np.random.default_rng(13), build.net.input, 5)
    board = board_factory(build, seed=4, corrupt=0.002)
    with Link(board.port, build, baud=BAUD, timeout=0.3, retries=6) as link:
        result = link.bench(x, repeats=7)
    assert (result.frames, result.repeats) == (5, 7) and board.benches[-1] == (5, 7)
    # the fake board answers one frame per initiation interval (256 cycles at 12 MHz)
    assert result.checksum_ok and result.frames_per_s == pytest.approx(12e6 / 256)


def test_cli_bench_prints_frames_per_s_and_refuses_a_wrong_checksum(
    build, tmp_path, monkeypatch, capsys
):
    import serial

    x = random_frames(np.random.default_rng(14), build.net.input, 3)
    np.save(tmp_path / "x.npy", x)
    argv = ["run", str(build.folder), str(tmp_path / "x.npy"), "--port", "fake", "--bench"]
    monkeypatch.setattr(serial, "serial_for_url", lambda *a, **k: GoldenBoard(build))
    assert main([*argv, "--repeats", "100"]) == 0
    out = capsys.readouterr().out
    assert "3 frames x 100 repeats" in out and "46,875 frames/s measured on the board" in out
    assert "matches the golden model" in out

    class WrongBoard(GoldenBoard):
        def result(self, payload):
            return super().result(payload) ^ 1  # one result bit off

    monkeypatch.setattr(serial, "serial_for_url", lambda *a, **k: WrongBoard(build))
    assert main(argv) == 2
    assert "the board computes different results" in capsys.readouterr().err


def test_bench_requests_the_board_cannot_hold_are_refused(build):
    fmt = lp.LinkFormat.for_port(build.port_format())
    payload = bytes(fmt.frame_bytes)
    assert fmt.decode_bench(fmt.encode_bench(1, [payload] * 3, 2), 3)[1] == lp.OK
    assert fmt.decode_bench(fmt.encode_bench(1, [payload] * 4, 2), 3)[1] == lp.BAD_LENGTH
    request = bytearray(fmt.encode_bench(1, [payload], 1))
    request[3:5] = b"\x00\x00"  # 0 repeats
    assert fmt.decode_bench(bytes(request), 3)[1] == lp.BAD_LENGTH
    request = bytearray(fmt.encode_bench(1, [payload], 1))
    request[6] ^= 0x40
    assert fmt.decode_bench(bytes(request), 3)[1] == lp.BAD_CHECKSUM
