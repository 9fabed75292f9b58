"""Simulation speed of the generated accelerators: the cocotb bench against the fast harness.

    .venv/bin/python bench/sim.py [--sims verilator,icarus] [--frames N] [--fast-frames N]
                                  [-o DIR] [models/*.onnx ...]
    .venv/bin/python bench/sim.py --smoke   # the digits MLP, a few frames, Icarus only (CI)

For each model and simulator, from one run: the build seconds of the cocotb bench's
simulator and of the fast harness (one-off compiles), then simulated frames/s and cycles/s
for the cocotb bench (its streaming test, Python in the loop every cycle) and for the
compiled harness (sim/fast_tb.py), both at the verify defaults (P = 0.1 input gaps and
output stalls), and cycles per frame against the ideal initiation interval. Every frame
is checked bit for bit in both benches. Rates are per wall-clock second; the CPU seconds
of the simulator processes are recorded too, since on a shared machine wall time
measures the load as much as the simulator. Frame counts follow each model's cycles per
frame (``--frames``/``--fast-frames`` fix them), so a CNV on Icarus stays in minutes:
there the harness runs at least 8 frames and its gap-free run (cycles per frame) as many
as the harness, up to 48.
Results go to ``bench/results/sim.json`` and ``sim.md`` (``-o`` elsewhere; none with
``--smoke`` unless ``-o`` is given); rows of other models or simulators already there are
kept, so slow pairs can be run separately.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

from bnnhw.build import compile_model
from bnnhw.sim.fast import THROUGHPUT_FRAMES, verify_fast
from bnnhw.sim.runner import build_simulator, simulate
from bnnhw.sim.vectors import make_vectors

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SMOKE = "digits_w1a1_in1_classic"
GAP = 0.1  # bnnhw verify's default input-gap and output-stall probabilities
#: simulated cycles per bench and simulator when the frame counts are not given: enough
#: for a steady rate, small enough for a CNV on Icarus (a few thousand cycles per CPU
#: second, a few hundred per wall second on a loaded machine)
COCOTB_CYCLES = {"verilator": 40_000, "icarus": 10_000}
FAST_CYCLES = {"verilator": 4_000_000, "icarus": 40_000}
#: the fewest harness frames; on Icarus also the gap-free run's frames when a CNV needs
#: fewer than THROUGHPUT_FRAMES (cycles per frame come from its middle half)
FAST_MIN_FRAMES = {"verilator": THROUGHPUT_FRAMES, "icarus": 8}
COLUMNS = [
    ("build_s", "build s"),
    ("fps", "frames/s"),
    ("cps", "cycles/s"),
    ("fast_build_s", "fast build s"),
    ("fast_fps", "fast frames/s"),
    ("fast_cps", "fast cycles/s"),
    ("speedup", "speed-up"),
]


def _frames(budget: int, interval: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, budget // max(interval, 1)))


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_sim(build, sim: str, frames: int | None, fast_frames: int | None) -> dict:
    """One simulator: cocotb and fast-harness figures; exits if a frame differs."""
    name, interval = build.net.name, build.report["initiation_interval"]
    frames = frames or _frames(COCOTB_CYCLES[sim], interval, 4, 50)
    fast_frames = fast_frames or _frames(FAST_CYCLES[sim], interval, FAST_MIN_FRAMES[sim], 1000)
    _, seconds = build_simulator(build, sim)
    vectors = make_vectors(build, frames=frames, seed=0)
    cpu = _child_cpu()
    slow = simulate(
        build, vectors, simulator=sim, tests=("stream",), in_gap=GAP, out_gap=GAP, seed=0
    )
    slow_cpu = _child_cpu() - cpu  # the whole cocotb run: simulator start-up included
    if not slow.ok:
        sys.exit(f"{name} on {sim} (cocotb): {slow.frames - slow.matched} frames differ")
    stream_s = slow.test_seconds.get("stream") or slow.sim_seconds
    many = make_vectors(build, frames=fast_frames, seed=0)
    rate = min(THROUGHPUT_FRAMES, max(FAST_MIN_FRAMES[sim], fast_frames))
    fast = verify_fast(build, many, simulator=sim, in_gap=GAP, out_gap=GAP, rate_frames=rate)
    if not fast.ok:
        sys.exit(f"{name} on {sim} (fast): {fast.count_errors or fast.bad_frames[:5]}")
    cycles = slow.tests["stream"]["cycles"]
    return {
        "model": name,
        "sim": sim,
        "frames": frames,
        "fast_frames": fast_frames,
        "build_s": seconds or 0.0,
        "fast_build_s": fast.build_seconds or 0.0,
        "fps": frames / stream_s,
        "cps": cycles / stream_s,
        "cocotb_cpu_s": round(slow_cpu, 2),
        "cocotb_cycles": cycles,
        "fast_fps": fast.frames_per_second,
        "fast_cps": fast.cycles_per_second,
        "fast_cpu_s": fast.cpu_seconds,
        "fast_wall_s": fast.sim_seconds,
        "fast_cycles": fast.cycles,
        "fast_jobs": fast.extra.get("jobs", 1),
        "speedup": fast.frames_per_second / (frames / stream_s),
        "cycles_per_frame": fast.cycles_per_frame,
        "ideal": interval,
    }


def _row(model: str, r: dict, verilog_s: float) -> str:
    shown = "n/a" if r["cycles_per_frame"] is None else f"{r['cycles_per_frame']:.1f}"
    cells = " ".join(f"{r[key]:>13,.1f}" for key, _ in COLUMNS)
    return f"{model:<32} {r['sim']:<9} {verilog_s:>9.1f} {cells} {shown:>12} {r['ideal']:>6}"


def _markdown(rows: list[dict]) -> str:
    head = "| model | sim | cocotb frames | cocotb frames/s | cocotb cycles/s | cocotb CPU s "
    head += "| fast frames | jobs | fast frames/s | fast cycles/s | fast wall s | fast CPU s "
    head += "| fast cycles per CPU s | speed-up | cycles/frame | ideal |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        cpf = "n/a" if r["cycles_per_frame"] is None else f"{r['cycles_per_frame']:.1f}"
        per_cpu = r["fast_cycles"] / r["fast_cpu_s"] if r["fast_cpu_s"] else 0
        lines.append(
            f"| {r['model']} | {r['sim']} | {r['frames']} | {r['fps']:,.1f} | {r['cps']:,.0f} "
            f"| {r['cocotb_cpu_s']:.1f} | {r['fast_frames']} | {r['fast_jobs']} "
            f"| {r['fast_fps']:,.1f} | {r['fast_cps']:,.0f} | {r['fast_wall_s']:.2f} "
            f"| {r['fast_cpu_s']:.2f} | {per_cpu:,.0f} | {r['speedup']:,.1f}x | {cpf} "
            f"| {r['ideal']} |"
        )
    return "\n".join(lines) + "\n"


def _merge(path: Path, rows: list[dict]) -> list[dict]:
    """The rows of an earlier results file, with this run's (model, sim) rows replacing
    theirs: a slow model x simulator pair can be benched on its own."""
    new = {(r["model"], r["sim"]): r for r in rows}
    old = json.loads(path.read_text())["rows"] if path.is_file() else []
    kept = [r for r in old if (r["model"], r["sim"]) not in new]
    return sorted(kept + rows, key=lambda r: (r["model"], r["sim"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="default: models/*_classic.onnx")
    parser.add_argument("--frames", type=int, help="cocotb frames (default: by cycles/frame)")
    parser.add_argument("--fast-frames", type=int, help="harness frames (default: likewise)")
    parser.add_argument("--sims", default="verilator,icarus", help="comma-separated")
    parser.add_argument("-o", "--output", help=f"results folder (default {RESULTS})")
    parser.add_argument("--smoke", action="store_true", help=f"a tiny run: {SMOKE} on Icarus")
    args = parser.parse_args()
    out = Path(args.output) if args.output else (None if args.smoke else RESULTS)
    if args.smoke:
        args.models = [str(ROOT / "models" / f"{SMOKE}.onnx")]
        args.frames, args.fast_frames, args.sims = 5, 20, "icarus"
    models = [Path(m) for m in args.models] or [
        Path(p) for p in sorted(glob.glob(str(ROOT / "models" / "*_classic.onnx")))
    ]
    print(
        f"{'model':<32} {'sim':<9} {'ONNX->V s':>9} "
        + " ".join(f"{title:>13}" for _, title in COLUMNS)
        + f" {'cycles/frame':>12} {'ideal':>6}",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bnnhw-bench-") as tmp:
        for model in models:
            start = time.perf_counter()
            build = compile_model(model, Path(tmp) / model.stem, force=True)
            verilog_s = time.perf_counter() - start
            for sim in args.sims.split(","):
                r = bench_sim(build, sim, args.frames, args.fast_frames)
                rows.append(r | {"model": model.stem, "verilog_s": round(verilog_s, 2)})
                print(_row(model.stem, r, verilog_s), flush=True)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        load = [round(x, 2) for x in os.getloadavg()]
        for r in rows:
            r["load_average_at_end"] = load
        rows = _merge(out / "sim.json", rows)
        meta = {"machine": platform.machine(), "cpus": os.cpu_count()}
        (out / "sim.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
        (out / "sim.md").write_text(_markdown(rows))
        print(f"results: {out / 'sim.md'}, {out / 'sim.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
