"""Bench mode's end of the accelerator: take every result, hash it, time the run.

The results are read in place from the accelerator's output stream (a stream holds its
payload until taken), one byte a cycle: the link keeps a copy of the sink's byte index
(``index_clear``, ``index_step``) and picks that byte of the result into a register with
the multiplexer its responses use; ``hash``, a cycle later, tells the link's byte CRC to
add the picked byte. ``span`` counts
the cycles from the first result to the last, so ``results - 1`` results in ``span``
cycles is the accelerator's steady rate while its interval is at least the
``result_bytes + 1`` cycles a result takes to hash: TFC's 11-byte result with scores
takes 12, as many as its fastest ULX3S folding's interval; a faster design's bench times
the hash (a build without scores has 1-byte results). Every decision reads a flag
computed a cycle earlier, so the logic is one or two LUTs deep.
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
        armed, hashing, first, last = Signal(), Signal(), Signal(), Signal()
        # data registers without reset (``start`` and each result set them): a reset's
        # fan-out would sit on their enable paths
        index = Signal(range(max(2, rb)), reset_less=True)
        index_last = Signal(reset_less=True)  # index == rb - 1, a cycle ahead
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
        m.d.comb += [self.index_clear.eq(arrives), self.index_step.eq(armed & hashing)]
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

        m.d.sync += [self.hash.eq(hashing), self.done.eq(0)]
        with m.If(self.start):
            m.d.sync += [armed.eq(1), hashing.eq(0), first.eq(1), last.eq(0)]
            m.d.sync += [frames.eq(self.frames), repeats.eq(self.repeats)]
            m.d.sync += [frames_one.eq(self.frames == 1), repeats_one.eq(self.repeats == 1)]
        with m.Elif(armed):
            with m.If(arrives):
                m.d.sync += [hashing.eq(1), index.eq(0), index_last.eq(rb == 1), first.eq(0)]
                with m.If(frames_one & repeats_one):  # the last one: stop the clock
                    m.d.sync += last.eq(1)
            with m.If(hashing):
                m.d.sync += index.eq(index + 1)
                m.d.sync += index_last.eq(index == rb - 2)
                with m.If(index_last):  # its last byte is out: release it, count it
                    m.d.comb += self.results.ready.eq(1)
                    m.d.sync += [hashing.eq(0), frames.eq(frames - 1)]
                    m.d.sync += frames_one.eq(frames == 2)
                    with m.If(frames_one):
                        m.d.sync += [frames.eq(self.frames), frames_one.eq(self.frames == 1)]
                        m.d.sync += [repeats.eq(repeats - 1), repeats_one.eq(repeats == 2)]
            with m.If(last & ~hashing & ~self.hash):
                m.d.sync += [armed.eq(0), self.done.eq(1)]
        return m
