"""ECP5 block RAM: the flip-flop after a DP16KD's read moved into the block's output register.

``synth_ecp5`` maps a synchronous read to a DP16KD without its output register (REGMODE
"NOREG", nothing in Yosys' memory library asks for it), so the data leave the block 5.6 ns
after the clock edge. A layer built with ``read_register`` puts a flip-flop after each of
its memories' reads; this pass, run on Yosys' JSON netlist before nextpnr, moves every such
flip-flop into the block (REGMODE "OUTREG": 1.0 ns from clock to data, nextpnr's own
figures). It is the same register in another place, so only a block whose every data
output in use feeds exactly one flip-flop that has no other input (the read port's clock,
never reset, always enabled or all by one enable, which becomes the block's OCE) changes;
any other is left as Yosys made it.

``python -m bnnhw.boards.outreg NETLIST.json [SUMMARY.json]`` rewrites the netlist in place.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

FAMILIES = frozenset({"ecp5"})  # the FPGA families whose builds run this pass
BLOCK, FLOP = "DP16KD", "TRELLIS_FF"
PORTS = ("A", "B")
DATA_BITS = 18  # DO[AB]0..17


@dataclass(frozen=True)
class Absorbed:
    """What the pass did to one netlist."""

    blocks: int  # DP16KDs in the netlist
    registered: int  # of them now read through their output register
    flops: int  # fabric flip-flops removed

    def as_dict(self) -> dict[str, int]:
        return {"blocks": self.blocks, "registered": self.registered, "flops": self.flops}


def _param(cell: dict, name: str, default: str) -> str:
    """A string parameter; Yosys' JSON pads one that looks like bits with a space."""
    return str(cell["parameters"].get(name, default)).strip()


def _width(cell: dict, port: str) -> int:
    value = cell["parameters"].get(f"DATA_WIDTH_{port}", 18)
    return int(value, 2) if isinstance(value, str) else int(value)


def _read_clock(block: dict, port: str) -> str:
    """The port whose clock registers DO``port``: in the 36-bit mode both halves are port B's
    read (port A only writes)."""
    wide = _width(block, "A") == 36 or _width(block, "B") == 36
    return "B" if wide else port


ALWAYS = ["1"]


def _flop_enable(flop: dict, clock: list) -> list | None:
    """The enable of a flip-flop that only copies DI on rising edges of ``clock`` where its
    enable is high (``ALWAYS``: every edge); None for any other flip-flop."""
    conn = flop["connections"]
    cemux = _param(flop, "CEMUX", "CE")
    if cemux == "1" or conn.get("CE", ALWAYS) == ALWAYS:
        enable = ALWAYS
    elif cemux == "CE":
        enable = conn["CE"]
    else:  # inverted or never enabled
        return None
    no_reset = conn.get("LSR", ["0"]) == ["0"] or _param(flop, "LSRMUX", "LSR") == "0"
    plain = conn.get("CLK") == clock and _param(flop, "CLKMUX", "CLK") == "CLK" and no_reset
    return enable if plain else None


def absorb(module: dict) -> Absorbed:
    """Move each DP16KD's read flip-flops into its output register, in place."""
    cells: dict[str, dict] = module["cells"]
    loads: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for name, cell in cells.items():
        for pin, bits in cell["connections"].items():
            if cell["port_directions"].get(pin) != "output":
                for bit in bits:
                    if isinstance(bit, int):
                        loads[bit].append((name, pin))
    for port in module.get("ports", {}).values():
        for bit in port["bits"]:
            if isinstance(bit, int):
                loads[bit].append(("", "port"))

    renamed: dict[int, int] = {}
    gone: list[str] = []
    registered = 0
    blocks = [cell for cell in cells.values() if cell["type"] == BLOCK]
    for block in blocks:
        moves, enable = _moves(block, cells, loads)
        if not moves:
            continue
        registered += 1
        for pin, flop_name in moves:
            q = cells[flop_name]["connections"]["Q"]
            renamed[block["connections"][pin][0]] = q[0]
            block["connections"][pin] = q
            gone.append(flop_name)
        for port in {_read_clock(block, pin[2]) for pin, _ in moves} | {pin[2] for pin, _ in moves}:
            block["parameters"][f"REGMODE_{port}"] = "OUTREG"
            block["connections"][f"OCE{port}"] = enable
    for name in gone:
        del cells[name]
    for net in module.get("netnames", {}).values():
        net["bits"] = [renamed.get(b, b) if isinstance(b, int) else b for b in net["bits"]]
    return Absorbed(len(blocks), registered, len(gone))


def _moves(block: dict, cells: dict, loads: dict) -> tuple[list[tuple[str, str]], list]:
    """(DO pin, flip-flop) for every data output in use and the flip-flops' one enable
    (the block's OCE), or [] if any cannot move."""
    conn = block["connections"]
    moves, enables = [], set()
    for port in PORTS:
        if _param(block, f"REGMODE_{port}", "NOREG") != "NOREG":
            return [], ALWAYS
        reader = _read_clock(block, port)
        if conn.get(f"RST{reader}", ["0"]) != ["0"]:  # a reset would clear the register
            return [], ALWAYS
        for i in range(DATA_BITS):
            pin = f"DO{port}{i}"
            bits = conn.get(pin, ["x"])
            if not isinstance(bits[0], int) or not loads[bits[0]]:
                continue  # not in use
            users = loads[bits[0]]
            if len(users) != 1 or users[0][1] != "DI":
                return [], ALWAYS
            flop = cells[users[0][0]]
            enable = _flop_enable(flop, conn.get(f"CLK{reader}")) if flop["type"] == FLOP else None
            if enable is None:
                return [], ALWAYS
            enables.add(tuple(enable))
            moves.append((pin, users[0][0]))
    if len(enables) > 1:  # one output register enable for the block's every bit
        return [], ALWAYS
    return moves, list(enables.pop()) if enables else ALWAYS


def main(argv: list[str]) -> int:
    netlist = Path(argv[0])
    design = json.loads(netlist.read_text())
    totals = [absorb(module) for module in design["modules"].values() if "cells" in module]
    fields = ("blocks", "registered", "flops")
    summary = Absorbed(*(sum(getattr(t, f) for t in totals) for f in fields))
    netlist.write_text(json.dumps(design))
    if len(argv) > 1:
        Path(argv[1]).write_text(json.dumps(summary.as_dict()))
    print(
        f"outreg: {summary.registered} of {summary.blocks} DP16KD read through their output "
        f"register ({summary.flops} fabric flip-flops moved in)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
