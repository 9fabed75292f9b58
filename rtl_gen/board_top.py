"""A board's whole design: UART pins -> host link -> accelerator -> host link -> UART pins.

    rx pin -> UARTRx -> BoardLink -> Accelerator -> BoardLink -> UARTTx -> tx pin

The design runs in the board's default clock domain at the oscillator's frequency (12 MHz
on the iCEBreaker, 25 MHz on the ULX3S), or, given ``clock`` (an elaboratable that drives
the ``sync`` clock and has a ``reset`` output, e.g. ``bnnhw.boards.pll.PLLDomain``), at
the PLL's, each part reset from a registered copy of ``reset``. Given a platform,
``elaborate`` requests ``uart`` 0. Without one (simulation, Verilog), ``rx`` and ``tx``
are the component's ports.
"""

from amaranth.hdl import ClockDomain, Module, ResetInserter, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from bnnhw import link_protocol as lp
from bnnhw.rtl_gen.board_link import BoardLink
from bnnhw.rtl_gen.checks import refuse
from bnnhw.rtl_gen.uart import UARTRx, UARTTx, baud_divisor


class BoardTop(wiring.Component):
    """``source`` is a Build (anything with ``.accelerator()``) or a function making one.

    ``clk_hz`` is the clock the design runs at, ``baud`` the UART rate, or ``divisor``
    (clock cycles per bit) directly, which simulations use to run fast. ``bench_frames``
    is how many frames a bench request may hold (0: no bench mode); by default the build
    report's ``link.bench_frames``, else what one block RAM holds
    (:func:`bnnhw.link_protocol.bench_capacity`, the RAM the link needs for one frame).
    ``family`` is the FPGA's (``"ice40"``, ``"ecp5"``): how wide the frame buffer reads.
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)

    def __init__(
        self,
        source,
        *,
        clk_hz: float | None = None,
        baud: int = 115_200,
        divisor: int | None = None,
        idle_byte_times: int = lp.IDLE_BYTE_TIMES,
        clock=None,
        bench_frames: int | None = None,
        family: str = "ice40",
    ) -> None:
        self.clock = clock
        make = getattr(source, "accelerator", source)
        self.accelerator = make()
        self.port_format = self.accelerator.port_format
        if self.port_format.out_beats != 1:
            refuse(
                self,
                "the board link takes one result word per frame; compile the "
                "accelerator without --out-word for a board",
            )
        if divisor is None:
            if clk_hz is None:
                raise ValueError("BoardTop needs clk_hz (with baud) or divisor")
            divisor = baud_divisor(clk_hz, baud)
        self.divisor = divisor
        self.link_format = lp.LinkFormat.for_port(self.port_format)
        self.uart_rx, self.uart_tx = UARTRx(divisor), UARTTx(divisor)
        if bench_frames is None:
            report = getattr(source, "report", None)
            bench_frames = lp.build_bench_frames(report, self.port_format, family)
        self.bench_frames = bench_frames
        self.link = BoardLink(
            self.port_format,
            idle_cycles=idle_byte_times * 10 * divisor,
            bench_frames=bench_frames,
            family=family,
        )
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.clock is not None:
            # the clock's domain has no reset: each part is reset from a flip-flop of its
            # own, which the placer puts beside it, so no one reset net spans the die
            m.domains.sync = ClockDomain("sync", reset_less=True)
            m.submodules.clock = self.clock
            for name in ("uart_rx", "uart_tx", "link", "accelerator"):
                local = Signal(init=1, reset_less=True, name=f"{name}_reset")
                m.d.sync += local.eq(self.clock.reset)
                m.submodules[name] = ResetInserter(local)(getattr(self, name))
            self._connect(m, platform)
            return m
        m.submodules.uart_rx = self.uart_rx
        m.submodules.uart_tx = self.uart_tx
        # the link's one-hot state machine must start from its reset state even where
        # the sync domain has no reset (ECP5 without a PLL: the registers only get their
        # init values): a flip-flop that is 1 for the first cycle resets it
        power_on = Signal(init=1)
        m.d.sync += power_on.eq(0)
        m.submodules.link = ResetInserter(power_on)(self.link)
        m.submodules.accelerator = self.accelerator
        self._connect(m, platform)
        return m

    def _connect(self, m: Module, platform) -> None:
        """The parts to each other, and the UART to its pins or to ``rx`` and ``tx``."""
        wiring.connect(m, self.uart_rx.o, self.link.rx)
        wiring.connect(m, self.link.tx, self.uart_tx.i)
        wiring.connect(m, self.link.acc_i, self.accelerator.i)
        wiring.connect(m, self.accelerator.o, self.link.acc_o)
        m.d.comb += self.link.rx_error.eq(self.uart_rx.framing_error | self.uart_rx.overrun)
        if platform is None:
            m.d.comb += [self.uart_rx.rx.eq(self.rx), self.tx.eq(self.uart_tx.tx)]
        else:
            uart = platform.request("uart", 0, dir="-")
            m.submodules.rx_buffer = rx_buffer = io.Buffer("i", uart.rx)
            m.submodules.tx_buffer = tx_buffer = io.Buffer("o", uart.tx)
            m.d.comb += [self.uart_rx.rx.eq(rx_buffer.i), tx_buffer.o.eq(self.uart_tx.tx)]
