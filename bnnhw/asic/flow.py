"""``run_asic``: a compiled build to a standard-cell netlist, its area, timing and energy.

Everything goes to ``DIR/asic/``: the Yosys and OpenSTA scripts and logs, ``stat.json``,
``netlist.v`` (flat, the library's cells), and the gate-level simulation used for the
toggle rates. The returned dict is what ``report.json`` holds under ``"asic"``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bnnhw.asic import buffers, synth, timing
from bnnhw.asic import liberty as lib_mod
from bnnhw.errors import InputError
from bnnhw.yosys import run_yosys, yosys_command

if TYPE_CHECKING:
    from bnnhw.build import Build

DEFAULT_CLOCK_NS = 10.0
ACTIVITY_FRAMES = 8  # gate-level Icarus runs slowly: ~0.1 s per cycle at 20k cells
TIMED_FRAMES = 8


def check_tools(liberty: str | Path | None, clock_ns: float = DEFAULT_CLOCK_NS) -> None:
    """Before compiling: the clock, Yosys, and OpenSTA unless only a generic count is made."""
    _check_clock(clock_ns)
    yosys_command()
    if liberty is not None:
        if not Path(liberty).is_file():
            raise InputError(f"--liberty {liberty}: no such file; give a Liberty (.lib) file")
        timing.sta_command()
        return
    try:
        lib_mod.default_library()
    except lib_mod.LibraryMissing:
        return  # run_asic makes the generic count, then says how to get the library
    timing.sta_command()


def _check_clock(clock_ns: float) -> None:
    if not 0 < clock_ns < 1e6:
        raise InputError(f"--clock-ns {clock_ns}: give a clock period in ns, e.g. 10")


def run_asic(
    build: Build,
    *,
    liberty: str | Path | None = None,
    clock_ns: float = DEFAULT_CLOCK_NS,
    activity_frames: int = ACTIVITY_FRAMES,
    timed_frames: int = TIMED_FRAMES,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Synthesis, timing and power of ``build``; raises LibraryMissing after a generic count.

    Without ``liberty`` and without the default library, the design is still mapped to
    simple gates (``abc -g``), that count is returned in the exception's ``report``.
    """
    say = progress or (lambda _line: None)
    _check_clock(clock_ns)
    folder = Path(build.folder) / "asic"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    layers = len(build.net.layers)
    design = write_rtlil(build, folder)
    models = None
    if liberty is None:
        try:
            lib_path, models = lib_mod.default_library()
        except lib_mod.LibraryMissing as exc:
            yosys_command()
            say("no standard-cell library: technology-independent gate count (abc -g)")
            script = synth.generic_script(design, build.top, folder, layers)
            run_yosys(script, folder, "yosys")
            exc.report = _generic_report(build, synth.read_stat(folder, build.top))
            raise
    else:
        lib_path = Path(liberty)
        if not lib_path.is_file():
            raise InputError(f"--liberty {liberty}: no such file; give a Liberty (.lib) file")
    library = lib_mod.read_library(lib_path)
    unit_ns = timing.ns_per_unit(library.time_unit)
    timing.sta_command()  # before minutes of synthesis, say if OpenSTA is missing
    seconds: dict[str, float] = {}

    start = time.perf_counter()
    say(f"yosys: mapping to {library.name} ({lib_path.name})")
    script = synth.synth_script(
        design, build.top, folder, layers, lib_path.resolve(), clock_ns * 1e3
    )
    run_yosys(script, folder, "yosys")
    cells = synth.read_stat(folder, build.top)
    _add_buffers(cells, folder / "netlist.v", library)
    seconds["yosys"] = round(time.perf_counter() - start, 2)
    say(f"yosys: {cells['cells']} cells, {seconds['yosys']} s")

    start = time.perf_counter()
    period = clock_ns / unit_ns
    out = timing.run_sta(
        timing.sta_script(lib_path.resolve(), folder / "netlist.v", build.top, period, None),
        folder,
        "sta",
    )
    sta = timing.parse_timing(out, period, library.outputs)
    sta = _in_ns(sta, unit_ns)
    seconds["sta"] = round(time.perf_counter() - start, 2)
    say(f"opensta: worst slack {sta['worst_slack']:.3f} ns at {clock_ns} ns")

    sta["gate_level_check"] = _timed_check(build, models, lib_path, folder, sta, timed_frames, say)
    power = _energy(build, library, lib_path, models, folder, sta, activity_frames, say)
    report = _report(build, library, lib_path, cells, sta, power)
    report["seconds"] = seconds
    return report


def write_rtlil(build: Build, folder: Path) -> Path:
    """The design's RTLIL, not the Verilog written from it: see ``synth``'s docstring."""
    from bnnhw.rtl_gen import to_rtlil

    design = folder / "design.il"
    design.write_text(to_rtlil(build.accelerator(), build.top))
    return design


def _add_buffers(cells: dict, netlist: Path, library: lib_mod.Library) -> None:
    """Buffer trees on flip-flop outputs and ports (buffers.py), added to the count."""
    done = buffers.buffer_fanout(netlist, library, synth.MAX_FANOUT)
    cells["fanout_buffers"] = done[1] if done else 0
    if done and done[1]:
        cell, n = done
        cells["by_type"][cell] = cells["by_type"].get(cell, 0) + n
        cells["cells"] += n
        cells["area"] += n * library.areas[cell]


def _in_ns(sta: dict, unit_ns: float) -> dict:
    """Library time units to ns."""
    for key in ("period", "worst_slack", "critical_delay", "arrival"):
        if sta.get(key) is not None:
            sta[key] *= unit_ns
    for row in sta["path"]:
        row["delay"] *= unit_ns
        row["time"] *= unit_ns
    if sta["fmax_mhz"] is not None:
        sta["fmax_mhz"] /= unit_ns
    return sta


def _why_no_gate_sim(models: Path | None, lib_path: Path, frames: int, flag: str) -> str | None:
    if frames <= 0:
        return f"{flag} 0: no gate-level simulation asked for"
    if models is None:
        return (
            f"no cell models (Verilog) beside {lib_path.name}, so no gate-level simulation "
            "(the default OSU library has them)"
        )
    if not (shutil.which("iverilog") and shutil.which("vvp")):
        return "Icarus Verilog is not installed (apt-get install iverilog)"
    return None


def _timed_check(build, models, lib_path, folder, sta, frames, say) -> dict:
    """The netlist with OpenSTA's cell delays at 1/Fmax: does it still match the golden?"""
    if sta["fmax_mhz"] is None:
        return {"omitted": "no Fmax"}
    why = _why_no_gate_sim(models, lib_path, frames, "--timed-frames")
    if why:
        return {"omitted": why}
    from bnnhw.asic.gatesim import simulate_timed

    period = 1e3 / sta["fmax_mhz"]
    say(f"icarus: {frames} frames with OpenSTA's cell delays at 1/Fmax = {period:.3f} ns")
    start = time.perf_counter()
    result = simulate_timed(
        build,
        folder / "netlist.v",
        models,
        folder / "netlist.sdf",
        folder / "timed_sim",
        period,
        frames=frames,
    )
    bad = result["mismatch_count"]
    return {
        "period_ns": period,
        "frames": frames,
        "matched": frames - bad if result["received"] == frames else 0,
        "first_mismatch": result["first_mismatch"],
        "seconds": round(time.perf_counter() - start, 2),
    }


def _energy(build, library, lib_path, models, folder, sta, frames, say) -> dict:
    """Energy per frame at Fmax, from toggle rates of a gate-level simulation; or why not."""
    if sta["fmax_mhz"] is None:
        return {"omitted": "no Fmax (the worst path is longer than any clock)"}
    why = _why_no_gate_sim(models, lib_path, frames, "--activity-frames")
    if why:
        return {"omitted": why + ": no measured toggle rates"}
    from bnnhw.asic.gatesim import simulate_netlist, toggle_rate

    say(f"icarus: gate-level simulation of {frames} frames for toggle rates")
    start = time.perf_counter()
    result = simulate_netlist(
        build,
        folder / "netlist.v",
        models,
        folder / "gate_sim",
        frames=frames,
        in_gap=0.0,
        out_gap=0.0,
        tests=("throughput",),
        waves=True,
    )
    if not result.ok:
        return {
            "omitted": "the gate-level netlist disagreed with the golden model: "
            f"{result.mismatches[:1]}; see {result.folder}",
            "mismatch": True,
        }
    rate = toggle_rate(result.vcd)
    result.vcd.unlink()  # large, and only the rate is needed
    unit_ns = timing.ns_per_unit(library.time_unit)
    period_ns = 1e3 / sta["fmax_mhz"]
    out = timing.run_sta(
        timing.sta_script(
            lib_path.resolve(),
            folder / "netlist.v",
            build.top,
            period_ns / unit_ns,
            rate["activity"],
        ),
        folder,
        "power",
    )
    rows = timing.parse_power(out)
    if rows is None:
        return {"omitted": f"OpenSTA's report_power printed no totals; see {folder}/power.log"}
    cycles = _cycles_per_frame(build)
    total_w = rows["total"]["total"]
    return {
        "method": "OpenSTA report_power (Liberty internal + switching + leakage power) with "
        "one global toggle rate: the mean transitions per cycle of the netlist's nets in a "
        f"gate-level Icarus run of {frames} frames at full speed (reset and pipeline fill "
        "included); the clock net toggles every cycle",
        "activity": rate["activity"],
        "nets": rate["nets"],
        "cycles_simulated": rate["cycles"],
        "clock_mhz": sta["fmax_mhz"],
        "power_w": rows,
        "energy_per_frame_nj": total_w * cycles * period_ns,
        "seconds": round(time.perf_counter() - start, 2),
    }


def _cycles_per_frame(build: Build) -> int:
    """The slowest layer, or the host link when a frame takes more words than cycles."""
    r = build.report
    return max(r["initiation_interval"], r["interface"]["frame_words"])


def ops_per_frame(build: Build) -> int:
    """Binary operations per frame: one XNOR and one add per weight and position."""
    return sum(2 * layer["weight_bits"] * layer["positions"] for layer in build.report["layers"])


def _report(build, library, lib_path, cells, sta, power) -> dict:
    nand_cell, nand_area = library.nand2
    area = cells["area"]
    rom_area = sum(r["area"] for r in cells["roms"].values())
    sequential = sum(n for c, n in cells["by_type"].items() if c in library.sequential)
    cycles = _cycles_per_frame(build)
    fmax = sta["fmax_mhz"]
    frames_s = fmax * 1e6 / cycles if fmax else None
    ops = ops_per_frame(build)
    ge = area / nand_area
    return {
        "library": library.name,
        "liberty": str(lib_path),
        "netlist": "asic/netlist.v",
        "cells": cells["cells"],
        "cells_by_type": cells["by_type"],
        "fanout_buffers": cells["fanout_buffers"],
        "sequential_cells": sequential,
        "area_um2": area,
        "nand2_cell": nand_cell,
        "nand2_area_um2": nand_area,
        "area_ge": ge,
        "sequential_area_um2": cells["sequential_area"],
        "sequential_share": cells["sequential_area"] / area if area else 0.0,
        "rom_area_um2": rom_area,
        "rom_share": rom_area / area if area else 0.0,
        "roms": cells["roms"],
        "unrolled": all(la["nf"] * la["sf"] == 1 for la in build.report["layers"]),
        "timing": sta,
        "cycles_per_frame": cycles,
        "latency_cycles": build.report["latency_cycles"],
        "frames_per_s": frames_s,
        "latency_us": build.report["latency_cycles"] / fmax if fmax else None,
        "ops_per_frame": ops,
        "gops": ops * frames_s / 1e9 if frames_s else None,
        "gops_per_mge": ops * frames_s / 1e9 / (ge / 1e6) if frames_s else None,
        "energy": power,
    }


def _generic_report(build: Build, cells: dict) -> dict:
    return {
        "library": None,
        "cells": cells["cells"],
        "cells_by_type": cells["by_type"],
        "rom_cells": sum(r["cells"] for r in cells["roms"].values()),
        "roms": cells["roms"],
        "cycles_per_frame": _cycles_per_frame(build),
        "latency_cycles": build.report["latency_cycles"],
    }
