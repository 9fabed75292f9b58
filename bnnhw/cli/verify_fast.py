"""`bnnhw verify`'s fast path: the compiled harness, then cocotb for each bad frame.

The harness (sim/fast_tb.py) streams every frame at the simulator's speed and checks
every output bit. It cannot see inside the design, so the first bad frames are run
again in the cocotb bench, whose layer taps name the layer and neurons that differ.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bnnhw.build import Build
    from bnnhw.sim.fast import FastResult
    from bnnhw.sim.vectors import Vectors

LOCATE_FRAMES = 3  # bad frames rerun in the cocotb bench


def run_fast(
    args: argparse.Namespace, build: Build, vectors: Vectors, x: np.ndarray, labels
) -> FastResult:
    """Verify ``vectors`` in the harness, print what it found; the result."""
    from bnnhw.cli.verify import print_timing
    from bnnhw.sim.fast import classes, verify_fast

    print(f"{args.sim}: fast harness (compiled once per Verilog, reused)", flush=True)
    result = verify_fast(
        build,
        vectors,
        simulator=args.sim,
        in_gap=args.in_gap,
        out_gap=args.out_gap,
        seed=args.seed,
    )
    built = "reused" if result.build_seconds is None else f"{result.build_seconds:.1f} s"
    processes = result.extra.get("jobs", 1)
    jobs = f" in {processes} processes" if processes > 1 else ""
    print(f"{args.sim}: harness build {built} ({result.folder})")
    print(
        f"{args.sim}: {result.frames} frames, {result.cycles:,} cycles simulated in "
        f"{result.sim_seconds:.2f} s ({result.frames_per_second:,.0f} frames/s, "
        f"{result.cycles_per_second:,.0f} cycles/s; {result.cpu_seconds:.2f} s of CPU"
        f"{jobs})"
    )
    for error in result.count_errors:
        print(f"FRAME COUNT: {error}")
    if result.bad_frames:
        shown = ", ".join(map(str, result.bad_frames[:10]))
        more = " ..." if len(result.bad_frames) > 10 else ""
        print(f"{len(result.bad_frames)} frame(s) differ: {shown}{more}")
        locate(args, build, x, result.bad_frames[:LOCATE_FRAMES])
    print_timing(result, build)
    match = f"{result.matched}/{result.frames} frames match"
    if labels is not None:
        rtl = float(np.mean(classes(result, vectors) == labels))
        gold = float(np.mean(vectors.classes == labels))
        match = f"RTL accuracy {100 * rtl:.2f} % (golden {100 * gold:.2f} %), {match}"
    result.extra["last_line"] = match
    return result


def locate(args: argparse.Namespace, build: Build, x: np.ndarray, bad: list[int]) -> None:
    """Rerun the frames ``bad`` in the cocotb bench, which names the layer and neurons."""
    from bnnhw.cli.verify import describe
    from bnnhw.sim.runner import simulate
    from bnnhw.sim.vectors import make_vectors

    print(f"locating frame(s) {', '.join(map(str, bad))} in the cocotb bench", flush=True)
    again = simulate(
        build,
        make_vectors(build, x[bad]),
        simulator=args.sim,
        in_gap=args.in_gap,
        out_gap=args.out_gap,
        seed=args.seed,
        tests=("stream",),
    )
    for m in again.mismatches:
        m = m | {"frame": bad[m["frame"]]}
        print(f"MISMATCH {describe(m)}")
    if again.mismatches:
        print(f"mismatch report: {again.folder / 'mismatch.json'} (frames renumbered from 0)")
    else:
        print("the cocotb bench saw no difference on these frames alone: compare the runs")
