"""WindowReader in Amaranth's simulator against the NumPy golden im2col.

Expected words come from ``bnnhw.golden.window.windows`` cut into SIMD-element words,
never from the reader's own addressing; both streams stall at random, and frames follow
back to back so a frame's rows wrap round the circular buffer into the next one's.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bnnhw.golden.window import windows
from bnnhw.ir import Window
from bnnhw.rtl_gen.window_reader import WindowReader
from bnnhw.sim.amaranth_streams import run_streams


def _pack(rows: np.ndarray, bits: int) -> list[int]:
    """Each row -> one word, element k in bits [k*bits, (k+1)*bits)."""
    mask = (1 << bits) - 1
    return [sum((int(v) & mask) << (k * bits) for k, v in enumerate(row)) for row in rows]


def _run(win: Window, elem_bits: int, simd: int, n: int, gap: float, seed: int, registered=False):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 1 << elem_bits, (n, win.in_size), dtype=np.int64)
    expected = _pack(windows(frames, win).reshape(-1, simd), elem_bits)
    pixels = _pack(frames.reshape(-1, win.channels), elem_bits)
    run = run_streams(
        WindowReader(win, elem_bits, simd, read_register=registered),
        pixels,
        len(expected),
        in_gap=gap,
        out_gap=gap,
        seed=seed,
        max_cycles=20 * (len(pixels) + len(expected)) + 1000,
        drain=True,
    )
    return run, expected


@pytest.mark.parametrize(
    "win, elem_bits, simd",
    [
        (Window(4, 5, 6, (3, 3)), 1, 2),
        (Window(4, 5, 6, (3, 3)), 1, 4),  # a whole pixel a word
        (Window(3, 8, 8, (3, 3)), 8, 3),  # an 8-bit input layer
        (Window(2, 7, 9, (2, 2), (2, 2)), 1, 1),  # stride leaves a row and a column out
        (Window(2, 6, 6, (3, 3), (2, 2)), 1, 2),  # and the last row only
        (Window(1, 5, 6, (1, 3)), 8, 1),
        (Window(3, 6, 5, (3, 1)), 1, 3),
        (Window(2, 4, 4, (1, 1)), 1, 1),  # a pixel a window
        (Window(2, 1, 4, (1, 2)), 1, 2),  # one-row map
        (Window(2, 4, 1, (3, 1)), 8, 1),  # one-column map
        (Window(3, 4, 5, (4, 5)), 1, 1),  # kernel = map: one window a frame
        (Window(8, 9, 11, (4, 2), (1, 2)), 1, 4),
        (Window(1, 4, 1, (1, 1), (3, 1)), 1, 1),  # a stride drops rows not yet in
    ],
    ids=str,
)
@pytest.mark.parametrize("registered", [False, True], ids=["", "read_register"])
def test_reader_matches_golden_im2col(win, elem_bits, simd, registered):
    seed = sum(win.kernel) + simd
    run, expected = _run(win, elem_bits, simd, n=3, gap=0.3, seed=seed, registered=registered)
    assert run.outputs == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    channels=st.integers(1, 4),
    simd_div=st.integers(1, 4),
    height=st.integers(1, 7),
    width=st.integers(1, 7),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    elem_bits=st.sampled_from([1, 2, 8]),
    gap=st.sampled_from([0.0, 0.3, 0.7]),
    seed=st.integers(0, 1000),
    registered=st.booleans(),
)
def test_random_geometries_match_golden(
    channels, simd_div, height, width, kernel, stride, elem_bits, gap, seed, registered
):
    assume(kernel[0] <= height and kernel[1] <= width)  # else there is no window
    simd = channels // simd_div if channels % simd_div == 0 else channels
    win = Window(channels, height, width, kernel, stride)
    run, expected = _run(win, elem_bits, simd, n=2, gap=gap, seed=seed, registered=registered)
    assert run.outputs == expected


def test_a_word_per_cycle_when_the_reader_is_the_slower_side():
    """CNV-w1a1's layer-1 shape scaled down: 3x3 windows of 8 channels, SIMD 2 (36 words
    a window). With both streams at full speed, frames follow at a word a cycle: the next
    frame's first rows are written while the last window row of this one is read."""
    cases = [(Window(8, 8, 8, (3, 3)), 2, False), (Window(4, 9, 7, (3, 2), (2, 1)), 4, True)]
    for win, simd, registered in cases:
        run, expected = _run(win, 1, simd, n=3, gap=0.0, seed=1, registered=registered)
        assert run.outputs == expected
        gaps = np.diff(run.out_cycles)
        assert gaps.max() == 1, f"{win}: a word every cycle, but a gap of {gaps.max()}"


@pytest.mark.parametrize(
    "win, simd, match",
    [
        (Window(4, 5, 5, (3, 3), pads=(1, 1, 1, 1)), 2, "padded"),
        (Window(6, 5, 5, (3, 3)), 4, "must divide the 6 channels"),
    ],
)
def test_what_it_cannot_read_is_refused(win, simd, match):
    with pytest.raises(ValueError, match=match):
        WindowReader(win, 1, simd)
