"""A bnnhw Classifier inside your own Amaranth design: frames from a ROM, the class on LEDs.

The top streams the frames held in a ROM into :class:`bnnhw.rtl_gen.Classifier`, one frame
after another, and shows each result for ``hold_cycles`` (a second at the iCEBreaker's
12 MHz): the class in binary on the break-off PMOD's LEDs 2-5, and on the main board the
green LED when it is the frame's label, the red one when it is not. Then the next frame.

    .venv/bin/python examples/led_classifier.py [BUILD_DIR]   # iCEBreaker bitstream

``tests/test_example_led.py`` simulates it against the golden model and builds it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from amaranth.hdl import Array, Const, Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out

import bnnhw
from bnnhw.rtl_gen import Classifier

MODEL = Path(__file__).resolve().parent.parent / "models" / "digits_w1a1_in1_classic.onnx"
CLASS_LEDS = (2, 3, 4, 5)  # break-off PMOD LEDs showing the class, bit 0 first


class LedClassifier(wiring.Component):
    """Classify ``x`` (float frames) from a ROM forever; show each class on the LEDs.

    Without a platform (simulation) the LEDs are the ports: ``label`` (the class shown),
    ``match`` (it equals the frame's entry in ``labels``), ``frame`` (which frame it
    is) and ``update``, high for the one cycle in which a new class appears.
    """

    def __init__(
        self,
        net: bnnhw.Network,
        x: np.ndarray,
        labels: np.ndarray,
        *,
        max_lanes: int = 16,
        hold_cycles: int = 12_000_000,
    ) -> None:
        self.classifier = Classifier(net, max_lanes=max_lanes, with_scores=False)
        self.frames = [word for frame in self.classifier.encode(x) for word in frame]
        self.labels = [int(label) for label in labels]
        self.hold_cycles = hold_cycles
        super().__init__(
            {
                "label": Out(self.classifier.result_layout["label"].shape),
                "match": Out(1),
                "frame": Out(range(len(self.labels))),
                "update": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.classifier = clf = self.classifier
        words, count = clf.frame_words, len(self.labels)

        # the frame source: the ROM's words, one frame at a time, on clf.i
        m.submodules.rom = rom = Memory(
            shape=unsigned(clf.port_format.in_word), depth=len(self.frames), init=self.frames
        )
        read = rom.read_port()  # synchronous: the word at ``addr`` one cycle after ``en``
        addr = Signal(range(len(self.frames)))
        sent = Signal(range(words + 1))  # words of the current frame handed on
        advance = ~clf.i.valid | clf.i.ready
        m.d.comb += [read.addr.eq(addr), read.en.eq(advance), clf.i.payload.eq(read.data)]
        with m.If(advance):
            m.d.sync += clf.i.valid.eq(sent != words)
            with m.If(sent != words):
                m.d.sync += sent.eq(sent + 1)
                m.d.sync += addr.eq(addr + 1)
                with m.If(addr == len(self.frames) - 1):
                    m.d.sync += addr.eq(0)

        # the result: latch it, hold it, then send the next frame
        timer = Signal(range(self.hold_cycles + 1))
        expected = Array(Const(label, self.label.shape()) for label in self.labels)
        m.d.comb += clf.o.ready.eq(timer == 0)
        m.d.sync += self.update.eq(0)
        with m.If(clf.o.valid & clf.o.ready):
            m.d.sync += [
                self.label.eq(clf.o.payload.label),
                self.match.eq(clf.o.payload.label == expected[self.frame]),
                self.update.eq(1),
                timer.eq(self.hold_cycles),
            ]
        with m.Elif(timer == 1):
            m.d.sync += [timer.eq(0), sent.eq(0)]
            m.d.sync += self.frame.eq(self.frame + 1)
            with m.If(self.frame == count - 1):
                m.d.sync += self.frame.eq(0)
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)

        if platform is not None:
            for bit, index in enumerate(CLASS_LEDS):
                m.d.comb += platform.request("led", index).o.eq(self.label[bit])
            m.d.comb += [
                platform.request("led_g", 0).o.eq(self.match),
                platform.request("led_r", 0).o.eq(~self.match),
            ]
        return m


def demo_top(frames: int = 8, **kwargs) -> tuple[LedClassifier, np.ndarray, np.ndarray]:
    """The top on the first ``frames`` frames of the digits test split; with them."""
    from bnnhw import datasets

    _, _, x, labels = datasets.load_digits_split()
    net = bnnhw.load(MODEL)
    x, labels = x[:frames], labels[:frames]
    return LedClassifier(net, x, labels, **kwargs), x, labels


def build_icebreaker(top: LedClassifier, build_dir: str | Path) -> dict:
    """Bitstream for the iCEBreaker (YoWASP tools); nextpnr's utilisation and Fmax."""
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    from bnnhw.boards import get_board
    from bnnhw.boards.synth import parse_reports, tool_env

    platform = ICEBreakerPlatform()
    platform.add_resources(platform.break_off_pmod)
    plan = platform.build(
        top,
        name="top",
        build_dir=str(build_dir),
        do_build=False,
        nextpnr_opts="--timing-allow-fail --seed 1 --report nextpnr.json",
    )
    plan.execute_local(str(build_dir), env=tool_env())
    report = parse_reports(Path(build_dir), get_board("icebreaker"))
    report["clock_mhz"] = platform.default_clk_frequency / 1e6
    report["bitstream"] = str(Path(build_dir) / "top.bin")
    return report


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "build/led_classifier")
    result = build_icebreaker(demo_top()[0], out)
    print(
        f"{result['bitstream']}: {result['logic_cells']}/{result['logic_cells_available']} "
        f"logic cells, {result['bram']} BRAM, Fmax {result['fmax_mhz']} MHz "
        f"(clock {result['clock_mhz']:g} MHz)"
    )
