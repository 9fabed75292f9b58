"""`bnnhw sweep MODEL --board B -o DIR`: foldings around the predicted frontier, built on Dask."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bnnhw.boards.targets import BOARDS
from bnnhw.errors import BoardError, InputError


def add_parser(verbs) -> None:
    p = verbs.add_parser(
        "sweep",
        help="build many foldings on a Dask cluster: Pareto table and plot (docs/sweep.md)",
    )
    p.add_argument("model", help="an .onnx/QONNX file")
    p.add_argument("--board", required=True, choices=sorted(BOARDS), help="target board")
    p.add_argument(
        "--points", type=int, default=12, help="foldings to build (default 12), nearest the pick"
    )
    p.add_argument(
        "--scheduler",
        help="address of a running Dask scheduler (tcp://HOST:PORT); default: a LocalCluster",
    )
    p.add_argument("--workers", type=int, help="LocalCluster workers (default: one per core)")
    p.add_argument("--max-cells", type=int, help="leave out foldings the model prices above this")
    p.add_argument(
        "--estimate-only",
        action="store_true",
        help="no synthesis: the analytic estimate stands in for each build (a dry run)",
    )
    p.add_argument("-o", "--output", required=True, help="sweep folder (reused: a cache)")
    p.add_argument(
        "--fit",
        action="store_true",
        help="fit the resource model to DIR/sweep.json: DIR/coefficients.json, DIR/fit.md",
    )
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    import bnnhw
    from bnnhw.boards import get_board
    from bnnhw.boards.fit import fold_for_board
    from bnnhw.cli.files import checked_path
    from bnnhw.sweep import cache, report, run, space, task

    if args.points < 1:
        raise InputError(f"--points {args.points}: give at least 1")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers {args.workers}: give at least 1")
    if args.workers is not None and args.scheduler:
        raise InputError("--workers sizes a LocalCluster; with --scheduler the cluster is yours")
    path = checked_path(args.model).resolve()
    if not path.is_file():
        raise InputError(f"{args.model}: give an .onnx file")
    net = bnnhw.load(path)
    board = get_board(args.board)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; give a folder for the sweep")
    try:
        folded, _ = fold_for_board(net, board)
        picked = tuple((la.pe, la.simd) for la in folded.layers)
    except BoardError as exc:
        print(f"note: bnnhw build would refuse this board: {exc}")
        picked = None
    points = space.enumerate_points(str(path), net, board, args.points, picked, args.max_cells)
    if not points:
        raise BoardError(f"{board.name}: no folding of {net.name} is priced within the device")
    build = task.model_point if args.estimate_only else task.synth_point
    where = args.scheduler or f"a LocalCluster of {args.workers or 'one worker per core'}"
    print(f"{len(points)} points of {net.name} on {board.name}, on {where}")
    start = time.perf_counter()
    records = run.run_sweep(
        points, out, scheduler=_address(args.scheduler), workers=args.workers, build=build
    )
    seconds = round(time.perf_counter() - start, 1)
    meta = {
        "models": [str(path)],
        "boards": [board.name],
        "wall_seconds": seconds,
        "workers": args.scheduler or f"LocalCluster x {args.workers or 'cores'}",
        "estimate_only": args.estimate_only,
        "tools": cache.tool_versions(),
    }
    report.write_all(records, out, meta)
    built = [r for r in records if r.get("status") == "ok"]
    cached = sum(bool(r.get("cached")) for r in records)
    print(
        f"{len(built)} built, {len(records) - len(built)} failed, {cached} from the cache, "
        f"in {seconds} s; wrote {out / 'sweep.json'}, sweep.csv, pareto.md, pareto.png"
    )
    if args.fit:
        fit_folder(out)
    return 0


def fit_folder(out: Path) -> None:
    """``--fit``: the resource model fitted to this sweep, and its held-out errors."""
    import json

    from bnnhw.sweep import resources

    records = json.loads((out / "sweep.json").read_text())["points"]
    resources.record_features(records)
    coefficients, errors = resources.fit(records)
    if not coefficients["families"]:
        raise BoardError(f"{out}: no built point to fit the resource model to")
    (out / "coefficients.json").write_text(json.dumps(coefficients, indent=1) + "\n")
    table = resources.error_table(errors)
    (out / "fit.md").write_text("# Resource model: held-out points\n\n" + table)
    print(table)
    print(f"wrote {out / 'coefficients.json'} and {out / 'fit.md'}")


def _address(scheduler: str | None) -> str | None:
    """A scheduler address as Dask takes it; a bare HOST:PORT gets tcp://."""
    if scheduler is None:
        return None
    if "://" not in scheduler:
        scheduler = f"tcp://{scheduler}"
    host_port = scheduler.split("://", 1)[1]
    if ":" not in host_port or not host_port.rsplit(":", 1)[1].isdigit():
        raise InputError(f"--scheduler {scheduler}: give HOST:PORT, e.g. tcp://127.0.0.1:8786")
    return scheduler


def add_selection_args(p: argparse.ArgumentParser) -> None:
    """``--target-fps`` / ``--max-luts`` for `bnnhw compile` and `bnnhw build` (with --board)."""
    p.add_argument(
        "--target-fps",
        type=float,
        help="with --board: the smallest folding the resource model puts at >= F frames/s",
    )
    p.add_argument(
        "--max-luts",
        type=int,
        help="with --board: the fastest folding the resource model puts within L logic cells",
    )
