"""A PLL for boards whose oscillator is slower than the design can run (``--clock MHz``).

:func:`plan_pll` picks the divider settings (the search ``icepll`` / ``ecppll`` do) for the
requested output and refuses one it cannot reach within 1 %. :class:`PLLDomain` makes the
``sync`` domain from the PLL's output, held in reset until the PLL locks and (iCE40) for
15 us more, as Amaranth's own iCE40 clock domain does: block RAMs read zeros for ~3 us
after configuration.

- iCE40: ``SB_PLL40_PAD`` when the oscillator pin is the PLL's own input pad (pin 35 on the
  iCE40UP5K-SG48 boards), ``SB_PLL40_CORE`` otherwise; SIMPLE feedback,
  f_out = f_in x (DIVF+1) / ((DIVR+1) x 2^DIVQ), PFD 10-133 MHz, VCO 533-1066 MHz.
- ECP5: ``EHXPLLL``, f_out = f_in x CLKFB_DIV / CLKI_DIV, VCO = f_out x CLKOP_DIV in
  400-800 MHz, PFD >= 3.125 MHz.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io

from bnnhw.errors import InputError

if TYPE_CHECKING:
    from bnnhw.boards.targets import Board


@dataclass(frozen=True)
class PLLPlan:
    family: str
    in_hz: float
    out_hz: float  # what the dividers give (within 1 % of the request)
    params: dict = field(default_factory=dict)

    @property
    def out_mhz(self) -> float:
        return round(self.out_hz / 1e6, 4)


def _ice40(in_hz: float, want: float) -> PLLPlan | None:
    best = None
    for divr in range(16):
        pfd = in_hz / (divr + 1)
        if not 10e6 <= pfd <= 133e6:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533e6 <= vco <= 1066e6:
                continue
            for divq in range(1, 7):
                out = vco / 2**divq
                if best is None or abs(out - want) < abs(best[0] - want):
                    best = (out, divr, divf, divq, pfd)
    if best is None:
        return None
    out, divr, divf, divq, pfd = best
    filter_range = next(
        i for i, top in enumerate([17e6, 26e6, 44e6, 66e6, 101e6, 1e12], 1) if pfd < top
    )
    return PLLPlan(
        "ice40",
        in_hz,
        out,
        {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filter_range},
    )


def _ecp5(in_hz: float, want: float) -> PLLPlan | None:
    best = None
    for clki in range(1, 129):
        if in_hz / clki < 3.125e6:
            break
        for clkfb in range(1, 81):
            out = in_hz * clkfb / clki
            ops = [op for op in range(1, 129) if 400e6 <= out * op <= 800e6]
            if not ops or (best is not None and abs(out - want) >= abs(best[0] - want)):
                continue
            clkop = min(ops, key=lambda op: abs(out * op - 600e6))  # VCO mid-range
            best = (out, clki, clkfb, clkop)
    if best is None:
        return None
    out, clki, clkfb, clkop = best
    return PLLPlan("ecp5", in_hz, out, {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop})


def plan_pll(board: Board, clock_mhz: float) -> PLLPlan:
    want = clock_mhz * 1e6
    plan = {"ice40": _ice40, "ecp5": _ecp5}[board.family](board.clock_hz, want)
    if plan is None or abs(plan.out_hz - want) > 0.01 * want:
        got = f" (nearest {plan.out_hz / 1e6:.3f} MHz)" if plan else ""
        raise InputError(
            f"{board.name}: the {board.family} PLL cannot make {clock_mhz:g} MHz from the "
            f"{board.clock_mhz:g} MHz oscillator within 1 %{got}; choose another --clock"
        )
    return plan


class PLLDomain(Elaboratable):
    """Drives the clock of the ``sync`` domain (its parent defines it, without a reset) at
    ``plan.out_hz`` from the platform's default clock pin.

    ``reset`` is high until the PLL locks and 15 us more. The parent resets each of its
    parts from a registered copy of it, placed beside that part, rather than making it
    the domain's reset: one reset net to every control flip-flop spanned the ECP5-85F
    (SFC 128x27 at 125 MHz: 6.2 ns of route from the synchroniser to the link's state
    machine, its worst path).
    """

    def __init__(self, plan: PLLPlan, *, pad: bool = False) -> None:
        self.plan, self.pad = plan, pad
        self.lock = Signal()
        self.reset = Signal(init=1)

    def elaborate(self, platform) -> Module:
        m = Module()
        # ``keep``: the name survives synthesis, so nextpnr finds the net the clock
        # constraint names (without it the PLL clock was unconstrained: placement and
        # routing were not timing-driven towards it)
        plan, clk_out = self.plan, Signal(attrs={"keep": 1})
        clk_io = platform.request(platform.default_clk, dir="-")
        if plan.family == "ice40":
            p = plan.params
            common = dict(
                p_FEEDBACK_PATH="SIMPLE",
                p_DIVR=p["DIVR"],
                p_DIVF=p["DIVF"],
                p_DIVQ=p["DIVQ"],
                p_FILTER_RANGE=p["FILTER_RANGE"],
                i_RESETB=1,
                i_BYPASS=0,
                o_PLLOUTGLOBAL=clk_out,
                o_LOCK=self.lock,
            )
            if self.pad:
                m.submodules.pll = Instance("SB_PLL40_PAD", io_PACKAGEPIN=clk_io.io, **common)
            else:
                m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_io)
                m.submodules.pll = Instance("SB_PLL40_CORE", i_REFERENCECLK=clk_buf.i, **common)
        else:
            p = plan.params
            m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_io)
            m.submodules.pll = Instance(
                "EHXPLLL",
                p_PLLRST_ENA="DISABLED",
                p_INTFB_WAKE="DISABLED",
                p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED",
                p_OUTDIVIDER_MUXA="DIVA",
                p_CLKOP_ENABLE="ENABLED",
                p_CLKI_DIV=p["CLKI_DIV"],
                p_CLKFB_DIV=p["CLKFB_DIV"],
                p_CLKOP_DIV=p["CLKOP_DIV"],
                p_CLKOP_CPHASE=p["CLKOP_DIV"] - 1,
                p_CLKOP_FPHASE=0,
                p_FEEDBK_PATH="CLKOP",
                i_CLKI=clk_buf.i,
                i_CLKFB=clk_out,
                i_RST=0,
                i_STDBY=0,
                i_PHASESEL0=0,
                i_PHASESEL1=0,
                i_PHASEDIR=1,
                i_PHASESTEP=1,
                i_PHASELOADREG=1,
                i_PLLWAKESYNC=0,
                i_ENCLKOP=0,
                o_CLKOP=clk_out,
                o_LOCK=self.lock,
                a_FREQUENCY_PIN_CLKI=f"{plan.in_hz / 1e6:g}",
                a_FREQUENCY_PIN_CLKOP=f"{plan.out_hz / 1e6:g}",
                a_ICP_CURRENT="12",
                a_LPF_RESISTOR="8",
                a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
            )
        # hold sync in reset until lock, then 15 us more (iCE40 block RAMs read 0 at first)
        m.domains.pll_por = ClockDomain("pll_por", reset_less=True, local=True)
        m.d.comb += [ClockSignal("sync").eq(clk_out), ClockSignal("pll_por").eq(clk_out)]
        delay = int(15e-6 * plan.out_hz)
        timer, ready = Signal(range(delay + 1)), Signal()
        with m.If(~self.lock):
            m.d.pll_por += [timer.eq(0), ready.eq(0)]
        with m.Elif(timer == delay):
            m.d.pll_por += ready.eq(1)
        with m.Else():
            m.d.pll_por += timer.eq(timer + 1)
        # ``ready`` is of the PLL's clock already, but ``lock`` is not: two flip-flops
        # more, as a reset synchroniser has
        settle = Signal(init=1)
        m.d.pll_por += [settle.eq(~ready), self.reset.eq(settle)]
        platform.add_clock_constraint(clk_out, plan.out_hz)
        return m
