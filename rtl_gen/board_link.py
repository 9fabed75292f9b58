"""The board side of the UART host link (protocol: :mod:`bnnhw.link_protocol`).

    UART bytes -> [frame FSM: sync, counter, length, payload -> buffer RAM, CRC check]
               -> (CRC good) buffer RAM -> bit gearbox -> accelerator input words
    accelerator result -> [response FSM: sync, counter, status, result bytes, CRC] -> UART

The payload is buffered in a RAM of ``frame_bytes`` bytes and released to the accelerator
only after its CRC matched, so a corrupted frame is never classified. The checksum is
``amaranth.lib.crc``'s CRC-16/CCITT-FALSE, the one the host computes with ``binascii``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.crc import catalog
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from bnnhw import link_protocol as lp
from bnnhw.port_format import PortFormat

CRC16 = catalog.CRC16_CCITT_FALSE(data_width=8)  # = link_protocol.crc16


class BoardLink(wiring.Component):
    """``rx``: bytes from the UART; ``tx``: bytes to it; ``acc_i``/``acc_o``: the accelerator.

    ``rx_error`` (a framing error or overrun of the UART) marks the frame being received
    as bad. ``idle_cycles`` is the line-idle timeout that ends a truncated frame.
    """

    def __init__(self, port_format: PortFormat, *, idle_cycles: int) -> None:
        self.fmt = lp.LinkFormat.for_port(port_format)
        self.in_word = port_format.in_word
        self.frame_words = port_format.frame_words
        if idle_cycles < 1:
            raise ValueError(f"idle timeout of {idle_cycles} cycles must be positive")
        self.idle_cycles = idle_cycles
        super().__init__(
            {
                "rx": In(stream.Signature(8)),
                "rx_error": In(1),
                "tx": Out(stream.Signature(8)),
                "acc_i": Out(stream.Signature(port_format.in_word)),
                "acc_o": In(stream.Signature(port_format.out_word)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        fmt, in_word = self.fmt, self.in_word
        n = fmt.frame_bytes
        m.submodules.buffer = buffer = Memory(shape=8, depth=n, init=[])
        wr, rd = buffer.write_port(), buffer.read_port()

        counter, status = Signal(8), Signal(2)
        length_lo, rx_crc_lo = Signal(8), Signal(8)
        addr = Signal(range(n + 1))
        bad = Signal()  # a UART error during this frame
        idle = Signal(range(self.idle_cycles + 1))
        sent = Signal(range(fmt.result_bytes + 1))
        # the result is sent straight from acc_o (a stream holds its payload until ready)
        pad = fmt.result_bytes * 8 - len(self.acc_o.payload)
        result = Cat(self.acc_o.payload, Const(0, pad)) if pad else self.acc_o.payload
        result_byte = result.word_select(sent, 8)

        byte = self.rx.payload
        # one CRC circuit, fed the byte of whichever state is checksumming: ``start``
        # restarts it, ``valid`` adds the byte; ``crc`` is the CRC of the bytes added so far
        m.submodules.crc = checksum = CRC16.create()
        crc, crc_byte = checksum.crc, checksum.data
        m.d.comb += crc_byte.eq(byte)
        got = Signal()
        m.d.comb += [self.rx.ready.eq(1), got.eq(self.rx.valid)]
        timed_out = Signal()  # idle == idle_cycles, kept as a flip-flop
        with m.If(got):
            m.d.sync += [idle.eq(0), timed_out.eq(0)]
        with m.Elif(~timed_out):
            m.d.sync += [idle.eq(idle + 1), timed_out.eq(idle == self.idle_cycles - 1)]
        with m.If(self.rx_error):
            m.d.sync += bad.eq(1)

        # bit-serial gearbox: buffer bytes -> in_word-bit words, one bit per cycle (no
        # barrel shifter; the frame is already buffered, so the time hardly matters)
        word, have = Signal(in_word), Signal(range(in_word + 1))
        bits, left = Signal(8), Signal(range(9))  # the byte being split, its bits left
        pending = Signal()
        # have == in_word and left != 0, kept as flip-flops for a short FEED decision
        word_full, bits_left = Signal(), Signal()
        words = Signal(range(self.frame_words + 1))
        m.d.comb += [wr.addr.eq(addr), wr.data.eq(byte), rd.addr.eq(addr)]
        m.d.comb += self.acc_i.payload.eq(word)

        def receive(next_state, *updates):
            with m.If(got):
                m.d.comb += checksum.valid.eq(1)
                m.d.sync += updates
                m.next = next_state
            with m.Elif(timed_out):
                m.d.sync += status.eq(lp.TRUNCATED)
                m.next = "REPLY_SYNC"

        def send(value, next_state):
            m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(value)]
            with m.If(self.tx.ready):
                m.next = next_state
            return self.tx.ready

        with m.FSM():
            with m.State("HUNT"), m.If(got & (byte == lp.REQUEST_SYNC)):
                m.d.comb += checksum.start.eq(1)
                m.d.sync += [bad.eq(self.rx_error), counter.eq(0)]
                m.next = "COUNTER"
            with m.State("COUNTER"):
                receive("LEN_LO", counter.eq(byte))
            with m.State("LEN_LO"):
                receive("LEN_HI", length_lo.eq(byte))
            with m.State("LEN_HI"):
                receive("PAYLOAD", addr.eq(0))
                with m.If(got & (Cat(length_lo, byte) != n)):
                    m.d.sync += status.eq(lp.BAD_LENGTH)
                    m.next = "DRAIN"
            with m.State("PAYLOAD"):
                m.d.comb += wr.en.eq(got)
                receive("PAYLOAD", addr.eq(addr + 1))
                with m.If(got & (addr == n - 1)):
                    m.next = "CRC_LO"
            with m.State("CRC_LO"):
                with m.If(got):
                    m.d.sync += rx_crc_lo.eq(byte)
                    m.next = "CRC_HI"
                with m.Elif(timed_out):
                    m.d.sync += status.eq(lp.TRUNCATED)
                    m.next = "REPLY_SYNC"
            with m.State("CRC_HI"):
                with m.If(got):
                    ok = (Cat(rx_crc_lo, byte) == crc) & ~bad & ~self.rx_error
                    m.d.sync += [addr.eq(0), have.eq(0), left.eq(0), pending.eq(0), words.eq(0)]
                    m.d.sync += [word_full.eq(0), bits_left.eq(0)]
                    m.d.sync += status.eq(Mux(ok, lp.OK, lp.BAD_CHECKSUM))
                    m.next = "CHECK"
                with m.Elif(timed_out):
                    m.d.sync += status.eq(lp.TRUNCATED)
                    m.next = "REPLY_SYNC"
            with m.State("CHECK"):
                with m.If(status == lp.OK):
                    m.next = "FEED"
                with m.Else():
                    m.next = "REPLY_SYNC"
            with m.State("DRAIN"):  # noqa: SIM117 (bad length: wait for an idle line)
                with m.If(timed_out):
                    m.next = "REPLY_SYNC"
            with m.State("FEED"):
                with m.If(word_full):
                    m.d.comb += self.acc_i.valid.eq(1)
                    with m.If(self.acc_i.ready):
                        m.d.sync += [have.eq(0), word_full.eq(0), words.eq(words + 1)]
                        with m.If(words == self.frame_words - 1):
                            m.next = "WAIT"
                with m.Elif(bits_left):  # LSB first: the word's first bit ends up at bit 0
                    m.d.sync += [word.eq(Cat(word[1:], bits[0])), bits.eq(bits >> 1)]
                    m.d.sync += [left.eq(left - 1), have.eq(have + 1)]
                    m.d.sync += [bits_left.eq(left != 1), word_full.eq(have == in_word - 1)]
                with m.Elif(pending):
                    m.d.sync += [bits.eq(rd.data), left.eq(8), bits_left.eq(1), pending.eq(0)]
                with m.Else():
                    m.d.sync += [pending.eq(1), addr.eq(addr + 1)]
            with m.State("WAIT"), m.If(self.acc_o.valid):  # taken once the reply is sent
                m.next = "REPLY_SYNC"
            with m.State("REPLY_SYNC"), m.If(send(lp.RESPONSE_SYNC, "REPLY_COUNTER")):
                m.d.comb += checksum.start.eq(1)
                m.d.sync += sent.eq(0)
            with m.State("REPLY_COUNTER"):
                m.d.comb += crc_byte.eq(counter)
                with m.If(send(counter, "REPLY_STATUS")):
                    m.d.comb += checksum.valid.eq(1)
            with m.State("REPLY_STATUS"):
                m.d.comb += crc_byte.eq(status)
                with m.If(send(status, "REPLY_STATUS")):
                    m.d.comb += checksum.valid.eq(1)
                    with m.If(status == lp.OK):
                        m.next = "REPLY_RESULT"
                    with m.Else():
                        m.next = "REPLY_CRC_LO"
            with m.State("REPLY_RESULT"):
                m.d.comb += crc_byte.eq(result_byte)
                with m.If(send(result_byte, "REPLY_RESULT")):
                    m.d.comb += checksum.valid.eq(1)
                    m.d.sync += sent.eq(sent + 1)
                    with m.If(sent == fmt.result_bytes - 1):
                        m.d.comb += self.acc_o.ready.eq(1)  # the result is out: release it
                        m.next = "REPLY_CRC_LO"
            with m.State("REPLY_CRC_LO"):
                send(crc[:8], "REPLY_CRC_HI")
            with m.State("REPLY_CRC_HI"):
                send(crc[8:], "HUNT")
        return m
