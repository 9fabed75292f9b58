"""Buffer trees on the high-fanout nets that ABC cannot see: flip-flop outputs and ports.

ABC buffers the logic it maps, but a flip-flop's output (a ROM address bit, a bank select)
is an input of its network, so it can still drive hundreds of pins: one pre-layout delay of
several ns that a placement flow would repair. This pass splits every net with more than
``max_fanout`` cell inputs into a tree of the library's strongest buffer, in the flat
netlist Yosys wrote. The clock stays ideal (no tree): clock-tree synthesis is layout's.
The gate-level simulations run on the rewritten netlist, so they check this pass too.
"""

from __future__ import annotations

import re
from pathlib import Path

from bnnhw.asic.liberty import Library

_INSTANCE = re.compile(r"^\s*(\w+)\s+(\\\S+ |\S+)\s*\($")
_PIN = re.compile(r"^(\s*)\.(\w+)\((.*)\)(,?)\s*$")


def pick_buffer(library: Library) -> tuple[str, str, str] | None:
    """(cell, input pin, output pin) of the largest plain buffer, or None."""
    cells = [
        c
        for c in library.areas
        if re.search(r"(?i)buf", c)
        and not re.search(r"(?i)clkbuf|tbuf|bufinv|lpflow|dly", c)
        and len(library.outputs.get(c, [])) == 1
        and len(library.inputs.get(c, [])) == 1
    ]
    if not cells:
        return None
    cell = max(cells, key=lambda c: library.areas[c])
    return cell, library.inputs[cell][0], library.outputs[cell][0]


def buffer_fanout(
    netlist: Path, library: Library, max_fanout: int = 8, clock: str = "clk"
) -> tuple[str, int] | None:
    """Rewrite ``netlist`` in place; (buffer cell, buffers added), None without a buffer."""
    buffer = pick_buffer(library)
    if buffer is None:
        return None
    cell_name = buffer[0]
    lines = Path(netlist).read_text().splitlines()
    loads: dict[str, list[int]] = {}  # net -> line numbers of the input pins it drives
    current = None
    for i, line in enumerate(lines):
        start = _INSTANCE.match(line)
        if start:
            current = start.group(1)
            continue
        pin = _PIN.match(line)
        if current and pin and pin.group(2) not in library.outputs.get(current, []):
            net = pin.group(3)
            if net.strip() != clock and not net[:1].isdigit():
                loads.setdefault(net, []).append(i)
        if line.strip() == ");":
            current = None
    wires: list[str] = []
    cells: list[str] = []
    for net, pins in loads.items():
        if len(pins) > max_fanout:
            _tree(net, pins, lines, wires, cells, buffer, max_fanout)
    if wires:
        first = next(i for i, line in enumerate(lines) if _INSTANCE.match(line))
        end = max(i for i, line in enumerate(lines) if line.strip() == "endmodule")
        lines = lines[:first] + wires + lines[first:end] + cells + lines[end:]
        Path(netlist).write_text("\n".join(lines) + "\n")
    return cell_name, len(wires)


def _tree(
    net: str,
    pins: list[int],
    lines: list[str],
    wires: list[str],
    cells: list[str],
    buffer: tuple[str, str, str],
    fanout: int,
) -> None:
    """Drive the input pins on lines ``pins`` from ``net`` through a tree of buffers."""
    cell, pin_in, pin_out = buffer
    level: list[int | str] = list(pins)  # a netlist line, or "in:K": buffer K's input
    while len(level) > fanout:
        next_level: list[int | str] = []
        for k in range(0, len(level), fanout):
            n = len(wires)
            wire = f"bnnhw_buf_n{n}"
            wires.append(f"  wire {wire};")
            for load in level[k : k + fanout]:
                _connect(load, wire, lines, cells)
            cells += [f"  {cell} bnnhw_buf_i{n} (", f"    .{pin_in}(@),", f"    .{pin_out}({wire})"]
            cells.append("  );")
            next_level.append(f"in:{len(cells) - 3}")
        level = next_level
    for load in level:
        _connect(load, net, lines, cells)


def _connect(load: int | str, net: str, lines: list[str], cells: list[str]) -> None:
    """Point one input pin (a netlist line, or a new buffer's input) at ``net``."""
    if isinstance(load, str):
        i = int(load.split(":")[1])
        cells[i] = cells[i].replace("@", net)
        return
    m = _PIN.match(lines[load])
    lines[load] = f"{m.group(1)}.{m.group(2)}({net}){m.group(4)}"
