"""The ASIC section of ``report.md`` and the summary ``bnnhw asic`` prints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def summary(r: Mapping[str, Any]) -> str:
    """A few lines: area, timing, throughput, energy."""
    if r.get("library") is None:
        return (
            f"technology-independent: {r['cells']} gates ({_types(r['cells_by_type'])}), "
            f"of which ROMs {r['rom_cells']}"
        )
    t, e = r["timing"], r["energy"]
    energy = (
        f"{e['energy_per_frame_nj']:.3g} nJ/frame at Fmax (activity {e['activity']:.3f})"
        if "energy_per_frame_nj" in e
        else f"energy left out: {e['omitted']}"
    )
    return "\n".join(
        [
            f"{r['library']}: {r['cells']} cells, {r['area_um2']:,.0f} um^2 = "
            f"{r['area_ge']:,.0f} GE ({r['nand2_cell']}), sequential {r['sequential_share']:.1%}"
            f", ROMs {r['rom_share']:.1%}",
            f"timing at {t['period']:g} ns: worst slack {t['worst_slack']:.3f} ns, Fmax "
            f"{_fmt(t['fmax_mhz'], '.1f', ' MHz')}; at 1/Fmax with cell delays: "
            f"{_timed(t['gate_level_check'])}",
            f"{r['cycles_per_frame']} cycles/frame: {_fmt(r['frames_per_s'], ',.0f')} frames/s, "
            f"latency {_fmt(r['latency_us'], '.3f', ' us')} ({r['latency_cycles']} cycles)",
            energy,
        ]
    )


def _types(by_type: Mapping[str, int]) -> str:
    return ", ".join(f"{c} {n}" for c, n in sorted(by_type.items(), key=lambda kv: -kv[1]))


def markdown(r: Mapping[str, Any]) -> str:
    """The section appended to the build's report.md."""
    if r.get("library") is None:
        return (
            "\n## ASIC (technology-independent)\n\n"
            f"No standard-cell library: {r['cells']} simple gates after `abc -g "
            f"AND,NAND,OR,NOR,XOR,XNOR,MUX` and Yosys' flip-flops, of which ROM logic "
            f"{r['rom_cells']}.\n\n{_type_table(r['cells_by_type'], None)}"
        )
    t, e = r["timing"], r["energy"]
    rom_line = (
        "every layer is fully unrolled: its weights and thresholds are constants folded "
        "into the logic (no ROM)"
        if r["unrolled"]
        else ", ".join(
            f"{name} {rom['area']:,.0f} um^2 ({rom['cells']} cells)"
            for name, rom in r["roms"].items()
        )
        or "none"
    )
    lines = [
        f"\n## ASIC: {r['library']}\n",
        f"Netlist `{r['netlist']}` (Yosys `dfflibmap` + `abc -liberty`, flat), "
        f"Liberty `{r['liberty']}`.\n",
        "| | |",
        "|---|---|",
        f"| cells | {r['cells']:,} ({r['sequential_cells']:,} sequential) |",
        f"| area | {r['area_um2']:,.0f} um^2 = {r['area_ge']:,.0f} GE "
        f"(1 GE = {r['nand2_cell']}, {r['nand2_area_um2']:g} um^2) |",
        f"| sequential share | {r['sequential_share']:.1%} of the area |",
        f"| ROM share | {r['rom_share']:.1%} of the area: {rom_line} |",
        f"| clock asked | {t['period']:g} ns: worst slack {t['worst_slack']:.3f} ns |",
        f"| Fmax | {_fmt(t['fmax_mhz'], '.1f', ' MHz')} (critical path "
        f"{t['critical_delay']:.3f} ns incl. setup) |",
        f"| gate-level at 1/Fmax | {_timed(t['gate_level_check'])} |",
        f"| throughput at Fmax | {r['cycles_per_frame']} cycles/frame: "
        f"{_fmt(r['frames_per_s'], ',.0f')} frames/s, {_fmt(r['gops'], ',.1f')} GOp/s "
        f"({r['ops_per_frame']:,} binary ops/frame), {_fmt(r['gops_per_mge'], ',.0f')} "
        "GOp/s per MGE |",
        f"| latency at Fmax | {r['latency_cycles']} cycles = "
        f"{_fmt(r['latency_us'], '.3f', ' us')} |",
        f"| energy per frame | {_energy(e)} |",
        "",
        "Timing: OpenSTA, typical corner, no wire load (unplaced), ports constrained at the "
        "clock edge; Fmax = 1 / (period - worst slack).",
        "",
        f"Critical path: {t['startpoint']} to {t['endpoint']}\n",
        "| pin | cell | delay ns | time ns |",
        "|---|---|---|---|",
        *(f"| {p['pin']} | {p['cell']} | {p['delay']:.3f} | {p['time']:.3f} |" for p in t["path"]),
        "",
        _type_table(r["cells_by_type"], r["roms"]),
    ]
    if "method" in e:
        lines += ["", f"Energy: {e['method']}."]
    return "\n".join(lines) + "\n"


def _timed(c: Mapping[str, Any]) -> str:
    if "omitted" in c:
        return f"not run: {c['omitted']}"
    verdict = "bit-exact" if c["matched"] == c["frames"] else "MISMATCH"
    return (
        f"{verdict}: {c['matched']}/{c['frames']} frames match in Icarus with OpenSTA's cell "
        f"delays (SDF) at {c['period_ns']:.3f} ns"
    )


def _energy(e: Mapping[str, Any]) -> str:
    if "energy_per_frame_nj" not in e:
        return f"left out: {e['omitted']}"
    total = e["power_w"]["total"]
    return (
        f"{e['energy_per_frame_nj']:.4g} nJ ({total['total'] * 1e3:.3g} mW at "
        f"{e['clock_mhz']:.1f} MHz: internal {total['internal'] * 1e3:.3g}, switching "
        f"{total['switching'] * 1e3:.3g}, leakage {total['leakage'] * 1e3:.3g} mW; toggle "
        f"rate {e['activity']:.3f})"
    )


def _type_table(by_type: Mapping[str, int], roms: Mapping[str, Any] | None) -> str:
    rom_counts: dict[str, int] = {}
    for rom in (roms or {}).values():
        for cell, n in rom["by_type"].items():
            rom_counts[cell] = rom_counts.get(cell, 0) + n
    rows = ["| cell | count | in ROMs |", "|---|---|---|"]
    for cell, n in sorted(by_type.items(), key=lambda kv: -kv[1]):
        rows.append(f"| {cell} | {n:,} | {rom_counts.get(cell, 0):,} |")
    return "\n".join(rows) + "\n"
