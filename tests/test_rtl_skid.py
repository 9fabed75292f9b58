"""The register slice passes every word, in order, a word per cycle, under any stalls."""

import random

import pytest

from bnnhw.rtl_gen.skid import SkidBuffer
from bnnhw.sim.amaranth_streams import run_streams


@pytest.mark.parametrize("gap", [0.0, 0.3, 0.7])
def test_skid_buffer_keeps_every_word_in_order(gap):
    rng = random.Random(5)
    words = [rng.getrandbits(12) for _ in range(200)]
    run = run_streams(SkidBuffer(12), words, len(words), in_gap=gap, out_gap=gap, seed=7)
    assert run.outputs == words


def test_skid_buffer_takes_a_word_per_cycle():
    run = run_streams(SkidBuffer(8), list(range(50)), 50)
    # the first word is taken at clock edge 1 and leaves one edge later; then one per edge
    assert run.out_cycles == list(range(2, 52))


def test_skid_buffer_refuses_an_empty_stream():
    with pytest.raises(ValueError, match="a stream of 0 bits"):
        SkidBuffer(0)
