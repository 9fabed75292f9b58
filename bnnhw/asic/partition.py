"""The flat netlist cut into modules of a few hundred cells, for SDF annotation in Icarus.

Icarus' ``$sdf_annotate`` finds each SDF cell by a linear scan of its scope's instances
(``find_scope`` in iverilog's ``vpi/sys_sdf.c``), so a flat netlist of N cells costs N^2
name comparisons: 382 s for the 22k-cell digits MLP on this machine, hours for 120k cells.
With the cells in about sqrt(N) groups of about sqrt(N) each, a lookup scans two short
lists. The grouping changes no logic and no timing: a port is the same net in Icarus, and
the SDF's instance paths are rewritten to ``group/cell`` to match.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

_INSTANCE = re.compile(r"^\s*(\w+)\s+(\\\S+ |\S+)\s*\($")
_PIN = re.compile(r"^\s*\.(\w+)\((.*)\),?\s*$")
_DECL = re.compile(r"^\s*(input|output)\s+(?:\[[^\]]*\]\s*)?(\\\S+ |\S+?)\s*;")


def _base(net: str) -> str:
    """``o__payload[3]`` -> ``o__payload``; an escaped name is its own base."""
    return net if net.startswith("\\") else net.split("[", 1)[0]


def _bit(net: str) -> bool:
    """A bit of a vector (not an escaped name): it cannot be declared inside a group."""
    return "[" in net and not net.startswith("\\")


def partition(netlist: Path, out: Path, outputs: dict[str, list[str]]) -> dict[str, str]:
    """Write ``netlist`` as groups of cells to ``out``; returns cell instance -> group.

    ``outputs``: the library's output pins per cell, to give each group port a direction.
    """
    lines = Path(netlist).read_text().splitlines()
    cells: list[tuple[str, str, list[tuple[str, str]]]] = []  # (type, name, pins)
    head: list[str] = []
    tail: list[str] = []
    ports: set[str] = set()
    current = None
    for line in lines:
        start = _INSTANCE.match(line)
        if start and not line.lstrip().startswith(("module", "assign")):
            current = (start.group(1), start.group(2), [])
            continue
        if current is not None:
            pin = _PIN.match(line)
            if pin:
                current[2].append((pin.group(1), pin.group(2)))
            elif line.strip() == ");":
                cells.append(current)
                current = None
            continue
        decl = _DECL.match(line)
        if decl:
            ports.add(decl.group(2))
        (tail if cells else head).append(line)
    size = max(64, math.isqrt(len(cells)) + 1)
    groups = [cells[k : k + size] for k in range(0, len(cells), size)]
    users: dict[str, set[int]] = {}
    for g, group in enumerate(groups):
        for _, _, pins in group:
            for _, net in pins:
                users.setdefault(net, set()).add(g)
    top_text = "\n".join(x for x in head + tail if x.lstrip().startswith("assign"))
    modules, instances, where = [], [], {}
    for g, group in enumerate(groups):
        name = f"bnnhw_grp_{g}"
        driven = {
            net for kind, _, pins in group for pin, net in pins if pin in outputs.get(kind, [])
        }
        nets = list(dict.fromkeys(net for _, _, pins in group for _, net in pins))
        external = [
            n
            for n in nets
            if not n[:1].isdigit()
            and (len(users[n]) > 1 or _base(n) in ports or n.rstrip() in top_text or _bit(n))
        ]
        inside = {n: f"p{k}" for k, n in enumerate(external)}
        body = [f"module {name} ({', '.join(inside.values())});"]
        body += [f"  {'output' if n in driven else 'input'} {p};" for n, p in inside.items()]
        body += [f"  wire {n};" for n in nets if n not in inside and not n[:1].isdigit()]
        for kind, cell, pins in group:
            where[cell.rstrip()] = name
            conns = ", ".join(f".{pin}({inside.get(net, net)})" for pin, net in pins)
            body.append(f"  {kind} {cell} ({conns});")
        modules.append("\n".join([*body, "endmodule"]))
        conns = ", ".join(f".{p}({n})" for n, p in inside.items())
        instances.append(f"  {name} {name} ({conns});")
    out.write_text("\n".join([*head, *instances, *tail, "", *modules]) + "\n")
    return where


def model_outputs(models: Path) -> dict[str, list[str]]:
    """Output pins per cell, from the library's Verilog cell models."""
    found: dict[str, list[str]] = {}
    for m in re.finditer(
        r"^module\s+(\w+)\b(.*?)^endmodule", Path(models).read_text(), re.M | re.S
    ):
        found[m.group(1)] = re.findall(r"^\s*output\s+(\w+)", m.group(2), re.M)
    return found


def regroup_sdf(sdf: Path, where: dict[str, str], out: Path) -> Path:
    """The SDF with each cell's instance path as ``group/cell`` (OpenSTA's divider ``/``)."""

    def path(m: re.Match) -> str:
        cell = m.group(1)
        return f"(INSTANCE {where[cell]}/{cell})" if cell in where else m.group(0)

    text = re.sub(r"\(INSTANCE ([^)\s]+)\)", path, Path(sdf).read_text())
    out.write_text(text)
    return out
