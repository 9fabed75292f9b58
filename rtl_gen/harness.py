"""A measuring harness: any stream component on a handful of pins, for QoR sweeps.

A component with a wide ``i`` stream cannot be placed on a 48-pin iCE40 package as it
is. The harness shifts ``i.payload`` in one bit per cycle (flip-flops only, no LUTs) and
folds ``o.payload`` into one registered XOR bit, so synthesis keeps every gate of the
component and nextpnr can time it, while the harness itself adds no logic per lane.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class SerialHarness(wiring.Component):
    """``dut.i`` fed from a serial shift register; ``dut.o`` reduced to one XOR bit."""

    def __init__(self, dut: wiring.Component) -> None:
        self.dut = dut
        super().__init__(
            {
                "serial": In(1),
                "valid": In(1),
                "ready": In(1),
                "taken": Out(1),
                "out_valid": Out(1),
                "out_parity": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dut = dut = self.dut
        shift = Signal(len(dut.i.payload))
        m.d.sync += [
            shift.eq(Cat(self.serial, shift[:-1])),
            self.out_parity.eq(dut.o.payload.xor()),
        ]
        m.d.comb += [
            dut.i.payload.eq(shift),
            dut.i.valid.eq(self.valid),
            self.taken.eq(dut.i.ready),
            dut.o.ready.eq(self.ready),
            self.out_valid.eq(dut.o.valid),
        ]
        return m
