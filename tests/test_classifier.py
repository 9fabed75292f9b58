"""The Classifier component in Amaranth's simulator, against the golden model.

The payload fields are read by name (``label``, ``scores[k]``) and compared with
``golden.predict``/``golden.scores``; the latency and initiation interval properties are
compared with the cycles the simulation measures.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator

import bnnhw
from bnnhw import datasets, golden
from bnnhw.rtl_gen import Classifier

from conftest import ROOT

DIGITS_IN1 = ROOT / "models" / "digits_w1a1_in1_classic.onnx"
DIGITS_IN8 = ROOT / "models" / "digits_w1a1_in8_classic.onnx"


def _frames(count: int) -> np.ndarray:
    _, _, x, _ = datasets.load_digits_split()
    return x[:count]


def _run(clf: Classifier, frames: list[list[int]], *, gap: float = 0.0, seed: int = 0):
    """Stream ``frames``; results as (label, scores) read by field name, with the cycle
    of every input and output handshake."""
    rng_in, rng_out = random.Random(seed), random.Random(seed + 1)
    results, in_cycles, out_cycles = [], [], []
    fields = clf.port_format.with_scores

    async def feed(ctx):
        cycle = 0
        for frame in frames:
            for word in frame:
                while rng_in.random() < gap:
                    ctx.set(clf.i.valid, 0)
                    await ctx.tick()
                    cycle += 1
                ctx.set(clf.i.valid, 1)
                ctx.set(clf.i.payload.as_value(), word)
                while True:
                    _, _, ready = await ctx.tick().sample(clf.i.ready)
                    cycle += 1
                    if ready:
                        in_cycles.append(cycle)
                        break
        ctx.set(clf.i.valid, 0)

    async def take(ctx):
        cycle = 0
        while len(results) < len(frames):
            ready = rng_out.random() >= gap
            ctx.set(clf.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(clf.o.valid, clf.o.payload)
            cycle += 1
            if valid and ready:
                scores = [int(payload.scores[k]) for k in range(10)] if fields else []
                results.append((int(payload.label), scores))
                out_cycles.append(cycle)
            assert cycle < 200_000, "no result"

    sim = Simulator(clf)
    sim.add_clock(1e-8)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(take)
    sim.run()
    return results, in_cycles, out_cycles


@pytest.mark.parametrize("model", [DIGITS_IN1, DIGITS_IN8], ids=["in1", "in8"])
def test_classes_and_scores_by_name_match_golden_under_stalls(model) -> None:
    net = bnnhw.load(model)
    x = _frames(8)
    clf = Classifier(net, max_lanes=16)
    results, _, _ = _run(clf, clf.encode(x), gap=0.2, seed=3)
    assert [label for label, _ in results] == golden.predict(net, x).tolist()
    assert [scores for _, scores in results] == golden.scores(net, x).tolist()


def test_input_layout_holds_the_graph_codes() -> None:
    """An 8-bit input streams signed 8-bit codes; a bipolar one 1-bit codes, 1 = +1."""
    in8 = Classifier(bnnhw.load(DIGITS_IN8), max_lanes=16)
    element = in8.frame_layout.elem_shape
    assert (element.width, element.signed) == (8, in8.net.input.signed)
    assert in8.frame_layout.size == in8.port_format.in_word
    in1 = Classifier(bnnhw.load(DIGITS_IN1), max_lanes=16)
    assert in1.frame_layout.elem_shape.width == 1
    # the result layout is the accelerator's word: class low, then scores, class 0 first
    word = in1.port_format.pack_result(7, [1, -2, 3, -4, 5, -6, 7, -8, 9, -10])
    const = in1.result_layout.const({"label": 7, "scores": [1, -2, 3, -4, 5, -6, 7, -8, 9, -10]})
    assert const.as_value().value == word


def test_latency_and_interval_are_what_the_simulation_measures() -> None:
    net = bnnhw.load(DIGITS_IN1)
    clf = Classifier(net, max_lanes=16)
    frames = clf.encode(_frames(6))
    _, in_cycles, out_cycles = _run(clf, frames)
    assert clf.latency_exact
    assert out_cycles[0] - in_cycles[0] == clf.latency
    steady = np.diff(out_cycles[2:])
    assert steady.tolist() == [clf.initiation_interval] * len(steady)
    assert clf.initiation_interval == max(la.cycles_at(la.pe, la.simd) for la in clf.net.layers)


def test_folding_choices_and_resource_estimate() -> None:
    net = bnnhw.load(DIGITS_IN1)
    given = {str(k): {"pe": 2, "simd": 8} for k in range(4)}
    explicit = Classifier(net, folding=given)
    assert explicit.folding == ((2, 8),) * 4
    assert explicit.initiation_interval == 64 * 64 // 16  # NF x SF of a 64x64 layer
    small, large = Classifier(net, max_lanes=8), Classifier(net, max_lanes=64)
    assert small.initiation_interval > large.initiation_interval
    assert small.resources.lanes < large.resources.lanes
    assert small.resources.logic_cells < large.resources.logic_cells
    # every weight is stored once: 64x64 three times and a 64x10 output layer
    assert small.resources.weight_bits == 3 * 64 * 64 + 64 * 10
    assert Classifier(net, with_scores=False).result_layout.size == 4


def test_user_stream_connects_with_wiring_connect() -> None:
    """A user's producer whose stream carries ``frame_layout`` connects as is."""
    net = bnnhw.load(DIGITS_IN1)
    clf = Classifier(net, max_lanes=16)

    class Source(wiring.Component):
        def __init__(self) -> None:
            super().__init__({"o": Out(stream.Signature(clf.frame_layout))})

        def elaborate(self, platform) -> Module:
            return Module()

    m = Module()
    m.submodules.source = source = Source()
    m.submodules.clf = clf
    wiring.connect(m, source.o, clf.i)  # raises on a signature mismatch


def test_refuses_an_unstreamlined_network() -> None:
    from bnnhw.frontend import import_onnx

    with pytest.raises(ValueError, match="streamline"):
        Classifier(import_onnx(DIGITS_IN1))
