"""Bench mode's end of the accelerator: take every result, hash it, time the run.

The results are read in place from the accelerator's output stream (a stream holds its
payload until taken), one byte a cycle: the link keeps a copy of the sink's byte index
(``index_clear``, ``index_step``) and picks that byte of the result into a register with
the multiplexer its responses use; ``hash``, a cycle later, tells the link's byte CRC to
add the picked byte. The index points at the next result's first byte as soon as the last
byte of one is picked, so results are hashed back to back: ``hash_cycles`` = result
bytes a result (TFC's 11-byte result with scores: 11, its fastest ULX3S folding's
interval; a gap cycle between results made it 12). ``span`` counts the cycles from the
first result to the last, so ``results - 1`` results in ``span`` cycles is the
accelerator's steady rate while its interval is at least ``hash_cycles`` (a build without
scores has 1-byte results). Every decision reads ``valid`` and flags computed a cycle
earlier, and ``ready`` is flip-flops alone, so the logic is one or two LUTs deep.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class BenchSink(wiring.Component):
    """``start`` (one cycle) arms it for ``frames`` x ``repeats`` results; ``done`` pulses
    after the last one is hashed."""

    def __init__(self, out_word: int) -> None:
        self.result_bytes = (out_word + 7) // 8
        self.hash_cycles = self.result_bytes  # cycles a result takes, back to back
        super().__init__(
            {
                "results": In(stream.Signature(out_word)),
                "start": In(1),
                "frames": In(8),
                "repeats": In(16),
                "index_clear": Out(1),
                "index_step": Out(1),
                "hash": Out(1),
                "done": Out(1),
                "span": Out(32),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        rb = self.result_bytes
        armed, first, last = Signal(), Signal(), Signal()
        finished = Signal()  # the last result is released: hash nothing more
        # data registers without reset (``start`` and each result set them): a reset's
        # fan-out would sit on their enable paths
        index = Signal(range(max(2, rb)), reset_less=True)  # the byte to hash next
        index_first = Signal(reset_less=True)  # index == 0
        index_last = Signal(reset_less=True)  # index == rb - 1
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

        # take: byte ``index`` of the result in front is picked this cycle (and hashed the
        # next); a result arrives with its first byte
        take, arrives = Signal(), Signal()
        m.d.comb += [
            take.eq(armed & self.results.valid & ~finished),
            arrives.eq(take & index_first),
            self.index_clear.eq(self.start | (take & index_last)),
            self.index_step.eq(take & ~index_last),
            # from flip-flops alone, not from ``valid``: a path through the sink from the
            # accelerator's valid to its ready was the link's worst on the UP5K
            self.results.ready.eq(armed & index_last & ~finished),
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

        m.d.sync += [self.hash.eq(take), self.done.eq(0)]
        with m.If(self.start):
            m.d.sync += [armed.eq(1), first.eq(1), last.eq(0), finished.eq(0)]
            m.d.sync += [index.eq(0), index_first.eq(1), index_last.eq(rb == 1)]
            m.d.sync += [frames.eq(self.frames), repeats.eq(self.repeats)]
            m.d.sync += [frames_one.eq(self.frames == 1), repeats_one.eq(self.repeats == 1)]
        with m.Elif(take):
            with m.If(arrives):
                m.d.sync += first.eq(0)
                with m.If(frames_one & repeats_one):  # the last one: stop the clock
                    m.d.sync += last.eq(1)
            with m.If(index_last):  # its last byte is picked: it is released, count it
                m.d.sync += [index.eq(0), index_first.eq(1), index_last.eq(rb == 1)]
                m.d.sync += [frames.eq(frames - 1), frames_one.eq(frames == 2)]
                with m.If(frames_one):
                    m.d.sync += [frames.eq(self.frames), frames_one.eq(self.frames == 1)]
                    m.d.sync += [repeats.eq(repeats - 1), repeats_one.eq(repeats == 2)]
                    with m.If(repeats_one):
                        m.d.sync += finished.eq(1)
            with m.Else():
                m.d.sync += [index.eq(index + 1), index_first.eq(0)]
                m.d.sync += index_last.eq(index == rb - 2)
        with m.If(armed & finished & ~self.hash):  # its last byte is in the CRC now
            m.d.sync += [armed.eq(0), self.done.eq(1)]
        return m
