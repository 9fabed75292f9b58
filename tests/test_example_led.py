"""examples/led_classifier.py: simulated against the golden model, built for the iCEBreaker."""

from __future__ import annotations

import importlib.util

import pytest
from amaranth.sim import Simulator

import bnnhw
from bnnhw import golden

from conftest import ROOT

FRAMES = 8


def _example():
    path = ROOT / "examples" / "led_classifier.py"
    spec = importlib.util.spec_from_file_location("led_classifier", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_leds_show_the_golden_classes_frame_after_frame() -> None:
    example = _example()
    top, x, labels = example.demo_top(FRAMES, hold_cycles=20)
    want = golden.predict(bnnhw.load(example.MODEL), x).tolist()
    shown = []

    async def watch(ctx):
        signals = (top.update, top.frame, top.label, top.match)
        async for _, _, update, frame, label, match in ctx.tick().sample(*signals):
            if update:
                shown.append((frame, label, match))
                if len(shown) == FRAMES + 2:  # and around again: the ROM loops
                    return

    sim = Simulator(top)
    sim.add_clock(1 / 12e6)
    sim.add_testbench(watch)
    sim.run()
    frames = [i % FRAMES for i in range(FRAMES + 2)]
    assert [frame for frame, _, _ in shown] == frames
    assert [label for _, label, _ in shown] == [want[i] for i in frames]
    assert [match for _, _, match in shown] == [int(want[i] == labels[i]) for i in frames]


@pytest.mark.slow
def test_builds_for_the_icebreaker_with_timing_met(tmp_path) -> None:
    example = _example()
    report = example.build_icebreaker(example.demo_top(FRAMES)[0], tmp_path)
    assert (tmp_path / "top.bin").stat().st_size > 0
    assert report["fmax_mhz"] is not None
    assert report["fmax_mhz"] >= report["clock_mhz"] == 12
    assert report["logic_cells"] <= report["logic_cells_available"]
