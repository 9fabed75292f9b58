"""Larq graphs as tf2onnx writes them (Sign(Sign(x) + 0.1), BatchNorm as Mul + Add, NHWC,
Softmax), written with onnx.helper since Larq needs TF <= 2.15; checked against
execute_onnx, and the Larq-looking graphs that are not binary."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from dialect_checks import (
    LARQ_FIXTURE,
    agree,
    cli_refuses,
    node_named,
    refused,
    set_attr,
    set_const,
    verify_cnn_on_verilator,
    verify_on_verilator,
)
from dialect_graphs import digits_frames, digits_spec, larq_graph, nhwc, random_pixels, random_spec
from hypothesis import given, settings
from hypothesis import strategies as st

from bnnhw.frontend import describe

from qonnx_graphs import execute_reference

LARQ = "Larq (tf2onnx)"


@pytest.mark.parametrize("conv, wrap", [(False, False), (True, False), (True, True)])
def test_digits_on_dataset_and_threshold_ties(conv, wrap, tmp_path):
    spec = digits_spec(53, conv=conv)
    x = digits_frames(spec, np.random.default_rng(52), extra=300 if not conv else 50)
    assert len(x) >= 1000 and np.any(x == 127.5)
    model = larq_graph(spec, wrap=wrap)
    agree(model, nhwc(spec, x), tmp_path, LARQ)
    tensors = execute_reference(model, nhwc(spec, x[:600]), every_tensor=True)
    assert np.any(tensors["Add_1_out0"] == 0)  # BatchNorm output exactly at a threshold
    rewrites = describe(tmp_path / "model.onnx").rewrites
    assert rewrites[0].startswith("Softmax Softmax_0 dropped: argmax unchanged")
    assert any("to NHWC before the flatten dropped" in r for r in rewrites) == conv
    assert any("cancel" in r for r in rewrites) == wrap


def test_scores_without_softmax(tmp_path):
    spec = digits_spec(53)
    x = digits_frames(spec, np.random.default_rng(54), extra=0)
    agree(larq_graph(spec, tail="none"), x, tmp_path, LARQ)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31), conv=st.booleans(), wrap=st.booleans())
def test_random_larq_networks_agree(seed, conv, wrap, tmp_path_factory):
    rng = np.random.default_rng(seed)
    spec = random_spec(rng, conv=conv)
    x = nhwc(spec, random_pixels(spec, rng, 64))
    agree(larq_graph(spec, wrap=wrap), x, tmp_path_factory.mktemp("larq"), LARQ)


def _net(conv=False):
    rng = np.random.default_rng(61)
    spec = random_spec(rng, conv=conv, width=10)
    while len(spec.layers) < 2:
        spec = random_spec(rng, conv=conv, width=10)
    return spec, larq_graph(spec)


def _shift(value, node="Add_2"):
    return lambda s, m: set_const(m, node_named(m, node).input[1], value)


def _shift_per_neuron(s, m):
    width = len(s.layers[0].signs)
    set_const(m, node_named(m, "Add_2").input[1], np.linspace(0.1, 1.5, width).reshape(1, -1))


def _reverse(s, m):
    add = node_named(m, "Add_2")
    add.op_type = "Sub"
    add.input[0], add.input[1] = add.input[1], add.input[0]


def _drop_outer_sign(s, m):
    node_named(m, "Sign_1").op_type = "Identity"  # the input's binarization: Sign(x) + 0.1


def _weight(value):
    def mutate(s, m):
        w = node_named(m, "MatMul_0").input[1]
        arr = onnx.numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == w))
        arr = arr.copy()
        arr[0, 0] = value
        set_const(m, w, arr)

    return mutate


def _clamp_before_sign(s, m):
    sign = node_named(m, "Sign_2")
    clip = onnx.helper.make_node("Clip", [sign.input[0], "lo", "hi"], ["clipped"], name="Clip_x")
    m.graph.initializer.extend(
        [
            onnx.numpy_helper.from_array(np.float32(0.0), "lo"),
            onnx.numpy_helper.from_array(np.float32(1.0), "hi"),
        ]
    )
    sign.input[0] = "clipped"
    m.graph.node.insert(list(m.graph.node).index(sign), clip)


def _out_map(s):
    layer, (h, w) = s.layers[0], s.image
    k = layer.signs.shape[-1]
    return len(layer.signs), h + 2 * layer.pads - k + 1, w + 2 * layer.pads - k + 1


def _per_pixel_bn(s, m):
    c, h, w = _out_map(s)
    scale = np.full((1, c, h, w), 0.25, np.float32)
    scale[0, 0, 0, 0] = 0.5
    set_const(m, node_named(m, "Mul_0").input[1], scale)


def _transpose_to_output(s, m):
    """A Transpose(0, 2, 3, 1) of a convolution's activation with no Flatten after it."""
    sign = node_named(m, "Sign_3")
    t = onnx.helper.make_node(
        "Transpose", [sign.output[0]], ["t_out"], perm=[0, 2, 3, 1], name="Transpose_x"
    )
    at = list(m.graph.node).index(sign) + 1
    del m.graph.node[at:]
    m.graph.node.append(t)
    c, h, w = _out_map(s)
    del m.graph.output[:]
    m.graph.output.append(
        onnx.helper.make_tensor_value_info("t_out", onnx.TensorProto.FLOAT, [1, h, w, c])
    )


CASES = {
    "shift 1.5": (False, _shift(1.5), "Sign_3", ["not the binarization"]),
    "shift -0.1": (False, _shift(-0.1), "Sign_3", ["not the binarization"]),
    "shift 0": (False, _shift(0.0), "Sign_3", ["not the binarization"]),
    "shift per neuron": (False, _shift_per_neuron, "Add_2", ["not one value"]),
    "reversed shift": (False, _reverse, "Add_2", ["reversed"]),
    "lone Sign on the input": (False, _drop_outer_sign, "Sign_0", ["raw input"]),
    "weight 0.5": (False, _weight(0.5), "MatMul_0", ["not binary"]),
    "weight 0": (False, _weight(0.0), "MatMul_0", ["not binary"]),
    "clamp at 0 before the sign": (False, _clamp_before_sign, "Clip_x", ["not transparent"]),
    "Softmax over the batch": (
        False,
        lambda s, m: set_attr(node_named(m, "Softmax_0"), axis=0),
        "Softmax_0",
        ["class axis"],
    ),
    "NHWC transpose to the output": (True, _transpose_to_output, "Transpose_x", ["NHWC"]),
    "BatchNorm Mul per pixel": (True, _per_pixel_bn, "Mul_0", ["different constant"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_looks_binary_but_is_not(case, tmp_path):
    conv, mutate, node, words = CASES[case]
    spec, model = _net(conv)
    mutate(spec, model)
    refused(model, tmp_path, node, *words)


def test_cli_refusal_is_one_line(tmp_path, capsys):
    spec, model = _net()
    _shift(-0.1)(spec, model)
    cli_refuses(model, tmp_path, "Sign_3", capsys)


@pytest.mark.slow  # a Verilator build (shared by the three dialects' tests)
def test_mlp_passes_verify_on_verilator(tmp_path_factory, capsys):
    spec = digits_spec(11)
    folder = tmp_path_factory.getbasetemp() / "dialect_verify"
    verify_on_verilator(larq_graph(spec, flip=False), folder, capsys)


def _fixture_frames(rng: np.random.Generator) -> np.ndarray:
    """All 1,797 digits (pixels / 16, NHWC as the Keras model takes them) and 300 random
    frames of sixteenths, many exactly on the first sign's threshold 8/16."""
    from bnnhw.datasets import load_digits_split

    x_train, _, x_test, _ = load_digits_split()
    digits = np.concatenate([x_train, x_test]).transpose(0, 2, 3, 1)
    noise = rng.integers(0, 17, (300, 8, 8, 1)).astype(np.float32)
    noise[rng.random(noise.shape) < 0.2] = 8
    return np.concatenate([digits, noise / np.float32(16)]).astype(np.float32)


def test_real_tf2onnx_export_agrees(tmp_path):
    """A real Larq model exported by tf2onnx (scripts/make_larq_fixture.py): golden ==
    execute_onnx on >= 1,000 frames, and == Keras' own classes saved by the script."""
    import bnnhw
    from bnnhw import golden

    model = onnx.load(LARQ_FIXTURE)
    assert model.producer_name == "tf2onnx"
    x = _fixture_frames(np.random.default_rng(81))
    assert len(x) >= 1000
    agree(model, x, tmp_path, LARQ)
    tensors = execute_reference(model, x[:400], every_tensor=True)
    assert np.any(tensors["model/rescaling/add:0"] == 0)  # pixels exactly on the threshold
    rewrites = describe(LARQ_FIXTURE).rewrites
    assert rewrites[0] == (
        "Softmax model/activation/Softmax dropped: argmax unchanged (the reported scores "
        "are the logits before it)"
    )
    assert sum(r.startswith("Sign(Sign(x) + 0.1) ") for r in rewrites) == 3
    assert sum(" cancel: " in r for r in rewrites) == 1  # BatchNorm + sign in NHWC
    assert sum("to NHWC before the flatten dropped" in r for r in rewrites) == 1
    saved = np.load(LARQ_FIXTURE.with_suffix(".npz"))
    frames = saved["pixels16"].astype(np.float32) / np.float32(16)
    net = bnnhw.load(LARQ_FIXTURE)
    np.testing.assert_array_equal(golden.predict(net, frames), saved["keras_class"])


@pytest.mark.slow  # one Verilator build, shared with the FINN and plain CNN tests
def test_real_export_passes_verify_on_verilator(tmp_path_factory, capsys):
    out = verify_cnn_on_verilator(onnx.load(LARQ_FIXTURE), tmp_path_factory, capsys)
    assert out.rstrip().endswith("359/359 frames match")
