"""`bnnhw build` without ``--clock``: the fastest PLL clock that meets timing, with a margin.

nextpnr reports the Fmax a placed design reaches, not the one it would reach when placed
for a faster clock, so the search builds: first at the oscillator's clock, then from the
board's PLL at ``MARGIN`` x the Fmax found; if that placement comes out slower, once more
at the same clock with another placer seed (placements vary by several %), and if that
misses too, at ``MARGIN`` x its own Fmax. A build that meets its clock can reach more
than the lax first placement promised (one placed for 12 MHz does not try), so the
search climbs to ``MARGIN`` x its Fmax while that gains at least ``MIN_GAIN``, or else to
the Fmax itself if that does (a placement asked for a clock often reaches it: a CNV
placed for 42.75 MHz reached 45.2, placed for 48 it reached 49.1), within ``PLL_TRIES``
builds. The fastest build that meets its clock is kept in ``DIR/gateware``;
if none from the PLL does, the oscillator's build stays.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from bnnhw.boards.synth import synthesize
from bnnhw.errors import BnnhwError

if TYPE_CHECKING:
    from collections.abc import Callable

    from bnnhw.boards.targets import Board
    from bnnhw.build import Build

MARGIN = 0.95  # of nextpnr's Fmax: place-and-route varies a few % between clocks and seeds
PLL_TRIES = 3  # builds from the PLL after the oscillator's
SEEDS = 2  # placer seeds tried at a clock before asking for a slower one
STEP_MHZ = 0.5  # clocks asked of the PLL are multiples of this
MIN_GAIN = 1.02  # a met build climbs only to a clock at least this much faster


def meets(report: dict) -> bool:
    return report["fmax_mhz"] is not None and report["fmax_mhz"] >= report["clock_mhz"]


def target_clock(fmax_mhz: float) -> float:
    """The clock to ask of the PLL for a design that reached ``fmax_mhz``."""
    return math.floor(fmax_mhz * MARGIN / STEP_MHZ) * STEP_MHZ


def usable_clock(board: Board, want: float) -> float | None:
    """The highest clock at most ``want`` (in ``STEP_MHZ`` steps) the board's PLL makes.

    The PLL makes a clock when its dividers come within 1 % of it: the ECP5's from 25 MHz
    cannot make 73.5 or 73 MHz, but 72.5 (71.875 MHz).
    """
    from bnnhw.boards.pll import plan_pll

    clock = want
    while clock >= want * MARGIN:
        try:
            plan_pll(board, clock)
            return clock
        except BnnhwError:
            clock -= STEP_MHZ
    return None


def synthesize_fastest(
    build: Build,
    board: Board,
    *,
    baud: int | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> dict:
    """The board report of the fastest build that meets its clock (see the module doc)."""
    best = synthesize(build, board, baud=baud, progress=progress)
    tries = [_attempt(best)]
    fmax = best["fmax_mhz"]
    folder = Path(build.folder)
    want = usable_clock(board, target_clock(fmax)) if fmax else None
    seed = 1
    for _ in range(PLL_TRIES):
        if want is None or want <= best["clock_mhz"]:
            break
        progress(f"Fmax {fmax:.1f} MHz: building again with the PLL at {want:g} MHz (seed {seed})")
        try:
            report = synthesize(
                build,
                board,
                baud=baud,
                clock_mhz=want,
                progress=progress,
                folder="gateware_pll",
                seed=seed,
            )
        except BnnhwError as exc:  # the PLL cannot make it, or the build failed
            progress(f"  no build at {want:g} MHz: {exc}")
            break
        tries.append(_attempt(report))
        if meets(report):
            best = _keep(report, folder)
            fmax, seed = report["fmax_mhz"], 1
            want = usable_clock(board, target_clock(fmax))
            if want is None or want < best["clock_mhz"] * MIN_GAIN:
                # the margin leaves too little to climb: ask for the Fmax itself (a
                # placement for it often reaches it), if that still gains
                want = usable_clock(board, math.floor(fmax / STEP_MHZ) * STEP_MHZ)
                if want is None or want < best["clock_mhz"] * MIN_GAIN:
                    break
            continue
        if seed < SEEDS:  # placement varies by several % between seeds: try another
            seed += 1
            continue
        fmax, seed = report["fmax_mhz"], 1
        want = usable_clock(board, target_clock(fmax)) if fmax else None
    shutil.rmtree(folder / "gateware_pll", ignore_errors=True)
    best["clock_search"] = tries
    return best


def _attempt(report: dict) -> dict:
    return {"clock_mhz": report["clock_mhz"], "fmax_mhz": report["fmax_mhz"], "met": meets(report)}


def _keep(report: dict, folder: Path) -> dict:
    """Move the PLL build into ``gateware``, in place of the oscillator's."""
    shutil.rmtree(folder / "gateware")
    (folder / "gateware_pll").rename(folder / "gateware")
    name = Path(report["bitstream"]).name
    return {**report, "bitstream": str(folder / "gateware" / name)}
