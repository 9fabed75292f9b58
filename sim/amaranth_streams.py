"""Drive and watch `lib.stream` interfaces in Amaranth's simulator, with random stalls.

The producer inserts random gaps in ``valid`` and the consumer random gaps in ``ready``
(backpressure); ``gap`` is the probability of a gap each cycle, 0 for full speed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from amaranth.sim import Simulator


@dataclass
class StreamRun:
    outputs: list[int] = field(default_factory=list)
    out_cycles: list[int] = field(default_factory=list)  # cycle each output was taken
    taps: list[list[int]] = field(default_factory=list)  # payloads each tap handed on


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
    drain: bool = False,
    taps: Sequence = (),
    tap_beats: Sequence[int] = (),
) -> StreamRun:
    """Feed ``words`` into ``dut.i``, collect ``expected_outputs`` payloads from ``dut.o``.

    ``drain`` keeps going until every word is taken, and ``taps`` (stream interfaces
    inside ``dut``) until each has handed on ``tap_beats[k]`` payloads: a stride can
    leave a map's last rows out of every window, so those pixels go in, and pass inner
    stages, after the last output. Outputs beyond ``expected_outputs`` are dropped.
    """
    rng_in, rng_out = random.Random(seed), random.Random(seed + 1)
    result = StreamRun(taps=[[] for _ in taps])
    fed = []
    watched = [signal for tap in taps for signal in (tap.valid, tap.ready, tap.payload)]

    def more() -> bool:
        if len(result.outputs) < expected_outputs or (drain and not fed):
            return True
        return any(len(got) < want for got, want in zip(result.taps, tap_beats, strict=True))

    async def producer(ctx):
        for word in words:
            while rng_in.random() < in_gap:
                await ctx.tick()
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, word)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
        fed.append(True)

    async def monitor(ctx):
        async for _, _, *values in ctx.tick().sample(*watched):
            for k, got in enumerate(result.taps):
                if values[3 * k] and values[3 * k + 1]:
                    got.append(values[3 * k + 2])

    async def consumer(ctx):
        cycle = 0
        while more():
            ready = rng_out.random() >= out_gap
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            cycle += 1
            if ready and valid and len(result.outputs) < expected_outputs:
                result.outputs.append(payload)
                result.out_cycles.append(cycle)
            if cycle > max_cycles:
                taps = [len(got) for got in result.taps]
                raise TimeoutError(
                    f"only {len(result.outputs)} outputs (taps: {taps} beats) in {max_cycles} "
                    "cycles"
                )
        ctx.set(dut.o.ready, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    if taps:
        sim.add_testbench(monitor, background=True)
    sim.add_testbench(consumer)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return result
