"""ASIC cost of the bundled MLPs: `bnnhw asic` at the default folding and fully unrolled.

    .venv/bin/python bench/asic.py                       # every point (hours on 2 cores)
    .venv/bin/python bench/asic.py --points digits:default tfc:default
    .venv/bin/python bench/asic.py --collect             # table from the scratch builds
    .venv/bin/python bench/asic.py --table-only          # rewrite asic.md from asic.json

Each point is one ``bnnhw asic MODEL -o SCRATCH/NAME`` run as a user runs it (OSU 0.18 um,
OpenSTA, Icarus), under ``nice`` and a wall-clock limit: a point that does not finish in
its limit is reported as such, with the compile and synthesis steps it reached and their
times. Gate-level simulation in Icarus takes ~0.2-0.4 s per cycle at 20-30k cells, so
the bigger points simulate fewer frames (a TFC frame is 716 cycles of latency; SFC's
2,604), and the fully unrolled ones skip the timed (SDF) check, which takes ~20 min at
120k cells (see docs/asic.md for the one made). Results go to ``bench/results/asic.json``
(merged point by point) and ``bench/results/asic.md``, beside published ASIC figures of
other technologies.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SCRATCH = Path("/tmp/bnnhw_asic_bench")
MODELS = {
    "digits": "models/digits_w1a1_in1_classic.onnx",
    "tfc": "models/tfc_w1a1_in1_classic.onnx",
    "sfc": "models/sfc_w1a1_in1_classic.onnx",
    "digits8": "models/digits_w1a1_in8_classic.onnx",  # 8-bit inputs: a first layer of adders
    "tfc8": "models/tfc_w1a1_in8_classic.onnx",
}
UNROLLED = ["--folding", "unrolled"]
# name -> (extra arguments, wall-clock limit in s)
POINTS: dict[str, tuple[list[str], int]] = {
    "digits:default": ([], 3600),
    "digits:unrolled": ([*UNROLLED, "--timed-frames", "0", "--activity-frames", "64"], 4200),
    "tfc:default": (["--timed-frames", "2", "--activity-frames", "4"], 3000),
    "tfc:unrolled": ([*UNROLLED, "--timed-frames", "0", "--activity-frames", "0"], 1500),
    "sfc:default": (["--timed-frames", "0", "--activity-frames", "1"], 3600),
    "sfc:unrolled": ([*UNROLLED, "--timed-frames", "0", "--activity-frames", "0"], 1500),
    "digits8:default": ([], 3600),
    "digits8:unrolled": ([*UNROLLED, "--timed-frames", "0", "--activity-frames", "16"], 4200),
    "tfc8:default": (["--timed-frames", "2", "--activity-frames", "4"], 3600),
    "tfc8:unrolled": ([*UNROLLED, "--timed-frames", "0", "--activity-frames", "0"], 1500),
}
# why the unrolled TFC-sized points are not run: past what CI (and a session) can spend
NOT_RUN = (
    "tfc:unrolled did not finish in 25 min (Amaranth's Verilog alone: 1,000 s, 36.8 MB); "
    "tfc8:unrolled has the same 784x64 first layer with 8-bit adders instead of XNORs, "
    "sfc:unrolled 5.7x TFC's weights: neither is synthesisable within CI's time."
)
# Published binary-network ASICs: other technologies, other scopes (programmable, with
# their feature-map memories); bnnhw hard-wires one network with its weights in logic.
PUBLISHED = [
    (
        "XNORBIN (Al Bahou et al., COOL CHIPS 2018, arXiv:1803.05849)",
        "UMC 65 nm, 0.8 V, binary CNN accelerator",
        "2.0 TOp/s/MGE, 95 TOp/s/W",
    ),
    (
        "XNOR Neural Engine (Conti et al., IEEE TCAD 2018, arXiv:1807.03010)",
        "22 nm, 0.4 V, post-layout MCU with the XNE IP",
        "21.6 fJ/op (46 TOp/s/W)",
    ),
    (
        "BrainTTA (Molendijk et al., arXiv:2211.11331)",
        "programmable mixed-precision SoC, binary mode, peak",
        "35 fJ/op, 614 GOp/s",
    ),
]


def command(name: str, scratch: Path) -> list[str]:
    model, _ = name.split(":")
    extra, _ = POINTS[name]
    out = scratch / name.replace(":", "_")
    return ["bnnhw", "asic", MODELS[model], "-o", str(out), "--force", *extra]


def run_point(name: str, scratch: Path) -> dict:
    """One ``bnnhw asic`` run under nice and its time limit; its log beside the build."""
    cmd = command(name, scratch)
    limit = POINTS[name][1]
    scratch.mkdir(parents=True, exist_ok=True)
    log = scratch / f"{name.replace(':', '_')}.log"
    exe = [str(Path(sys.executable).parent / "bnnhw"), *cmd[1:]]
    print(f"{name}: {' '.join(cmd)} (limit {limit} s)", flush=True)
    start = time.perf_counter()
    with open(log, "w") as f:
        try:
            code = subprocess.run(
                ["nice", "-n", "10", *exe], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                timeout=limit,
            ).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            code = None
    seconds = round(time.perf_counter() - start)
    with open(log, "a") as f:
        f.write(f"bench: {'timeout' if code is None else f'exit {code}'} after {seconds} s\n")
    return collect_point(name, scratch)


_BNNHW_LINE = re.compile(r"^(compiling|yosys:|opensta:|icarus:|\s+\w+\s+[\d.]+ s$)")


def _steps(log_text: str) -> dict[str, float]:
    """Compile step times and the Yosys time from a ``bnnhw asic`` log."""
    steps = {m[1]: float(m[2]) for m in re.finditer(r"^\s+(\w+)\s+([\d.]+) s$", log_text, re.M)}
    yosys = re.search(r"^yosys: (\d+) cells, ([\d.]+) s", log_text, re.M)
    if yosys:
        steps["yosys"] = float(yosys[2])
    return steps


def collect_point(name: str, scratch: Path) -> dict:
    """The row of one point from its build folder and log (run now or before)."""
    folder = scratch / name.replace(":", "_")
    log = folder.with_suffix(".log")
    text = log.read_text() if log.is_file() else ""
    row = {"point": name, "command": " ".join(command(name, Path("build/asic"))),
           "steps_s": _steps(text)}  # fmt: skip
    end = re.search(r"^bench: (.*) after (\d+) s$", text, re.M)
    if end:
        row["wall_s"] = int(end[2])
    report = folder / "report.json"
    asic = json.loads(report.read_text()).get("asic") if report.is_file() else None
    if not asic or asic.get("library") is None:
        reached = [line for line in text.splitlines() if _BNNHW_LINE.match(line)]
        row["error"] = (
            f"did not finish ({end[1] if end else 'no run log'}); last step: "
            f"{reached[-1].strip() if reached else 'none'}"
        )
        row |= _partial(folder)
        return row
    t, e = asic["timing"], asic["energy"]
    check = t["gate_level_check"]
    return row | {
        "cells": asic["cells"],
        "sequential_cells": asic["sequential_cells"],
        "area_um2": asic["area_um2"],
        "area_ge": asic["area_ge"],
        "sequential_share": asic["sequential_share"],
        "rom_share": asic["rom_share"],
        "unrolled": asic["unrolled"],
        "fmax_mhz": t["fmax_mhz"],
        "cycles_per_frame": asic["cycles_per_frame"],
        "latency_cycles": asic["latency_cycles"],
        "frames_per_s": asic["frames_per_s"],
        "latency_us": asic["latency_us"],
        "gops_per_mge": asic["gops_per_mge"],
        "energy_nj": e.get("energy_per_frame_nj"),
        "pj_per_op": (
            e["energy_per_frame_nj"] * 1e3 / asic["ops_per_frame"]
            if "energy_per_frame_nj" in e
            else None
        ),
        "activity": e.get("activity"),
        "energy_note": e.get("omitted"),
        "timed_check": (
            f"{check['matched']}/{check['frames']} frames at {check['period_ns']:.3f} ns"
            if "omitted" not in check
            else None
        ),
        "seconds": asic.get("seconds"),
    }


def _partial(folder: Path) -> dict:
    """How far Yosys got in a run that did not finish: the last pass it started."""
    log = folder / "asic" / "yosys.log"
    if not log.is_file():
        return {}
    passes = re.findall(r"^(\d+(?:\.\d+)*)\. (Executing [^\n]*)", log.read_text(), re.M)
    return {"yosys_last_pass": f"{passes[-1][0]}. {passes[-1][1]}"} if passes else {}


def _rom(row: dict) -> str:
    return "none (weights in logic)" if row["unrolled"] else f"{row['rom_share']:.1%}"


def _n(value, spec: str) -> str:
    return "-" if value is None else f"{value:{spec}}"


def markdown(rows: dict[str, dict]) -> str:
    done = [r for r in rows.values() if "error" not in r]
    lines = [
        "# ASIC: the bundled MLPs in OSU 0.18 um (typical corner, 1.8 V, pre-layout)",
        "",
        "Written by `bench/asic.py` (`bnnhw asic`: Yosys `dfflibmap` + `abc -liberty`, "
        "OpenSTA, Icarus with the library's cell models). GE = area / NAND2X1 (24 um^2). "
        "Energy: OpenSTA `report_power` with the mean toggle rate of a zero-delay "
        "gate-level run (see docs/asic.md); Fmax: OpenSTA, no wire load.",
        "",
        "| point | cells | GE | area mm^2 | sequential | ROM | Fmax MHz | cycles/frame "
        "| frames/s | latency us | TOp/s/MGE | nJ/frame | pJ/op | TOp/s/W | toggle rate "
        "| timed check at 1/Fmax |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in done:
        lines.append(
            f"| {r['point']} | {r['cells']:,} | {r['area_ge']:,.0f} | "
            f"{r['area_um2'] / 1e6:.3f} | {r['sequential_share']:.1%} | "
            f"{_rom(r)} | "
            f"{_n(r['fmax_mhz'], '.1f')} | {r['cycles_per_frame']} | "
            f"{_n(r['frames_per_s'], ',.0f')} | {_n(r['latency_us'], '.3f')} | "
            f"{_n(r['gops_per_mge'] and r['gops_per_mge'] / 1e3, '.1f')} | "
            f"{_n(r['energy_nj'], ',.0f' if (r['energy_nj'] or 0) >= 100 else '.3g')} | "
            f"{_n(r['pj_per_op'], '.3g')} | "
            f"{_n(r['pj_per_op'] and 1 / r['pj_per_op'], '.2f')} | {_n(r['activity'], '.3f')} | "
            f"{r['timed_check'] or 'not run'} |"
        )
    failed = [r for r in rows.values() if "error" in r]
    if failed:
        lines += ["", "Points that did not finish:", ""]
        for r in failed:
            steps = ", ".join(f"{k} {v:g} s" for k, v in r["steps_s"].items())
            extra = f"; Yosys was at {r['yosys_last_pass']}" if r.get("yosys_last_pass") else ""
            wall = f" after {r['wall_s']} s" if "wall_s" in r else ""
            lines.append(f"- {r['point']}{wall}: {r['error']} (steps: {steps}){extra}")
    missing = [n for n in POINTS if n not in rows]
    if missing:
        lines += ["", f"Not run: {', '.join(missing)}. {NOT_RUN}"]
    notes = [r for r in done if r.get("energy_note")]
    if notes:
        lines += ["", "Energy left out:", ""]
        lines += [f"- {r['point']}: {r['energy_note']}" for r in notes]
    remarks = [r for r in rows.values() if r.get("note")]
    if remarks:
        lines += ["", "How the figures were obtained, where not by one bench run:", ""]
        lines += [f"- {r['point']}: {r['note']}" for r in remarks]
    lines += ["", "Commands (each under `nice -n 10`):", ""]
    lines += [f"    {r['command']}" for r in rows.values()]
    lines += [
        "",
        "## Published binary-network ASICs: OTHER technologies and scopes",
        "",
        "Not comparable one to one: other processes (65 and 22 nm against 180 nm here), "
        "lower voltages, programmable engines with feature-map memories; a bnnhw netlist "
        "hard-wires one network. Quoted from the papers' abstracts.",
        "",
        "| design | technology, scope | figures |",
        "|---|---|---|",
        *(f"| {d} | {t} | {f} |" for d, t, f in PUBLISHED),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", nargs="+", choices=list(POINTS), default=list(POINTS))
    ap.add_argument("--scratch", type=Path, default=SCRATCH, help="build folders and logs")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--collect", action="store_true", help="read finished builds, run none")
    mode.add_argument("--table-only", action="store_true", help="rewrite asic.md from asic.json")
    args = ap.parse_args(argv)
    path = RESULTS / "asic.json"
    rows = json.loads(path.read_text()) if path.is_file() else {}
    if not args.table_only:
        for name in args.points:
            rows[name] = (collect_point if args.collect else run_point)(name, args.scratch)
        rows = {n: rows[n] for n in POINTS if n in rows}
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(rows, indent=1) + "\n")
    (RESULTS / "asic.md").write_text(markdown(rows))  # --table-only: after editing notes
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
