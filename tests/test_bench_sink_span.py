"""The bench sink's cycle count past 2**8 and 2**16: its bytes and the carries between them.

The oracle is the testbench's own clock: it presents the first result at a cycle it
chooses and the last one ``gap`` cycles later, so the span must read ``gap``.
"""

import pytest
from amaranth.sim import Simulator

from bnnhw.rtl_gen.bench_sink import BenchSink


def _span(gap: int) -> int:
    """Span read after two results that arrive ``gap`` cycles apart (an idle sink takes a
    result in the cycle it is offered)."""
    dut = BenchSink(out_word=16)
    span = None

    async def bench(ctx):
        nonlocal span
        now = 0

        async def tick(cycles: int = 1) -> None:
            nonlocal now
            await ctx.tick().repeat(cycles)
            now += cycles

        ctx.set(dut.frames, 2)
        ctx.set(dut.repeats, 1)
        ctx.set(dut.start, 1)
        await tick()
        ctx.set(dut.start, 0)
        await tick(3)
        first = now
        for result in range(2):  # each result waits in valid until the sink takes it
            if result:
                await tick(first + gap - now)
            ctx.set(dut.results.payload, 0x1234 + result)
            ctx.set(dut.results.valid, 1)
            while not ctx.get(dut.results.ready):
                await tick()
            await tick()
            ctx.set(dut.results.valid, 0)
        for _ in range(20):
            await tick()
            if ctx.get(dut.done):
                break
        else:
            raise AssertionError("the sink never reported done")
        span = ctx.get(dut.span)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return span


@pytest.mark.parametrize("gap", [100, 255, 256, 257, 511, 65_535, 65_536, 65_537, 70_000])
def test_span_counts_every_cycle_between_first_and_last_result(gap):
    assert _span(gap) == gap
