"""The clock search of `bnnhw build`: which builds it makes and which one it keeps.

nextpnr is replaced by a table of the Fmax each clock's placement reaches, so the
decisions are checked against clocks worked out by hand (0.95 x Fmax, down to 0.5 MHz).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bnnhw.boards import clock_search
from bnnhw.boards.clock_search import synthesize_fastest, target_clock, usable_clock
from bnnhw.boards.targets import get_board
from bnnhw.errors import InputError


def test_target_clock_is_95_percent_of_fmax_in_half_megahertz_steps():
    assert target_clock(44.2) == 41.5  # 44.2 x 0.95 = 41.99
    assert target_clock(20.0) == 19.0  # exactly 19.0
    assert target_clock(16.3) == 15.0  # 15.485


@pytest.mark.parametrize(
    "board, want, clock",
    [
        ("ulx3s-85f", 73.5, 72.5),  # 25 MHz x 23 / 8 = 71.875 MHz; 73.5 and 73 are > 1 % off
        ("ulx3s-85f", 84.5, 84.5),  # 25 x 27 / 8 = 84.375, within 1 %
        ("icebreaker", 39.0, 39.0),  # 12 MHz x 52 / 16 = 39.0
    ],
)
def test_usable_clock_is_the_highest_the_pll_makes(board, want, clock):
    assert usable_clock(get_board(board), want) == clock


def _fake(monkeypatch, tmp_path: Path, fmax_at: dict) -> list[float]:
    """``synthesize`` that writes a marker bitstream and reports ``fmax_at[clock]`` (or
    ``fmax_at[clock][seed]``, for placements that differ by seed)."""
    asked: list[float] = []

    def synthesize(
        build, board, *, baud=None, clock_mhz=None, progress=None, folder="gateware", seed=1
    ):
        clock = clock_mhz or board.clock_mhz
        if clock not in fmax_at:
            raise InputError(f"no PLL setting for {clock} MHz")
        asked.append(clock)
        out = Path(build.folder) / folder
        out.mkdir(parents=True, exist_ok=True)
        (out / "top.bin").write_text(f"{clock}")
        fmax = fmax_at[clock]
        fmax = fmax[seed] if isinstance(fmax, dict) else fmax
        return {"clock_mhz": clock, "fmax_mhz": fmax, "bitstream": str(out / "top.bin")}

    monkeypatch.setattr(clock_search, "synthesize", synthesize)
    return asked


@pytest.mark.parametrize(
    "fmax_at, builds, kept",
    [
        ({12: 44.2, 41.5: 45.0}, [12, 41.5], 41.5),  # the PLL build meets 41.5
        # the first seed misses 41.5, the second meets it
        ({12: 44.2, 41.5: {1: 40.0, 2: 42.0}}, [12, 41.5, 41.5], 41.5),
        # both seeds miss; 0.95 x 40.0 (the second's Fmax) -> 38.0 meets
        ({12: 44.2, 41.5: {1: 39.0, 2: 40.0}, 38.0: 39.1}, [12, 41.5, 41.5, 38.0], 38.0),
        ({12: 44.2, 41.5: 40.0, 38.0: 37.0}, [12, 41.5, 41.5, 38.0], 12),  # none: oscillator
        # 41.5 meets with room (Fmax 47.0): climb to 0.95 x 47.0 -> 44.5, which meets too;
        # 0.95 x 46.0 = 43.7 is no gain on 44.5, the Fmax itself (46.0) is: it meets
        ({12: 44.2, 41.5: 47.0, 44.5: 46.0, 46.0: 46.2}, [12, 41.5, 44.5, 46.0], 46.0),
        # the climb misses with both seeds: the 41.5 build stays
        ({12: 44.2, 41.5: 47.0, 44.5: {1: 43.0, 2: 44.0}}, [12, 41.5, 44.5, 44.5], 41.5),
        # 0.95 x 44.0 = 41.8 -> 41.5 is no gain; the Fmax itself misses with both seeds,
        # and 0.95 x 43.5 is below 41.5: the 41.5 build stays
        ({12: 44.2, 41.5: 44.0, 44.0: 43.5}, [12, 41.5, 44.0, 44.0], 41.5),
        # a climb of less than 2 % is not built: 41.5 x 1.02 = 42.33 > 42.0
        ({12: 44.2, 41.5: 42.2}, [12, 41.5], 41.5),
        ({12: 11.0}, [12], 12),  # slower than the oscillator: no PLL build
        ({12: 12.4}, [12], 12),  # 0.95 x 12.4 = 11.78: the PLL gains nothing
        ({12: 30.0}, [12], 12),  # the build at 28.5 MHz fails (a tool error): oscillator
    ],
)
def test_search_builds_and_keeps(monkeypatch, tmp_path, fmax_at, builds, kept):
    asked = _fake(monkeypatch, tmp_path, fmax_at)
    build = SimpleNamespace(folder=str(tmp_path))
    report = synthesize_fastest(build, get_board("icebreaker"))
    assert asked == builds
    assert report["clock_mhz"] == kept
    assert float((tmp_path / "gateware" / "top.bin").read_text()) == kept
    assert report["bitstream"] == str(tmp_path / "gateware" / "top.bin")
    assert not (tmp_path / "gateware_pll").exists()
    assert [t["clock_mhz"] for t in report["clock_search"]] == builds
