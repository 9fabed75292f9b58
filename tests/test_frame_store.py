"""The board link's frame buffer on its own: frames in as bytes, replayed as input words.

The oracle is the testbench's own frames: random input words, sent as the link sends a
payload (the frame's bits least significant first, its last byte zero-padded), must come
back in order, every repeat, under random backpressure; with the consumer always ready
the testbench's clock counts the cycles a word takes.
"""

from __future__ import annotations

import itertools
import random

import pytest
from amaranth.sim import Simulator

from bnnhw import link_protocol as lp
from bnnhw.rtl_gen.frame_store import FrameStore


def _replay(
    family: str, in_word: int, frames: list[list[int]], repeats: int, ready_share: float
) -> tuple[list[int], list[int]]:
    """The words the store sends and the cycle each is taken at."""
    frame_bits = in_word * len(frames[0])
    store = FrameStore(frame_bits, in_word, len(frames), family)
    rng = random.Random(in_word)
    words, cycles = [], []

    async def bench(ctx):
        now = 0
        for frame in frames:
            bits = sum(word << (i * in_word) for i, word in enumerate(frame))
            for byte in bits.to_bytes((frame_bits + 7) // 8, "little"):
                ctx.set(store.byte, byte)
                ctx.set(store.byte_valid, 1)
                await ctx.tick()
                ctx.set(store.byte_valid, 0)
                await ctx.tick().repeat(10)  # a UART byte time is far longer
        ctx.set(store.repeats, repeats)
        ctx.set(store.start, 1)
        await ctx.tick()
        ctx.set(store.start, 0)
        while ctx.get(store.busy):
            ready = rng.random() < ready_share
            ctx.set(store.o.ready, ready)
            if ready and ctx.get(store.o.valid):
                words.append(ctx.get(store.o.payload))
                cycles.append(now)
            await ctx.tick()
            now += 1
            assert now < 10_000, "the replay never ended"

    sim = Simulator(store)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return words, cycles


@pytest.mark.parametrize(
    ("family", "in_word", "reads"),
    # iCE40: the widest divisor within 16 bits, gathered (33 = 3 x 11, 20 = 2 x 10);
    # ECP5: within two blocks side by side, 72 bits (66 whole, 96 = 2 x 48)
    [("ice40", 33, 3), ("ice40", 20, 2), ("ice40", 12, 1), ("ecp5", 66, 1), ("ecp5", 96, 2)],
)
def test_replay_sends_every_word_in_order_at_one_read_a_cycle(family, in_word, reads):
    assert in_word // lp.bench_word_bits(in_word, family) == reads
    rng = random.Random(in_word)
    frames = [[rng.getrandbits(in_word) for _ in range(5)] for _ in range(3)]
    expected = [word for frame in frames for word in frame] * 2
    words, _ = _replay(family, in_word, frames, repeats=2, ready_share=0.6)
    assert words == expected
    words, cycles = _replay(family, in_word, frames, repeats=2, ready_share=1.0)
    assert words == expected
    # back to back: a word every ``reads`` cycles, no cycle lost between words
    gaps = {b - a for a, b in itertools.pairwise(cycles)}
    assert gaps == {reads}


def test_bench_capacity_is_one_block_deep_at_the_buffer_width():
    """iCE40: 20-bit words in 10-bit reads need the 256 x 16 mode: 256 reads, 3 frames
    of 80. ECP5: 66-bit words in 512 x 36 blocks side by side, 42 frames of 12; 16-bit
    words in the 1024 x 18 mode, 20 frames of 49."""
    assert lp.bench_capacity(800, 20, "ice40") == 256 // 80
    assert lp.bench_capacity(792, 66, "ecp5") == 512 // 12
    assert lp.bench_capacity(784, 16, "ecp5") == 1024 // 49  # 16 bits: the 1024 x 18 mode
