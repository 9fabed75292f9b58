"""cocotb bench: the BoardTop's Verilog driven only through its rx/tx pins (a UART model).

The test (tests/test_board_cocotb.py) writes the request bytes and the responses the golden
model and the link protocol's encoder expect to $BOARD_BENCH_JSON; this bench sends each
request bit by bit on ``rx`` and checks the bytes the board sends back on ``tx``; then a
bench request, whose reply is decoded with the host's link protocol.
"""

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from bnnhw import link_protocol as lp


async def send(dut, data: bytes, divisor: int) -> None:
    for byte in data:
        for bit in [0, *((byte >> i) & 1 for i in range(8)), 1]:
            dut.rx.value = bit
            await ClockCycles(dut.clk, divisor)


async def receive(dut, count: int, divisor: int, timeout: int) -> bytes:
    out = bytearray()
    while len(out) < count:
        waited = 0
        while int(dut.tx.value) == 1:
            await RisingEdge(dut.clk)
            waited += 1
            assert waited < timeout, f"no reply byte after {out.hex()}"
        await ClockCycles(dut.clk, divisor // 2)
        assert int(dut.tx.value) == 0, "start bit too short"
        value = 0
        for i in range(8):
            await ClockCycles(dut.clk, divisor)
            value |= int(dut.tx.value) << i
        await ClockCycles(dut.clk, divisor)
        assert int(dut.tx.value) == 1, "missing stop bit"
        out.append(value)
    return bytes(out)


@cocotb.test()
async def uart_frames(dut):
    plan = json.loads(Path(os.environ["BOARD_BENCH_JSON"]).read_text())
    divisor = plan["divisor"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
    await ClockCycles(dut.clk, 3 * divisor)
    for request, expected in zip(plan["requests"], plan["responses"], strict=True):
        await send(dut, bytes.fromhex(request), divisor)
        reply = await receive(dut, len(bytes.fromhex(expected)), divisor, plan["timeout"])
        assert reply.hex() == expected, f"request {request[:16]}...: {reply.hex()} != {expected}"

    bench = plan["bench"]
    fmt = lp.LinkFormat(bench["frame_bits"], bench["out_word"])
    await send(dut, bytes.fromhex(bench["request"]), divisor)
    reply = await receive(dut, fmt.response_bytes(bench=True), divisor, plan["timeout"])
    stats = fmt.decode_bench_response(reply, bench["counter"])
    assert stats.ok and stats.results_crc == bench["results_crc"], stats
    steady = bench["interval"] * (bench["results"] - 1)
    assert steady <= stats.span <= 1.05 * steady, (stats, steady)
