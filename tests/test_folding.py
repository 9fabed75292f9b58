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


@pytest.mark.parametrize("lanes", [1, 16, 256, 10**6])
def test_auto_folding_balances_layers(lanes):
    net = fold_auto(_net(), max_lanes=lanes)
    largest = max(layer.neurons * layer.fan_in for layer in net.layers)
    target = max(1, -(-largest // lanes))
    for layer in net.layers:
        assert layer.neurons % layer.pe == 0 and layer.fan_in % layer.simd == 0
        assert layer.cycles <= target
        # no cheaper folding meets the target: every smaller lane count is too slow
        for pe in range(1, layer.neurons + 1):
            for simd in range(1, layer.fan_in + 1):
                if layer.neurons % pe or layer.fan_in % simd or pe * simd >= layer.pe * layer.simd:
                    continue
                assert (layer.neurons // pe) * (layer.fan_in // simd) > target


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
        ({"fc0": {"pe": 8, "simd": 10}}, "SIMD=10 does not divide its fan-in 784"),
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


@pytest.mark.parametrize("lanes", [16, 256, 4096])
def test_auto_folding_of_convolutions_counts_positions_and_window_walks(lanes):
    net = fold_auto(_conv_net(), max_lanes=lanes)
    convs = [layer for layer in net.layers if layer.window is not None]
    assert convs and net.layers[len(convs)].window is None
    largest = max(la.window.positions if la.window else 1 for la in net.layers)
    assert largest > 1
    work = max(
        (la.window.positions if la.window else 1) * la.neurons * la.fan_in for la in net.layers
    )
    walks = [la.window.padded_height * la.window.padded_width for la in convs]
    target = max(-(-work // lanes), *walks)
    for layer in net.layers:
        positions = layer.window.positions if layer.window else 1
        assert positions * (layer.neurons // layer.pe) * (layer.fan_in // layer.simd) <= target
    # the dense layer after the last convolution takes pixels of that layer's channels
    dense, channels = net.layers[len(convs)], convs[-1].neurons
    assert channels % dense.simd == 0 or dense.simd % channels == 0


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
