"""The points of a sweep: foldings of one model for one board around the predicted frontier.

The folding pass (``boards/fit.py``) walks a ladder of lane budgets, each in two forms
(fewest PEs; input words at most one block-RAM port wide), and keeps the fastest folding
whose estimate fits. A sweep builds the distinct foldings of that same ladder nearest to
the one it keeps, slower and faster, so the real tools show where the model's frontier
is right and where it is not.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bnnhw.boards.targets import Board
    from bnnhw.ir import Network


@dataclass(frozen=True)
class Point:
    """One design to build: a model, a board, a folding (PE, SIMD per layer), a clock."""

    model: str  # path of the .onnx file
    board: str
    folding: tuple[tuple[int, int], ...]
    clock_mhz: float | None = None  # None: the board's oscillator, no PLL
    max_lanes: int = 0  # the lane budget of the ladder that gave it (0: given)
    word_bits: int | None = None
    estimated_cells: int = 0  # boards/fit.py's logic-cell estimate (folding_cells)
    interval: int = 0  # ideal cycles per frame
    picked: bool = False  # the folding `bnnhw build` chooses for this board

    @property
    def key(self) -> str:
        """Names the point (its folder): model, board, folding and clock, not the estimate."""
        what = [self.model, self.board, self.folding, self.clock_mhz]
        digest = hashlib.sha256(json.dumps(what).encode()).hexdigest()[:12]
        stem = self.model.rsplit("/", 1)[-1].removesuffix(".onnx")
        return f"{stem}--{self.board}--{digest}"

    @property
    def folding_text(self) -> str:
        return " ".join(f"{pe}x{simd}" for pe, simd in self.folding)

    def folding_json(self) -> dict:
        """The ``--folding`` file of this point."""
        return {str(i): {"pe": pe, "simd": simd} for i, (pe, simd) in enumerate(self.folding)}

    def as_dict(self) -> dict:
        data = asdict(self)
        data["folding"] = self.folding_text
        data["key"] = self.key
        return data


def candidates(net: Network, board: Board) -> list[Point]:
    """Every distinct folding of the lane ladder, slowest first, with the model's cells."""
    from bnnhw.boards.fit import folding_cells, lane_ladder
    from bnnhw.boards.memories import GEOMETRY
    from bnnhw.passes.folding import fold_auto
    from bnnhw.rtl_gen.layer_params import layer_hw

    port = max(width for width, _ in GEOMETRY[board.family][0])
    found: dict[tuple, Point] = {}
    for lanes in lane_ladder(net):
        for word_bits in (None, port):
            folded = fold_auto(net, lanes, word_bits)
            key = tuple((la.pe, la.simd) for la in folded.layers)
            if key in found:
                continue
            found[key] = Point(
                model="",
                board=board.name,
                folding=key,
                max_lanes=lanes,
                word_bits=word_bits,
                estimated_cells=round(folding_cells(folded, board.family)),
                interval=max(layer_hw(layer).walk_cycles for layer in folded.layers),
            )
    return sorted(found.values(), key=lambda p: (-p.interval, p.estimated_cells))


def enumerate_points(
    model: str,
    net: Network,
    board: Board,
    n: int,
    picked: tuple[tuple[int, int], ...] | None,
    max_cells: int | None = None,
) -> list[Point]:
    """Up to ``n`` foldings nearest the one ``bnnhw build`` picks (``picked``), both sides.

    Foldings the logic model puts over the whole device are left out: nextpnr would only
    confirm it; ``max_cells`` lowers that cap (a sweep that must finish in minutes).
    ``picked`` None, or above the cap, centres the window on the largest folding kept.
    """
    from dataclasses import replace

    cap = min(board.luts, max_cells or board.luts)
    pool = [p for p in candidates(net, board) if p.estimated_cells <= cap]
    if not pool:
        return []
    keys = [p.folding for p in pool]
    centre = keys.index(picked) if picked in keys else len(pool) - 1
    # alternate below and above the pick, the pick first
    order = [centre]
    for step in range(1, len(pool)):
        order += [i for i in (centre - step, centre + step) if 0 <= i < len(pool)]
    chosen = sorted(order[: max(1, n)])
    return [replace(pool[i], model=model, picked=pool[i].folding == picked) for i in chosen]
