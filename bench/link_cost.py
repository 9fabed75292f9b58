"""Logic cells and Fmax of the board link alone (UART + link FSM + CRCs + frame buffer).

    .venv/bin/python bench/link_cost.py [--board icebreaker] [--clock 60] [--bench-frames N]

Builds ``BoardTop`` around a stand-in accelerator (16 flip-flops that fold a frame's words
into one result) for a port like the digits model's (16-bit words, 4 per frame, 84-bit
results), through the board's PLL at ``--clock`` MHz, and prints nextpnr's figures: what
the link costs and how fast it runs, apart from any network.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bnnhw.boards import get_board
from bnnhw.boards.pll import PLLDomain, plan_pll
from bnnhw.boards.synth import parse_reports, tool_env
from bnnhw.port_format import PortFormat
from bnnhw.rtl_gen.board_top import BoardTop

PORT = PortFormat(
    input_elements=64, input_bits=1, in_word=16, classes=10, class_bits=4, score_bits=8,
    with_scores=True,
)  # fmt: skip


class StandIn(wiring.Component):
    """XOR of a frame's input words, repeated over the result word: 16 flip-flops."""

    def __init__(self, port: PortFormat) -> None:
        self.port_format = port
        super().__init__(
            {"i": In(stream.Signature(port.in_word)), "o": Out(stream.Signature(port.out_word))}
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        acc, count = Signal(16), Signal(range(self.port_format.frame_words + 1))
        m.d.comb += self.i.ready.eq(~self.o.valid)
        m.d.comb += self.o.payload.eq(acc.replicate(-(-self.port_format.out_word // 16)))
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [self.o.valid.eq(0), acc.eq(0), count.eq(0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [acc.eq(acc ^ self.i.payload[:16]), count.eq(count + 1)]
            with m.If(count == self.port_format.frame_words - 1):
                m.d.sync += self.o.valid.eq(1)
        return m


class Bare(wiring.Component):
    """The stand-in and the PLL alone, between the UART pins: what to subtract."""

    def __init__(self, clock) -> None:
        self.clock, self.standin = clock, StandIn(PORT)
        super().__init__({})

    def elaborate(self, platform) -> Module:
        from amaranth.hdl import ClockDomain
        from amaranth.lib import io

        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.submodules.clock, m.submodules.standin = self.clock, self.standin
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [self.standin.i.valid.eq(1), self.standin.o.ready.eq(rx.i)]
        m.d.comb += [self.standin.i.payload.eq(rx.i.replicate(PORT.in_word))]
        m.d.comb += tx.o.eq(self.standin.o.payload.xor())
        return m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="icebreaker")
    parser.add_argument("--clock", type=float, default=60.0, help="PLL clock, MHz")
    parser.add_argument("--baud", type=int, help="default: the board's")
    parser.add_argument("--bench-frames", type=int)
    parser.add_argument("--bare", action="store_true", help="only the PLL and the stand-in")
    args = parser.parse_args()
    board = get_board(args.board)
    plan = plan_pll(board, args.clock)
    top = (
        Bare(PLLDomain(plan, pad=board.pll_pad))
        if args.bare
        else BoardTop(
            lambda: StandIn(PORT),
            clk_hz=plan.out_hz,
            baud=args.baud or board.default_baud,
            clock=PLLDomain(plan, pad=board.pll_pad),
            bench_frames=args.bench_frames,
        )
    )
    out = tempfile.mkdtemp(prefix="link_cost_")
    build = board.platform_class()().build(
        top, name="top", build_dir=out, do_build=False,
        nextpnr_opts="--timing-allow-fail --seed 1 --report nextpnr.json",
    )  # fmt: skip
    build.execute_local(out, env=tool_env())
    r = parse_reports(Path(out), board)
    print(
        f"{board.name} at {plan.out_hz / 1e6:g} MHz, bench frames "
        f"{'-' if args.bare else top.bench_frames}: "
        f"{r['logic_cells']} logic cells ({r['luts']} LUT4, {r['ffs']} FF, of which 16 FF are "
        f"the stand-in), {r['bram']} block RAM, Fmax {r['fmax_mhz']} MHz ({out})"
    )


if __name__ == "__main__":
    main()
