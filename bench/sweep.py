"""The must-show sweep: 2 models x 2 boards, >= 40 real builds on Dask, with its Pareto plot.

    nice -n 10 .venv/bin/python bench/sweep.py                  # 42 points, 2 workers
    nice -n 10 .venv/bin/python bench/sweep.py --workers 1      # the same on 1 worker
    .venv/bin/python bench/sweep.py --timing 10                 # the 10 smallest points
                                                                # of each model x board
                                                                # (40) on 1, then 2
                                                                # workers, fresh caches
    .venv/bin/python bench/sweep.py --cached-only               # results of a stopped run
    .venv/bin/python bench/sweep.py --scheduler tcp://HOST:8786 # an existing cluster
    .venv/bin/python bench/sweep.py --first 24                  # a shorter sweep

Points: the foldings of the lane ladder nearest the one ``bnnhw build`` picks (docs/sweep.md),
10 for the binary-input digits MLP and 11 for the 8-bit-input one, per board. On the
ULX3S-85F the foldings the logic model prices above ``ECP5_CELLS`` are left out (they take
many minutes each on two shared cores), so its window sits below the pick. Build folders
and the cache go under ``--scratch``: a rerun synthesises only points not built before.
Results: ``bench/results/sweep/`` (sweep.json, sweep.csv, pareto.md, pareto.png) and,
with ``--timing``, ``bench/results/sweep_timing.md`` and that sweep's results in
``bench/results/sweep_timing/``.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS = {"digits_w1a1_in1_classic": 10, "digits_w1a1_in8_classic": 11}
BOARDS = {"icebreaker": None, "ulx3s-85f": 5000}
ECP5_CELLS = BOARDS["ulx3s-85f"]


def points() -> list:
    """Every point, interleaved across the four model x board groups, nearest the pick
    first (so a partial run covers all of them, on both sides)."""
    import bnnhw
    from bnnhw.boards import get_board
    from bnnhw.boards.fit import fold_for_board
    from bnnhw.sweep.space import enumerate_points

    groups = []
    for model, n in MODELS.items():
        path = ROOT / "models" / f"{model}.onnx"
        net = bnnhw.load(path)
        for name, cap in BOARDS.items():
            board = get_board(name)
            folded, _ = fold_for_board(net, board)
            picked = tuple((la.pe, la.simd) for la in folded.layers)
            group = enumerate_points(str(path), net, board, n, picked, cap)
            groups.append(nearest_first(group))
    return [p for row in itertools.zip_longest(*groups) for p in row if p is not None]


def nearest_first(group: list) -> list:
    """The pick (or, below a cap, the largest point) first, then outwards: a sweep cut
    short still spans both sides of the frontier."""
    centre = next((i for i, p in enumerate(group) if p.picked), len(group) - 1)
    return sorted(group, key=lambda p: (abs(group.index(p) - centre), group.index(p)))


def sweep(pts, scratch: Path, workers: int | None, scheduler: str | None, cached_only=False):
    import functools

    from bnnhw.sweep.run import run_sweep
    from bnnhw.sweep.task import synth_point

    build = functools.partial(synth_point, cached_only=cached_only)
    start = time.perf_counter()
    records = run_sweep(pts, scratch, workers=workers, scheduler=scheduler, build=build)
    records = [r for r in records if r["status"] != "not built"]
    return records, round(time.perf_counter() - start, 1)


def from_cache(scratch: Path, pts: list) -> list[dict]:
    """The records of every entry in ``scratch/cache``, marked with today's pick."""
    import json

    picks = {(p.model, p.board): p.folding_text for p in pts if p.picked}
    records = []
    for path in sorted((scratch / "cache").glob("*.json")):
        entry = json.loads(path.read_text())
        record = entry["point"] | entry["result"] | {"verilog_hash": path.stem}
        record["picked"] = picks.get((record["model"], record["board"])) == record["folding"]
        records.append(record)
    return sorted(records, key=lambda r: (r["model"], r["board"], -r["interval"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers")
    parser.add_argument("--scheduler", help="an existing Dask scheduler instead")
    parser.add_argument("--scratch", default="/tmp/bnnhw_sweep", help="build folders, cache")
    parser.add_argument("-o", "--output", default=str(HERE / "results" / "sweep"))
    parser.add_argument(
        "--timing",
        type=int,
        metavar="N",
        help="time a sweep of the N smallest points per model x board on 1 and 2 workers",
    )
    parser.add_argument("--first", type=int, metavar="N", help="only the first N points")
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="synthesise nothing: the points of this sweep found in --scratch's cache",
    )
    parser.add_argument(
        "--from-cache",
        action="store_true",
        help="every point in --scratch's cache, whichever sweep built it (no Dask)",
    )
    args = parser.parse_args(argv)
    if args.timing:
        return timing(args.timing, Path(args.scratch), argv)
    pts = points()[: args.first]
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    if args.from_cache:
        records, seconds = from_cache(Path(args.scratch), pts), "n/a (read from the cache)"
    else:
        records, seconds = sweep(
            pts, Path(args.scratch), args.workers, args.scheduler, args.cached_only
        )
    workers = args.scheduler or f"LocalCluster x {args.workers}"
    write(records, out, seconds, workers, args.scratch, argv)
    return 0


def write(records: list[dict], out: Path, seconds, workers: str, scratch: str, argv) -> None:
    """sweep.json, sweep.csv, pareto.md and pareto.png of one run, under ``out``."""
    from bnnhw.sweep import report
    from bnnhw.sweep.cache import tool_versions

    for r in records:  # the repository keeps results, not this machine's paths
        r["model"] = Path(r["model"]).name
    meta = {
        "command": "bench/sweep.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "models": list(MODELS),
        "boards": list(BOARDS),
        "wall_seconds": seconds,
        "workers": workers,
        "scratch": scratch,
        "cached": sum(bool(r.get("cached")) for r in records),
        "tools": tool_versions(),
    }
    out.mkdir(parents=True, exist_ok=True)
    report.write_all(records, out, meta)
    print((out / "pareto.md").read_text())


def small_points(per_group: int) -> list:
    """The ``per_group`` smallest foldings of each model x board (builds of a minute or
    two each): a whole sweep that one worker finishes in well under an hour."""
    import bnnhw
    from bnnhw.boards import get_board
    from bnnhw.sweep.space import candidates

    pts = []
    for model in MODELS:
        path = ROOT / "models" / f"{model}.onnx"
        net = bnnhw.load(path)
        for name in BOARDS:
            group = candidates(net, get_board(name))
            smallest = sorted(group, key=lambda p: p.estimated_cells)[:per_group]
            pts += [replace(p, model=str(path)) for p in smallest]
    return pts


def timing(per_group: int, scratch: Path, argv) -> int:
    """The same sweep from fresh caches on 1 and on 2 LocalCluster workers: the wall
    times (``bench/results/sweep_timing.md``) and the 2-worker run's results
    (``bench/results/sweep_timing/``); the two runs' results must agree point by point."""
    pts = small_points(per_group)
    rows, runs, seconds = [], {}, {}
    for workers in (1, 2):
        where = scratch / f"timing_{workers}"
        shutil.rmtree(where, ignore_errors=True)  # no cache: every point built
        runs[workers], seconds[workers] = sweep(pts, where, workers, None)
        ok = sum(r["status"] == "ok" for r in runs[workers])
        failed = len(runs[workers]) - ok
        rows.append(f"| {workers} | {len(pts)} | {ok} | {failed} | {seconds[workers]} |")
        print(rows[-1], flush=True)
    fields = ("key", "status", "luts", "ffs", "logic_cells", "bram")
    counts = {w: [{k: r.get(k) for k in fields} for r in runs[w]] for w in (1, 2)}
    same = counts[1] == counts[2]
    text = (
        "# Sweep wall time, 1 against 2 LocalCluster workers\n\n"
        f"`.venv/bin/python bench/sweep.py --timing {per_group}`: the {per_group} smallest "
        f"foldings of each of {len(MODELS)} models x {len(BOARDS)} boards, {len(pts)} points, "
        "each built with Yosys + nextpnr from a fresh cache; results of the 2-worker run in "
        "`bench/results/sweep_timing/`. "
        + (
            "Both runs give the same LUT, FF, cell and EBR counts for every point."
            if same
            else "**The two runs' results differ.**"
        )
        + "\n\n| workers | points | built | failed | wall time (s) |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
    (HERE / "results" / "sweep_timing.md").write_text(text)
    out = HERE / "results" / "sweep_timing"
    write(runs[2], out, seconds[2], "LocalCluster x 2", str(scratch), argv)
    print(text)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
