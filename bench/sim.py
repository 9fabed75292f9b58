"""Simulation speed of the generated accelerators, Verilator vs Icarus, through cocotb.

    .venv/bin/python bench/sim.py [--frames 50] [--sims verilator,icarus] [models/*.onnx ...]
    .venv/bin/python bench/sim.py --smoke   # the digits MLP, 5 frames, Icarus only (CI)

For each bundled classic model: ONNX -> Verilog seconds, each simulator's build seconds
(printed separately: a Verilator build is a one-off C++ compile), simulated frames/s while
streaming at full speed (wall clock, the bench's per-cycle Python included), and cycles
per frame against the ideal initiation interval. Every frame is checked bit for bit.
"""

from __future__ import annotations

import argparse
import glob
import sys
import tempfile
import time
from pathlib import Path

from bnnhw.build import compile_model
from bnnhw.sim.runner import build_simulator, simulate
from bnnhw.sim.vectors import make_vectors

ROOT = Path(__file__).resolve().parent.parent
SMOKE = "digits_w1a1_in1_classic"


def bench_model(model: Path, folder: Path, frames: int, sims: list[str]) -> dict:
    start = time.perf_counter()
    build = compile_model(model, folder, force=True)
    row = {"model": model.stem, "verilog_s": time.perf_counter() - start}
    row["ideal"] = build.report["initiation_interval"]
    vectors = make_vectors(build, frames=frames, seed=0)
    for sim in sims:
        _, seconds = build_simulator(build, sim)
        result = simulate(build, vectors, simulator=sim, tests=("stream",))
        if not result.ok:
            sys.exit(f"{model.stem} on {sim}: {result.frames - result.matched} frames differ")
        row[sim] = {
            "build_s": seconds or 0.0,
            "fps": result.frames_per_second,
            "cycles": result.cycles_per_frame,
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="default: models/*_classic.onnx")
    parser.add_argument("--frames", type=int, default=50, help="frames per model (default 50)")
    parser.add_argument("--sims", default="verilator,icarus", help="comma-separated")
    parser.add_argument("--smoke", action="store_true", help=f"a tiny run: {SMOKE} on Icarus")
    args = parser.parse_args()
    if args.smoke:
        args.models = [str(ROOT / "models" / f"{SMOKE}.onnx")]
        args.frames, args.sims = 5, "icarus"
    models = [Path(m) for m in args.models] or [
        Path(p) for p in sorted(glob.glob(str(ROOT / "models" / "*_classic.onnx")))
    ]
    sims = args.sims.split(",")
    head = f"{'model':<24} {'ONNX->V s':>9}"
    for sim in sims:
        head += f" {sim[:5] + ' build s':>14} {sim[:5] + ' frames/s':>15}"
    print(head + f" {'cycles/frame':>12} {'ideal':>6}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bnnhw-bench-") as tmp:
        for model in models:
            row = bench_model(model, Path(tmp) / model.stem, args.frames, sims)
            line = f"{row['model']:<24} {row['verilog_s']:>9.1f}"
            for sim in sims:
                line += f" {row[sim]['build_s']:>14.1f} {row[sim]['fps']:>15,.1f}"
            cycles = {row[sim]["cycles"] for sim in sims}
            shown = "/".join("n/a" if c is None else f"{c:.1f}" for c in cycles)
            print(f"{line} {shown:>12} {row['ideal']:>6}", flush=True)


if __name__ == "__main__":
    main()
