"""Stream width converters by an integer ratio, little-endian (element 0 in the low bits).

They sit between the host and the first layer (host words of a chosen width) and between
layers (a whole output vector in, SIMD-element words out). Neither adds a bubble: a new
word is taken in the same cycle the last piece of the previous one leaves.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bnnhw.rtl_gen.checks import refuse


class Downsizer(wiring.Component):
    """One ``wide``-bit word in, ``wide / narrow`` words of ``narrow`` bits out."""

    def __init__(self, wide: int, narrow: int) -> None:
        if narrow < 1 or wide % narrow:
            refuse(self, f"Downsizer: the narrow width {narrow} must divide the wide {wide}")
        self.ratio = wide // narrow
        super().__init__({"i": In(stream.Signature(wide)), "o": Out(stream.Signature(narrow))})

    latency = 1  # a word is registered before its first piece leaves

    def elaborate(self, platform) -> Module:
        m = Module()
        narrow = len(self.o.payload)
        buf = Signal(len(self.i.payload))
        # every word has ``ratio`` pieces, taken in order, so the piece index follows the
        # output handshake alone and a load only clears ``empty``: each flip-flop's next
        # state is one or two LUTs from registers and the two handshakes
        index = Signal(range(self.ratio))
        last = Signal(init=self.ratio == 1)  # index == ratio - 1, as a flip-flop
        empty = Signal(init=1)
        taken = ~empty & self.o.ready
        m.d.comb += [
            self.o.valid.eq(~empty),
            self.o.payload.eq(buf[:narrow]),
            self.i.ready.eq(empty | (last & self.o.ready)),
        ]
        load = self.i.valid & self.i.ready
        with m.If(taken):
            m.d.sync += [
                index.eq(Mux(last, 0, index + 1)),
                last.eq(Mux(last, self.ratio == 1, index == self.ratio - 2)),
                empty.eq(last),
            ]
        with m.If(load):
            m.d.sync += empty.eq(0)
        # the word register's enable is one LUT4 of the four handshake bits
        with m.If(load | taken):
            m.d.sync += buf.eq(Mux(load, self.i.payload, buf >> narrow))
        return m


class WordSelector(wiring.Component):
    """A ``wide``-bit word sent as ``wide / narrow`` words of ``narrow`` bits, read in place.

    Unlike :class:`Downsizer` it keeps no copy of the word: it selects each piece from the
    upstream payload, which a stream holds steady until it is taken, and takes the word
    with its last piece. Between layers that saves a register and a shift multiplexer per
    output bit, and the cycle they cost.
    """

    latency = 0

    def __init__(self, wide: int, narrow: int) -> None:
        if narrow < 1 or wide % narrow:
            refuse(self, f"WordSelector: the narrow width {narrow} must divide the wide {wide}")
        self.ratio = wide // narrow
        super().__init__({"i": In(stream.Signature(wide)), "o": Out(stream.Signature(narrow))})

    def elaborate(self, platform) -> Module:
        m = Module()
        narrow = len(self.o.payload)
        index = Signal(range(self.ratio))
        last = Signal(init=self.ratio == 1)  # index == ratio - 1, as a flip-flop
        taken = self.o.valid & self.o.ready
        m.d.comb += [
            self.o.valid.eq(self.i.valid),
            self.o.payload.eq(self.i.payload.word_select(index, narrow)),
            self.i.ready.eq(self.o.ready & last),
        ]
        with m.If(taken):
            m.d.sync += [
                index.eq(Mux(last, 0, index + 1)),
                last.eq(Mux(last, self.ratio == 1, index == self.ratio - 2)),
            ]
        return m


class Upsizer(wiring.Component):
    """``wide / narrow`` words of ``narrow`` bits in, one ``wide``-bit word out."""

    def __init__(self, narrow: int, wide: int) -> None:
        if narrow < 1 or wide % narrow:
            refuse(self, f"Upsizer: the narrow width {narrow} must divide the wide {wide}")
        self.ratio = wide // narrow
        super().__init__({"i": In(stream.Signature(narrow)), "o": Out(stream.Signature(wide))})

    latency = 1  # the last piece is registered with the word

    def elaborate(self, platform) -> Module:
        m = Module()
        narrow = len(self.i.payload)
        buf = Signal(len(self.o.payload))
        count = Signal(range(self.ratio))
        full = Signal()
        accept = self.i.valid & self.i.ready
        m.d.comb += [
            self.o.valid.eq(full),
            self.o.payload.eq(buf),
            self.i.ready.eq(~full | self.o.ready),
        ]
        with m.If(accept):
            # shift in at the top: after ``ratio`` words the first one is at the bottom
            m.d.sync += buf.eq(Cat(buf[narrow:], self.i.payload))
            m.d.sync += count.eq(0 if self.ratio == 1 else count + 1)
            with m.If(count == self.ratio - 1):
                m.d.sync += [full.eq(1), count.eq(0)]
            with m.Elif(self.o.ready):
                m.d.sync += full.eq(0)
        with m.Elif(self.o.ready):
            m.d.sync += full.eq(0)
        return m


# A WordSelector's piece multiplexer is log2(ratio) LUT4 levels deep on iCE40 (no wide
# multiplexer primitives): up to 16 pieces it keeps a 50 MHz clock; past that the
# Downsizer's shift register (one LUT level, but a copy of the word) does.
MAX_SELECT_PIECES = 16


def converter(src: int, dst: int, *, in_place: bool = False) -> wiring.Component | None:
    """The converter from ``src``-bit to ``dst``-bit words, None when they are equal.

    ``in_place``: downsize with a :class:`WordSelector` (the upstream holds its payload
    steady until taken, as a FIFO does) instead of a registered :class:`Downsizer`, when
    the word has at most :data:`MAX_SELECT_PIECES` pieces.
    """
    if src == dst:
        return None
    if src % dst == 0:
        if in_place and src // dst <= MAX_SELECT_PIECES:
            return WordSelector(src, dst)
        return Downsizer(src, dst)
    if dst % src == 0:
        return Upsizer(src, dst)
    raise ValueError(f"no integer-ratio converter from {src}-bit to {dst}-bit words")
