"""Simulation speed of the generated accelerators: the cocotb bench against the fast harness.

    .venv/bin/python bench/sim.py [--frames 50] [--fast-frames 1000] [--sims verilator,icarus]
                                  [models/*.onnx ...]
    .venv/bin/python bench/sim.py --smoke   # the digits MLP, a few frames, Icarus only (CI)

For each model and simulator, from one run: the build seconds of the cocotb bench's
simulator and of the fast harness (one-off compiles), then simulated frames/s and cycles/s
(wall clock) for the cocotb bench (its streaming test, Python in the loop every cycle) and
for the compiled harness (sim/fast_tb.py), both at the verify defaults (P = 0.1 input
gaps and output stalls), and cycles per frame against the ideal initiation interval. Every
frame is checked bit for bit in both benches.
"""

from __future__ import annotations

import argparse
import glob
import sys
import tempfile
import time
from pathlib import Path

from bnnhw.build import compile_model
from bnnhw.sim.fast import verify_fast
from bnnhw.sim.runner import build_simulator, simulate
from bnnhw.sim.vectors import make_vectors

ROOT = Path(__file__).resolve().parent.parent
SMOKE = "digits_w1a1_in1_classic"
GAP = 0.1  # bnnhw verify's default input-gap and output-stall probabilities


def bench_sim(build, sim: str, frames: int, fast_frames: int) -> dict:
    """One simulator: cocotb and fast-harness figures; exits if a frame differs."""
    name = build.net.name
    _, seconds = build_simulator(build, sim)
    vectors = make_vectors(build, frames=frames, seed=0)
    slow = simulate(
        build, vectors, simulator=sim, tests=("stream",), in_gap=GAP, out_gap=GAP, seed=0
    )
    if not slow.ok:
        sys.exit(f"{name} on {sim} (cocotb): {slow.frames - slow.matched} frames differ")
    stream_s = slow.test_seconds.get("stream") or slow.sim_seconds
    many = make_vectors(build, frames=fast_frames, seed=0)
    fast = verify_fast(build, many, simulator=sim, in_gap=GAP, out_gap=GAP)
    if not fast.ok:
        sys.exit(f"{name} on {sim} (fast): {fast.count_errors or fast.bad_frames[:5]}")
    return {
        "build_s": seconds or 0.0,
        "fast_build_s": fast.build_seconds or 0.0,
        "fps": frames / stream_s,
        "cps": slow.tests["stream"]["cycles"] / stream_s,
        "fast_fps": fast.frames_per_second,
        "fast_cps": fast.cycles_per_second,
        "cycles": fast.cycles_per_frame,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="default: models/*_classic.onnx")
    parser.add_argument("--frames", type=int, default=50, help="cocotb frames (default 50)")
    parser.add_argument("--fast-frames", type=int, default=1000, help="harness frames")
    parser.add_argument("--sims", default="verilator,icarus", help="comma-separated")
    parser.add_argument("--smoke", action="store_true", help=f"a tiny run: {SMOKE} on Icarus")
    args = parser.parse_args()
    if args.smoke:
        args.models = [str(ROOT / "models" / f"{SMOKE}.onnx")]
        args.frames, args.fast_frames, args.sims = 5, 20, "icarus"
    models = [Path(m) for m in args.models] or [
        Path(p) for p in sorted(glob.glob(str(ROOT / "models" / "*_classic.onnx")))
    ]
    cols = ["build s", "frames/s", "cycles/s", "fast build s", "fast frames/s", "fast cycles/s"]
    print(
        f"{'model':<32} {'sim':<9} {'ONNX->V s':>9} "
        + " ".join(f"{c:>13}" for c in cols)
        + f" {'cycles/frame':>12} {'ideal':>6}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bnnhw-bench-") as tmp:
        for model in models:
            start = time.perf_counter()
            build = compile_model(model, Path(tmp) / model.stem, force=True)
            verilog_s = time.perf_counter() - start
            for sim in args.sims.split(","):
                r = bench_sim(build, sim, args.frames, args.fast_frames)
                cells = [r["build_s"], r["fps"], r["cps"], r["fast_build_s"]]
                cells += [r["fast_fps"], r["fast_cps"]]
                shown = "n/a" if r["cycles"] is None else f"{r['cycles']:.1f}"
                print(
                    f"{model.stem:<32} {sim:<9} {verilog_s:>9.1f} "
                    + " ".join(f"{c:>13,.1f}" for c in cells)
                    + f" {shown:>12} {build.report['initiation_interval']:>6}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
