"""Bench mode's end of the accelerator: take every result, hash it, time the run.

The results are read in place from the accelerator's output stream (a stream holds its
payload until taken), two bytes a cycle: a one-hot index picks the result's 16-bit word
into a register, and a cycle later the sink's own CRC-16 (``amaranth.lib.crc``, 16 data
bits a cycle) adds it, its first byte as the high one, as a byte CRC would take the two
bytes in order. A result of an odd number of bytes is hashed with a zero byte after it
(``link_protocol.results_crc``). ``span`` counts the cycles from the first result to the
last, so ``results - 1`` results in ``span`` cycles is the accelerator's steady rate while
its interval is at least the ``hash_cycles`` a result takes: TFC's 11-byte result with
scores takes 7, under its fastest ULX3S folding's 11-cycle interval (one byte a cycle it
took 12). Every decision reads a flag computed a cycle earlier, so the logic is one or two
LUTs deep.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.crc import catalog
from amaranth.lib.wiring import In, Out

# CRC-16/CCITT-FALSE (``link_protocol.crc16``) of 16 bits a cycle
RESULTS_CRC = catalog.CRC16_CCITT_FALSE(data_width=16)


class BenchSink(wiring.Component):
    """``start`` (one cycle) arms it for ``frames`` x ``repeats`` results; ``done`` pulses
    after the last one is hashed, and ``crc`` then holds the checksum of them all."""

    def __init__(self, out_word: int) -> None:
        self.words = (out_word + 15) // 16  # 16-bit words a result is hashed in
        # cycles a result takes: its words, and one to take the next (``arrives``)
        self.hash_cycles = self.words + 1
        super().__init__(
            {
                "results": In(stream.Signature(out_word)),
                "start": In(1),
                "frames": In(8),
                "repeats": In(16),
                "done": Out(1),
                "span": Out(32),
                "crc": Out(16),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        words = self.words
        armed, hashing, first, last = Signal(), Signal(), Signal(), Signal()
        # data registers without reset (``start`` and each result set them): a reset's
        # fan-out would sit on their enable paths
        index = Signal(words, reset_less=True)  # one-hot: the word to hash
        index_last = Signal(reset_less=True)  # index is the last word's, a cycle ahead
        frames, repeats = Signal(8, reset_less=True), Signal(16, reset_less=True)
        frames_one = Signal(reset_less=True)  # frames == 1
        repeats_one = Signal(reset_less=True)  # repeats == 1
        # no reset: ``start`` clears it, and a reset's fan-out would sit on its enable path.
        # Four bytes with a registered carry between each two, not one 32-bit carry chain
        # (a 16-bit one was a CNV's worst path on the UP5K); each byte catches up a cycle
        # after the one below, long before ``span`` is read.
        pieces = [Signal(8, reset_less=True, name=f"span{k}") for k in range(4)]
        carries = [Signal(reset_less=True, name=f"span_carry{k}") for k in range(3)]
        m.d.comb += self.span.eq(Cat(*pieces))

        # the span: reset at the first result, counting until the last one arrives
        arrives = Signal()  # a result to hash
        m.d.comb += arrives.eq(armed & self.results.valid & ~hashing & ~last)
        # the word ``index`` picks (an AND-OR of words: each index bit drives 16 bits),
        # registered, and hashed a cycle later
        m.submodules.crc = crc = RESULTS_CRC.create()
        result = Cat(self.results.payload, Signal(16 * words - len(self.results.payload)))
        picked, fed = Signal(16, reset_less=True), Signal()
        m.d.sync += [
            picked.eq(
                reduce(or_, (Mux(index[k], result.word_select(k, 16), 0) for k in range(words)))
            ),
            fed.eq(hashing),
        ]
        m.d.comb += [
            crc.start.eq(self.start),
            crc.valid.eq(fed),
            crc.data.eq(Cat(picked[8:], picked[:8])),  # its first byte first
            self.crc.eq(crc.crc),
        ]
        first_came = Signal()  # the first result arrived last cycle (a register: fan-out)
        m.d.sync += first_came.eq(arrives & first)
        for k in range(1, 4):  # each upper byte adds the carry out of the one below
            total = pieces[k] + carries[k - 1]
            m.d.sync += pieces[k].eq(total[:8])
            if k < 3:
                m.d.sync += carries[k].eq(total[8])
        m.d.sync += carries[0].eq(0)
        cleared = [*(p.eq(0) for p in pieces[1:]), *(c.eq(0) for c in carries)]
        with m.If(self.start):
            m.d.sync += [pieces[0].eq(0), *cleared]
        with m.Elif(first_came):  # one cycle since the first result; none if it was the last
            m.d.sync += [pieces[0].eq(~last), *cleared]
        with m.Elif(armed & ~last):
            m.d.sync += Cat(pieces[0], carries[0]).eq(pieces[0] + 1)

        m.d.sync += self.done.eq(0)
        with m.If(self.start):
            m.d.sync += [armed.eq(1), hashing.eq(0), first.eq(1), last.eq(0)]
            m.d.sync += [frames.eq(self.frames), repeats.eq(self.repeats)]
            m.d.sync += [frames_one.eq(self.frames == 1), repeats_one.eq(self.repeats == 1)]
        with m.Elif(armed):
            with m.If(arrives):
                m.d.sync += [hashing.eq(1), index.eq(1), index_last.eq(words == 1), first.eq(0)]
                with m.If(frames_one & repeats_one):  # the last one: stop the clock
                    m.d.sync += last.eq(1)
            with m.If(hashing):
                m.d.sync += index.eq(index << 1)
                m.d.sync += index_last.eq(index[words - 2] if words > 1 else 1)
                with m.If(index_last):  # its last word is picked: release it, count it
                    m.d.comb += self.results.ready.eq(1)
                    m.d.sync += [hashing.eq(0), frames.eq(frames - 1)]
                    m.d.sync += frames_one.eq(frames == 2)
                    with m.If(frames_one):
                        m.d.sync += [frames.eq(self.frames), frames_one.eq(self.frames == 1)]
                        m.d.sync += [repeats.eq(repeats - 1), repeats_one.eq(repeats == 2)]
            with m.If(last & ~hashing & ~fed):
                m.d.sync += [armed.eq(0), self.done.eq(1)]
        return m
