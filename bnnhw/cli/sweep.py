"""`bnnhw sweep MODEL --board B -o DIR`: foldings around the predicted frontier, built on Dask."""

from __future__ import annotations

import argparse

from bnnhw.boards.targets import BOARDS


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
    """``bnnhw.sweep`` with the flags; a failed point is in the results, not an error."""
    from bnnhw import api

    api.sweep(
        args.model,
        args.output,
        board=args.board,
        points=args.points,
        scheduler=args.scheduler,
        workers=args.workers,
        max_cells=args.max_cells,
        estimate_only=args.estimate_only,
        fit=args.fit,
        progress=lambda line: print(line, flush=True),
    )
    return 0


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
