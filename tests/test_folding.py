"""The folding pass: auto meets its target with the fewest lanes; explicit is checked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bnnhw.errors import InputError
from bnnhw.ir import InputSpec
from bnnhw.passes.folding import fold_auto, fold_explicit, load_folding

from ir_networks import random_network


def _net():
    return random_network(np.random.default_rng(0), [784, 64, 32, 10], InputSpec((784,), bits=1))


# Worked by hand for fc0 64 x 784, fc1 32 x 64, fc2 10 x 32 (784 = 2^4 x 7^2); the target is
# ceil(50176 / lanes) cycles, each layer takes the fewest lanes meeting it, then the fewest PEs.
# 16 lanes: target 3136; fc0 needs 50176 / 3136 = 16 lanes: 1 x 16 (64 x 49 = 3136 cycles);
#   fc1 (2048) and fc2 (320) meet it on one lane.
# 256 lanes: target 196; fc0 needs 256 lanes: 16 x 16 (4 x 49 = 196), the only folding of
#   256 lanes (PE 1 x SIMD 256 would need 64 x 4 = 256 cycles; SIMD 128, 64, 32 likewise);
#   fc1 needs 2048 / 196 -> 11 lanes: 1 x 11, its 64 inputs padded to 6 words of 11
#   (32 x 6 = 192; without padding 1 x 16, 128 cycles); fc2 needs 320 / 196 -> 2 lanes:
#   1 x 2 (10 x 16 = 160).
# 10**6 lanes: target 1: everything in parallel.
HAND_FOLDINGS = {
    1: ([(1, 1), (1, 1), (1, 1)], [50176, 2048, 320]),
    16: ([(1, 16), (1, 1), (1, 1)], [3136, 2048, 320]),
    256: ([(16, 16), (1, 11), (1, 2)], [196, 192, 160]),
    10**6: ([(64, 784), (32, 64), (10, 32)], [1, 1, 1]),
}


@pytest.mark.parametrize("lanes", list(HAND_FOLDINGS))
def test_auto_folding_balances_layers(lanes):
    net = fold_auto(_net(), max_lanes=lanes)
    foldings, cycles = HAND_FOLDINGS[lanes]
    assert [(layer.pe, layer.simd) for layer in net.layers] == foldings
    assert [layer.cycles for layer in net.layers] == cycles


def test_explicit_folding_by_name_and_index(tmp_path):
    net = _net()
    folding = {"fc0": {"pe": 8, "simd": 49}, "1": {"pe": 32, "simd": 2}, "2": {"pe": 5, "simd": 32}}
    path = tmp_path / "fold.json"
    path.write_text(json.dumps(folding))
    folded = fold_explicit(net, load_folding(path), str(path))
    assert [(layer.pe, layer.simd) for layer in folded.layers] == [(8, 49), (32, 2), (5, 32)]
    assert net.layers[0].pe is None  # the pass does not modify its input


@pytest.mark.parametrize(
    "folding, message",
    [
        (
            {"fc0": {"pe": 7, "simd": 49}},
            r"PE=7 does not divide its 64 neurons; choose one of \[1, 2",
        ),
        ({"fc1": {"pe": 8, "simd": 65}}, "SIMD=65 is more than its fan-in 64"),
        ({"nope": {"pe": 1, "simd": 1}}, "no layer named 'nope'"),
        ({"fc0": {"pe": 1}}, "needs"),
        ({"fc0": {"pe": 1, "simd": 1}}, r"no folding given for layer\(s\) fc1, fc2"),
    ],
)
def test_explicit_folding_errors_name_the_layer(folding, message):
    with pytest.raises(InputError, match=message):
        fold_explicit(_net(), folding, "fold.json")


def test_unreadable_folding_file(tmp_path):
    (tmp_path / "f.json").write_text("{oops")
    with pytest.raises(InputError, match="not a readable JSON folding file"):
        load_folding(tmp_path / "f.json")


def _conv_net(name: str = "cnv_digits_pad_w1a1_in8_classic"):
    import bnnhw

    from conftest import ROOT

    return bnnhw.load(ROOT / "models" / f"{name}.onnx")


# Worked by hand for a 1 x 6 x 6 image -> conv 4 x 3x3 pad 1 (36 positions, fan-in 9,
# padded walk 8 x 8 = 64 cycles) -> fc0 8 x 144 (its pixels have 4 channels: SIMD must divide
# 4 or be a multiple of it) -> output 4 x 8. The largest layer is the conv: 36 x 4 x 9 = 1296.
# 16 lanes: target ceil(1296 / 16) = 81 > 64. conv: 36 x (4/PE) x (9/SIMD) <= 81 needs NF x SF
#   <= 2: 2 x 9 (72 cycles); fc0: >= 1152 / 81 -> 15 lanes, 1 x 16 (8 x 9 = 72); out: 1 x 1.
# 256 lanes: ceil(1296 / 256) = 6, but the walk's 64 is the target. conv: NF x SF = 1, 4 x 9
#   (36); fc0: >= 1152 / 64 = 18 lanes; 1 x 18 and 2 x 9 do not fit 4-channel pixels, the
#   next are 1 x 24 and 2 x 12: 1 x 24 (8 x 6 = 48); out: 1 x 1 (32).
HAND_CONV_FOLDINGS = {
    16: ([(2, 9), (1, 16), (1, 1)], [72, 72, 32]),
    256: ([(4, 9), (1, 24), (1, 1)], [36, 48, 32]),
}


@pytest.mark.parametrize("lanes", list(HAND_CONV_FOLDINGS))
def test_auto_folding_of_convolutions_counts_positions_and_window_walks(lanes):
    from conv_networks import ConvSpec, conv_input, random_conv_network

    net = random_conv_network(
        np.random.default_rng(0), conv_input(1, 6, 6), [ConvSpec(4, (3, 3), pads=(1, 1, 1, 1))]
    )
    assert [layer.name for layer in net.layers] == ["conv0", "fc0", "out"]
    net = fold_auto(net, max_lanes=lanes)
    foldings, cycles = HAND_CONV_FOLDINGS[lanes]
    assert [(layer.pe, layer.simd) for layer in net.layers] == foldings
    assert [layer.cycles for layer in net.layers] == cycles


def test_explicit_simd_must_fit_the_pixels_after_a_convolution():
    net = _conv_net("cnv_mnist_nopad_w1a1_in8_classic")  # 32 channels x 5 x 5 into dense
    folding = {str(i): {"pe": 1, "simd": 1} for i in range(len(net.layers))}
    dense = next(i for i, la in enumerate(net.layers) if la.window is None)
    channels = net.layers[dense - 1].neurons
    bad = next(
        d
        for d in range(2, net.layers[dense].fan_in)
        if net.layers[dense].fan_in % d == 0 and channels % d and d % channels
    )
    folding[str(dense)]["simd"] = bad
    with pytest.raises(InputError, match=f"not a multiple of, the {channels} channels"):
        fold_explicit(net, folding, "fold.json")


def test_padding_is_refused_where_the_input_arrives_pixel_by_pixel():
    """A convolution's window and a dense layer after a map must divide their fan-in; a
    dense layer after a dense one may pad (the converter zero-extends the whole vector)."""
    net = _conv_net("cnv_mnist_nopad_w1a1_in8_classic")
    folding = {str(i): {"pe": 1, "simd": 1} for i in range(len(net.layers))}
    conv = next(i for i, la in enumerate(net.layers) if la.window is not None)
    fan_in = net.layers[conv].fan_in
    bad = next(d for d in range(2, fan_in) if fan_in % d)
    with pytest.raises(InputError, match=f"SIMD={bad} does not divide its fan-in {fan_in}, and a "):
        fold_explicit(net, {**folding, str(conv): {"pe": 1, "simd": bad}}, "fold.json")
    dense = next(i for i, la in enumerate(net.layers) if la.window is None)
    fan_in = net.layers[dense].fan_in
    with pytest.raises(InputError, match="a layer after a convolution cannot be zero-padded"):
        fold_explicit(net, {**folding, str(dense): {"pe": 1, "simd": fan_in - 1}}, "fold.json")
    last = len(net.layers) - 1
    odd = net.layers[last].fan_in - 1
    padded = fold_explicit(net, {**folding, str(last): {"pe": 1, "simd": odd}}, "fold.json")
    assert padded.layers[last].sf == 2 and padded.layers[last].pad == odd - 1
