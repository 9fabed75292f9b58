"""A first-in first-out queue whose read leaves block RAM through the block's output register.

    i -> RAM (``depth - 2`` words, 3 at least) -> read register -> output register -> o

``lib.fifo.SyncFIFOBuffered`` hands out the block's synchronous read as it is: on an ECP5
DP16KD the data leave the block 5.8 ns after the clock, and the MNIST CNVs' worst path at
125 MHz was that read through one LUT into the MVTU's input buffer (8.6 ns). Here a second
register follows the read, reset-less and enabled with the read, which
``boards/outreg.py`` moves into the block (1.0 ns from the clock), as in the frame store.
Both read stages advance together while ``o`` is free or taken; they hold a word each, so
the queue holds ``depth`` words in all (5 at least), as a ``SyncFIFOBuffered`` of that
depth does, one clock edge later (``latency``).

A read never meets a write of the same address (one is only issued to a word already
written, the other only to a word already read), so the RAM has ``no_rw_check``: its read
is combinational into our read register, which Yosys makes the block's synchronous read
without collision logic.

``i.ready`` is a flip-flop: room for a word next cycle from this cycle's fill (at most one
write a cycle), so the fill's compare never reaches the producer's enables.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from bnnhw.rtl_gen.checks import refuse


class ReadRegisterFIFO(wiring.Component):
    """Up to ``depth`` words (5 at least) of ``width`` bits from ``i`` to ``o`` in order,
    one a cycle."""

    latency = 3  # clock edges from a word's ``i`` handshake to its ``o`` valid, when empty

    def __init__(self, width: int, depth: int) -> None:
        if width < 1 or depth < 3:
            refuse(self, f"ReadRegisterFIFO: {depth} words of {width} bits (needs >= 3 words)")
        self.width, self.depth = width, depth
        # the two read stages hold two words; a RAM of 3 words at least passes one a
        # cycle (``room`` looks one cycle back)
        self.ram_depth = max(3, depth - 2)
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform) -> Module:
        m = Module()
        ram_depth = self.ram_depth
        m.submodules.ram = ram = Memory(
            shape=self.width, depth=ram_depth, init=[], attrs={"no_rw_check": 1}
        )
        write, read = ram.write_port(), ram.read_port(domain="comb")

        stored = Signal(range(ram_depth + 1))  # words in the RAM, not yet read
        w_addr, r_addr = Signal(range(ram_depth)), Signal(range(ram_depth))
        room = Signal(init=1)
        take = self.i.valid & room
        m.d.comb += self.i.ready.eq(room)
        # a word may be written next cycle while at most ram_depth - 1 are stored now: with
        # this cycle's write the RAM then holds ram_depth at most
        m.d.sync += room.eq(stored < ram_depth - 1)
        m.d.comb += [write.addr.eq(w_addr), write.data.eq(self.i.payload), write.en.eq(take)]
        with m.If(take):
            m.d.sync += w_addr.eq(_next(w_addr, ram_depth))

        # -- read: address -> read register [1] -> output register [1], advancing together
        read_data = Signal(self.width, reset_less=True)  # the block's synchronous read
        read_valid = Signal()
        out_data = Signal(self.width, reset_less=True)  # outreg moves it into the block
        out_valid = Signal()
        advance = ~out_valid | self.o.ready
        issue = advance & (stored != 0)
        m.d.comb += [read.addr.eq(r_addr), self.o.payload.eq(out_data), self.o.valid.eq(out_valid)]
        with m.If(advance):
            m.d.sync += [
                read_data.eq(read.data),
                read_valid.eq(issue),
                out_data.eq(read_data),
                out_valid.eq(read_valid),
            ]
        with m.If(issue):
            m.d.sync += r_addr.eq(_next(r_addr, ram_depth))
        m.d.sync += stored.eq(stored + take - issue)
        return m


def _next(addr: Signal, depth: int):
    """The address after ``addr`` in a ring of ``depth`` words."""
    return Mux(addr == depth - 1, 0, addr + 1)
