"""The board top's Verilog on Icarus (cocotb 2), driven only through its UART pins.

The requests and the expected responses come from the same link-protocol encoder the host
uses and from the golden model; one request has a corrupted payload byte and must be
answered BAD_CHECKSUM (never a class). Last, a bench request: the board replays the frames
from block RAM and must return the golden results' CRC and a cycle count of one initiation
interval per result.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import bnnhw
from bnnhw import golden
from bnnhw import link_protocol as lp
from bnnhw.boards.link import golden_word
from bnnhw.passes.folding import fold_auto
from bnnhw.rtl_gen import to_verilog
from bnnhw.rtl_gen.board_top import BoardTop

from conftest import ROOT
from ir_networks import random_frames

TESTS = Path(__file__).resolve().parent


def _plan(net, top: BoardTop, x) -> dict:
    fmt, link = top.port_format, top.link_format
    codes = golden.encode_inputs(net.input, x)
    requests, responses = [], []
    for counter, (words, row) in enumerate(zip(fmt.pack_frames(codes), codes, strict=True)):
        request = link.encode_request(counter, link.frame_payload(words, fmt.in_word))
        if counter == 1:
            bad = bytearray(request)
            bad[5] ^= 0x80
            requests.append(bytes(bad).hex())
            responses.append(link.encode_response(counter, lp.BAD_CHECKSUM).hex())
        requests.append(request.hex())
        responses.append(
            link.encode_response(counter, lp.OK, golden_word(net, row[None], fmt)).hex()
        )
    # bench: every frame, replayed twice; the reply's cycle counts are checked by bounds
    payloads = [link.frame_payload(w, fmt.in_word) for w in fmt.pack_frames(codes)]
    words = [golden_word(net, row[None], fmt) for row in codes]
    bench = {
        "request": link.encode_bench(9, payloads, 2).hex(),
        "counter": 9,
        "results_crc": lp.results_crc(words * 2, fmt.out_word),
        "results": 2 * len(words),
        "interval": top.accelerator.ideal_cycles,
        "frame_bits": fmt.frame_bits,
        "out_word": fmt.out_word,
    }
    return {
        "divisor": top.divisor,
        "requests": requests,
        "responses": responses,
        "bench": bench,
        "timeout": 100_000,
    }


@pytest.mark.slow
@pytest.mark.parametrize("family", ["ice40", "ecp5"])  # the ECP5's frame buffer: read twice
def test_board_top_on_icarus_through_the_uart_pins(tmp_path, family):
    from cocotb_tools.runner import get_results, get_runner

    from bnnhw.sim.runner import TIMESCALE, simulator_env

    # the smallest bundled model, few lanes: the UART pins, not the accelerator, are tested
    net = fold_auto(bnnhw.load(ROOT / "models" / "digits_w1a1_in1_classic.onnx"), 8)
    top = BoardTop(
        lambda: bnnhw.rtl_gen.Accelerator(net), divisor=4, idle_byte_times=4, family=family
    )
    source = tmp_path / "board_top.v"
    source.write_text(to_verilog(top, "board_top"))
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(_plan(net, top, random_frames(np.random.default_rng(8), net.input, 3)))
    )
    env = {
        "BOARD_BENCH_JSON": str(plan),
        "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path]),
    }
    with simulator_env("icarus", env):
        runner = get_runner("icarus")
        runner.build(
            sources=[source],
            hdl_toplevel="board_top",
            build_dir=tmp_path / "build",
            timescale=TIMESCALE,
            always=True,
            log_file=tmp_path / "build.log",
        )
        xml = runner.test(
            hdl_toplevel="board_top",
            test_module="board_uart_bench",
            test_dir=tmp_path,
            build_dir=tmp_path / "build",
            timescale=TIMESCALE,
            log_file=tmp_path / "sim.log",
        )
    tests, failed = get_results(xml)
    assert (tests, failed) == (1, 0), (tmp_path / "sim.log").read_text()[-3000:]
