"""SlidingWindow and BinaryPool in Amaranth's simulator against the NumPy golden windows.

Expected words are built from ``bnnhw.golden.window`` (im2col and max-pool in stream
order), never from the hardware's own description; both sides of every stream stall
at random.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnnhw.golden.window import max_pool, windows
from bnnhw.ir import Window
from bnnhw.rtl_gen.binary_pool import BinaryPool
from bnnhw.rtl_gen.sliding_window import SlidingWindow
from bnnhw.sim.amaranth_streams import StreamRun, run_streams


def _run(
    dut, words: list[int], n_out: int, *, in_gap: float = 0.0, out_gap: float = 0.0, seed=0
) -> StreamRun:
    """``run_streams`` until every word is taken (``drain``): a stride can leave the last
    rows of a map out of every window, so their pixels go in after the last output."""
    return run_streams(
        dut,
        words,
        n_out,
        in_gap=in_gap,
        out_gap=out_gap,
        seed=seed,
        max_cycles=100 * len(words) + 1000,
        drain=True,
    )


def _pack(rows: np.ndarray, bits: int) -> list[int]:
    """Each row -> one word, element k in bits [k*bits, (k+1)*bits), two's complement."""
    mask = (1 << bits) - 1
    return [sum((int(v) & mask) << (k * bits) for k, v in enumerate(row)) for row in rows]


def _frames(rng: np.random.Generator, win: Window, elem_bits: int, n: int) -> np.ndarray:
    return rng.integers(0, 1 << elem_bits, (n, win.in_size), dtype=np.int64)


def _pixels(frames: np.ndarray, win: Window, bits: int) -> list[int]:
    """Stream words: one pixel (all channels) per beat, frames back to back."""
    return _pack(frames.reshape(-1, win.channels), bits)


def _expected_windows(frames: np.ndarray, win: Window, elem_bits: int, ternary: bool):
    """Golden im2col words; ternary maps bit 1 -> +1, 0 -> -1 and pads with 0."""
    values = 2 * frames - 1 if ternary else frames
    return _pack(windows(values, win).reshape(-1, win.elements), 2 if ternary else elem_bits)


def _check_window(
    win: Window,
    elem_bits: int,
    ternary: bool = False,
    n: int = 3,
    gap: float = 0.3,
    seed=0,
    registered: bool = False,
) -> None:
    rng = np.random.default_rng(seed)
    frames = _frames(rng, win, elem_bits, n)
    expected = _expected_windows(frames, win, elem_bits, ternary)
    dut = SlidingWindow(win, elem_bits, ternary, read_register=registered)
    run = _run(
        dut, _pixels(frames, win, elem_bits), len(expected), in_gap=gap, out_gap=gap, seed=seed
    )
    assert run.outputs == expected


def _check_pool(
    win: Window, use_and, n: int = 3, gap: float = 0.3, seed: int = 0, registered=False
) -> None:
    rng = np.random.default_rng(seed)
    frames = _frames(rng, win, 1, n)
    flags = None if use_and is None else np.array(use_and, bool)
    expected = _pack(max_pool(frames, win, flags).reshape(-1, win.channels), 1)
    words = _pixels(frames, win, 1)
    dut = BinaryPool(win, use_and, read_register=registered)
    run = _run(dut, words, len(expected), in_gap=gap, out_gap=gap, seed=seed)
    assert run.outputs == expected


# -- explicit cases ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "win, elem_bits, ternary",
    [
        (Window(2, 6, 7, (3, 3)), 1, False),
        (Window(3, 8, 8, (3, 3), pads=(1, 1, 1, 1)), 8, False),
        (Window(3, 8, 8, (3, 3), pads=(1, 1, 1, 1)), 1, True),
        (Window(1, 5, 6, (1, 3)), 8, False),
        (Window(2, 6, 5, (3, 1), pads=(1, 0, 1, 0)), 1, True),
        (Window(1, 4, 4, (1, 1)), 8, False),  # pass-through: no line buffer
        (Window(2, 7, 9, (2, 2), (2, 2)), 1, False),  # stride leaves a row and a column out
        (Window(4, 12, 12, (5, 5), (2, 2), (2, 2, 2, 2)), 1, True),
        (Window(1, 9, 11, (4, 2), (1, 2), (1, 0, 0, 1)), 8, False),  # asymmetric pads
        (Window(3, 4, 5, (6, 7), pads=(1, 0, 1, 2)), 1, True),  # kernel = padded map
        (Window(2, 1, 4, (1, 2), pads=(0, 0, 0, 0)), 1, False),  # one-row map
        (Window(2, 4, 1, (3, 1), pads=(1, 0, 1, 0)), 8, False),  # one-column map
        (Window(2, 5, 2, (2, 2)), 1, False),  # two columns: too narrow to read ahead
        (Window(1, 4, 4, (5, 5), (1, 1), (2, 0, 1, 2)), 1, False),
    ],
    ids=str,
)
@pytest.mark.parametrize("registered", [False, True], ids=["read", "read_ahead"])
def test_window_matches_golden_im2col(win, elem_bits, ternary, registered):
    """``registered``: the ECP5's line buffer read two columns ahead into registers
    (maps at least 3 columns wide; narrower ones keep the plain read)."""
    seed = sum(win.kernel) + elem_bits
    _check_window(win, elem_bits, ternary, seed=seed, registered=registered)


@pytest.mark.parametrize(
    "win, use_and",
    [
        (Window(3, 8, 8, (2, 2), (2, 2)), [False, True, False]),
        (Window(2, 9, 7, (3, 3), (2, 2)), None),
        (Window(4, 6, 6, (3, 3), (1, 1)), [True] * 4),
        (Window(1, 5, 8, (1, 3), (1, 3)), [True]),
        (Window(2, 4, 4, (4, 4)), [True, False]),
    ],
    ids=str,
)
@pytest.mark.parametrize("registered", [False, True], ids=["read", "read_ahead"])
def test_pool_matches_golden_max_pool(win, use_and, registered):
    _check_pool(win, use_and, seed=win.channels, registered=registered)


# -- randomized sweep ----------------------------------------------------------------------


@st.composite
def window_cases(draw):
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    height, width = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    kh = draw(st.integers(1, min(5, height + pads[0] + pads[2])))
    kw = draw(st.integers(1, min(5, width + pads[1] + pads[3])))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    win = Window(draw(st.integers(1, 3)), height, width, (kh, kw), stride, pads)
    elem_bits = draw(st.sampled_from([1, 1, 3, 8]))
    ternary = elem_bits == 1 and draw(st.booleans())
    return win, elem_bits, ternary


SWEEP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SWEEP
@given(
    case=window_cases(),
    gap=st.sampled_from([0.0, 0.4]),
    seed=st.integers(0, 2**16),
    registered=st.booleans(),
)
def test_window_random_sweep(case, gap, seed, registered):
    win, elem_bits, ternary = case
    _check_window(win, elem_bits, ternary, n=2, gap=gap, seed=seed, registered=registered)


@st.composite
def pool_cases(draw):
    height, width = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    kernel = (draw(st.integers(1, min(4, height))), draw(st.integers(1, min(4, width))))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    win = Window(draw(st.integers(1, 4)), height, width, kernel, stride)
    return win, draw(st.lists(st.booleans(), min_size=win.channels, max_size=win.channels))


@SWEEP
@given(case=pool_cases(), seed=st.integers(0, 2**16), registered=st.booleans())
def test_pool_random_sweep(case, seed, registered):
    win, use_and = case
    _check_pool(win, use_and, n=2, gap=0.4, seed=seed, registered=registered)


# -- throughput: every window at its ideal cycle -------------------------------------------


def _ideal_cycles(win: Window, frames: int, latency: int) -> list[int]:
    """Cycle each window is taken with no stalls: one padded position per cycle.

    A window goes out ``latency`` cycles after its bottom-right position is advanced;
    ``_run`` counts the first clock edge as cycle 1, the position p of frame f is
    advanced at edge ``f * ph * pw + p + 1``. So a frame costs exactly ph * pw cycles and
    the documented constant is 1 + latency (2 for SlidingWindow, 3 for BinaryPool).
    """
    (kh, kw), (sh, sw), pw = win.kernel, win.stride, win.padded_width
    per_frame = win.padded_height * pw
    corners = [
        (oy * sh + kh - 1) * pw + ox * sw + kw - 1
        for oy in range(win.out_height)
        for ox in range(win.out_width)
    ]
    return [f * per_frame + p + 1 + latency for f in range(frames) for p in corners]


@pytest.mark.parametrize(
    "win",
    [
        Window(2, 6, 6, (3, 3), pads=(1, 1, 1, 1)),
        Window(1, 7, 5, (2, 3), (2, 1), (0, 2, 1, 0)),
        Window(1, 4, 4, (1, 1)),
        Window(1, 1, 1, (3, 3), pads=(1, 1, 1, 1)),  # one input pixel, mostly padding
    ],
    ids=str,
)
@pytest.mark.parametrize("registered", [False, True], ids=["read", "read_ahead"])
def test_window_throughput_one_position_per_cycle(win, registered):
    """Reading ahead adds no cycle: the windows come at the same edges."""
    frames = np.random.default_rng(5).integers(0, 2, (4, win.in_size))
    dut = SlidingWindow(win, 1, read_register=registered)
    assert dut.reads_ahead == (registered and win.kernel[0] > 1 and win.padded_width >= 3)
    assert dut.cycles_per_frame == win.padded_height * win.padded_width
    assert dut.line_buffer_bits == (win.kernel[0] - 1) * win.padded_width * win.channels
    run = _run(dut, _pixels(frames, win, 1), 4 * win.positions)
    assert run.outputs == _expected_windows(frames, win, 1, False)
    assert run.out_cycles == _ideal_cycles(win, 4, dut.latency)


@pytest.mark.parametrize("registered", [False, True], ids=["read", "read_ahead"])
def test_pool_throughput_one_position_per_cycle(registered):
    win = Window(3, 6, 6, (2, 2), (2, 2))
    frames = np.random.default_rng(6).integers(0, 2, (4, win.in_size))
    dut = BinaryPool(win, read_register=registered)
    assert (dut.cycles_per_frame, dut.line_buffer_bits) == (36, 18)
    run = _run(dut, _pixels(frames, win, 1), 4 * win.positions)
    assert run.outputs == _pack(max_pool(frames, win).reshape(-1, 3), 1)
    assert run.out_cycles == _ideal_cycles(win, 4, dut.latency)


# -- reset in the middle of a frame --------------------------------------------------------


@pytest.mark.parametrize("unit", ["window", "window_read_ahead", "pool"])
@pytest.mark.parametrize("pending", [False, True])
def test_reset_mid_frame_restarts_the_frame(unit, pending):
    """Reset part way into a frame; the next pixel starts a frame, nothing stale comes out.

    ``pending``: the consumer holds ``ready`` low, so a window waits on ``o`` at the reset
    (checked); otherwise the reset comes later, mid row, with random backpressure.
    """
    window = unit.startswith("window")
    win = Window(2, 6, 7, (3, 2), (1, 1), (1, 0, 0, 1) if window else (0, 0, 0, 0))
    rng = np.random.default_rng(int(pending))
    junk, frames = _frames(rng, win, 1, 1), _frames(rng, win, 1, 2)
    if window:
        dut = SlidingWindow(win, 1, ternary=True, read_register=unit == "window_read_ahead")
        expected = _expected_windows(frames, win, 1, True)
    else:
        dut = BinaryPool(win, [True, False])
        expected = _pack(max_pool(frames, win, np.array([True, False])).reshape(-1, 2), 1)
    # pending: up to the first window's bottom-right pixel; else two and a half rows more
    corner = (win.kernel[0] - 1 - win.pads[0]) * win.width + win.kernel[1] - 1 - win.pads[1]
    before = _pixels(junk, win, 1)[: corner + 1 if pending else corner + 20]
    rst = Signal()
    top = Module()
    top.submodules.dut = ResetInserter(rst)(dut)
    rand = random.Random(7)
    outputs: list[int] = []

    async def stream(ctx, words: list[int], n_out: int, ready_p: float) -> list[int]:
        """Both sides from one process, so the reset falls on a known cycle."""
        k, out = 0, []
        for _ in range(20 * len(words) + 200):
            if k == len(words) and len(out) >= n_out:
                return out
            valid, ready = k < len(words) and rand.random() < 0.7, rand.random() < ready_p
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload, words[k] if valid else 0)
            ctx.set(dut.o.ready, ready)
            _, _, took, o_valid, word = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.payload
            )
            k += valid and took
            if ready and o_valid:
                out.append(word)
        raise TimeoutError(f"{k} of {len(words)} words in, {len(out)} out")

    async def bench(ctx):
        await stream(ctx, before, 0, 0.0 if pending else 0.5)
        ctx.set(dut.i.valid, 0)
        await ctx.tick().repeat(3)
        if pending:  # else: whatever the random backpressure left
            assert ctx.get(dut.o.valid)
        ctx.set(rst, 1)
        await ctx.tick()
        ctx.set(rst, 0)
        outputs.extend(await stream(ctx, _pixels(frames, win, 1), len(expected), 0.7))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert outputs == expected


# -- parameters ----------------------------------------------------------------------------


def test_parameters_are_checked():
    win = Window(2, 6, 6, (3, 3), pads=(1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"ternary codes are for a binary map.*elem_bits=8"):
        SlidingWindow(win, 8, ternary=True)
    with pytest.raises(ValueError, match="elem_bits must be >= 1, got 0"):
        SlidingWindow(win, 0)
    with pytest.raises(ValueError, match=r"needs a bnnhw\.ir\.Window, got tuple"):
        SlidingWindow((2, 6, 6), 1)
    with pytest.raises(ValueError, match=r"no padding, got pads=\(1, 1, 1, 1\)"):
        BinaryPool(win)
    with pytest.raises(ValueError, match=r"one flag per channel \(2\), got 3"):
        BinaryPool(Window(2, 6, 6, (2, 2), (2, 2)), [True, False, True])
    with pytest.raises(ValueError, match="does not fit the padded map"):
        Window(1, 4, 4, (5, 5), pads=(0, 0, 0, 0))
