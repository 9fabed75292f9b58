"""The IR saves and loads losslessly, and refuses damaged files."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bnnhw.errors import InputError
from bnnhw.ir import (
    ElementwiseOp,
    InputSpec,
    Layer,
    Network,
    Window,
    load_network,
    save_network,
)


def _network(rng: np.random.Generator) -> Network:
    spec = InputSpec(
        shape=(1, 4, 4),
        bits=8,
        signed=True,
        scale=2.0**-7,
        preprocess=[ElementwiseOp("mul", {"c": np.float32([0.1])}, "pre_mul")],
    )
    conv = Layer(
        name="conv0",
        weights=rng.integers(0, 2, (2, 9), dtype=np.uint8),
        in_bits=8,
        in_range=(-128, 127),
        thresholds=rng.integers(-100, 100, 2),
        directions=np.array([1, -1], np.int8),
        pe=2,
        simd=3,
        window=Window(1, 4, 4, (3, 3), pads=(1, 1, 1, 1)),
        pool=Window(2, 4, 4, (2, 2), (2, 2)),
        pool_and=np.array([False, True]),
    )
    hidden = Layer(
        name="fc0",
        weights=rng.integers(0, 2, (5, 8), dtype=np.uint8),
        thresholds=rng.integers(-8, 8, 5),
        directions=np.array([1, -1, 1, 1, -1], np.int8),
        pe=5,
        simd=2,
    )
    unfolded = Layer(
        name="fc1",
        weights=rng.integers(0, 2, (3, 5), dtype=np.uint8),
        is_output=True,
        acc_scale=np.float32([0.5, 0.5, 0.5]),
        score_mul=np.int64([1, 2, 1]),
        score_add=np.int64([0, -3, 4]),
        out_scale=np.float64([0.25, 0.125, 0.25]),
        out_bias=np.float64([0.0, 1.5, -2.0]),
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
    return Network("demo", spec, [conv, hidden, unfolded], source="demo.onnx")


def _assert_same(a, b, where: str = "network") -> None:
    """Every field of every IR dataclass is equal: arrays in dtype and value, windows too."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            _assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray | np.generic):
        assert isinstance(b, np.ndarray | np.generic), where
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    else:
        assert type(a) is type(b) and a == b, (where, a, b)


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
    net.layers[2].weights = net.layers[2].weights[:, :4]
    with pytest.raises(ValueError, match="fc1"):
        net.validate()
