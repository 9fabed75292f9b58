"""Every bundled model: golden == qonnx execute_onnx on the model's full test split."""

from __future__ import annotations

import numpy as np
import pytest

import bnnhw
from bnnhw.frontend.reference import ReferenceExecutor

from conftest import MODELS, model_family, model_ids, split_frames

# Floors well under models/README.md's figures: a broken import scores ~10 %.
MIN_ACCURACY = {"digits": 0.85, "tfc": 0.85, "sfc": 0.90, "cnv_digits": 0.85, "cnv_mnist": 0.95}


def test_models_are_bundled():
    names = {p.stem for p in MODELS}
    for family in ("digits_w1a1", "tfc_w1a1"):
        for variant in ("in1", "in8"):
            for export in ("dynamo", "classic"):
                assert f"{family}_{variant}_{export}" in names
    assert {"sfc_w1a1_in1_dynamo", "sfc_w1a1_in1_classic"} <= names
    # convolutional: padded and unpadded, 1-bit and 8-bit input, both datasets
    for conv in ("digits_nopad_w1a1_in1", "digits_pad_w1a1_in8", "mnist_pad_w1a1_in1"):
        for export in ("dynamo", "classic"):
            assert f"cnv_{conv}_{export}" in names
    assert {"cnv_mnist_nopad_w1a1_in8_dynamo", "cnv_mnist_nopad_w1a1_in8_classic"} <= names


def test_bundled_conv_models_have_padded_unpadded_and_both_input_widths():
    import itertools

    seen = set()
    for path in MODELS:
        if not path.name.startswith("cnv_"):
            continue
        net = bnnhw.load(path)
        first = net.layers[0]
        assert first.window is not None and net.layers[-1].window is None
        assert any(layer.pool is not None for layer in net.layers)
        seen.add((first.window.padded, net.input.bits))
    # every combination of (first layer padded, input bits) is bundled
    assert seen == set(itertools.product((False, True), (1, 8)))


@pytest.mark.slow
@pytest.mark.parametrize("path", MODELS, ids=model_ids())
def test_golden_equals_execute_onnx_on_full_test_split(path):
    net = bnnhw.load(path)
    x, labels = split_frames(path)
    x = x.reshape(len(x), *net.input.shape)
    reference = ReferenceExecutor(path)(x)
    classes = bnnhw.golden.predict(net, x)
    mismatched = np.flatnonzero(classes != np.argmax(reference, axis=1))
    assert mismatched.size == 0, f"{mismatched.size} frames differ, first {mismatched[:10]}"
    floats = bnnhw.golden.float_outputs(net, x)
    tolerance = 1e-6 * max(1.0, float(np.abs(reference).max()))
    np.testing.assert_allclose(floats, reference, rtol=1e-6, atol=tolerance)
    accuracy = float(np.mean(classes == labels))
    assert accuracy >= MIN_ACCURACY[model_family(path)]


CLASSIC = [p for p in MODELS if p.stem.endswith("_classic")]


@pytest.mark.parametrize("classic", CLASSIC, ids=[p.stem.removesuffix("_classic") for p in CLASSIC])
def test_dynamo_and_classic_exports_give_the_same_network(classic):
    """Both exports of one training run import to the same integer network, and qonnx's
    executor on each file gives the classes the golden model gives (a few hundred frames)."""
    dynamo = classic.with_name(classic.name.replace("_classic", "_dynamo"))
    a, b = bnnhw.load(dynamo), bnnhw.load(classic)
    assert len(a.layers) == len(b.layers) and a.input.shape == b.input.shape
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert (la.window, la.pool, la.in_bits, la.in_range) == (
            lb.window,
            lb.pool,
            lb.in_bits,
            lb.in_range,
        )
        for key in ("weights", "thresholds", "directions", "score_mul", "score_add", "pool_and"):
            va, vb = getattr(la, key), getattr(lb, key)
            assert (va is None and vb is None) or np.array_equal(va, vb), key
        if la.is_output:  # the exports round the float tail differently, within float32
            np.testing.assert_allclose(la.out_scale, lb.out_scale, rtol=1e-6)
            np.testing.assert_allclose(la.out_bias, lb.out_bias, rtol=1e-6, atol=1e-6)
    x, _ = split_frames(classic, limit=200)
    x = x.reshape(len(x), *a.input.shape)
    classes = bnnhw.golden.predict(a, x)
    for path in (dynamo, classic):
        assert np.array_equal(np.argmax(ReferenceExecutor(path)(x), axis=1), classes), path.name


@pytest.mark.parametrize("path", MODELS, ids=model_ids())
def test_qonnx_cleanup_gives_the_same_network(path, tmp_path):
    """A graph the user already ran through qonnx's cleanup imports to the same IR."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    cleaned = tmp_path / "clean.onnx"
    cleanup_model(ModelWrapper(str(path))).save(str(cleaned))
    a, b = bnnhw.load(path), bnnhw.load(cleaned)
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert np.array_equal(la.weights, lb.weights)
        for key in ("thresholds", "directions", "out_scale", "out_bias"):
            va, vb = getattr(la, key), getattr(lb, key)
            assert (va is None and vb is None) or np.array_equal(va, vb), key
