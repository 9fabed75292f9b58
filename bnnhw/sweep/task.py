"""One sweep point as one Dask task: compile, look the Verilog up in the cache, synthesise.

A task never raises for a design that fails: not fitting, missing timing or a tool that
crashes are results, recorded with their reason, and the sweep goes on. Only the death of
the worker process ends a task early; Dask then runs it again elsewhere, in a fresh copy
of its own folder, so a retried point is built once and counted once.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

from bnnhw.errors import BnnhwError, DoesNotFit
from bnnhw.sweep import cache
from bnnhw.sweep.space import Point

SEED = 1  # nextpnr's placement seed: part of the cache key


def _base(point: Point) -> dict:
    return point.as_dict() | {"worker": f"{socket.gethostname()}:{os.getpid()}"}


def _compile(point: Point, root: Path):
    """The point's build folder, compiled from scratch (a retried task starts clean)."""
    from bnnhw.build import compile_model

    folder = Path(root) / "points" / point.key
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    folding = folder.parent / f"{point.key}.folding.json"
    folding.write_text(json.dumps(point.folding_json()))
    return compile_model(point.model, folder / "build", force=True, folding=str(folding))


def synth_point(point: Point, root: Path, cache_dir: Path, cached_only: bool = False) -> dict:
    """A real Yosys + nextpnr build of ``point`` (or its cached result).

    ``cached_only``: never synthesise; a point not in the cache has status "not built"
    (to collect the results of a sweep that was stopped).
    """
    from bnnhw.boards import get_board, synthesize

    start = time.perf_counter()
    record = _base(point)
    try:
        build = _compile(point, root)
    except BnnhwError as exc:
        return record | {"status": "failed", "reason": f"compile: {exc}", "cached": False}
    key = cache.point_hash(build.verilog.read_text(), point.board, point.clock_mhz, SEED)
    record["verilog_hash"] = key
    hit = cache.lookup(cache_dir, key)
    if hit is not None:
        return record | hit["result"] | {"cached": True}
    if cached_only:
        return record | {"status": "not built", "reason": "not in the cache", "cached": False}
    board = get_board(point.board)
    try:
        report = synthesize(build, board, clock_mhz=point.clock_mhz, seed=SEED)
    except BnnhwError as exc:
        text = str(exc)
        kind = "does not fit" if "does not fit" in text or "block" in text else "tool failed"
        result = {"status": "failed", "reason": f"{kind}: {text}"}
        if isinstance(exc, DoesNotFit) and exc.logic_cells:  # the packer's count is data
            result["logic_cells"] = exc.logic_cells
    except Exception as exc:  # a crash of the tools or the build code: recorded, not cached
        reason = f"tool crash: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        return record | {"status": "failed", "reason": reason, "cached": False}
    else:
        result = measured(report)
    result["seconds"] = round(time.perf_counter() - start, 1)
    cache.store(cache_dir, key, {"point": point.as_dict(), "result": result})
    return record | result | {"cached": False}


def measured(report: dict) -> dict:
    """The figures a sweep keeps from a board report; a missed clock is a failure."""
    fmax, clock = report["fmax_mhz"], report["clock_mhz"]
    result = {
        "status": "ok",
        "reason": None,
        "luts": report["luts"],
        "ffs": report["ffs"],
        "logic_cells": report["logic_cells"],
        "logic_cells_available": report["logic_cells_available"],
        "bram": report["bram"],
        "bram_available": report["bram_available"],
        "fmax_mhz": fmax,
        "clock_mhz": clock,
        "interval": report["initiation_interval_cycles"],
        "frames_per_s_at_clock": report["accelerator_frames_per_s"],
        "frames_per_s": report["accelerator_frames_per_s_at_fmax"],
        "rom_bits_in_logic": report.get("rom_bits_in_logic"),
    }
    if fmax is None or fmax < clock:
        result["status"] = "failed"
        result["reason"] = f"misses timing: Fmax {fmax} MHz for a {clock:g} MHz clock"
    return result


def model_point(point: Point, root: Path, cache_dir: Path, delay: float = 0.0) -> dict:
    """No tools: the analytic estimate as the result (``--estimate-only``, and tests).

    It goes through the same folders and the same cache as :func:`synth_point`, keyed by
    the folding rather than the Verilog, and ``delay`` stands in for a tool's run time.
    The attempt is logged under ``root/attempts`` so a test can count retries.
    """
    record = _base(point)
    attempts = Path(root) / "attempts"
    attempts.mkdir(parents=True, exist_ok=True)
    (attempts / f"{point.key}.{os.getpid()}.{time.monotonic_ns()}").touch()
    key = cache.point_hash(json.dumps(point.folding), point.board, point.clock_mhz, -1)
    hit = cache.lookup(cache_dir, key)
    if hit is not None:
        return record | hit["result"] | {"cached": True}
    time.sleep(delay)
    cells = point.estimated_cells
    fmax = 40.0
    result = {
        "status": "ok" if cells <= _luts(point.board) else "failed",
        "reason": None if cells <= _luts(point.board) else "does not fit: estimate",
        "luts": cells,
        "ffs": None,
        "logic_cells": cells,
        "logic_cells_available": _luts(point.board),
        "bram": None,
        "bram_available": None,
        "fmax_mhz": fmax,
        "clock_mhz": None,
        "interval": point.interval,
        "frames_per_s_at_clock": None,
        "frames_per_s": round(fmax * 1e6 / point.interval),
        "rom_bits_in_logic": None,
        "verilog_hash": key,
    }
    cache.store(cache_dir, key, {"point": point.as_dict(), "result": result})
    return record | result | {"cached": False}


def _luts(board: str) -> int:
    from bnnhw.boards import get_board

    return get_board(board).luts
