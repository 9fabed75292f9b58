"""Convolutional networks: the whole Accelerator in Amaranth's simulator against the golden.

Networks are built directly as folded IR (``conv_networks``), so every geometry the IR
allows is reachable: any kernel up to 5, stride 1-2, asymmetric zero padding, 1-64
channels, maps up to 32 x 32, binary / ternary (padded binary) / n-bit first layers,
OR / AND / mixed max-pools. The simulator costs about (100 + PE x SIMD) x 5 us per
cycle on a loaded machine, so draws keep the work (positions x neurons x fan-in) and
the frames per example bounded.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from bnnhw import golden
from bnnhw.build import Build, compile_model, step_report, step_verilog
from bnnhw.ir import Window
from bnnhw.rtl_gen import Accelerator
from bnnhw.sim.amaranth_streams import run_streams

from conftest import ROOT
from conv_networks import (
    ConvSpec,
    conv_input,
    conv_out_map,
    random_conv_network,
    random_folding,
    walk_cycles,
)
from ir_networks import random_frames

WORK = 120_000  # positions x neurons x fan-in of one conv layer, per frame
SIM_CYCLES = 2_500  # cycles of steady state to simulate per random example
WORD_BITS = 2048  # widest window / SIMD word: Amaranth's pysim chokes on ~2700-bit memories


def _simulate(acc, words, n_out, beats, *, gap, seed, limit):
    """``run_streams`` watching every hidden layer's output stream.

    Returns the result words, the cycle each was taken, and per hidden layer the beats
    it handed on (one output pixel, or a dense layer's whole vector, per beat).
    """
    run = run_streams(
        acc,
        words,
        n_out,
        in_gap=gap,
        out_gap=gap,
        seed=seed,
        max_cycles=limit,
        taps=[stage.o for stage in acc.stages[:-1]],
        tap_beats=beats,
        drain=True,
    )
    return run.outputs, run.out_cycles, run.taps


def _beats(bits: np.ndarray, channels: int) -> list[int]:
    """A layer's golden output bits (N, size) in stream order -> one int per beat."""
    packed = np.packbits(bits.reshape(-1, channels), axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def _run(net, x, *, gap=0.0, seed=0, read_register=False):
    """Simulate ``x``; check every hidden layer's beats, the scores and classes."""
    acc = Accelerator(net, read_register=read_register)
    fmt = acc.port_format
    words = [w for frame in fmt.pack_frames(golden.encode_inputs(net.input, x)) for w in frame]
    expected = [
        _beats(bits, layer.neurons)
        for layer, bits in zip(net.layers[:-1], golden.layer_outputs(net, x)[1:], strict=False)
    ]
    outputs, cycles, taps = _simulate(
        acc,
        words,
        len(x),
        [len(b) for b in expected],
        gap=gap,
        seed=seed,
        limit=int(4 * (len(x) + 3) * acc.ideal_cycles / (1 - gap)) + 2000,
    )
    for k, (layer, tap, want) in enumerate(zip(net.layers, taps, expected, strict=False)):
        # a padded first layer may already emit the next frame's all-padding windows
        got = tap[: len(want)]
        bad = next((i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), None)
        assert len(got) == len(want) and bad is None, (
            f"layer {k} ({layer.name}): {len(got)}/{len(want)} beats, first mismatch at beat "
            f"{bad} (frame, pixel = {divmod(bad, len(want) // len(x)) if bad is not None else ''})"
        )
    results = [fmt.unpack_result(w) for w in outputs]
    classes, scores = np.array([r[0] for r in results]), np.array([r[1] for r in results])
    assert np.array_equal(scores, golden.scores(net, x)), f"scores {scores}"
    assert np.array_equal(classes, golden.predict(net, x))
    return acc, cycles


def _check(net, frames, *, gap=0.3, seed=0, read_register=False):
    x = random_frames(np.random.default_rng(seed + 7), net.input, frames)
    return _run(net, x, gap=gap, seed=seed, read_register=read_register)


# -- random geometries, networks and foldings ----------------------------------------------


def _net(shape, convs, *, bits=1, signed=True, hidden=6, classes=4, seed=0, lanes=256, slack=2):
    """A random network; its folding no slower than ``slack`` x its slowest walk if it can."""
    rng = np.random.default_rng(seed)
    spec = conv_input(*shape, bits, signed)
    net = random_conv_network(
        rng, spec, convs, hidden=hidden, classes=classes, per_class_scores=seed % 2 == 1
    )
    target = slack * walk_cycles(net)
    return random_folding(rng, net, max_cycles=target, max_lanes=lanes, max_word_bits=WORD_BITS)


@st.composite
def conv_specs(draw, in_map, max_neurons, bits):
    """One conv that fits ``in_map`` (C, H, W), with an optional pool.

    Its work (positions x neurons x fan-in) stays <= WORK, its window <= WORD_BITS.
    """
    c, h, w = in_map
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    bits = 2 if bits == 1 and any(pads) else bits  # ternary codes
    taps = max(1, WORD_BITS // (c * bits))
    kh = draw(st.integers(1, min(5, h + pads[0] + pads[2], taps)))
    kw = draw(st.integers(1, min(5, w + pads[1] + pads[3], max(1, taps // kh))))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    win = Window(c, h, w, (kh, kw), stride, pads)
    cap = max(1, WORK // (win.positions * win.elements))
    neurons = draw(st.integers(1, max(1, min(max_neurons, cap))))
    pool = None
    if max(win.out_height, win.out_width) >= 2 and draw(st.booleans()):
        size = (
            draw(st.integers(1, min(3, win.out_height))),
            draw(st.integers(1, min(3, win.out_width))),
        )
        pool = (size, (draw(st.integers(1, size[0])), draw(st.integers(1, size[1]))))
    mode = draw(st.sampled_from(["or", "and", "mixed"]))
    return ConvSpec(neurons, (kh, kw), stride, pads, pool, mode)


@st.composite
def conv_cases(draw):
    """Plain parameters of a random network and folding (short in a failure report)."""
    large = draw(st.integers(0, 3)) == 0  # one draw in four: maps up to 32 x 32
    top = 32 if large else 10
    h, w = draw(st.integers(4, top)), draw(st.integers(4, top))
    channels = min(draw(st.integers(1, 64)), max(1, 2048 // (h * w)))
    bits = draw(st.sampled_from([1, 1, 2, 8]))
    convs = [draw(conv_specs((channels, h, w), 16 if large else 40, bits))]
    if draw(st.booleans()):
        convs.append(draw(conv_specs(conv_out_map((channels, h, w), convs[0]), 16, 1)))
    return dict(
        shape=(channels, h, w),
        convs=convs,
        bits=bits,
        signed=draw(st.booleans()),
        hidden=draw(st.sampled_from([0, 1, 5, 8])),
        classes=draw(st.integers(1, 6)),
        slack=draw(st.sampled_from([1, 2, 4])),  # folding target: slack x the slowest walk
        lanes=draw(st.sampled_from([64, 512])),
        seed=draw(st.integers(0, 2**16)),
    )


# Shrinking re-simulates dozens of networks (minutes); a failure reports the case as drawn.
@settings(
    max_examples=12,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=conv_cases(), gap=st.sampled_from([0.0, 0.3, 0.6]), registered=st.booleans())
def test_random_conv_networks_and_foldings_match_golden(case, gap, registered):
    """``registered``: the ECP5 boards' read registers (banked ROMs, read-ahead line
    buffers, FIFOs read through a register)."""
    net = _net(**case)
    note(f"folding {[(la.name, la.pe, la.simd) for la in net.layers]}")
    ideal = max(walk_cycles(net), *(la.cycles for la in net.layers))
    frames = int(np.clip(SIM_CYCLES // ideal, 2, 4))
    _check(net, frames, gap=gap, seed=case["seed"], read_register=registered)


# -- every layer kind, explicitly ----------------------------------------------------------


P1 = (1, 1, 1, 1)
POOL2 = ((2, 2), (2, 2))
INPUTS = {"b": (1, True), "s8": (8, True), "u4": (4, False)}  # bipolar, signed 8, unsigned 4
KINDS = {
    "binary_unpadded": ((2, 7, 7), [ConvSpec(8, (3, 3))], "b"),
    "binary_padded_ternary": ((3, 6, 6), [ConvSpec(8, (3, 3), pads=P1)], "b"),
    "ternary_asymmetric_pads": ((1, 6, 7), [ConvSpec(5, (3, 2), pads=(2, 0, 1, 2))], "b"),
    "in8_padded": ((1, 8, 8), [ConvSpec(8, (3, 3), pads=P1)], "s8"),
    "in4_unsigned_unpadded": ((2, 6, 6), [ConvSpec(6, (2, 2))], "u4"),
    "in4_unsigned_padded": ((2, 5, 5), [ConvSpec(6, (3, 3), pads=(0, 1, 2, 1))], "u4"),
    "pool_or": ((1, 8, 8), [ConvSpec(6, (3, 3), pads=P1, pool=POOL2, pool_and="or")], "b"),
    "pool_and": ((1, 8, 8), [ConvSpec(6, (3, 3), pool=POOL2, pool_and="and")], "s8"),
    "pool_mixed_overlapping": (
        (2, 7, 7),
        [ConvSpec(8, (2, 2), pool=((3, 3), (1, 1)), pool_and="mixed")],
        "b",
    ),
    "stride2": ((1, 9, 9), [ConvSpec(6, (3, 3), (2, 2), P1)], "b"),
    "stride2_unused_rows": ((2, 8, 9), [ConvSpec(4, (3, 3), (2, 2))], "s8"),
    "nonsquare_kernel_stride": ((1, 7, 9), [ConvSpec(6, (2, 4), (1, 2), (0, 1, 1, 0))], "b"),
    "kernel_1x1": ((3, 5, 5), [ConvSpec(4, (1, 1))], "b"),
    "pads_beyond_kernel": ((1, 4, 4), [ConvSpec(4, (1, 1), pads=(2, 2, 1, 0))], "b"),
    "kernel_covers_padded_map": ((2, 3, 4), [ConvSpec(4, (5, 5), pads=(1, 0, 1, 1))], "b"),
    "conv_conv_pool_dense_out": (
        (1, 10, 10),
        [ConvSpec(8, (3, 3), pads=P1), ConvSpec(8, (3, 3), pads=P1, pool=POOL2, pool_and="mixed")],
        "s8",
    ),
    "conv_pool_conv_unpadded": (
        (2, 10, 10),
        [ConvSpec(6, (3, 3), pool=POOL2), ConvSpec(5, (2, 2))],
        "b",
    ),
}


@pytest.mark.parametrize("kind", KINDS)
def test_layer_kinds_match_golden(kind):
    shape, convs, code = KINDS[kind]
    bits, signed = INPUTS[code]
    seed = sorted(KINDS).index(kind)
    net = _net(shape, convs, bits=bits, signed=signed, seed=seed)
    _check(net, 3, gap=0.3, seed=seed)


@pytest.mark.parametrize("kind", ["conv_conv_pool_dense_out", "binary_padded_ternary"])
def test_layer_kinds_with_the_read_register(kind):
    """The ECP5 boards' register after the MVTU's memory reads, in a convolution."""
    shape, convs, code = KINDS[kind]
    bits, signed = INPUTS[code]
    seed = sorted(KINDS).index(kind)
    net = _net(shape, convs, bits=bits, signed=signed, seed=seed)
    _check(net, 3, gap=0.3, seed=seed + 1, read_register=True)


def test_conv_straight_into_the_output_layer():
    net = _net((2, 6, 6), [ConvSpec(4, (3, 3), pads=P1, pool=POOL2)], hidden=0, seed=3)
    _check(net, 3, gap=0.4, seed=3)


def test_64_channels_in_and_out():
    """64-channel pixels on a layer's input and output; a dense SIMD of several pixels."""
    net = _net(
        (64, 4, 4),
        [ConvSpec(64, (2, 2), pads=(0, 0, 1, 1), pool=POOL2, pool_and="mixed")],
        hidden=4,
        seed=5,
        lanes=2048,
    )
    assert net.layers[0].window.channels == 64 and net.layers[0].out_map[0] == 64
    net.layers[1].simd = 128  # two 64-bit pixels per SIMD word
    _check(net, 2, gap=0.3, seed=5)


def test_32x32_image():
    net = _net((1, 32, 32), [ConvSpec(4, (3, 3), pads=P1, pool=POOL2, pool_and="mixed")], seed=6)
    _check(net, 2, gap=0.2, seed=6)


# -- steady state: the sliding window must not starve the MVTU -----------------------------


STEADY_NET = dict(  # 8-bit 1x8x8 -> conv 8 pad 1 -> pool 2 -> ternary conv 8 -> 8 -> 4
    shape=(1, 8, 8),
    convs=[ConvSpec(8, (3, 3), pads=P1, pool=POOL2), ConvSpec(8, (3, 3), pads=P1)],
    bits=8,
    hidden=8,
)
STRIDE_NET = dict(  # stride 2: windows only on every other row
    shape=(2, 12, 12), convs=[ConvSpec(8, (3, 3), (2, 2), P1)], bits=1, hidden=8
)
ROWS_NET = dict(shape=(2, 8, 8), convs=[ConvSpec(3, (1, 2), (2, 1))], bits=1, hidden=4)
BURST_NET = dict(  # the second conv takes the first's output row bursts
    shape=(1, 8, 8),
    convs=[ConvSpec(4, (3, 3), pads=P1), ConvSpec(3, (1, 1), (2, 1))],
    bits=8,
    hidden=4,
)
READER_NET = dict(  # unpadded, SIMD dividing the channels: both convs read their windows
    shape=(4, 8, 8),
    convs=[ConvSpec(8, (3, 3)), ConvSpec(8, (3, 3), pool=POOL2)],
    bits=1,
    hidden=8,
)
STEADY = {
    # name: (network, (pe, simd) per layer) # cycles per frame of the slowest layer.
    # STEADY_NET: fan-ins 9, 72, 128, 8; its first window walks 100 cycles (10 x 10 padded).
    "fully_parallel": (STEADY_NET, [(8, 9), (8, 72), (8, 128), (4, 8)]),  # the walk, 100
    "fast_first_slow_middle": (STEADY_NET, [(8, 9), (2, 24), (2, 32), (2, 4)]),  # 192
    "slow_first_layer": (STEADY_NET, [(2, 9), (4, 36), (2, 32), (2, 4)]),  # 256
    "first_mvtu_just_over_walk": (STEADY_NET, [(4, 9), (4, 36), (2, 32), (2, 4)]),  # 128
    "middle_just_under_walk": (STEADY_NET, [(8, 9), (4, 24), (2, 32), (2, 4)]),  # 100 (96)
    "slow_dense_after_conv": (STEADY_NET, [(8, 9), (4, 36), (1, 8), (2, 4)]),  # 128
    "all_balanced": (STEADY_NET, [(4, 9), (2, 36), (1, 8), (1, 1)]),  # 128, 128, 128
    # STRIDE_NET: fan-ins 18, 288, 8; walks 196 cycles (14 x 14), 36 windows
    "stride2_walk_bound": (STRIDE_NET, [(8, 18), (2, 72), (2, 4)]),  # 196
    "stride2_mvtu_just_over_walk": (STRIDE_NET, [(4, 6), (2, 72), (2, 4)]),  # 216
    # a 1-row kernel with row stride 2: every other row emits no window. 84
    "stride2_rows_kernel_1x2": (ROWS_NET, [(1, 4), (4, 84), (4, 4)]),
    # a walk-bound first conv (100) feeds a stride-2 conv of 96, in row bursts
    "stride2_conv_after_walk_bound_conv": (BURST_NET, [(4, 9), (1, 4), (4, 12), (4, 4)]),
    # READER_NET: fan-ins 36, 72, 32, 8; 36 then 16 windows (6 x 6, 4 x 4), walks 64, 36
    "reader_bound_first": (READER_NET, [(8, 4), (8, 8), (4, 32), (2, 8)]),  # 324, 144
    "readers_balanced": (READER_NET, [(4, 4), (2, 8), (2, 32), (2, 8)]),  # 648, 576
    "second_reader_bound": (READER_NET, [(8, 4), (8, 2), (4, 32), (2, 8)]),  # 324, 576
    "reader_whole_pixels": (READER_NET, [(8, 4), (2, 8), (4, 32), (2, 8)]),  # 324, 576
}


@pytest.mark.parametrize("name", STEADY)
def test_steady_state_meets_ideal_cycles(name):
    spec, folds = STEADY[name]
    net = _net(**spec, seed=11)
    for layer, (pe, simd) in zip(net.layers, folds, strict=True):
        layer.pe, layer.simd = pe, simd
    frames = 5
    x = random_frames(np.random.default_rng(1), net.input, frames)
    # the ECP5 boards' read register on one network: the longer pipeline keeps up
    registered = name in ("stride2_conv_after_walk_bound_conv", "second_reader_bound")
    acc, cycles = _run(net, x, read_register=registered)
    steady = (cycles[-1] - cycles[1]) / (frames - 2)
    print(f"{name}: ideal {acc.ideal_cycles}, steady {steady:.1f} cycles/frame")
    assert acc.port_format.frame_words <= acc.ideal_cycles
    assert steady <= 1.05 * acc.ideal_cycles, (name, acc.ideal_cycles, steady)
    assert cycles[0] - 1 <= acc.latency_cycles  # documented as an upper estimate


# -- build reports: line buffers from the geometry -----------------------------------------


# Line-buffer bits worked by hand: a window keeps kh-1 rows of its padded width of stored
# pixels (channels x bits, plus an "inside" flag bit when ternary), a pool kh-1 rows of its
# map width x channels.
HAND_LINE_BUFFERS = {
    # conv0: 1 ch x 8-bit on 8x8, 3x3 pad 1: 2 rows x 10 x 8 = 160; pool 2x2 on 16 x 8x8:
    #   1 x 8 x 16 = 128. conv1: ternary 16 ch on 4x4, 3x3 pad 1: 2 x 6 x (16 + 1) = 204;
    #   pool 2x2 on 32 x 4x4: 1 x 4 x 32 = 128. Then two dense layers.
    "cnv_digits_pad_w1a1_in8_classic": [160 + 128, 204 + 128, 0, 0],
    # conv0: 1 ch x 1 bit on 8x8, 3x3: 2 x 8 x 1 = 16. conv1: 16 ch on 6x6, 3x3, unpadded
    #   and its SIMD divides 16, so a WindowReader: kh + max(stride 1, rows from the last
    #   window row's top to the next frame, 6 - 3 x 1 = 3) = 6 rows x 6 x 16 = 576; pool
    #   2x2 on 16 x 4x4: 1 x 4 x 16 = 64.
    "cnv_digits_nopad_w1a1_in1_classic": [16, 576 + 64, 0, 0],
}


def _check_report(report: dict, net, expected: list[int]) -> None:
    assert [la["line_buffer_bits"] for la in report["layers"]] == expected
    assert report["line_buffer_bits"] == sum(expected)
    for la, layer in zip(report["layers"], net.layers, strict=True):
        assert la["kind"] == ("conv" if layer.window is not None else "dense")


@pytest.mark.parametrize(
    "model", ["cnv_digits_pad_w1a1_in8_classic", "cnv_digits_nopad_w1a1_in1_classic"]
)
def test_compiled_report_line_buffers(model, tmp_path):
    build = compile_model(ROOT / "models" / f"{model}.onnx", tmp_path, max_lanes=128)
    report = json.loads((tmp_path / "report.json").read_text())
    _check_report(report, build.net, HAND_LINE_BUFFERS[model])
    assert (
        f"line buffers: {sum(HAND_LINE_BUFFERS[model])} bits"
        in (tmp_path / "report.md").read_text()
    )


def test_report_line_buffers_for_random_geometries(tmp_path):
    net = _net(
        (3, 9, 7),
        [
            ConvSpec(5, (4, 2), (2, 1), (2, 1, 0, 2), pool=((3, 2), (1, 2)), pool_and="mixed"),
            ConvSpec(6, (1, 3), pads=(0, 1, 0, 1)),
            ConvSpec(4, (2, 2), pool=((2, 2), (1, 1))),
        ],
        bits=3,
        seed=9,
    )
    build = Build(folder=tmp_path, model="random", net=net)
    step_verilog(build)
    step_report(build)
    # conv0: 3 ch x 3 bits on 9x7, kernel 4x2 stride (2, 1), pads (2, 1, 0, 2): padded 11 x 10,
    #   3 rows x 10 x 9 = 270; its output 4 x 9 (5 ch), pool 3x2 stride (1, 2): 2 x 9 x 5 = 90.
    #   The pool's output: 2 x 4. conv1: a 1-row kernel keeps no lines (ternary or not).
    #   conv2: 6 ch on 2x4, 2x2: 1 x 4 x 6 = 24; output 1 x 3, its pool 1x2 keeps no lines.
    expected = [270 + 90, 0, 24, 0, 0]
    _check_report(json.loads((tmp_path / "report.json").read_text()), net, expected)
