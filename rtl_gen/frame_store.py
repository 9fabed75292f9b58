"""The board link's frame buffer: received bytes in, accelerator input words out.

    payload bytes -> bit-serial packer -> RAM (``width``-bit words) -> [gather] -> ``o``

One RAM holds every frame of a request: one for a classification, up to ``frames`` for a
bench (:func:`bnnhw.link_protocol.bench_capacity`). Each frame is ``frame_bytes`` bytes on
the wire (the last one zero-padded) and ``frame_bits / width`` RAM words here. The packer
splits a byte in 8 cycles, far faster than the UART delivers one (at least 40 cycles), so
it never stalls. Replay reads one RAM word per cycle, so it feeds the accelerator an input
word every cycle, or every ``in_word / width`` cycles for a word wider than the buffer
(:func:`bnnhw.link_protocol.bench_word_bits`): then the bench times the feeder, not the
accelerator, if the accelerator is faster. On the ECP5 the buffer reads up to two blocks
side by side (72 bits), and a register follows the read, moved into the block by the
build (without it the data leave the block 5.8 ns after the clock: SFC at 56 cycles a
frame had that read as its worst path, 113 MHz), a cycle more from start to the first
word.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from bnnhw import link_protocol as lp
from bnnhw.boards.outreg import FAMILIES as OUTREG_FAMILIES


class FrameStore(wiring.Component):
    """``byte``/``byte_valid``: a payload byte (never refused); ``clear``: a new request.

    ``start`` (one cycle, after the payload) replays every stored frame ``repeats`` times on
    ``o``; ``busy`` is high until the last word has been taken.
    """

    def __init__(self, frame_bits: int, in_word: int, frames: int, family: str = "ice40") -> None:
        self.frame_bits, self.in_word, self.frames = frame_bits, in_word, max(1, frames)
        # a family whose build moves a read's register into the block gets one here
        self.read_register = family in OUTREG_FAMILIES
        self.width = lp.bench_word_bits(in_word, family)
        self.frame_ram_words = frame_bits // self.width
        self.depth = self.frames * self.frame_ram_words
        super().__init__(
            {
                "byte": In(8),
                "byte_valid": In(1),
                "clear": In(1),
                "start": In(1),
                "repeats": In(16),
                "busy": Out(1),
                "o": Out(stream.Signature(in_word)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        width, depth = self.width, self.depth
        # the link writes only while it receives a payload and replays only after its CRC
        # matched, so a read never meets a write: ``no_rw_check`` spares the block's read
        # the collision logic (a register and a multiplexer a bit) a synchronous port with
        # Amaranth's read-before-write promise would have, and the read is combinational
        # into a register of ours (``rd_data``) that Yosys merges into the block's port
        m.submodules.ram = ram = Memory(shape=width, depth=depth, init=[], attrs={"no_rw_check": 1})
        wr, rd = ram.write_port(), ram.read_port(domain="comb")

        # -- write side: bytes -> bits -> width-bit words, LSB first -------------------
        bits, left = Signal(8), Signal(range(9))
        word = Signal(width)
        have = Signal(range(width))
        padded = self.frame_bits % 8 != 0  # the last byte of a frame carries padding
        frame_bit = Signal(range(self.frame_bits)) if padded else None
        waddr = Signal(range(depth + 1))
        write = Signal()
        m.d.comb += [wr.addr.eq(waddr), wr.data.eq(word), wr.en.eq(write)]
        m.d.sync += write.eq(0)
        with m.If(write):
            m.d.sync += waddr.eq(waddr + 1)
        with m.If(self.clear):
            m.d.sync += [waddr.eq(0), left.eq(0), have.eq(0)]
        with m.Elif(self.byte_valid):
            m.d.sync += [bits.eq(self.byte), left.eq(8)]
        with m.Elif(left != 0):
            m.d.sync += [word.eq(Cat(word[1:], bits[0])), bits.eq(bits >> 1), left.eq(left - 1)]
            m.d.sync += have.eq(have + 1)
            with m.If(have == width - 1):
                m.d.sync += [have.eq(0), write.eq(1)]
        if padded:
            with m.If(self.clear):
                m.d.sync += frame_bit.eq(0)
            with m.Elif(~self.byte_valid & (left != 0)):
                m.d.sync += frame_bit.eq(frame_bit + 1)
                with m.If(frame_bit == self.frame_bits - 1):  # the rest of the byte: padding
                    m.d.sync += [frame_bit.eq(0), left.eq(0)]

        # -- read side: RAM words back to back, ``repeats`` times --------------------------
        raddr = Signal(range(depth + 1))
        wrap = Signal()  # raddr is the last word written (raddr + 1 == waddr), kept ahead
        before_last = Signal.like(raddr)  # waddr - 2: wrap's compare is of two registers
        repeats, repeats_one = Signal(16), Signal()  # repeats == 1
        # waddr == 1, a cycle late: waddr has been still for many cycles when a replay
        # starts (the request's checksum bytes follow its payload)
        one_word = Signal()
        m.d.sync += one_word.eq(waddr == 1)
        issuing, data_valid = Signal(), Signal()
        # the RAM word the feeder uses (``piece``): the read, or on a family whose build
        # moves a read's register into the block (ECP5, 5.8 -> 1.0 ns) a register of it,
        # every stage held while the word at the end waits
        rd_data = Signal(width, reset_less=True)  # the block's read, held while not advancing
        if self.read_register:
            piece, piece_valid = Signal(width, reset_less=True), Signal()
        else:
            piece, piece_valid = rd_data, data_valid
        take = Signal()  # ``piece`` is used this cycle
        advance = Signal()
        m.d.comb += [advance.eq(~piece_valid | take), rd.addr.eq(raddr)]
        with m.If(advance):
            m.d.sync += rd_data.eq(rd.data)
        if self.read_register:
            with m.If(advance):
                m.d.sync += [piece.eq(rd_data), piece_valid.eq(data_valid)]
            with m.If(self.start):
                m.d.sync += piece_valid.eq(0)
        with m.If(self.start):
            m.d.sync += [raddr.eq(0), repeats.eq(self.repeats), wrap.eq(one_word)]
            m.d.sync += before_last.eq(waddr - 2)
            m.d.sync += [repeats_one.eq(self.repeats == 1), issuing.eq(1), data_valid.eq(0)]
        with m.Elif(advance):
            m.d.sync += data_valid.eq(issuing)
            with m.If(issuing):
                m.d.sync += [raddr.eq(raddr + 1), wrap.eq(raddr == before_last)]
                with m.If(wrap):
                    m.d.sync += [raddr.eq(0), repeats.eq(repeats - 1), wrap.eq(one_word)]
                    m.d.sync += repeats_one.eq(repeats == 2)
                    with m.If(repeats_one):
                        m.d.sync += issuing.eq(0)

        pending = issuing | data_valid | piece_valid
        if width == self.in_word:
            m.d.comb += [self.o.payload.eq(piece), self.o.valid.eq(piece_valid)]
            m.d.comb += take.eq(self.o.ready)
            m.d.comb += self.busy.eq(pending)
        else:  # gather in_word / width RAM words, first one lowest
            chunks = self.in_word // width
            gather, count, full = Signal(self.in_word), Signal(range(chunks)), Signal()
            # a piece is taken while the word is empty or leaving: no cycle between words
            m.d.comb += [take.eq(piece_valid & (~full | self.o.ready))]
            m.d.comb += self.o.payload.eq(gather)
            m.d.comb += [self.o.valid.eq(full), self.busy.eq(pending | full)]
            with m.If(self.o.ready):
                m.d.sync += full.eq(0)
            with m.If(take):
                m.d.sync += [gather.eq(Cat(gather[width:], piece)), count.eq(count + 1)]
                with m.If(count == chunks - 1):
                    m.d.sync += [count.eq(0), full.eq(1)]
            with m.If(self.start):
                m.d.sync += [count.eq(0), full.eq(0)]
        return m
