"""Drive and watch `lib.stream` interfaces in Amaranth's simulator, with random stalls.

The producer inserts random gaps in ``valid`` and the consumer random gaps in ``ready``
(backpressure); ``gap`` is the probability of a gap each cycle, 0 for full speed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from amaranth.sim import Simulator


@dataclass
class StreamRun:
    outputs: list[int] = field(default_factory=list)
    out_cycles: list[int] = field(default_factory=list)  # cycle each output was taken


def run_streams(
    dut,
    words: list[int],
    expected_outputs: int,
    *,
    in_gap: float = 0.0,
    out_gap: float = 0.0,
    seed: int = 0,
    max_cycles: int = 1_000_000,
    vcd: str | None = None,
) -> StreamRun:
    """Feed ``words`` into ``dut.i``, collect ``expected_outputs`` payloads from ``dut.o``."""
    rng_in, rng_out = random.Random(seed), random.Random(seed + 1)
    result = StreamRun()

    async def producer(ctx):
        for word in words:
            while rng_in.random() < in_gap:
                await ctx.tick()
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, word)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        cycle = 0
        while len(result.outputs) < expected_outputs:
            ready = rng_out.random() >= out_gap
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            cycle += 1
            if ready and valid:
                result.outputs.append(payload)
                result.out_cycles.append(cycle)
            if cycle > max_cycles:
                raise TimeoutError(f"only {len(result.outputs)} outputs in {max_cycles} cycles")
        ctx.set(dut.o.ready, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return result
