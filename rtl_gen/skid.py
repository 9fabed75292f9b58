"""A register slice for a stream: cuts every combinational path through it.

Between two components, ``valid`` travels downstream and ``ready`` upstream in the same
cycle, so without a register a path can start in one component's state machine and end
in another's counters. Here ``o.valid``, ``o.payload`` and ``i.ready`` are all
flip-flops, and a second register (the skid) takes the word that arrives in the cycle
the consumer stalls, so the slice still passes one word per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bnnhw.rtl_gen.checks import refuse


class SkidBuffer(wiring.Component):
    """``i`` to ``o`` one cycle later, a word per cycle, with no path from ``o`` to ``i``."""

    latency = 1  # clock edges from a word's ``i`` handshake to its ``o`` valid

    def __init__(self, width: int) -> None:
        if width < 1:
            refuse(self, f"SkidBuffer: a stream of {width} bits")
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform) -> Module:
        m = Module()
        skid = Signal.like(self.i.payload)
        skid_valid = Signal()
        m.d.comb += self.i.ready.eq(~skid_valid)
        with m.If(~self.o.valid | self.o.ready):  # the output register is free
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & ~skid_valid):  # the consumer stalls: park the word
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m
