"""The golden model's integer arithmetic against plain NumPy integer maths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnnhw import golden
from bnnhw.errors import InputError
from bnnhw.ir import ElementwiseOp, InputSpec, Layer, Network

from ir_networks import random_network


@given(n=st.integers(1, 200), rows=st.integers(0, 5), seed=st.integers(0, 2**16))
def test_pack_unpack_round_trip(n, rows, seed):
    bits = np.random.default_rng(seed).integers(0, 2, (rows, n), dtype=np.uint8)
    words = golden.pack_bits(bits)
    assert words.dtype == np.uint64 and words.shape == (rows, (n + 63) // 64)
    assert np.array_equal(golden.unpack_bits(words, n), bits)
    if rows:  # element i is bit i % 64 of word i // 64
        assert int(words[0, 0]) & 1 == bits[0, 0]


def _naive(net: Network, codes: np.ndarray) -> list[np.ndarray]:
    """Integer matrix products, no packing: the definition of the IR."""
    value = codes.astype(np.int64) if net.input.bits > 1 else 2 * codes.astype(np.int64) - 1
    outs = []
    for layer in net.layers:
        acc = value @ (2 * layer.weights.astype(np.int64) - 1).T
        if layer.is_output:
            outs.append(acc)
            break
        bits = np.where(layer.directions > 0, acc >= layer.thresholds, acc <= layer.thresholds)
        outs.append(bits.astype(np.uint8))
        value = 2 * bits.astype(np.int64) - 1
    return outs


@given(
    widths=st.lists(st.integers(1, 140), min_size=2, max_size=4),
    bits=st.sampled_from([1, 2, 3, 8, 9]),
    signed=st.booleans(),
    narrow=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_layers_match_integer_definition(widths, bits, signed, narrow, seed):
    rng = np.random.default_rng(seed)
    spec = InputSpec(shape=(widths[0],), bits=bits, signed=signed or bits == 1, narrow=narrow)
    net = random_network(rng, widths, spec)
    lo, hi = spec.code_range
    codes = (
        rng.integers(0, 2, (37, widths[0]))
        if bits == 1
        else rng.integers(lo, hi + 1, (37, widths[0]))
    )
    x = (
        (codes.astype(np.float32) - 0.5)
        if bits == 1
        else codes.astype(np.float32) * np.float32(spec.scale)
    )
    got = golden.layer_outputs(net, x)
    assert np.array_equal(got[0], codes)
    for mine, ref in zip(got[1:], _naive(net, codes), strict=True):
        assert np.array_equal(mine, ref)
    assert np.array_equal(golden.scores(net, x), got[-1])


def test_input_quantizer_matches_qonnx():
    from qonnx.custom_op.general.quant import quant

    spec = InputSpec(shape=(9,), bits=8, signed=True, scale=2.0**-7)
    x = np.float32(
        [[0, 1 / 256, 3 / 256, -1 / 256, -3 / 256, 2.0, -2.0, 127.5 / 128, -128.5 / 128]]
    )
    expected = quant(x, np.float32(2**-7), np.float32(0), np.float32(8), 1, 0, "ROUND") / 2**-7
    assert np.array_equal(golden.encode_inputs(spec, x), expected.astype(np.int32))
    bipolar = InputSpec(
        shape=(3,),
        bits=1,
        preprocess=[
            ElementwiseOp("mul", {"c": np.float32([2])}),
            ElementwiseOp("sub", {"c": np.float32([1])}),
        ],
    )
    assert golden.encode_inputs(bipolar, np.float32([[0.5, 0.4999999, 1.0]])).tolist() == [
        [1, 0, 1]
    ]


def test_argmax_ties_go_to_lowest_index():
    out = Layer(
        "out",
        np.array([[1, 1], [0, 0], [1, 1], [1, 1]], np.uint8),
        is_output=True,
        out_scale=np.ones(4),
        out_bias=np.zeros(4),
    )
    net = Network("t", InputSpec(shape=(2,), bits=1), [out])
    assert golden.predict(net, np.float32([[1, 1], [-1, -1]])).tolist() == [0, 1]


def test_bad_inputs_are_named():
    net = Network(
        "t",
        InputSpec(shape=(2,), bits=1),
        [
            Layer(
                "out",
                np.ones((2, 2), np.uint8),
                is_output=True,
                out_scale=np.ones(2),
                out_bias=np.zeros(2),
            )
        ],
    )
    with pytest.raises(InputError, match=r"shape \(3, 3\), expected \(N, 2\)"):
        golden.predict(net, np.zeros((3, 3), np.float32))
    with pytest.raises(InputError, match="dtype int64"):
        golden.predict(net, np.zeros((3, 2), np.int64))
    unfolded = Network("t", net.input, [Layer("out", np.ones((2, 2), np.uint8), is_output=True)])
    with pytest.raises(Exception, match="streamline"):
        golden.predict(unfolded, np.zeros((1, 2), np.float32))


@pytest.mark.parametrize("model", ["digits_w1a1_in1_classic", "digits_w1a1_in8_classic"])
def test_nan_pixels_are_refused_by_the_python_api_too(model):
    """A 1-bit quantizer would read NaN as -1 (NaN >= 0 is false): refused, as in the CLI."""
    from bnnhw.frontend import import_onnx
    from bnnhw.passes import streamline

    from conftest import ROOT

    net = streamline(import_onnx(ROOT / "models" / f"{model}.onnx"))
    x = np.zeros((3, *net.input.shape), np.float32)
    x[1].flat[5] = np.nan
    # the digits models take (1, 8, 8) frames: flat element 5 is (0, 0, 5)
    with pytest.raises(InputError, match=r"inputs: frame 1, element \(0, 0, 5\) is NaN"):
        golden.predict(net, x)
