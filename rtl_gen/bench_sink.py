"""Bench mode's end of the accelerator: take every result, hash it, time the run.

The results are read in place from the accelerator's output stream (a stream holds its
payload until taken), one byte a cycle: the link keeps a copy of the sink's byte index
(``index_clear``, ``index_step``) and picks that byte of the result into a register with
the multiplexer its responses use; ``hash``, a cycle later, tells the link's byte CRC to
add the picked byte. ``span`` counts
the cycles from the first result to the last, so ``results - 1`` results in ``span``
cycles is the accelerator's steady rate (a result takes ``result_bytes + 1`` cycles to
hash, far below any initiation interval this project builds). Every decision reads a
flag computed a cycle earlier, so the logic is one or two LUTs deep.
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
        # Two 16-bit halves with a registered carry between them, not one 32-bit carry
        # chain; the upper half catches up a cycle later, long before ``span`` is read.
        low, high = Signal(16, reset_less=True), Signal(16, reset_less=True)
        carry = Signal(reset_less=True)
        m.d.comb += self.span.eq(Cat(low, high))

        # the span: reset at the first result, counting until the last one arrives
        arrives = Signal()  # a result to hash
        m.d.comb += arrives.eq(armed & self.results.valid & ~hashing & ~last)
        m.d.comb += [self.index_clear.eq(arrives), self.index_step.eq(armed & hashing)]
        first_came = Signal()  # the first result arrived last cycle (a register: fan-out)
        m.d.sync += first_came.eq(arrives & first)
        m.d.sync += [high.eq(high + carry), carry.eq(0)]
        with m.If(self.start):
            m.d.sync += [low.eq(0), high.eq(0)]
        with m.Elif(first_came):  # one cycle since the first result; none if it was the last
            m.d.sync += [low.eq(~last), high.eq(0)]
        with m.Elif(armed & ~last):
            m.d.sync += Cat(low, carry).eq(low + 1)

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
