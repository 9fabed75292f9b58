"""Yosys (YoWASP) from the design to a standard-cell netlist, and its cell count.

The flow reads the design's RTLIL (``to_rtlil``), not the Verilog written from it. That
Verilog's resets are multiplexers in front of plain flip-flops (for the simulators); from
it ABC merged a reset into the logic it feeds, as in ``~((q & a) | b)``, which is 0 in
reset for q = 0 and q = 1, but the gate-level simulation starts every flip-flop at X and
the folded tiny MLP never left X. Read from the RTLIL it leaves reset. Whether an X start
resolves depends on the structure ABC picks: docs/asic.md.

The weight and threshold ROMs that have more than one word are cut into modules of their
own (``rom_layerN``) before they are mapped, kept apart until ``stat`` has counted them
(their share of the area), then flattened into one netlist. A one-word ROM (a fully
unrolled layer) is not cut out: its constant bits fold into the XNOR gates.

Flip-flops have no power-up value in silicon, so init values are dropped before
optimisation; everything the design needs comes from its synchronous reset. The
gate-level simulation in the tests proves that.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

GENERIC_GATES = "AND,NAND,OR,NOR,XOR,XNOR,MUX"
# ABC after Yosys' default Liberty script: buffer trees for high fanout nets (reset,
# enables: without them one gate drives thousands of pins) and gate sizing for the delay.
ABC_SCRIPT = (
    "+strash;&get,-n;&fraig,-x;&put;scorr;dc2;dretime;strash;&get,-n;&dch,-f;&nf,{D};&put;"
    "buffer,-N,{fanout};upsize,{D};dnsize,{D};stime,-p"
)
MAX_FANOUT = 8


def _front(design: Path, top: str, folder: Path, layers: int) -> list[str]:
    rel = os.path.relpath(design, folder)
    lines = [
        f"read_rtlil {rel}",
        f"hierarchy -top {top}",
        "proc",
        "flatten",
        "setattr -unset init w:*",
        f"synth -top {top} -flatten -run coarse:fine",
    ]
    for k in range(layers):
        lines.append(
            f"submod -name rom_layer{k} t:$mem_v2 r:WR_PORTS=0 %i r:SIZE>1 %i n:layer{k}.* %i"
        )
    lines += ["setattr -mod -set keep_hierarchy 1 rom_*", f"synth -top {top} -run fine:"]
    return lines


def synth_script(
    design: Path, top: str, folder: Path, layers: int, liberty: Path, period_ps: float
) -> str:
    """The mapping script: ROMs apart, flip-flops and logic to the library's cells."""
    lib = os.path.relpath(liberty, folder)
    abc = ABC_SCRIPT.replace("{fanout}", str(MAX_FANOUT))
    lines = [
        *_front(design, top, folder, layers),
        f"dfflibmap -liberty {lib}",
        f"abc -D {period_ps:.0f} -liberty {lib} -script {abc}",
        "opt_clean",
        "delete t:$scopeinfo",
        f"tee -q -o stat.json stat -liberty {lib} -json -top {top}",
        "setattr -mod -unset keep_hierarchy",
        "flatten",
        "splitnets",
        "opt_clean -purge",
        # OpenSTA's reader takes no concatenation on the left of an assign
        "write_verilog -noattr -noexpr -nohex -nodec -simple-lhs netlist.v",
    ]
    return "\n".join(lines) + "\n"


def generic_script(design: Path, top: str, folder: Path, layers: int) -> str:
    """Technology-independent: simple gates from ABC, no library."""
    lines = [
        *_front(design, top, folder, layers),
        f"abc -g {GENERIC_GATES}",
        "opt_clean",
        "delete t:$scopeinfo",
        f"tee -q -o stat.json stat -json -top {top}",
    ]
    return "\n".join(lines) + "\n"


def read_stat(folder: Path, top: str) -> dict:
    """Cells by type, area and sequential area: the whole design and each ROM module."""
    data = json.loads((folder / "stat.json").read_text())
    modules = {name.lstrip("\\"): m for name, m in data["modules"].items()}
    design = data["design"]

    def cells(m: dict) -> dict[str, int]:
        by_type = m.get("num_cells_by_type", {})
        return {c: n for c, n in sorted(by_type.items()) if not c.startswith("rom_layer")}

    roms = {
        name: {"cells": sum(cells(m).values()), "area": m.get("area"), "by_type": cells(m)}
        for name, m in sorted(modules.items())
        if name.startswith("rom_layer")
    }
    return {
        "cells": sum(cells(design).values()),
        "by_type": cells(design),
        "area": design.get("area"),
        "sequential_area": design.get("sequential_area"),
        "roms": roms,
    }
