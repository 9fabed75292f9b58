"""The board side of the UART host link (protocol: :mod:`bnnhw.link_protocol`).

    UART bytes -> [request FSM: sync, counter, header, payload -> FrameStore, CRC check]
               -> (CRC good) FrameStore -> accelerator input words (once, or a bench's replay)
    accelerator results -> [response FSM | BenchSink] -> UART

A frame is released to the accelerator only after its CRC matched, so a corrupted frame
is never classified. The checksums are ``amaranth.lib.crc``'s CRC-16/CCITT-FALSE, the one
the host computes with ``binascii``: one circuit checks requests, signs responses and, in
bench mode, hashes the results as they leave the accelerator.

For the clock: the state machine is one-hot, every decision reads flip-flops (flags the
received byte set the cycle after it came, the byte of the result picked a cycle ahead,
the CRC's input and enable), and ``tx_byte`` is a one-byte queue to the UART whose
``valid`` is a flip-flop, so no path is more than about four LUTs deep. For size: header
fields are checked as they arrive instead of being kept, and the result is read in place
from the accelerator's output stream (a stream holds its payload until it is taken).
Synthesis warns that the one-hot state register ignores its initial value: ``BoardTop``
resets the link on the first cycle, so it starts in HUNT even without a domain reset.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.crc import catalog
from amaranth.lib.wiring import In, Out

from bnnhw import link_protocol as lp
from bnnhw.port_format import PortFormat
from bnnhw.rtl_gen.bench_sink import BenchSink
from bnnhw.rtl_gen.frame_store import FrameStore

CRC16 = catalog.CRC16_CCITT_FALSE(data_width=8)  # = link_protocol.crc16


class BoardLink(wiring.Component):
    """``rx``: bytes from the UART; ``tx``: bytes to it; ``acc_i``/``acc_o``: the accelerator.

    ``rx_error`` (a framing error or overrun of the UART) marks the frame being received
    as bad. The line-idle timeout that ends a truncated frame is ``idle_cycles`` rounded
    down to a power of two (a counter's top bit). ``bench_frames`` is how many frames a
    bench request may send (0: no bench mode); ``family`` the FPGA's, for the width of the
    frame buffer (:func:`bnnhw.link_protocol.bench_word_bits`).
    """

    def __init__(
        self,
        port_format: PortFormat,
        *,
        idle_cycles: int,
        bench_frames: int,
        family: str = "ice40",
    ) -> None:
        self.fmt = lp.LinkFormat.for_port(port_format)
        self.port_format = port_format
        if idle_cycles < 2:
            raise ValueError(f"idle timeout of {idle_cycles} cycles must be at least 2")
        if not 0 <= bench_frames <= 255:
            raise ValueError(f"bench frames {bench_frames} must be 0 to 255")
        self.idle_bits = idle_cycles.bit_length() - 1  # 2**idle_bits <= idle_cycles
        self.bench_frames, self.family = bench_frames, family
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
        fmt, pf, bench_on = self.fmt, self.port_format, self.bench_frames > 0
        m.submodules.store = store = FrameStore(
            pf.sent_bits, pf.in_word, self.bench_frames, self.family
        )
        wiring.connect(m, store.o, wiring.flipped(self.acc_i))
        m.submodules.crc = crc = CRC16.create()
        # the CRC takes its byte and its enable from flip-flops, a cycle after the fact
        crc_feed, crc_byte, crc_start = Signal(), Signal(8), Signal()
        m.d.comb += [crc.valid.eq(crc_feed), crc.data.eq(crc_byte), crc.start.eq(crc_start)]
        m.d.sync += [crc_feed.eq(0), crc_start.eq(0)]

        # the UART holds its byte until the next one, and ``valid`` is a one-cycle pulse
        byte, got = self.rx.payload, self.rx.valid
        m.d.comb += [self.rx.ready.eq(1), store.byte.eq(byte)]
        sync_a5, sync_b6 = Signal(), Signal()  # a sync byte came last cycle
        # what the byte held last cycle, as flags: the checks read these flip-flops
        byte_lo, byte_hi, byte_zero, byte_fits = Signal(), Signal(), Signal(), Signal()
        byte_crc_lo, byte_crc_hi = Signal(), Signal()
        m.d.sync += [byte_lo.eq(byte == fmt.frame_bytes & 0xFF)]
        m.d.sync += [byte_hi.eq(byte == fmt.frame_bytes >> 8), byte_zero.eq(byte == 0)]
        m.d.sync += byte_fits.eq(byte <= max(self.bench_frames, 1))
        m.d.sync += [byte_crc_lo.eq(byte == crc.crc[:8]), byte_crc_hi.eq(byte == crc.crc[8:])]
        repeats_lo_zero = Signal()
        m.d.sync += [sync_a5.eq(got & (byte == lp.REQUEST_SYNC))]
        m.d.sync += [sync_b6.eq(got & (byte == lp.BENCH_SYNC))]

        counter, status = Signal(8), Signal(2)
        bench = Signal()  # this request is a bench
        header_ok, crc_lo_ok, crc_ok = Signal(), Signal(), Signal()
        bad = Signal()  # a UART error during this request
        frame_byte = Signal(range(fmt.frame_bytes))
        frame_last = Signal()  # frame_byte == frame_bytes - 1
        frames, frames_left = Signal(8), Signal(8)
        frames_one = Signal()  # frames_left == 1
        repeats = Signal(16)
        go = Signal()  # start the replay (and the bench sink)
        m.d.sync += go.eq(0)
        m.d.comb += [store.start.eq(go), store.repeats.eq(repeats)]

        idle = Signal(self.idle_bits + 1)
        timed_out = idle[-1]
        with m.If(got):
            m.d.sync += idle.eq(0)
        with m.Elif(~timed_out):
            m.d.sync += idle.eq(idle + 1)
        with m.If(self.rx_error):
            m.d.sync += bad.eq(1)

        replying = Signal()  # the CRC takes tx_byte (the response), not the received byte
        # the byte index, one-hot: picking byte ``sent`` is then an AND-OR of bytes, three
        # LUT levels with each index bit driving 8, not a 4-level multiplexer tree
        sent = Signal(max(fmt.result_bytes, lp.BENCH_BODY_BYTES) + 1, init=1)

        def sent_is(k: int) -> Value:
            return sent[k] if 0 <= k < len(sent) else Const(0)

        def byte_sent(value: Value) -> Value:
            """Byte ``sent`` of ``value``."""
            pieces = min(len(sent), len(value) // 8)
            return reduce(or_, (Mux(sent[k], value.word_select(k, 8), 0) for k in range(pieces)))

        tx_byte = Signal(8)
        body_end = Signal()  # sent == the body's length: the byte going out is its last
        # tx_byte is a one-byte queue to the UART: its ``valid`` (tx_full) is a flip-flop,
        # and a state loads it when it is empty, whatever the UART is doing
        tx_full, loaded = Signal(), Signal()  # loaded: a checksummed byte, last cycle
        m.d.comb += [self.tx.payload.eq(tx_byte), self.tx.valid.eq(tx_full)]
        with m.If(self.tx.ready):
            m.d.sync += tx_full.eq(0)
        m.d.sync += loaded.eq(0)
        with m.If(loaded):
            m.d.sync += crc_feed.eq(1)
        result = self.acc_o.payload
        pad = fmt.result_bytes * 8 - len(result)
        result = Cat(result, Const(0, pad)) if pad else result
        pick = Signal(8)  # byte ``sent`` of the result a cycle ago: to send or to hash

        if bench_on:
            m.submodules.sink = sink = BenchSink(pf.out_word)
            m.d.comb += [sink.frames.eq(frames), sink.repeats.eq(repeats)]
            bench_go = Signal()  # go, for a bench: the sink's start is one flip-flop
            m.d.sync += bench_go.eq(0)
            m.d.comb += sink.start.eq(bench_go)
            m.d.comb += [sink.results.payload.eq(self.acc_o.payload)]
            m.d.comb += sink.results.valid.eq(self.acc_o.valid & bench)
            results_crc = Signal(16)
            stats = Cat(sink.span, results_crc)  # the bench's response body
            stats_pick = Signal(8)  # its byte ``sent``, a cycle ago (like ``pick``)
            m.d.sync += stats_pick.eq(byte_sent(stats))
            hashing = Signal()  # the CRC takes the results, from CHECK_CRC to sink.done
            m.d.sync += crc_byte.eq(Mux(replying, tx_byte, Mux(hashing, pick, byte)))
            with m.If(sink.hash):
                m.d.sync += crc_feed.eq(1)
        else:
            m.d.sync += crc_byte.eq(Mux(replying, tx_byte, byte))
        m.d.sync += pick.eq(byte_sent(result))

        def receive(next_state):
            """Go to ``next_state`` with a byte, answer TRUNCATED when the line goes idle."""
            with m.If(got):
                m.d.sync += crc_feed.eq(1)
                m.next = next_state
            with m.Elif(timed_out):
                m.next = "TIMEOUT"

        def load(next_state, value, *, checksummed=True):
            """Put ``value`` in ``tx_byte`` for the UART once it is free; go on."""
            with m.If(~tx_full):
                m.d.sync += [tx_byte.eq(value), tx_full.eq(1)]
                if checksummed:
                    m.d.sync += loaded.eq(1)
                m.next = next_state

        with m.FSM() as fsm:
            with m.State("HUNT"):
                m.d.comb += store.clear.eq(1)
                m.d.sync += crc_start.eq(1)
                m.d.sync += [bad.eq(0), replying.eq(0), frame_byte.eq(0), bench.eq(0)]
                m.d.sync += frame_last.eq(fmt.frame_bytes == 1)
                with m.If(sync_a5):
                    m.next = "COUNTER"
                if bench_on:
                    with m.If(sync_b6):
                        m.d.sync += bench.eq(1)
                        m.next = "COUNTER"
            with m.State("COUNTER"):
                m.d.sync += [counter.eq(byte), frames.eq(1), repeats.eq(1)]
                receive("LEN_LO")
                if bench_on:
                    with m.If(got & bench):
                        m.next = "FRAMES"
            # the header's fields are checked from flags the byte set a cycle after it came
            with m.State("LEN_LO"):
                receive("LEN_HI")
            with m.State("LEN_HI"):
                m.d.sync += header_ok.eq(byte_lo)  # about len_lo, until a byte comes
                receive("CHECK_HEADER")
            if bench_on:
                with m.State("FRAMES"):
                    m.d.sync += frames.eq(byte)
                    receive("REPEATS_LO")
                with m.State("REPEATS_LO"):
                    m.d.sync += [repeats[:8].eq(byte), header_ok.eq(~byte_zero & byte_fits)]
                    receive("REPEATS_HI")
                with m.State("REPEATS_HI"):
                    m.d.sync += [repeats[8:].eq(byte), repeats_lo_zero.eq(byte_zero)]
                    receive("CHECK_HEADER")
            with m.State("CHECK_HEADER"):  # the flags are about the header's last byte now
                last_ok = (
                    Mux(bench, ~(repeats_lo_zero & byte_zero), byte_hi) if bench_on else byte_hi
                )
                m.d.sync += [header_ok.eq(header_ok & last_ok)]
                m.d.sync += [frames_left.eq(frames), frames_one.eq(frames == 1)]
                m.next = "CHECK_LENGTH"
            with m.State("CHECK_LENGTH"):
                with m.If(header_ok):
                    m.next = "PAYLOAD"
                with m.Else():
                    m.d.sync += status.eq(lp.BAD_LENGTH)
                    m.next = "DRAIN"
            with m.State("PAYLOAD"):
                m.d.comb += store.byte_valid.eq(got)
                receive("PAYLOAD")
                with m.If(got):
                    m.d.sync += [frame_byte.eq(frame_byte + 1)]
                    m.d.sync += frame_last.eq(frame_byte == fmt.frame_bytes - 2)
                    with m.If(frame_last):
                        m.d.sync += [frame_byte.eq(0), frame_last.eq(fmt.frame_bytes == 1)]
                        m.d.sync += [frames_left.eq(frames_left - 1)]
                        m.d.sync += frames_one.eq(frames_left == 2)
                        with m.If(frames_one):
                            m.next = "CRC_LO"
            with m.State("CRC_LO"):
                with m.If(got):
                    m.next = "CRC_HI"
                with m.Elif(timed_out):
                    m.next = "TIMEOUT"
            with m.State("CRC_HI"):
                m.d.sync += crc_lo_ok.eq(byte_crc_lo)  # about crc_lo, until a byte comes
                with m.If(got):
                    m.next = "CHECK_CRC"
                with m.Elif(timed_out):
                    m.next = "TIMEOUT"
            with m.State("CHECK_CRC"):
                m.d.sync += crc_ok.eq(crc_lo_ok & byte_crc_hi & ~bad)
                m.next = "CHECK_CRC_OK"
            with m.State("CHECK_CRC_OK"):
                with m.If(crc_ok & ~bad):
                    m.d.sync += status.eq(lp.OK)
                    m.d.sync += go.eq(1)  # the replay starts next cycle, from a register
                    if bench_on:
                        m.d.sync += bench_go.eq(bench)
                    m.next = "WAIT"
                    if bench_on:
                        with m.If(bench):
                            m.d.sync += crc_start.eq(1)  # now it hashes the results
                            m.d.sync += hashing.eq(1)
                            m.next = "BENCH"
                with m.Else():
                    m.d.sync += status.eq(lp.BAD_CHECKSUM)
                    m.next = "REPLY"
            with m.State("DRAIN"):  # noqa: SIM117 (bad length: wait for an idle line)
                with m.If(timed_out):
                    m.next = "REPLY"
            with m.State("WAIT"):  # noqa: SIM117 (classify: the one result is the body)
                with m.If(self.acc_o.valid):
                    m.next = "REPLY"
            if bench_on:
                with m.State("BENCH"):
                    m.d.comb += self.acc_o.ready.eq(sink.results.ready)
                    with m.If(sink.index_clear):  # ``sent`` follows the sink's byte index
                        m.d.sync += sent.eq(1)
                    with m.Elif(sink.index_step):
                        m.d.sync += sent.eq(sent << 1)
                    with m.If(sink.done):
                        m.d.sync += [results_crc.eq(crc.crc), hashing.eq(0)]
                        m.next = "REPLY"
            with m.State("TIMEOUT"):
                m.d.sync += status.eq(lp.TRUNCATED)
                m.next = "REPLY"
            with m.State("REPLY"):  # (waits for the previous reply's last byte to leave)
                m.d.sync += [sent.eq(1), replying.eq(1), crc_start.eq(1)]
                m.d.sync += body_end.eq(~bench & (fmt.result_bytes == 1))
                load("LOAD_COUNTER", lp.RESPONSE_SYNC, checksummed=False)
            with m.State("LOAD_COUNTER"):
                load("LOAD_STATUS", counter)
            with m.State("LOAD_STATUS"):  # one load; the next state alone depends on it
                load("CRC_WAIT", status)
                with m.If(~tx_full & (status == lp.OK)):
                    m.next = "LOAD_RESULT"
                    if bench_on:
                        with m.If(bench):
                            m.next = "LOAD_STATS"
            with m.State("LOAD_RESULT"):  # ``pick`` is byte ``sent`` of the result
                load("LOAD_RESULT", pick)
                with m.If(~tx_full):
                    m.d.sync += [sent.eq(sent << 1), body_end.eq(sent_is(fmt.result_bytes - 2))]
                    with m.If(body_end):
                        m.d.comb += self.acc_o.ready.eq(1)  # the result is out: release it
                        m.next = "CRC_WAIT"
            if bench_on:
                with m.State("LOAD_STATS"):
                    load("LOAD_STATS", stats_pick)
                    with m.If(~tx_full):
                        m.d.sync += sent.eq(sent << 1)
                        m.d.sync += body_end.eq(sent_is(lp.BENCH_BODY_BYTES - 2))
                        with m.If(body_end):
                            m.next = "CRC_WAIT"
            with m.State("CRC_WAIT"):  # the last byte reaches the CRC 3 cycles after it
                m.next = "CRC_WAIT_2"  # was loaded
            with m.State("CRC_WAIT_2"):
                m.next = "LOAD_CRC_LO"
            with m.State("LOAD_CRC_LO"):  # the checksum bytes are not checksummed
                load("LOAD_CRC_HI", crc.crc[:8], checksummed=False)
            with m.State("LOAD_CRC_HI"):
                load("HUNT", crc.crc[8:], checksummed=False)
        # one flip-flop per state: each state's logic then reads one bit, not a decoder
        fsm.state.attrs["fsm_encoding"] = "one-hot"
        return m
