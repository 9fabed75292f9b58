"""Static timing and power with OpenSTA (Debian's ``opensta``, binary ``sta``).

Constraints: one clock on ``clk``, inputs arriving and outputs needed at the clock edge
(input and output delay 0; the design registers its ports), no wire load (the netlist
is not placed), the library's typical corner. Fmax is ``1 / (period - worst slack)``:
the worst path's delay plus the setup time it needs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from bnnhw.errors import BnnhwError
from bnnhw.yosys import ToolMissing

TIME_UNITS = {"1ns": 1.0, "1ps": 1e-3, "10ps": 1e-2, "100ps": 0.1, "1us": 1e3}
INSTALL = "apt-get install opensta"
POWER_COLUMNS = ("internal", "switching", "leakage", "total")


def sta_command() -> str:
    """``$STA`` or ``sta`` on PATH; ToolMissing says how to install it."""
    name = os.environ.get("STA", "sta")
    found = shutil.which(name)
    if not found:
        raise ToolMissing(f"OpenSTA not found ({name!r} is not on PATH): {INSTALL}")
    return found


def ns_per_unit(time_unit: str) -> float:
    unit = time_unit.replace(" ", "")
    if unit not in TIME_UNITS:
        raise BnnhwError(f"Liberty time unit {time_unit!r} is not one bnnhw knows ({TIME_UNITS})")
    return TIME_UNITS[unit]


def sta_script(
    liberty: Path, netlist: Path, top: str, period: float, activity: float | None
) -> str:
    """Timing report, worst slack, the cells' delays (SDF), and with an activity the power."""
    lines = [
        f"read_liberty {liberty}",
        f"read_verilog {netlist}",
        f"link_design {top}",
        f"create_clock -name clk -period {period:.6g} [get_ports clk]",
        "set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports clk]]",
        "set_output_delay 0 -clock clk [all_outputs]",
        "report_checks -path_delay max -fields {input_pin} -digits 4",
        'puts "BNNHW_WNS [sta::worst_slack -max]"',
        "write_sdf -digits 4 -no_timestamp -no_version netlist.sdf",
    ]
    if activity is not None:
        lines += [
            f"set_power_activity -global -activity {activity:.6g} -duty 0.5",
            "report_power -digits 8",
        ]
    return "\n".join([*lines, "exit"]) + "\n"


def run_sta(script: str, folder: Path, name: str = "sta") -> str:
    """Run an OpenSTA script in ``folder``; its output (also in ``name``.log)."""
    path = folder / f"{name}.tcl"
    path.write_text(script)
    done = subprocess.run(
        [sta_command(), "-no_init", "-no_splash", "-exit", path.name],
        cwd=folder,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    out = done.stdout + done.stderr
    (folder / f"{name}.log").write_text(out)
    errors = [line for line in out.splitlines() if line.startswith("Error")]
    if done.returncode != 0 or errors:
        raise BnnhwError(f"OpenSTA failed: {(errors or [out[-200:]])[0]}; see {folder / name}.log")
    return out


_ROW = re.compile(r"^\s*(-?[\d.]+)\s+(-?[\d.]+)\s+([\^v])\s+(\S+)\s+\((\S+)\)\s*$")


def parse_timing(out: str, period: float, outputs: dict[str, list[str]]) -> dict:
    """Worst slack, Fmax and the critical path: each cell's output pin and its delay.

    ``outputs``: the library's output pins per cell, to tell a cell's delay (at its output
    pin) from the wire before it (at its input pin, 0 without a wire load).
    """
    wns = re.search(r"BNNHW_WNS\s+(\S+)", out)
    if wns is None:
        raise BnnhwError("OpenSTA printed no worst slack: the design has no timed path")
    slack = float(wns.group(1))
    start = re.search(r"Startpoint:\s*(\S+)(.*)", out)
    end = re.search(r"Endpoint:\s*(\S+)(.*)", out)
    arrival = re.search(r"(-?[\d.]+)\s+data arrival time", out)
    path = []
    for line in out.split("data arrival time")[0].splitlines():
        row = _ROW.match(line)
        if row and "/" in row[4] and float(row[1]) >= 0:
            path.append(
                {"pin": row[4], "cell": row[5], "delay": float(row[1]), "time": float(row[2])}
            )
    return {
        "period": period,
        "worst_slack": slack,
        "critical_delay": period - slack,
        "fmax_mhz": 1e3 / (period - slack) if period > slack else None,
        "startpoint": start.group(1) + start.group(2) if start else None,
        "endpoint": end.group(1) + end.group(2) if end else None,
        "arrival": float(arrival.group(1)) if arrival else None,
        "path": [p for p in path if p["pin"].rsplit("/", 1)[1] in outputs.get(p["cell"], [])],
    }


def parse_power(out: str) -> dict | None:
    """Internal, switching, leakage and total power in W from ``report_power``."""
    rows = {}
    for group in ("Sequential", "Combinational", "Total"):
        m = re.search(rf"^{group}\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", out, re.MULTILINE)
        if m:
            rows[group.lower()] = dict(
                zip(
                    ("internal", "switching", "leakage", "total"),
                    map(float, m.groups()),
                    strict=True,
                )
            )
    return rows or None
