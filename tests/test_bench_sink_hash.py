"""The bench sink hashes results two bytes a cycle, to the host's checksum.

Oracles: ``link_protocol.results_crc`` (the standard library's CRC over the results'
bytes) and the testbench's clock (results offered back to back, one taken every
``words + 1`` cycles: 7 for an 11-byte result, where a byte a cycle took 12).
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from bnnhw import link_protocol as lp
from bnnhw.rtl_gen.bench_sink import BenchSink


def _run(out_word: int, results: list[int]) -> tuple[list[int], int, int, int]:
    """Cycles at which each result was taken, the span, the checksum and the sink's
    ``hash_cycles``."""
    dut = BenchSink(out_word)
    taken, report = [], {}

    async def bench(ctx):
        ctx.set(dut.frames, len(results))
        ctx.set(dut.repeats, 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.results.valid, 1)
        cycle = 0
        for r in results:  # the next result is there the cycle after one is taken
            ctx.set(dut.results.payload, r)
            while not ctx.get(dut.results.ready):
                await ctx.tick()
                cycle += 1
            taken.append(cycle)
            await ctx.tick()
            cycle += 1
        ctx.set(dut.results.valid, 0)
        for _ in range(20):
            await ctx.tick()
            if ctx.get(dut.done):
                report.update(span=ctx.get(dut.span), crc=ctx.get(dut.crc))
                return
        raise AssertionError("the sink never reported done")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return taken, report["span"], report["crc"], dut.hash_cycles


@pytest.mark.parametrize(("out_word", "cycles"), [(84, 7), (88, 7), (16, 2), (8, 2), (17, 3)])
def test_results_hashed_two_bytes_a_cycle_match_the_host_checksum(out_word, cycles):
    rng = np.random.default_rng(out_word)
    results = [int.from_bytes(rng.bytes(16), "little") % (1 << out_word) for _ in range(9)]
    taken, span, crc, hash_cycles = _run(out_word, results)
    assert np.diff(taken).tolist() == [cycles] * 8
    assert hash_cycles == cycles
    assert span == 8 * cycles
    assert crc == lp.results_crc(results, out_word)


def test_a_changed_result_changes_the_checksum():
    """The bench can fail: one flipped bit of one result gives another checksum."""
    results = [0x0123456789ABCDEF0123, 0x0FEDCBA98765432100FF]
    crc = _run(84, results)[2]
    assert crc != lp.results_crc([results[0], results[1] ^ (1 << 80)], 84)
