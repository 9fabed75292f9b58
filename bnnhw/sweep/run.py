"""Map the points of a sweep over a Dask cluster: a LocalCluster or an existing scheduler.

Each point is one task (``pure=False`` not needed: its key names the point). Results are
gathered as they complete and kept by point key, so a task Dask reruns after its worker
died still yields one record. A task that raises anyway (a worker killed more often than
``distributed.scheduler.allowed-failures``) becomes a failed record, not a lost point.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bnnhw.errors import InputError
from bnnhw.sweep.space import Point
from bnnhw.sweep.task import synth_point

BuildFn = Callable[[Point, Path, Path], dict]


@contextmanager
def client_for(scheduler: str | None = None, workers: int | None = None) -> Iterator:
    """A Dask client: on ``scheduler`` (``tcp://host:port``), else on a new LocalCluster
    of ``workers`` single-threaded worker processes (default: one per core)."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            reason = " ".join(str(exc).split())[:160]
            raise InputError(
                f"--scheduler {scheduler}: no Dask scheduler answers ({reason})"
            ) from None
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    with (
        LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def run_sweep(
    points: list[Point],
    out: Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    build: BuildFn = synth_point,
    progress: bool = True,
) -> list[dict]:
    """Build every point on Dask; one record per point, in the points' order."""
    from distributed import as_completed

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = out / "cache"
    records: dict[str, dict] = {}
    # a task key names the point, the sweep folder and the build: two sweeps sharing a
    # scheduler never take each other's results
    run_id = hashlib.sha256(f"{out.resolve()}|{_name(build)}".encode()).hexdigest()[:10]
    with client_for(scheduler, workers) as client:
        futures = {
            client.submit(build, p, out, cache_dir, key=f"bnnhw-point-{p.key}-{run_id}"): p
            for p in points
        }
        bar = Progress(len(points), client if progress else None)
        for future in as_completed(futures):
            point = futures[future]
            try:
                record = future.result()
            except Exception as exc:  # the task itself failed: its workers kept dying
                reason = f"task failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
                record = point.as_dict() | {"status": "failed", "reason": reason}
            records[point.key] = record
            bar.update(record)
        bar.close()
    return [records[p.key] for p in points]


def _name(build: BuildFn) -> str:
    """A build function's name, through functools.partial, with its bound arguments."""
    inner = getattr(build, "func", build)
    bound = (getattr(build, "args", ()), getattr(build, "keywords", {}))
    return f"{inner.__module__}.{inner.__qualname__}{bound}"


def run_serial(points: list[Point], out: Path, build: BuildFn = synth_point) -> list[dict]:
    """The same points one after the other in this process: the reference for Dask's run."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return [build(p, out, out / "cache") for p in points]


class Progress:
    """One line on stderr: points done, running (on the workers now) and failed."""

    WIDTH = 30

    def __init__(self, total: int, client=None) -> None:
        self.total, self.client = total, client
        self.done = self.failed = 0
        self.start = time.perf_counter()
        self.tty = sys.stderr.isatty()
        if client is not None:
            self._show()

    def update(self, record: dict) -> None:
        self.done += 1
        self.failed += record.get("status") != "ok"
        if self.client is not None:
            self._show()

    def _running(self) -> int:
        try:  # a worker may hold more tasks than it runs: count at most one per thread
            threads = self.client.nthreads()
            processing = self.client.processing()
            return sum(min(len(keys), threads.get(w, 1)) for w, keys in processing.items())
        except Exception:  # the scheduler is going away: the count is only a display
            return 0

    def _show(self) -> None:
        filled = self.WIDTH * self.done // max(1, self.total)
        line = (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total} done, "
            f"{self._running()} running, {self.failed} failed "
            f"({time.perf_counter() - self.start:.0f} s)"
        )
        print(("\r" if self.tty else "") + line, end="" if self.tty else "\n", file=sys.stderr)
        sys.stderr.flush()

    def close(self) -> None:
        if self.client is not None and self.tty:
            print(file=sys.stderr)
