"""``--target-fps F`` / ``--max-luts L``: the design to build, chosen before any synthesis.

From a sweep's results (measured) or, without one, from the foldings of the lane ladder
priced by the fitted resource model (``resources.predict``) with the clock the build's
search would settle on (``MARGIN`` x the predicted Fmax). A target no point reaches, or a
budget no point stays within, is refused here, before synthesis, with the closest point.
"""

from __future__ import annotations

import json
import tempfile
from typing import TYPE_CHECKING

from bnnhw.errors import BoardError, InputError

if TYPE_CHECKING:
    from bnnhw.boards.targets import Board
    from bnnhw.ir import Network


def pick(points: list[dict], target_fps: float | None = None, max_luts: int | None = None) -> dict:
    """The smallest point reaching ``target_fps``, or the fastest within ``max_luts``.

    ``points``: dicts with ``status``, ``logic_cells``, ``frames_per_s`` and ``folding``
    (a sweep's records, or :func:`predicted_points`). With both limits, the smallest
    point meeting both. Only points that built (or are predicted to fit) are considered.
    """
    if target_fps is None and max_luts is None:
        raise InputError("give --target-fps or --max-luts")
    ok = [p for p in points if p.get("status") == "ok"]
    if not ok:
        raise BoardError("no point of the design space fits the board")
    within = [p for p in ok if max_luts is None or p["logic_cells"] <= max_luts]
    if target_fps is not None:
        fast = [p for p in within if p["frames_per_s"] >= target_fps]
        if not fast:
            best = max(within or ok, key=lambda p: p["frames_per_s"])
            limit = f" within {max_luts} logic cells" if max_luts is not None else ""
            raise BoardError(
                f"no design reaches {target_fps:,.0f} frames/s{limit}: the fastest is "
                f"{best['folding']} at {best['frames_per_s']:,.0f} frames/s with "
                f"{best['logic_cells']} logic cells; lower --target-fps"
            )
        return min(fast, key=lambda p: (p["logic_cells"], -p["frames_per_s"]))
    if not within:
        small = min(ok, key=lambda p: p["logic_cells"])
        raise BoardError(
            f"no design fits in {max_luts} logic cells: the smallest is {small['folding']} "
            f"with {small['logic_cells']}; raise --max-luts"
        )
    return max(within, key=lambda p: (p["frames_per_s"], -p["logic_cells"]))


def predicted_points(net: Network, board: Board) -> list[dict]:
    """Every folding of the lane ladder with the resource model's cells, EBR and frames/s.

    A point is "ok" when the model puts it within the share of the device a design may
    plan on (``boards.fit.LOGIC_LIMIT``) and its weight ROMs within the block RAM.
    """
    from bnnhw.boards.clock_search import MARGIN
    from bnnhw.boards.fit import LOGIC_LIMIT, weight_blocks
    from bnnhw.passes.folding import fold_explicit
    from bnnhw.sweep.resources import load_coefficients, predict
    from bnnhw.sweep.space import candidates

    coefficients = load_coefficients()
    fitted = coefficients["families"].get(board.family, {})
    if not {"logic_cells", "period_ns"} <= set(fitted):
        raise BoardError(
            f"{board.name}: the resource model has no logic cells and Fmax fitted for "
            f"{board.family}; run bench/fit_resources.py on a sweep for such a board"
        )
    out = []
    for c in candidates(net, board):
        folded = fold_explicit(net, c.folding_json(), "folding")
        model = predict(folded, board.family, coefficients=coefficients)
        cells = round(model["logic_cells"])
        clock = min(model["fmax_mhz"] * MARGIN, 1000.0)
        fits = (
            cells <= LOGIC_LIMIT * board.luts
            and weight_blocks(folded, board.family) <= board.ram_blocks
        )
        out.append(
            {
                "folding": c.folding_text,
                "folding_json": c.folding_json(),
                "logic_cells": cells,
                "frames_per_s": round(clock * 1e6 / c.interval),
                "fmax_mhz": round(model["fmax_mhz"], 1),
                "interval": c.interval,
                "status": "ok" if fits else "failed",
            }
        )
    return out


def choose_folding(
    net: Network, board: Board, target_fps: float | None, max_luts: int | None
) -> dict:
    """The predicted point for the limits (see :func:`pick`), its folding as ``folding_json``."""
    for value, flag in ((target_fps, "--target-fps"), (max_luts, "--max-luts")):
        if value is not None and not value > 0:
            raise InputError(f"{flag} {value}: give a positive number")
    try:
        return pick(predicted_points(net, board), target_fps, max_luts)
    except BoardError as exc:
        raise BoardError(f"{board.name}: {net.name}: {exc}") from None


def folding_file(point: dict) -> str:
    """A ``--folding`` JSON file holding the chosen point's folding (for compile_model),
    named by its content so repeated choices reuse one file."""
    import hashlib
    from pathlib import Path

    text = json.dumps(point["folding_json"], sort_keys=True)
    name = f"bnnhw-folding-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
    path = Path(tempfile.gettempdir()) / name
    path.write_text(text)
    return str(path)


def folding_for_cli(
    model: str,
    board_name: str | None,
    target_fps: float | None,
    max_luts: int | None,
    folding: str = "auto",
    max_lanes: int | None = None,
    say=print,
) -> str | None:
    """``--target-fps`` / ``--max-luts`` of ``bnnhw compile`` and ``build``: the folding
    file to compile with, or None when neither flag is given. Refuses, before any
    synthesis, a target no folding reaches."""
    if target_fps is None and max_luts is None:
        return None
    if board_name is None:
        raise InputError("--target-fps and --max-luts need --board (its clock and logic)")
    if folding != "auto" or max_lanes is not None:
        raise InputError("--target-fps/--max-luts choose the folding: drop --folding/--max-lanes")
    import bnnhw
    from bnnhw.boards import get_board

    net, board = bnnhw.load(model), get_board(board_name)
    point = choose_folding(net, board, target_fps, max_luts)
    say(
        f"chose folding {point['folding']}: ~{point['logic_cells']} logic cells, Fmax "
        f"~{point['fmax_mhz']} MHz, ~{point['frames_per_s']:,} frames/s (resource model)"
    )
    return folding_file(point)
