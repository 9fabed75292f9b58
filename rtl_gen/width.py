"""Stream width converters, little-endian (element 0 in the low bits).

They sit between the host and the first layer (host words of a chosen width) and between
layers (a whole output vector in, SIMD-element words out). The integer-ratio ones add no
bubble: a new word is taken in the same cycle the last piece of the previous one leaves.
A downsizer's word need not be a whole number of pieces: it is zero-padded at the top (a
layer whose SIMD does not divide its fan-in). :class:`Gearbox` repacks a frame of host
words into words of any other width, the frame's last one zero-padded (which may cost a
cycle).
"""

from __future__ import annotations

import math

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bnnhw.rtl_gen.checks import refuse


class Downsizer(wiring.Component):
    """One ``wide``-bit word in, ``ceil(wide / narrow)`` words of ``narrow`` bits out."""

    def __init__(self, wide: int, narrow: int) -> None:
        if not 1 <= narrow <= wide:
            refuse(self, f"Downsizer: the narrow width {narrow} must be 1 to the wide {wide}")
        self.ratio = -(-wide // narrow)
        super().__init__({"i": In(stream.Signature(wide)), "o": Out(stream.Signature(narrow))})

    latency = 1  # a word is registered before its first piece leaves

    def elaborate(self, platform) -> Module:
        m = Module()
        narrow = len(self.o.payload)
        buf = Signal(self.ratio * narrow)
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
        if not 1 <= narrow <= wide:
            refuse(self, f"WordSelector: the narrow width {narrow} must be 1 to the wide {wide}")
        self.ratio = -(-wide // narrow)
        super().__init__({"i": In(stream.Signature(wide)), "o": Out(stream.Signature(narrow))})

    def elaborate(self, platform) -> Module:
        m = Module()
        narrow = len(self.o.payload)
        index = Signal(range(self.ratio))
        last = Signal(init=self.ratio == 1)  # index == ratio - 1, as a flip-flop
        taken = self.o.valid & self.o.ready
        padded = Cat(self.i.payload, Const(0, self.ratio * narrow - len(self.i.payload)))
        m.d.comb += [
            self.o.valid.eq(self.i.valid),
            self.o.payload.eq(padded.word_select(index, narrow)),
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


def gearbox_positions(src: int, dst: int) -> int:
    """The places a :class:`Gearbox` shifts an input word to: the inputs of its shift
    multiplexer per bit, the depth of its slowest path."""
    return dst // math.gcd(src, dst)


class Gearbox(wiring.Component):
    """A frame of ``frame_words`` words of ``src`` bits in, the same bits out in
    ``ceil(frame_words * src / dst)`` words of ``dst`` bits, the last one zero-padded.

    For widths no integer ratio joins (16-bit host words into 20-bit SIMD words), or a
    frame that is not a whole number of output words (784 bits in 20-bit words). It holds
    fewer than ``dst`` bits between words; an input word is shifted in above them (by a
    multiple of ``gcd(src, dst)``: a multiplexer of ``dst / gcd`` inputs per bit), and a
    full output word leaves through the output register. Input words are taken one per
    cycle while the held bits are short of a word, so a word as wide as the output or
    narrower costs no bubble; a frame's padded last word may cost one.
    """

    latency = 1  # the output register

    def __init__(self, src: int, dst: int, frame_words: int) -> None:
        if min(src, dst, frame_words) < 1:
            refuse(self, f"Gearbox: widths {src}, {dst} and {frame_words} words must be >= 1")
        self.src, self.dst, self.frame_words = src, dst, frame_words
        self.step = dst // gearbox_positions(src, dst)  # every held-bit count is a multiple
        self.out_words = -(-frame_words * src // dst)
        super().__init__({"i": In(stream.Signature(src)), "o": Out(stream.Signature(dst))})

    @property
    def frame_cycles(self) -> int:
        """Clock edges from a frame's first input handshake (edge 1) to its last output
        word being valid, with input always valid and output always ready (the latency
        formula's share of the converter: the elaborated logic, step by step)."""
        held, left, edge, ends = 0, self.frame_words, 0, False
        while left or held:
            edge += 1
            if held < self.dst and not (ends and held) and left:  # take a word
                held, left, ends = held + self.src, left - 1, left == 1
                if held >= self.dst:
                    held -= self.dst
            else:  # a further word, or the frame's padded last one
                held = max(0, held - self.dst)
        return edge + 1

    def elaborate(self, platform) -> Module:
        m = Module()
        src, dst, step = self.src, self.dst, self.step
        word = dst // step  # an output word, in steps
        held = Signal(dst - step + src)  # bits at and above ``count`` are zero
        count = Signal(range((dst - step + src) // step + 1))  # held bits / step
        ends_frame = Signal()  # the held bits are a frame's last: send them padded
        # a word or more held (from an input wider than dst), or a frame's last bits: no
        # input is taken. A flip-flop, set from the next state (as ``fills`` below), so
        # the handshakes and the output register's enable are a LUT or two from registers
        blocked = Signal()
        in_word = Signal(range(self.frame_words))
        in_last = Signal(init=self.frame_words == 1)  # in_word == frame_words - 1
        out_valid = Signal()
        out_data = Signal(dst)
        room = ~out_valid | self.o.ready  # the output register is free at the next edge
        m.d.comb += [
            self.o.valid.eq(out_valid),
            self.o.payload.eq(out_data),
            self.i.ready.eq(room & ~blocked),
        ]
        with m.If(self.o.ready):
            m.d.sync += out_valid.eq(0)

        accept = self.i.valid & self.i.ready
        joined = Signal(len(held))
        grow = src // step  # an input word, in steps
        total = count + grow
        fills = Signal(init=src >= dst)  # total >= word: the next input completes a word
        next_held, next_count, next_ends = Signal.like(held), Signal.like(count), Signal()
        # the next state's flags, each a compare of ``count`` with a constant for the
        # branch taken (the next count's adder is not in front of them): next count
        # >= word, != 0, and + grow >= word
        next_whole, next_some, next_fills = Signal(), Signal(), Signal()

        def at_least(k: int) -> Value:
            return count >= k if k > 0 else Const(1)

        m.d.comb += [
            joined.eq(held | (self.i.payload << (count * step))),
            next_held.eq(held),
            next_count.eq(count),
            next_ends.eq(ends_frame),
            next_whole.eq(at_least(word)),
            next_some.eq(count != 0),
            next_fills.eq(at_least(word - grow)),
        ]
        with m.If(accept):
            m.d.sync += [
                in_word.eq(Mux(in_last, 0, in_word + 1)),
                in_last.eq(Mux(in_last, self.frame_words == 1, in_word == self.frame_words - 2)),
            ]
            m.d.comb += next_ends.eq(in_last)
            with m.If(fills):  # count + grow - word
                m.d.sync += [out_data.eq(joined[:dst]), out_valid.eq(1)]
                m.d.comb += [
                    next_held.eq(joined >> dst),
                    next_count.eq(total - word),
                    next_whole.eq(at_least(2 * word - grow)),
                    next_some.eq(count != word - grow),
                    next_fills.eq(at_least(2 * word - 2 * grow)),
                ]
            with m.Else():  # count + grow
                m.d.comb += [
                    next_held.eq(joined),
                    next_count.eq(total),
                    next_whole.eq(at_least(word - grow)),
                    next_some.eq(1),
                    next_fills.eq(at_least(word - 2 * grow)),
                ]
        with m.Elif(room & blocked):
            # a further word of a wide input, or the frame's last bits, zero-padded: the
            # count less a word, or 0
            m.d.sync += [out_data.eq(held[:dst]), out_valid.eq(1)]
            m.d.comb += [
                next_held.eq(held >> dst),
                next_count.eq(Mux(count >= word, count - word, 0)),
                next_whole.eq(at_least(2 * word)),
                next_some.eq(count > word),
                next_fills.eq(
                    at_least(max(word, 2 * word - grow)) | ((count < word) & (grow >= word))
                ),
            ]
        with m.Elif(ends_frame & (count == 0)):
            m.d.comb += next_ends.eq(0)
        m.d.sync += [
            held.eq(next_held),
            count.eq(next_count),
            ends_frame.eq(next_ends),
            blocked.eq(next_whole | (next_ends & next_some)),
            fills.eq(next_fills),
        ]
        return m


# A WordSelector's piece multiplexer is log2(ratio) LUT4 levels deep on iCE40 (no wide
# multiplexer primitives): up to 16 pieces it keeps a 50 MHz clock; past that the
# Downsizer's shift register (one LUT level, but a copy of the word) does.
MAX_SELECT_PIECES = 16
# At the ECP5's 125 MHz (a design with read registers) a piece multiplexer must be one
# wide LUT: SFC 64x56 32x37's worst path was its 7-piece selector, three LUT levels and
# then 5 ns of route into the next layer's input buffer block.
FAST_SELECT_PIECES = 4


def converter(
    src: int, dst: int, *, in_place: bool = False, max_pieces: int = MAX_SELECT_PIECES
) -> wiring.Component | None:
    """The converter from ``src``-bit to ``dst``-bit words, None when they are equal.

    A narrower ``dst`` need not divide ``src``: each word's last piece is zero-padded (a
    whole input vector cut into a padded layer's SIMD words).

    ``in_place``: downsize with a :class:`WordSelector` (the upstream holds its payload
    steady until taken, as a FIFO does) instead of a registered :class:`Downsizer`, when
    the word has at most ``max_pieces`` pieces.
    """
    if src == dst:
        return None
    if src > dst:  # the last piece zero-padded when dst does not divide src
        if in_place and -(-src // dst) <= max_pieces:
            return WordSelector(src, dst)
        return Downsizer(src, dst)
    if dst % src == 0:
        return Upsizer(src, dst)
    raise ValueError(f"no integer-ratio converter from {src}-bit to {dst}-bit words")
