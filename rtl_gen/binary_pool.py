"""Binary max-pool over a streamed 1-bit map, as ``bnnhw.golden.window.max_pool``.

The max of +-1 values is the OR of their bits; a channel whose following arithmetic is
decreasing pools with AND instead (``use_and``). Data path::

    i (channels bits per pixel) -> SlidingWindow(win, 1)                         [1]
    per channel: OR (or AND) across the kh x kw taps -> output register         [1]
    o (one pooled pixel, channels bits, per beat)

The output register keeps the reduction between two registers, so a pool adds no
combinational path to its neighbours; it costs ``channels + 1`` flip-flops.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from operator import and_, or_

from amaranth.hdl import Cat, Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bnnhw.ir import Window
from bnnhw.rtl_gen.checks import refuse
from bnnhw.rtl_gen.sliding_window import SlidingWindow, line_buffer_bits


class BinaryPool(wiring.Component):
    """Pixels of ``win.channels`` bits in, pooled pixels of ``win.channels`` bits out."""

    def __init__(
        self, win: Window, use_and: Sequence[bool] | None = None, read_register: bool = False
    ) -> None:
        """``read_register``: its window generator's (the line buffer read ahead)."""
        problem = None
        if not isinstance(win, Window):
            problem = f"BinaryPool needs a bnnhw.ir.Window, got {type(win).__name__}"
        elif win.padded:
            problem = f"BinaryPool: a binary max-pool has no padding, got pads={win.pads}"
        elif use_and is not None and len(use_and) != win.channels:
            problem = (
                f"BinaryPool: use_and needs one flag per channel ({win.channels}), "
                f"got {len(use_and)}"
            )
        if problem:
            refuse(self, problem)
        self.win, self.read_register = win, read_register
        self.use_and = [bool(f) for f in use_and] if use_and is not None else [False] * win.channels
        super().__init__(
            {"i": In(stream.Signature(win.channels)), "o": Out(stream.Signature(win.channels))}
        )

    @property
    def cycles_per_frame(self) -> int:
        """Steady-state cycles per frame: one per map position."""
        return self.win.walk_cycles

    @property
    def line_buffer_bits(self) -> int:
        return line_buffer_bits(self.win, self.win.channels)

    @property
    def latency(self) -> int:
        """Cycles from advancing a window's bottom-right position to its result on ``o``."""
        return 2

    def elaborate(self, platform) -> Module:
        m = Module()
        channels, taps = self.win.channels, self.win.taps
        m.submodules.window = window = SlidingWindow(self.win, 1, read_register=self.read_register)
        wiring.connect(m, wiring.flipped(self.i), window.i)

        # -- per channel: OR (max of +-1) or AND across the taps ------------------------------
        bits = window.o.payload
        pooled = Cat(
            *(
                reduce(
                    and_ if self.use_and[c] else or_, (bits[t * channels + c] for t in range(taps))
                )
                for c in range(channels)
            )
        )

        # -- output register -----------------------------------------------------------------
        m.d.comb += window.o.ready.eq(~self.o.valid | self.o.ready)
        with m.If(window.o.valid & window.o.ready):
            m.d.sync += [self.o.payload.eq(pooled), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m
