"""bnnhw.load + bnnhw.golden against qonnx's executor on random and worst-case binary MLPs.

The graphs come from tests/qonnx_graphs.py (Brevitas-like QONNX written with onnx.helper).
``qonnx.core.onnx_exec.execute_onnx`` is the reference: the golden model's class must equal the
argmax of the graph's float32 output on every row (ties -> lowest index, as np.argmax), and its
float outputs must equal the graph's to float32 rounding.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bnnhw
import bnnhw.golden

from mlp_specs import binary_mlp_specs, edge_inputs
from qonnx_graphs import (
    BatchNormSpec,
    LayerSpec,
    MLPSpec,
    TensorNormSpec,
    build_model,
    execute_reference,
    output_magnitude,
    save_model,
)


def check_against_reference(spec: MLPSpec, x: np.ndarray, folder: Path) -> np.ndarray:
    """Save the graph, load it with bnnhw and compare the golden model with execute_onnx.

    Returns the golden predictions.  The float tolerance is relative (1e-6, ~16 float32 ulps)
    plus an absolute part scaled by the largest intermediate of the float tail, because
    float32 errors in ``acc * s + b`` are relative to ``|acc * s|`` and ``|b|``, not to the sum.
    """
    model = build_model(spec)
    path = folder / "model.onnx"
    save_model(model, path)
    net = bnnhw.load(str(path))
    assert tuple(net.input.shape) == spec.frame_shape

    ref = execute_reference(model, x)
    pred = bnnhw.golden.predict(net, x)
    scores = bnnhw.golden.scores(net, x)
    floats = bnnhw.golden.float_outputs(net, x)

    assert pred.dtype == np.int64 and pred.shape == (len(x),)
    assert scores.dtype == np.int64 and scores.shape == ref.shape
    assert floats.dtype == np.float64 and floats.shape == ref.shape
    np.testing.assert_array_equal(pred, np.argmax(scores, axis=1))
    np.testing.assert_array_equal(pred, np.argmax(ref, axis=1), err_msg="class != graph argmax")
    atol = 1e-6 * max(float(np.max(np.abs(ref))), output_magnitude(spec))
    np.testing.assert_allclose(floats, ref, rtol=1e-6, atol=atol, err_msg="float outputs")
    return pred


PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY_SETTINGS
@given(
    spec=binary_mlp_specs(last_per_class=False),
    seed=st.integers(0, 2**31),
    rows=st.integers(1, 64),
)
def test_random_binary_mlps_match_reference(spec: MLPSpec, seed: int, rows: int) -> None:
    """Property: any generated graph gives golden == execute_onnx on edge-heavy inputs.

    Hidden layers get every BN edge case, per-channel weight scales and biases; the last layer
    keeps one affine tail for all classes (see the next test for per-class ones).
    """
    x = edge_inputs(spec, np.random.default_rng(seed), rows)
    with tempfile.TemporaryDirectory() as tmp:
        check_against_reference(spec, x, Path(tmp))


@settings(PROPERTY_SETTINGS, max_examples=20)
@given(spec=binary_mlp_specs(last_per_class=True), seed=st.integers(0, 2**31))
def test_random_last_layer_per_class_scales_and_biases(spec: MLPSpec, seed: int) -> None:
    """Per-class power-of-two weight scales and dyadic biases in the last layer.

    They change which class wins, yet stay exactly representable as integer scores on one
    common scale (score_c = (acc_c + bias_c) / (min unit / 4)), so the contract can express
    them.  Kept apart from the main property so a policy decision here masks no other failure.
    """
    x = edge_inputs(spec, np.random.default_rng(seed), 32)
    with tempfile.TemporaryDirectory() as tmp:
        check_against_reference(spec, x, Path(tmp))


# ---------------------------------------------------------------- explicit worst cases
# A hidden layer of one neuron (3 inputs, all weights +1) feeds a last layer [[+1], [-1]], so
# class 0 <=> the hidden BipolarQuant gave +1.  The rows give accumulators 3, 1, -1, -3, 1, -1
# (0.5 maps to 2*0.5-1 = 0 and BipolarQuant(0) = +1).
HIDDEN_ROWS = np.array(
    [[1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0]], np.float32
)


def _bn(gamma: float, beta: float, mean: float, var: float, eps: float = 1e-5) -> BatchNormSpec:
    def one(v: float) -> np.ndarray:
        return np.array([v], np.float32)

    return BatchNormSpec(one(gamma), one(beta), one(mean), one(var), eps)


def _hidden_probe(bn: BatchNormSpec, **kw: object) -> MLPSpec:
    hidden = LayerSpec(np.ones((1, 3), np.float32), np.float32(1.0), bn=bn, act_scale=1.0)
    last = LayerSpec(np.array([[1.0], [-1.0]], np.float32), np.float32(1.0))
    return MLPSpec(layers=[hidden, last], **kw)  # type: ignore[arg-type]


HIDDEN_CASES = {
    # name: (bn, expected class per row; None = whatever execute_onnx says)
    "tie_positive_gamma": (_bn(1.0, 0.0, 1.0, 1.0), [0, 0, 1, 1, 0, 1]),
    "tie_negative_gamma": (_bn(-1.0, 0.0, 1.0, 1.0), [1, 0, 0, 0, 0, 0]),
    "tie_negative_gamma_odd_scale": (_bn(-0.7, 0.0, -1.0, 0.3), [1, 1, 0, 0, 1, 0]),
    "zero_gamma_zero_beta": (_bn(0.0, 0.0, 1.0, 1.0), [0, 0, 0, 0, 0, 0]),
    "zero_gamma_negative_zero_beta": (_bn(0.0, -0.0, 2.0, 1.0), [0, 0, 0, 0, 0, 0]),
    "zero_gamma_negative_beta": (_bn(0.0, -0.25, -5.0, 1.0), [1, 1, 1, 1, 1, 1]),
    "negative_zero_gamma": (_bn(-0.0, 0.0, 1.0, 1.0), [0, 0, 0, 0, 0, 0]),
    "zero_variance_tie": (_bn(2.0, 0.0, -1.0, 0.0), [0, 0, 0, 1, 0, 0]),
    "tiny_variance_negative_gamma_tie": (_bn(-3.0, 0.0, -1.0, 1e-30, 1e-12), [1, 1, 0, 0, 1, 0]),
    "never_crossed": (_bn(1.0, 0.0, 1e4, 1.0), [1, 1, 1, 1, 1, 1]),
    "always_crossed": (_bn(1.0, 0.0, -1e4, 1.0), [0, 0, 0, 0, 0, 0]),
    "never_crossed_negative_gamma": (_bn(-1.0, 0.0, -1e4, 1.0), [1, 1, 1, 1, 1, 1]),
    "large_mean_compensated": (
        _bn(1.0, float(np.float32(1e5) / np.sqrt(np.float32(1 + 1e-5))), 1e5, 1.0),
        [0, 0, 1, 1, 0, 1],
    ),
    # threshold exactly on accumulator 1 in exact arithmetic, blurred by float32 cancellation
    # in beta - mean * scale: the executor's float32 result decides, golden must follow it
    "large_mean_on_a_tie": (
        _bn(1.0, float(np.float32(99999) / np.sqrt(np.float32(1 + 1e-5))), 1e5, 1.0),
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(HIDDEN_CASES))
def test_hidden_bn_edge_cases(case: str, tmp_path: Path) -> None:
    """Ties must map to +1, negative/zero gamma flip/fix the sign, zero variance uses eps."""
    bn, expected = HIDDEN_CASES[case]
    spec = _hidden_probe(bn)
    ref = execute_reference(build_model(spec), HIDDEN_ROWS)
    if expected is not None:  # the builder and the reference agree with the stated semantics
        np.testing.assert_array_equal(np.argmax(ref, axis=1), expected)
    check_against_reference(spec, HIDDEN_ROWS, tmp_path)


def test_int8_input_tie_needs_half_to_even(tmp_path: Path) -> None:
    """8-bit input: 5/256 rounds (half to even) to 2/128, which lands exactly on the BN mean.

    gamma < 0, so +1 <=> accumulator <= 6/128; rounding half up would give 9/128 and -1.
    """
    spec = _hidden_probe(_bn(-1.0, 0.0, 6 / 128, 1.0), input_kind="int8")
    rows = np.array([3, 1, 5, 7, -384, 384], np.float32)[:, None] / 256 * np.ones((1, 3))
    rows = rows.astype(np.float32)
    ref = execute_reference(build_model(spec), rows)
    np.testing.assert_array_equal(np.argmax(ref, axis=1), [0, 0, 0, 1, 0, 1])
    check_against_reference(spec, rows, tmp_path)


def test_negative_zero_and_zero_weights_are_plus_one(tmp_path: Path) -> None:
    """BipolarQuant(W) maps 0.0 and -0.0 to +scale (x >= 0), not to 0 or by the sign bit."""
    w = np.array([[0.0, -0.0, -1.0], [-0.0, -0.0, -0.0], [-1.0, -1.0, -1.0]], np.float32)
    spec = MLPSpec(layers=[LayerSpec(w, np.float32(0.5))])
    rows = np.array([[1, 1, 0], [0, 0, 1], [1, 1, 1]], np.float32)
    ref = execute_reference(build_model(spec), rows)
    np.testing.assert_array_equal(ref[:, 1], [0.5, -0.5, 1.5])
    check_against_reference(spec, rows, tmp_path)


# A single layer (4 inputs -> 3 classes) whose float tail is the thing under test.
LAST_W = np.array([[1, 1, 1, 1], [1, 1, -1, -1], [-1, -1, -1, 1]], np.float32)
LAST_ROWS = np.array(
    [[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [1, 0, 1, 0], [0.5, 0, 0, 0.5]],
    np.float32,
)


def _uniform_bn(gamma: float, beta: float, mean: float, var: float) -> BatchNormSpec:
    full = np.ones(3, np.float32)
    return BatchNormSpec(full * gamma, full * beta, full * mean, full * var, 1e-5)


LAST_CASES = {
    "plain": (MLPSpec(layers=[LayerSpec(LAST_W, np.float32(1.0))]), None),
    "negative_gamma_reverses_order": (
        MLPSpec(layers=[LayerSpec(LAST_W, np.float32(1.0), bn=_uniform_bn(-0.5, 0.3, 1, 2))]),
        None,
    ),
    "zero_gamma_all_classes_tie": (
        MLPSpec(layers=[LayerSpec(LAST_W, np.float32(1.0), bn=_uniform_bn(0.0, 0.7, 1, 2))]),
        [0, 0, 0, 0, 0, 0],
    ),
    "per_channel_weight_scales": (
        MLPSpec(
            layers=[LayerSpec(LAST_W, np.array([[1.0], [4.0], [0.25]], np.float32))],
            linear="matmul",
        ),
        None,
    ),
    "per_class_dyadic_bias": (
        MLPSpec(
            layers=[LayerSpec(LAST_W, np.float32(1.0), bias=np.array([0.5, 1.75, -2], np.float32))],
        ),
        None,
    ),
    "tensornorm_tail": (
        MLPSpec(
            layers=[LayerSpec(LAST_W, np.float32(2.0))],
            tail=TensorNormSpec(mean=0.37, var=0.0, epsilon=1e-4, weight=0.8, bias=-1.3),
        ),
        None,
    ),
    "int8_image_dynamo": (
        MLPSpec(
            layers=[LayerSpec(LAST_W, np.float32(0.125), bn=_uniform_bn(1.5, -0.1, 0.25, 0.5))],
            input_kind="int8",
            image_shape=(2, 2),
            flatten="reshape",
            dynamo_style=True,
        ),
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(LAST_CASES))
def test_last_layer_edge_cases(case: str, tmp_path: Path) -> None:
    """Class order must follow the graph's float output, even when the tail reverses or flattens
    it (negative / zero gamma) or the classes have different weight scales."""
    spec, expected = LAST_CASES[case]
    x = LAST_ROWS.reshape((len(LAST_ROWS), *spec.frame_shape))
    if spec.input_kind == "int8":
        x = (x * 2 - 1).astype(np.float32)
    pred = check_against_reference(spec, x, tmp_path)
    if expected is not None:
        np.testing.assert_array_equal(pred, expected)


def test_negative_gamma_last_layer_really_reverses(tmp_path: Path) -> None:
    """Sanity of the case above: with gamma < 0 the graph's winner is the lowest accumulator."""
    spec, _ = LAST_CASES["negative_gamma_reverses_order"]
    plain, _ = LAST_CASES["plain"]
    acc = execute_reference(build_model(plain), LAST_ROWS)
    ref = execute_reference(build_model(spec), LAST_ROWS)
    np.testing.assert_array_equal(np.argmax(ref, axis=1), np.argmin(acc, axis=1))
    check_against_reference(spec, LAST_ROWS, tmp_path)
