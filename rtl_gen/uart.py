"""8N1 UART receiver and transmitter with ``lib.stream`` byte interfaces.

``divisor`` is clock cycles per bit (``round(clk_hz / baud)``); :func:`baud_divisor`
checks the baud rate error up front. The receiver has no flow control: a byte that
arrives while the previous one is still waiting sets ``overrun``.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from bnnhw.rtl_gen.checks import refuse

MAX_BAUD_ERROR = 0.02


def baud_divisor(clk_hz: float, baud: int) -> int:
    """Cycles per bit for ``baud`` at ``clk_hz``; ValueError if it is too coarse."""
    if baud <= 0 or clk_hz <= 0:
        raise ValueError(f"baud rate {baud} and clock {clk_hz} Hz must be positive")
    divisor = round(clk_hz / baud)
    if divisor < 4:
        raise ValueError(
            f"{baud} baud needs at least 4 clock cycles per bit; the {clk_hz / 1e6:g} MHz "
            f"clock gives {clk_hz / baud:.2f}: choose a baud rate of at most {int(clk_hz // 4)}"
        )
    error = abs(clk_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(
            f"{baud} baud at {clk_hz / 1e6:g} MHz is off by {error:.1%} (divisor {divisor}); "
            f"at most {MAX_BAUD_ERROR:.0%} works: choose a baud rate near {clk_hz / divisor:.0f}"
        )
    return divisor


class _UART(wiring.Component):
    """Shared by both directions: ``divisor`` clock cycles per bit, checked once here."""

    def __init__(self, divisor: int) -> None:
        if not isinstance(divisor, int) or divisor < 4:
            refuse(self, f"UART divisor must be an integer >= 4 cycles per bit, not {divisor!r}")
        self.divisor = divisor
        super().__init__()


class UARTRx(_UART):
    """``rx`` pin in, received bytes out on ``o``; ``framing_error`` pulses on a bad stop bit."""

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    framing_error: Out(1)
    overrun: Out(1)

    def elaborate(self, platform) -> Module:
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)  # two flops
        timer = Signal(range(self.divisor * 3 // 2 + 1))
        # timer == 0 as a flip-flop, so the state machine's every decision is one LUT
        # level from registers (loads are never 0: divisor >= 4)
        due = Signal(init=1)
        bits = Signal(range(9))
        shift = Signal(8)

        m.d.sync += [self.framing_error.eq(0), self.overrun.eq(0)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(~due):
            m.d.sync += [timer.eq(timer - 1), due.eq(timer == 1)]

        def load(cycles: int) -> list:
            return [timer.eq(cycles), due.eq(0)]

        with m.FSM():
            with m.State("IDLE"), m.If(~rx):
                m.d.sync += load(self.divisor // 2 - 1)  # to the middle of the start bit
                m.next = "START"
            with m.State("START"), m.If(due):
                with m.If(rx):  # a glitch, not a start bit
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [*load(self.divisor - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"), m.If(due):
                m.d.sync += shift.eq(Cat(shift[1:], rx))  # LSB first
                m.d.sync += [*load(self.divisor - 1), bits.eq(bits + 1)]
                with m.If(bits == 7):
                    m.next = "STOP"
            with m.State("STOP"), m.If(due):
                with m.If(rx):
                    m.d.sync += self.o.payload.eq(shift)
                    m.d.sync += self.o.valid.eq(1)
                    with m.If(self.o.valid & ~self.o.ready):
                        m.d.sync += self.overrun.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += self.framing_error.eq(1)
                    m.next = "BREAK"
            with m.State("BREAK"):  # noqa: SIM117 (wait for the line to go high again)
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UARTTx(_UART):
    """Bytes in on ``i``, the ``tx`` pin out (idle high)."""

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def elaborate(self, platform) -> Module:
        m = Module()
        timer = Signal(range(self.divisor))
        frame = Signal(10, init=0x3FF)  # stop, data[7:0], start; shifted out LSB first
        left = Signal(range(12))

        idle = Signal(init=1)  # left == 0, as a flip-flop: ``ready`` is one wire
        due = Signal(init=1)  # timer == 0, as a flip-flop
        m.d.comb += self.i.ready.eq(idle)
        with m.If(idle), m.If(self.i.valid):
            m.d.sync += [
                frame.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))),
                left.eq(11),  # 10 bits, then one more step so the stop bit lasts
                timer.eq(0),
                due.eq(1),
                idle.eq(0),
            ]
        with m.Elif(due):
            m.d.sync += [
                self.tx.eq(frame[0]),
                frame.eq(frame >> 1 | (1 << 9)),
                timer.eq(self.divisor - 1),
                due.eq(0),
                left.eq(left - 1),
                idle.eq(left == 1),
            ]
        with m.Else():
            m.d.sync += [timer.eq(timer - 1), due.eq(timer == 1)]
        return m
