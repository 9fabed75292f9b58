"""The bench sink hashes results a byte a cycle, back to back, every byte once, in order.

Oracles: the testbench's clock (results offered back to back, one taken every
``result_bytes`` cycles: 11 for an 11-byte result, where a cycle between results made it
12) and the results themselves: the testbench plays the link's part, keeping a byte
index from ``index_clear``/``index_step`` and reading the byte it points at, and the
bytes the sink asks to hash (``hash``, a cycle after the pick) are the results' own.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from bnnhw.rtl_gen.bench_sink import BenchSink


def _run(out_word: int, results: list[int], stall: int = 0) -> dict:
    """Cycles at which each result was taken, the hashed bytes, span and ``hash_cycles``.
    ``stall``: cycles with no result before each odd-numbered one."""
    dut = BenchSink(out_word)
    size = (out_word + 7) // 8
    report = {"taken": [], "hashed": []}

    async def bench(ctx):
        ctx.set(dut.frames, len(results))
        ctx.set(dut.repeats, 1)
        ctx.set(dut.start, 1)
        sent, picked, cycle, k = None, None, 0, 0
        while not ctx.get(dut.done):
            if cycle > 20 * size * len(results) + 100:
                raise AssertionError("the sink never reported done")
            offered = k < len(results) and not (
                k % 2 and report["taken"] and cycle - report["taken"][-1] <= stall
            )
            ctx.set(dut.results.valid, offered)
            ctx.set(dut.results.payload, results[k] if offered else 0)
            # the link's part: the byte ``sent`` points at is picked, hashed next cycle
            if ctx.get(dut.hash):
                report["hashed"].append(picked)
            picked = (results[k] >> (8 * sent)) & 0xFF if offered and sent is not None else None
            if ctx.get(dut.results.ready):
                report["taken"].append(cycle)
                k += 1
            if ctx.get(dut.index_clear):
                sent = 0
            elif ctx.get(dut.index_step):
                sent += 1
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycle += 1
        report.update(span=ctx.get(dut.span), hash_cycles=dut.hash_cycles)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    report["bytes"] = b"".join(r.to_bytes(size, "little") for r in results)
    return report


@pytest.mark.parametrize(("out_word", "cycles"), [(84, 11), (88, 11), (16, 2), (8, 1)])
def test_results_back_to_back_are_hashed_a_byte_a_cycle(out_word, cycles):
    rng = np.random.default_rng(out_word)
    results = [int.from_bytes(rng.bytes(16), "little") % (1 << out_word) for _ in range(9)]
    run = _run(out_word, results)
    assert np.diff(run["taken"]).tolist() == [cycles] * 8
    assert run["hash_cycles"] == cycles
    assert run["span"] == 8 * cycles
    assert bytes(run["hashed"]) == run["bytes"]


def test_a_late_result_waits_and_is_hashed_whole():
    """Results that come 5 cycles after the last was taken: no byte lost or repeated."""
    rng = np.random.default_rng(1)
    results = [int.from_bytes(rng.bytes(11), "little") % (1 << 84) for _ in range(6)]
    run = _run(84, results, stall=5)
    assert bytes(run["hashed"]) == run["bytes"]
    assert sorted(np.diff(run["taken"]).tolist()) == [11, 11, 16, 16, 16]
