"""The UART host link: protocol encoder/decoder, UART RX/TX, and the whole BoardTop in
Amaranth's simulator talking bytes over its rx/tx pins, checked against the golden model."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.sim import Simulator

import bnnhw
from bnnhw import golden
from bnnhw import link_protocol as lp
from bnnhw.passes.folding import fold_auto
from bnnhw.rtl_gen.board_top import BoardTop
from bnnhw.rtl_gen.uart import UARTRx, UARTTx, baud_divisor

from conftest import ROOT
from ir_networks import random_frames

FMT = lp.LinkFormat(frame_bits=64, out_word=4 + 10 * 8)


def test_crc_matches_the_standard_check_value():
    from bnnhw.rtl_gen.board_link import CRC16

    assert lp.crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE
    assert CRC16.compute(b"123456789") == 0x29B1


def test_crc_logic_matches_the_protocol():
    """The board's CRC circuit (amaranth.lib.crc) and the host's (binascii) agree."""
    from bnnhw.rtl_gen.board_link import CRC16

    m = Module()
    m.submodules.crc = dut = CRC16.create()
    rng = np.random.default_rng(0)
    messages = [b"", b"\x00", b"\xff" * 3, b"123456789"]
    messages += [rng.integers(0, 256, int(n)).astype(np.uint8).tobytes() for n in range(1, 40)]

    async def bench(ctx):
        for message in messages:
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            ctx.set(dut.valid, 1)
            for byte in message:
                ctx.set(dut.data, byte)
                await ctx.tick()
            ctx.set(dut.valid, 0)
            assert ctx.get(dut.crc) == lp.crc16(message), message.hex()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_request_and_response_round_trip():
    payload = bytes(range(8))
    request = FMT.encode_request(7, payload)
    assert len(request) == FMT.request_bytes
    assert FMT.decode_request(request) == (7, lp.OK, payload)
    response = FMT.encode_response(7, lp.OK, 0x123456789)
    assert len(response) == FMT.response_bytes()
    assert FMT.decode_response(response, counter=7) == lp.Response(7, lp.OK, 0x123456789)
    error = FMT.encode_response(300, lp.BAD_CHECKSUM)
    assert FMT.decode_response(error, counter=44) == lp.Response(44, lp.BAD_CHECKSUM, None)


@pytest.mark.parametrize("index", range(1, FMT.request_bytes))
def test_every_corrupted_request_byte_is_detected(index):
    request = bytearray(FMT.encode_request(3, bytes(range(8))))
    request[index] ^= 0x10
    _, status, payload = FMT.decode_request(bytes(request))
    assert status != lp.OK and payload is None


def test_corrupted_response_and_counter_mismatch_are_refused():
    response = bytearray(FMT.encode_response(5, lp.OK, 42))
    with pytest.raises(lp.ProtocolError, match="dropped or duplicated"):
        FMT.decode_response(bytes(response), counter=6)
    for index in range(len(response)):
        bad = bytearray(response)
        bad[index] ^= 0x01
        with pytest.raises(lp.ProtocolError):
            FMT.decode_response(bytes(bad), counter=5)
    with pytest.raises(lp.ProtocolError, match="sync"):
        FMT.decode_response(b"", counter=5)


def test_baud_divisor_is_checked_up_front():
    assert baud_divisor(12e6, 115_200) == 104
    assert baud_divisor(25e6, 1_000_000) == 25
    with pytest.raises(ValueError, match="at most 3000000"):
        baud_divisor(12e6, 6_000_000)
    with pytest.raises(ValueError, match="off by"):
        baud_divisor(12e6, 1_800_000)  # 6.67 cycles per bit
    with pytest.raises(ValueError, match="integer >= 4"):
        UARTRx(2)


# --- a UART model for Amaranth testbenches ----------------------------------------------


async def uart_send(ctx, pin, data: bytes, divisor: int) -> None:
    for byte in data:
        for bit in [0, *((byte >> i) & 1 for i in range(8)), 1]:
            ctx.set(pin, bit)
            await ctx.tick().repeat(divisor)


async def uart_receive(ctx, pin, count: int, divisor: int, timeout: int) -> bytes:
    out = bytearray()
    waited = 0
    while len(out) < count:
        await ctx.tick()
        waited += 1
        if waited > timeout:
            raise TimeoutError(f"received {out.hex()} only")
        if ctx.get(pin):
            continue
        await ctx.tick().repeat(divisor // 2)
        assert ctx.get(pin) == 0, "start bit too short"
        value = 0
        for i in range(8):
            await ctx.tick().repeat(divisor)
            value |= ctx.get(pin) << i
        await ctx.tick().repeat(divisor)
        assert ctx.get(pin) == 1, "missing stop bit"
        out.append(value)
        waited = 0
    return bytes(out)


def test_uart_tx_to_rx_loopback():
    divisor, data = 5, bytes([0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80])
    m = Module()
    m.submodules.tx, m.submodules.rx = tx, rx = UARTTx(divisor), UARTRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    received, errors = [], []

    async def bench(ctx):
        ctx.set(rx.o.ready, 1)
        for byte in data:
            ctx.set(tx.i.valid, 1)
            ctx.set(tx.i.payload, byte)
            await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)
        for _ in range(12 * divisor * 2):
            await ctx.tick()

    async def watch(ctx):
        async for _, _, valid, payload, framing in ctx.tick().sample(
            rx.o.valid, rx.o.payload, rx.framing_error
        ):
            if valid:
                received.append(payload)
            if framing:
                errors.append(1)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_testbench(watch, background=True)
    sim.run()
    assert bytes(received) == data and not errors


def test_uart_rx_flags_a_framing_error():
    divisor = 6
    rx = UARTRx(divisor)
    flagged, got = [], []

    async def bench(ctx):
        ctx.set(rx.o.ready, 1)
        for bit in [0, 1, 0, 1, 0, 1, 0, 1, 0, 0]:  # stop bit 0
            ctx.set(rx.rx, bit)
            await ctx.tick().repeat(divisor)
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(4 * divisor)

    async def watch(ctx):
        async for _, _, valid, framing in ctx.tick().sample(rx.o.valid, rx.framing_error):
            flagged.append(framing)
            got.append(valid)

    sim = Simulator(rx)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_testbench(watch, background=True)
    sim.run()
    assert any(flagged) and not any(got)


# --- the whole board top ------------------------------------------------------------------


def run_board(top: BoardTop, requests: list[bytes], reply_sizes: list[int]) -> list[bytes]:
    """Send each request over ``rx`` and read its reply from ``tx``, one after another."""
    divisor, replies = top.divisor, []
    timeout = 40 * 10 * divisor + 200_000

    async def bench(ctx):
        ctx.set(top.rx, 1)
        await ctx.tick().repeat(3 * divisor)
        for request, size in zip(requests, reply_sizes, strict=True):
            await uart_send(ctx, top.rx, request, divisor)
            replies.append(await uart_receive(ctx, top.tx, size, divisor, timeout))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return replies


@pytest.fixture(scope="module")
def digits():
    net = fold_auto(bnnhw.load(ROOT / "models" / "digits_w1a1_in1_classic.onnx"), 64)
    return net, random_frames(np.random.default_rng(5), net.input, 3)


def test_board_top_classifies_and_refuses_a_corrupted_frame(digits):
    net, x = digits
    top = BoardTop(lambda: bnnhw.rtl_gen.Accelerator(net), divisor=4, idle_byte_times=4)
    fmt, link = top.port_format, top.link_format
    frames = fmt.pack_frames(golden.encode_inputs(net.input, x))
    requests = [
        link.encode_request(c, link.frame_payload(w, fmt.in_word)) for c, w in enumerate(frames)
    ]
    corrupted = bytearray(requests[1])
    corrupted[6] ^= 0x04  # a payload byte
    wrong_length = link.encode_request(9, b"\x00" * link.frame_bytes)
    wrong_length = wrong_length[:2] + b"\x07\x00" + wrong_length[4:]
    sequence = [requests[0], bytes(corrupted), requests[1], wrong_length, requests[2]]
    sizes = [
        link.response_bytes(),
        link.response_bytes(lp.BAD_CHECKSUM),
        link.response_bytes(),
        link.response_bytes(lp.BAD_LENGTH),
        link.response_bytes(),
    ]
    replies = run_board(top, sequence, sizes)
    decoded = [link.decode_response(r) for r in replies]
    assert [(d.counter, d.status) for d in decoded] == [
        (0, lp.OK),
        (1, lp.BAD_CHECKSUM),
        (1, lp.OK),
        (9, lp.BAD_LENGTH),
        (2, lp.OK),
    ]
    results = [fmt.unpack_result(d.result) for d in decoded if d.ok]
    assert [r[0] for r in results] == golden.predict(net, x).tolist()
    assert [r[1] for r in results] == golden.scores(net, x).tolist()


class HeldReset(Elaboratable):
    """``PLLDomain`` in simulation: ``reset`` high for the first ``cycles`` cycles."""

    def __init__(self, cycles: int) -> None:
        self.cycles, self.reset = cycles, Signal(init=1)

    def elaborate(self, platform) -> Module:
        m = Module()
        count = Signal(range(self.cycles + 1))
        with m.If(count == self.cycles):
            m.d.sync += self.reset.eq(0)
        with m.Else():
            m.d.sync += count.eq(count + 1)
        return m


def test_board_top_with_a_clock_resets_each_part_from_its_reset(digits):
    """With a PLL, the domain has no reset and each part (UART, link, accelerator) is reset
    from a registered copy of the clock's ``reset``: the start of a request sent while it
    is held is dropped without a word (were the UART and link not held, the link would
    answer it TRUNCATED once the line went idle), and the requests after it are answered
    with golden's results."""
    net, x = digits
    held = 400
    top = BoardTop(
        lambda: bnnhw.rtl_gen.Accelerator(net), divisor=4, idle_byte_times=4, clock=HeldReset(held)
    )
    fmt, link = top.port_format, top.link_format
    frames = fmt.pack_frames(golden.encode_inputs(net.input, x))
    requests = [
        link.encode_request(c, link.frame_payload(w, fmt.in_word)) for c, w in enumerate(frames)
    ]
    replies = []

    async def bench(ctx):
        ctx.set(top.rx, 1)
        await uart_send(ctx, top.rx, requests[0][:3], top.divisor)  # 120 of the 400 cycles
        for _ in range(held + 4 * 4 * 10 * 2):  # past the reset and two idle timeouts
            await ctx.tick()
            assert ctx.get(top.tx) == 1, "the board answered bytes it got while in reset"
        for request in requests:
            await uart_send(ctx, top.rx, request, top.divisor)
            replies.append(await uart_receive(ctx, top.tx, link.response_bytes(), 4, 200_000))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    decoded = [link.decode_response(r) for r in replies]
    assert [(d.counter, d.status) for d in decoded] == [(c, lp.OK) for c in range(len(x))]
    results = [fmt.unpack_result(d.result) for d in decoded]
    assert [r[0] for r in results] == golden.predict(net, x).tolist()


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_board_top_bench_replays_frames_and_counts_cycles(digits, family):
    """A bench request through the pins: statistics and the CRC of every result, in order.
    On the ECP5 a register follows the frame buffer's read (the block's own, on the
    board), held with the RAM while the accelerator refuses a word."""
    from bnnhw.rtl_gen.frame_store import FrameStore

    net, x = digits
    # the iCE40's default: 64-bit frames in 16-bit words, one 256 x 16 block RAM; the ECP5's
    # 1024 x 18 would hold 256, more than a request's one-byte count names
    capacity = 64
    top = BoardTop(
        lambda: bnnhw.rtl_gen.Accelerator(net),
        divisor=4,
        idle_byte_times=4,
        family=family,
        bench_frames=None if family == "ice40" else capacity,
    )
    assert top.bench_frames == capacity
    assert FrameStore(64, 16, capacity, family).read_register == (family == "ecp5")
    fmt, link = top.port_format, top.link_format
    frames = fmt.pack_frames(golden.encode_inputs(net.input, x))
    payloads = [link.frame_payload(w, fmt.in_word) for w in frames]
    repeats = 3
    bench = link.encode_bench(4, payloads, repeats)
    too_many = link.encode_bench(5, payloads[:1], 1)
    too_many = too_many[:2] + bytes([capacity + 1]) + too_many[3:]  # more than it holds
    corrupted = bytearray(link.encode_bench(6, payloads, 1))
    corrupted[9] ^= 0x01
    sizes = [
        link.response_bytes(bench=True),
        link.response_bytes(lp.BAD_LENGTH, bench=True),
        link.response_bytes(lp.BAD_CHECKSUM, bench=True),
        link.response_bytes(),
    ]
    classify = link.encode_request(7, payloads[0])
    replies = run_board(top, [bench, too_many, bytes(corrupted), classify], sizes)
    stats = link.decode_bench_response(replies[0], counter=4)
    # the golden model's results, hashed by binascii (the board: amaranth.lib.crc, 16 bits wide)
    words = [
        fmt.pack_result(int(c), s)
        for c, s in zip(golden.predict(net, x), golden.scores(net, x).tolist(), strict=True)
    ]
    assert stats.ok and stats.results_crc == lp.results_crc(words * repeats, fmt.out_word)
    interval = top.accelerator.ideal_cycles
    results = len(frames) * repeats
    # back to back: one result per initiation interval once the pipeline is full
    assert interval * (results - 1) <= stats.span <= 1.05 * interval * (results - 1)
    assert link.decode_bench_response(replies[1], counter=5).status == lp.BAD_LENGTH
    assert link.decode_bench_response(replies[2], counter=6).status == lp.BAD_CHECKSUM
    after = link.decode_response(replies[3], counter=7)  # the board classifies again
    assert fmt.unpack_result(after.result)[0] == golden.predict(net, x)[0]


def test_board_top_feeds_words_wider_than_its_frame_buffer():
    """Input words wider than 16 bits (an 8-bit input) from a 16-bit buffer, gathered."""
    net = fold_auto(bnnhw.load(ROOT / "models" / "digits_w1a1_in8_classic.onnx"), 64)
    x = random_frames(np.random.default_rng(6), net.input, 2)
    top = BoardTop(lambda: bnnhw.rtl_gen.Accelerator(net), divisor=4, idle_byte_times=4)
    fmt, link = top.port_format, top.link_format
    assert fmt.in_word > 16 and fmt.frame_bits == 64 * 8
    assert top.link.bench_frames == 8  # 8 frames x 512 bits: one 256 x 16 block RAM
    payloads = [
        link.frame_payload(w, fmt.in_word)
        for w in fmt.pack_frames(golden.encode_inputs(net.input, x))
    ]
    requests = [link.encode_request(0, payloads[1]), link.encode_bench(1, payloads, 2)]
    replies = run_board(top, requests, [link.response_bytes(), link.response_bytes(bench=True)])
    words = [
        fmt.pack_result(int(c), s)
        for c, s in zip(golden.predict(net, x), golden.scores(net, x).tolist(), strict=True)
    ]
    assert link.decode_response(replies[0], counter=0).result == words[1]
    stats = link.decode_bench_response(replies[1], counter=1)
    assert stats.ok and stats.results_crc == lp.results_crc(words * 2, fmt.out_word)
    assert stats.span == 3 * top.accelerator.ideal_cycles


@pytest.mark.parametrize(("family", "capacity", "per_frame"), [("ice40", 8, 32), ("ecp5", 64, 16)])
def test_bench_gathers_a_wide_word_from_the_blocks_widest_port(family, capacity, per_frame):
    """One 512-bit input word a frame (8-bit digits, SIMD 64) into layers of 16 cycles: an
    iCE40's frame buffer reads 16 bits at a time, 32 reads a word (32 cycles a frame: the
    bench times the feeder); an ECP5's reads 64 (two 512 x 36 blocks side by side: 64
    frames), 8 reads a word, faster than the accelerator, whose 16 cycles the bench
    times. The results are golden's."""
    net = fold_auto(bnnhw.load(ROOT / "models" / "digits_w1a1_in8_classic.onnx"), 256)
    x = random_frames(np.random.default_rng(8), net.input, 3)
    top = BoardTop(
        lambda: bnnhw.rtl_gen.Accelerator(net, with_scores=False),  # 1-byte results
        divisor=4,
        idle_byte_times=4,
        family=family,
    )
    fmt, link = top.port_format, top.link_format
    assert (fmt.in_word, fmt.frame_words, top.accelerator.ideal_cycles) == (512, 1, 16)
    assert top.bench_frames == capacity
    codes = golden.encode_inputs(net.input, x)
    payloads = [link.frame_payload(w, fmt.in_word) for w in fmt.pack_frames(codes)]
    replies = run_board(top, [link.encode_bench(1, payloads, 4)], [link.response_bytes(bench=True)])
    stats = link.decode_bench_response(replies[0], counter=1)
    words = [fmt.pack_result(int(c)) for c in golden.predict(net, x)]
    assert stats.ok and stats.results_crc == lp.results_crc(words * 4, fmt.out_word)
    assert stats.span == per_frame * (3 * 4 - 1)


@pytest.mark.parametrize("name", ["icebreaker", "ulx3s-85f"])
def test_default_baud_divides_at_the_oscillator_and_every_pll_clock_from_25_mhz(name):
    """The clock search may pick any PLL clock: the board's baud must divide within 2 %."""
    from bnnhw.boards import get_board
    from bnnhw.boards.pll import plan_pll
    from bnnhw.errors import BnnhwError

    board = get_board(name)
    assert board.default_baud == 1_000_000  # FT2232H: 12 Mbaud max; FT231X: 3 Mbaud max
    assert baud_divisor(board.clock_hz, board.default_baud) * 1_000_000 == board.clock_hz
    made = 0
    for tenth in range(250, 1300, 5):  # 25.0 ... 129.5 MHz in 0.5 MHz steps
        try:
            clk_hz = plan_pll(board, tenth / 10).out_hz
        except BnnhwError:
            continue  # a clock this PLL cannot make
        divisor = baud_divisor(clk_hz, board.default_baud)  # raises when > 2 % off
        assert abs(clk_hz / divisor - 1e6) <= 0.02e6
        made += 1
    assert made > 20
    with pytest.raises(ValueError, match="off by"):
        baud_divisor(46.5e6, 3_000_000)  # why not 3 Mbaud: 15.5 clocks a bit
