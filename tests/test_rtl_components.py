"""Each RTL component alone in Amaranth's simulator, with random stalls on both sides."""

from __future__ import annotations

import numpy as np
import pytest

from bnnhw import golden
from bnnhw.ir import InputSpec
from bnnhw.port_format import PortFormat, pack_fields, unpack_fields
from bnnhw.rtl_gen.argmax import Argmax
from bnnhw.rtl_gen.layer_params import layer_hw
from bnnhw.rtl_gen.mvtu import MVTU
from bnnhw.rtl_gen.width import Downsizer, Upsizer, WordSelector, converter
from bnnhw.sim.amaranth_streams import run_streams

from ir_networks import random_frames, random_network


def _steady(run, skip=2) -> float:
    cycles = run.out_cycles
    return (cycles[-1] - cycles[skip]) / (len(cycles) - 1 - skip)


@pytest.mark.parametrize("gap", [0.0, 0.5])
def test_width_converters_round_trip(gap):
    rng = np.random.default_rng(1)
    wide = [int(v) for v in rng.integers(0, 2**48, 12)]
    down = run_streams(Downsizer(48, 12), wide, 48, in_gap=gap, out_gap=gap, seed=3)
    expected = [(w >> (12 * k)) & 0xFFF for w in wide for k in range(4)]
    assert down.outputs == expected
    up = run_streams(Upsizer(12, 48), expected, 12, in_gap=gap, out_gap=gap, seed=4)
    assert up.outputs == wide
    if gap == 0:  # no bubbles: one narrow word per cycle
        assert _steady(down) == 1.0 and _steady(up) == 4.0


@pytest.mark.parametrize("gap", [0.0, 0.5])
@pytest.mark.parametrize("narrow", [12, 48])
def test_word_selector_sends_pieces_in_place(gap, narrow):
    rng = np.random.default_rng(5)
    wide = [int(v) for v in rng.integers(0, 2**48, 12)]
    pieces = len(wide) * (48 // narrow)
    sel = run_streams(WordSelector(48, narrow), wide, pieces, in_gap=gap, out_gap=gap, seed=6)
    mask = (1 << narrow) - 1
    assert sel.outputs == [(w >> (narrow * k)) & mask for w in wide for k in range(48 // narrow)]
    if gap == 0:  # one piece per cycle, and no cycle spent copying the word
        assert _steady(sel) == 1.0


def test_converter_parameters_are_checked():
    assert converter(16, 16) is None
    with pytest.raises(ValueError, match="no integer-ratio converter"):
        converter(8, 12)
    with pytest.raises(ValueError, match="narrow width 10 must be 1 to the wide 4"):
        Downsizer(4, 10)
    with pytest.raises(ValueError, match="narrow width 0 must be 1 to the wide 4"):
        WordSelector(4, 0)


@pytest.mark.parametrize("with_scores", [True, False])
def test_argmax_picks_lowest_index_on_ties(with_scores):
    rng = np.random.default_rng(2)
    scores = rng.integers(-4, 4, (40, 7))  # small range: many ties
    scores[0] = 3  # all equal
    fmt = PortFormat(1, 1, 1, 7, 3, 5, with_scores)
    words = [pack_fields(row.tolist(), 5) for row in scores]
    run = run_streams(Argmax(7, 5, with_scores=with_scores), words, 40, in_gap=0.3, out_gap=0.3)
    results = [fmt.unpack_result(w) for w in run.outputs]
    assert [r[0] for r in results] == np.argmax(scores, axis=1).tolist()
    if with_scores:
        assert [r[1] for r in results] == scores.tolist()


def _layer_case(bits: int, is_output: bool, pe: int, simd: int, per_class: bool = False):
    rng = np.random.default_rng(bits * 100 + pe * 10 + simd)
    spec = InputSpec(shape=(12,), bits=bits, signed=bits > 1, scale=1.0)
    widths = [12, 6] if is_output else [12, 6, 2]
    net = random_network(rng, widths, spec, per_class_scores=per_class)
    layer = net.layers[0]
    layer.pe, layer.simd = pe, simd
    x = random_frames(rng, spec, 10)
    return layer_hw(layer), golden.layer_outputs(net, x)


def _decode(hw, dut, word: int) -> list[int]:
    """An MVTU output word -> its neurons' bits, or (output layer) signed scores."""
    if not hw.is_output:
        return unpack_fields(word, 1, hw.neurons, signed=False)
    return unpack_fields(word, dut.score_shape.width, hw.neurons, signed=True)


@pytest.mark.parametrize("bits", [1, 4])
@pytest.mark.parametrize("is_output", [False, True])
@pytest.mark.parametrize("pe, simd", [(1, 1), (2, 4), (6, 12), (3, 3)])
def test_mvtu_matches_golden_and_ideal_cycles(bits, is_output, pe, simd):
    hw, outs = _layer_case(bits, is_output, pe, simd, per_class=is_output and bits == 4)
    fmt = PortFormat(hw.fan_in, hw.in_bits, simd * bits, 1, 1, 1, False)
    words = [w for frame in fmt.pack_frames(outs[0]) for w in frame]
    dut = MVTU(hw)
    run = run_streams(dut, words, len(outs[0]), in_gap=0.3, out_gap=0.3)
    assert [_decode(hw, dut, w) for w in run.outputs] == outs[1].tolist()
    dut = MVTU(hw)
    fast = run_streams(dut, words, len(outs[0]))
    assert _steady(fast) == hw.cycles


def test_mvtu_parameters_are_checked():
    hw, _ = _layer_case(1, False, 2, 4)
    with pytest.raises(ValueError, match="register_every"):
        MVTU(hw, register_every=-1)
    with pytest.raises(ValueError, match="consumer_hold"):
        MVTU(hw, consumer_hold=-1)
    with pytest.raises(ValueError, match="bank_words must be a power of two, got 3"):
        MVTU(hw, bank_words=3)
    rng = np.random.default_rng(0)
    net = random_network(rng, [12, 6, 2], InputSpec(shape=(12,), bits=1))
    net.layers[0].pe, net.layers[0].simd = 4, 4
    with pytest.raises(ValueError, match="PE=4 must divide its 6 neurons"):
        MVTU(layer_hw(net.layers[0]))


@pytest.mark.parametrize(
    ("fan_in", "neurons", "pe", "simd", "depth", "banks"),
    [
        (2304, 256, 1, 32, 512, 36),  # CNV-w1a1's layer 5: 18,432 words of 512 x 36
        (256, 512, 1, 8, 2048, 8),  # its first dense layer: 16,384 words of 2048 x 9
        (2304, 256, 2, 32, 512, 18),  # a 64-bit word: two blocks side by side, 512 deep
        (64, 64, 4, 16, 512, 1),  # 64 words: one bank, no multiplexer
    ],
)
def test_weight_banks_are_one_ecp5_block_deep(fan_in, neurons, pe, simd, depth, banks):
    rng = np.random.default_rng(0)
    net = random_network(rng, [fan_in, neurons, 2], InputSpec(shape=(fan_in,), bits=1))
    net.layers[0].pe, net.layers[0].simd = pe, simd
    hw = layer_hw(net.layers[0])
    registered = MVTU(hw, read_register=True)
    assert (registered.weight_bank_depth, registered.weight_banks) == (depth, banks)
    assert MVTU(hw).weight_banks == 1  # without read registers: one ROM
    assert MVTU(hw, read_register=True, bank_words=64).weight_bank_depth == 64
