"""Both argmax units: np.argmax's answer for any class count, at their stated rates."""

from functools import partial

import numpy as np
import pytest

from bnnhw.port_format import pack_fields, unpack_fields
from bnnhw.rtl_gen.argmax import Argmax, SerialArgmax, argmax_for, serial_keeps_up
from bnnhw.sim.amaranth_streams import run_streams

SplitArgmax = partial(Argmax, split=True)


@pytest.mark.parametrize("kind", [Argmax, SplitArgmax, SerialArgmax])
@pytest.mark.parametrize("classes", [1, 2, 3, 5, 10, 17])
def test_argmax_matches_numpy_under_backpressure(kind, classes):
    rng = np.random.default_rng(classes)
    scores = rng.integers(-3, 3, (60, classes))  # narrow range: ties everywhere
    scores[0] = -3  # all equal: class 0
    words = [pack_fields(row.tolist(), 4) for row in scores]
    dut = kind(classes, 4, with_scores=True)
    run = run_streams(dut, words, len(words), in_gap=0.4, out_gap=0.4, seed=classes)
    index_bits = dut.index_width
    got = [w & ((1 << index_bits) - 1) for w in run.outputs]
    assert got == np.argmax(scores, axis=1).tolist()
    kept = [unpack_fields(w >> index_bits, 4, classes, signed=True) for w in run.outputs]
    assert kept == scores.tolist()


@pytest.mark.parametrize(
    "kind, latency, interval",
    [
        (Argmax, 4, 1),  # levels 10 -> 5 -> 3 -> 2 -> 1, a register after each
        (SplitArgmax, 8, 1),  # each level's compare, then its choice
        (SerialArgmax, 10, 11),  # load, 9 compares, result; next frame the cycle after
    ],
)
def test_argmax_latency_and_rate_for_ten_classes(kind, latency, interval):
    dut = kind(10, 6, with_scores=False)
    assert dut.latency == latency
    rng = np.random.default_rng(0)
    scores = rng.integers(-20, 20, (30, 10))
    run = run_streams(dut, [pack_fields(r.tolist(), 6) for r in scores], 30)
    assert run.outputs == np.argmax(scores, axis=1).tolist()
    assert (np.diff(run.out_cycles) == interval).all(), run.out_cycles
    # the first scores are taken at clock edge 1, their result `latency` edges later
    assert run.out_cycles[0] == 1 + latency


def test_the_serial_argmax_is_chosen_when_it_keeps_up():
    assert serial_keeps_up(10, interval=11) and not serial_keeps_up(10, interval=10)
    serial, tree = (argmax_for(10, 6, with_scores=False, interval=i) for i in (11, 10))
    assert isinstance(serial, SerialArgmax) and not tree.split
    fast = argmax_for(10, 6, with_scores=False, interval=11, serial=False)
    assert type(fast) is Argmax and fast.split and fast.latency == 8
