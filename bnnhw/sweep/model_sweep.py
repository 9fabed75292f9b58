"""One model's sweep on one board, end to end: the verb behind ``bnnhw.sweep`` and the CLI.

Pick the folding ``bnnhw build`` would use, enumerate the points around it, build them on
Dask, write the sweep folder's files and, with ``fit``, fit the resource model to them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bnnhw.errors import BoardError, InputError
from bnnhw.ir import Network

Say = Callable[[str], None]


@dataclass(frozen=True)
class SweepRun:
    """The records of every point (sweep.json's ``points``), the run's ``meta``, the folder."""

    records: list[dict]
    meta: dict
    folder: Path
    fit_table: str | None  # the held-out errors, with ``fit``


def sweep_model(
    model: str | Path,
    board_name: str,
    out: str | Path,
    *,
    points: int = 12,
    scheduler: str | None = None,
    workers: int | None = None,
    max_cells: int | None = None,
    estimate_only: bool = False,
    fit: bool = False,
    say: Say,
    progress_bar: bool = True,
) -> SweepRun:
    """Build ``points`` foldings of ``model`` for the board on Dask; write DIR's files."""
    import bnnhw
    from bnnhw.boards import get_board
    from bnnhw.boards.fit import fold_for_board
    from bnnhw.files import checked_path
    from bnnhw.sweep import cache, report, run, space, task

    if points < 1:
        raise InputError(f"--points {points}: give at least 1")
    if workers is not None and workers < 1:
        raise InputError(f"--workers {workers}: give at least 1")
    if workers is not None and scheduler:
        raise InputError("--workers sizes a LocalCluster; with --scheduler the cluster is yours")
    address = scheduler_address(scheduler)
    if isinstance(model, Network):
        raise InputError("a sweep builds from an .onnx file (its points name it); give the path")
    path = checked_path(model).resolve()
    if not path.is_file():
        raise InputError(f"{model}: give an .onnx file")
    net = bnnhw.load(path)
    board = get_board(board_name)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; give a folder for the sweep")
    try:
        folded, _ = fold_for_board(net, board)
        picked = tuple((la.pe, la.simd) for la in folded.layers)
    except BoardError as exc:
        say(f"note: bnnhw build would refuse this board: {exc}")
        picked = None
    chosen = space.enumerate_points(str(path), net, board, points, picked, max_cells)
    if not chosen:
        raise BoardError(f"{board.name}: no folding of {net.name} is priced within the device")
    where = scheduler or f"a LocalCluster of {workers or 'one worker per core'}"
    say(f"{len(chosen)} points of {net.name} on {board.name}, on {where}")
    start = time.perf_counter()
    records = run.run_sweep(
        chosen,
        out,
        scheduler=address,
        workers=workers,
        build=task.model_point if estimate_only else task.synth_point,
        progress=progress_bar,
    )
    seconds = round(time.perf_counter() - start, 1)
    meta = {
        "models": [str(path)],
        "boards": [board.name],
        "wall_seconds": seconds,
        "workers": scheduler or f"LocalCluster x {workers or 'cores'}",
        "estimate_only": estimate_only,
        "tools": cache.tool_versions(),
    }
    report.write_all(records, out, meta)
    built = sum(r.get("status") == "ok" for r in records)
    cached = sum(bool(r.get("cached")) for r in records)
    say(
        f"{built} built, {len(records) - built} failed, {cached} from the cache, "
        f"in {seconds} s; wrote {out / 'sweep.json'}, sweep.csv, pareto.md, pareto.png"
    )
    table = fit_folder(out, say) if fit else None
    return SweepRun(records, meta, out, table)


def fit_folder(out: Path, say: Say) -> str:
    """The resource model fitted to the sweep in ``out``; its held-out error table."""
    from bnnhw.sweep import resources

    records = json.loads((out / "sweep.json").read_text())["points"]
    resources.record_features(records)
    coefficients, errors = resources.fit(records)
    if not coefficients["families"]:
        raise BoardError(f"{out}: no built point to fit the resource model to")
    (out / "coefficients.json").write_text(json.dumps(coefficients, indent=1) + "\n")
    table = resources.error_table(errors)
    (out / "fit.md").write_text("# Resource model: held-out points\n\n" + table)
    for line in table.splitlines():
        say(line)
    say(f"wrote {out / 'coefficients.json'} and {out / 'fit.md'}")
    return table


def scheduler_address(scheduler: str | None) -> str | None:
    """A scheduler address as Dask takes it; a bare HOST:PORT gets tcp://."""
    if scheduler is None:
        return None
    if "://" not in scheduler:
        scheduler = f"tcp://{scheduler}"
    host_port = scheduler.split("://", 1)[1]
    if ":" not in host_port or not host_port.rsplit(":", 1)[1].isdigit():
        raise InputError(f"--scheduler {scheduler}: give HOST:PORT, e.g. tcp://127.0.0.1:8786")
    return scheduler
