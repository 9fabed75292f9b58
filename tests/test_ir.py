"""The IR saves and loads losslessly, and refuses damaged files."""

from __future__ import annotations

import numpy as np
import pytest

from bnnhw.errors import InputError
from bnnhw.ir import ElementwiseOp, InputSpec, Layer, Network, load_network, save_network


def _network(rng: np.random.Generator) -> Network:
    spec = InputSpec(
        shape=(1, 4, 4),
        bits=8,
        signed=True,
        scale=2.0**-7,
        preprocess=[ElementwiseOp("mul", {"c": np.float32([0.1])}, "pre_mul")],
    )
    hidden = Layer(
        name="fc0",
        weights=rng.integers(0, 2, (5, 16), dtype=np.uint8),
        in_bits=8,
        in_range=(-128, 127),
        thresholds=rng.integers(-100, 100, 5),
        directions=np.array([1, -1, 1, 1, -1], np.int8),
    )
    unfolded = Layer(
        name="fc1",
        weights=rng.integers(0, 2, (3, 5), dtype=np.uint8),
        is_output=True,
        acc_scale=np.float32([0.5, 0.5, 0.5]),
        post_ops=[
            ElementwiseOp(
                "batchnorm",
                {
                    "scale": np.float32([1, -2, 3]),
                    "bias": np.float32([0, 1, 2]),
                    "mean": np.float32([0.3, 0, 1]),
                    "var": np.float32([1e-30, 0, 2]),
                    "epsilon": np.float32(1e-5),
                },
                "bn",
            )
        ],
    )
    return Network("demo", spec, [hidden, unfolded], source="demo.onnx")


def _assert_same(a: Network, b: Network) -> None:
    assert (a.name, a.source, a.input.shape, a.input.bits) == (
        b.name,
        b.source,
        b.input.shape,
        b.input.bits,
    )
    assert a.input.scale == b.input.scale
    for op_a, op_b in zip(a.input.preprocess, b.input.preprocess, strict=True):
        assert (op_a.kind, op_a.source) == (op_b.kind, op_b.source)
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert (la.name, la.in_bits, tuple(la.in_range), la.is_output) == (
            lb.name,
            lb.in_bits,
            tuple(lb.in_range),
            lb.is_output,
        )
        for key in ("weights", "thresholds", "directions", "acc_scale", "out_scale", "out_bias"):
            va, vb = getattr(la, key), getattr(lb, key)
            assert (va is None) == (vb is None), key
            if va is not None:
                assert va.dtype == vb.dtype and np.array_equal(va, vb), key
        for op_a, op_b in zip(la.post_ops, lb.post_ops, strict=True):
            assert op_a.kind == op_b.kind and op_a.params.keys() == op_b.params.keys()
            for k in op_a.params:
                assert np.array_equal(op_a.params[k], op_b.params[k]), k


def test_round_trip_is_lossless(tmp_path):
    net = _network(np.random.default_rng(1))
    save_network(net, tmp_path)
    _assert_same(net, load_network(tmp_path))


def test_bundled_model_round_trip(tmp_path):
    import bnnhw

    from conftest import MODELS

    net = bnnhw.load(MODELS[0])
    save_network(net, tmp_path)
    again = bnnhw.load(tmp_path)  # a folder loads as a saved IR
    _assert_same(net, again)
    x = np.random.default_rng(0).random((50, *net.input.shape), dtype=np.float32)
    assert np.array_equal(bnnhw.golden.scores(net, x), bnnhw.golden.scores(again, x))


def test_missing_and_damaged_ir(tmp_path):
    with pytest.raises(InputError, match="not a saved bnnhw IR"):
        load_network(tmp_path)
    save_network(_network(np.random.default_rng(2)), tmp_path)
    text = (tmp_path / "network.json").read_text().replace('"fc1"', '"fc1", "oops": 1', 1)
    (tmp_path / "network.json").write_text(text.replace('"version": 1', '"version": 99'))
    with pytest.raises(InputError, match="damaged bnnhw IR"):
        load_network(tmp_path)


def test_validate_names_the_layer():
    net = _network(np.random.default_rng(3))
    net.layers[1].weights = net.layers[1].weights[:, :4]
    with pytest.raises(ValueError, match="fc1"):
        net.validate()
