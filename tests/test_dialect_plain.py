"""Plain ONNX (torch.onnx.export without Brevitas) against onnxruntime's own execution
(through execute_onnx), and the graphs that look binary but are not."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from dialect_checks import (
    agree,
    cli_refuses,
    cnn_spec,
    node_named,
    refused,
    set_attr,
    set_const,
    verify_cnn_on_verilator,
    verify_on_verilator,
)
from dialect_graphs import (
    SIGNS,
    digits_frames,
    digits_spec,
    plain_graph,
    random_pixels,
    random_spec,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto

from qonnx_graphs import execute_reference

PLAIN = "plain ONNX"


def _scales(spec, rng):
    """BatchNorm folded into the weights: +-s per neuron, s with few mantissa bits."""
    return [
        rng.choice([0.25, 0.375, 0.5, 0.75, 1.25], len(layer.signs)).astype(np.float32)
        * rng.choice([-1.0, 1.0], len(layer.signs)).astype(np.float32)
        for layer in spec.layers
    ]


@pytest.mark.parametrize("sign", SIGNS)
def test_digits_mlp_on_dataset_and_threshold_ties(sign, tmp_path):
    spec = digits_spec(21)
    scales = _scales(spec, np.random.default_rng(22))
    x = digits_frames(spec, np.random.default_rng(23))
    assert len(x) >= 1000 and np.any(x == 127.5)
    model = plain_graph(spec, sign, scales)
    agree(model, x, tmp_path, PLAIN)
    if sign != "sign":  # hidden accumulators land exactly on thresholds (Gemm output 0)
        tensors = execute_reference(model, x[:600], every_tensor=True)
        assert np.any(tensors["Gemm_0_out0"] == 0)


def test_thresholds_in_float64_and_strict_compares_stay_exact():
    """``x >= t`` and ``x > t`` for float32 x and float64 t, against numpy's own compare."""
    from bnnhw.frontend.dialects.graph import above, first_threshold

    rng = np.random.default_rng(0)
    t = np.concatenate([rng.normal(size=200), rng.normal(size=200).astype(np.float32), [0.0]])
    for ti in t:
        x = [np.float32(ti)]
        for direction in (np.float32(np.inf), np.float32(-np.inf)):
            step = np.float32(ti)
            for _ in range(3):
                step = np.nextafter(step, direction)
                x.append(step)
        x = np.array(x, np.float32)
        t64 = np.float64(ti)
        assert np.array_equal(x >= first_threshold(t64), x.astype(np.float64) >= t64)
        assert np.array_equal(x >= above(t64), x.astype(np.float64) > t64)


def test_digits_cnn_with_argmax(tmp_path):
    spec = digits_spec(24, conv=True)
    x = digits_frames(spec, np.random.default_rng(25), extra=100)
    agree(plain_graph(spec, "ge", tail="argmax"), x, tmp_path, PLAIN)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**31), conv=st.booleans(), sign=st.sampled_from(SIGNS), bn=st.booleans()
)
def test_random_plain_networks_agree(seed, conv, sign, bn, tmp_path_factory):
    rng = np.random.default_rng(seed)
    spec = random_spec(rng, conv=conv)
    model = plain_graph(spec, sign, _scales(spec, rng), bn=bn)
    agree(model, random_pixels(spec, rng, 64), tmp_path_factory.mktemp("plain"), PLAIN)


def _mlp(sign="ge"):
    spec = random_spec(np.random.default_rng(31), width=10)
    while len(spec.layers) < 2:
        spec = random_spec(np.random.default_rng(len(spec.layers) + 40), width=10)
    return spec, plain_graph(spec, sign)


def _const_of(model, node, index):
    return node_named(model, node).input[index]


def _splice(model, before: str, op: str, name: str, inputs: list, **attrs):
    """Insert ``op`` on the data input of node ``before``."""
    target = node_named(model, before)
    extra = []
    for i, v in enumerate(inputs):
        init = onnx.numpy_helper.from_array(np.asarray(v, np.float32), f"{name}_c{i}")
        model.graph.initializer.append(init)
        extra.append(init.name)
    node = onnx.helper.make_node(op, [target.input[0], *extra], [f"{name}_out"], name=name, **attrs)
    target.input[0] = node.output[0]
    model.graph.node.insert(list(model.graph.node).index(target), node)


def _sign_on_input(spec, model):
    ge = node_named(model, "GreaterOrEqual_0")
    cast = node_named(model, "Cast_0")
    ge.op_type, ge.input[1] = "Sign", ""
    del ge.input[1]
    cast.op_type = "Identity"
    del cast.attribute[:]
    set_const(model, _const_of(model, "Mul_0", 1), 1.0)
    set_const(model, _const_of(model, "Sub_1", 1), 0.0)


def _zero_reachable(spec, model):
    bias = _const_of(model, "Gemm_0", 2)
    set_const(model, bias, np.zeros(len(spec.layers[0].signs)))


def _where_values(model, a, b, node="Where_0"):
    w = node_named(model, node)
    set_const(model, w.input[1], a)
    set_const(model, w.input[2], b)


def _halve_one_weight(m):
    """Gemm_0's weights are +-0.5 (folded BatchNorm); one becomes 0.25: not +-s per row."""
    name = _const_of(m, "Gemm_0", 1)
    w = onnx.numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == name)).copy()
    w[0, 3] *= 0.5
    set_const(m, name, w)


def _where_not_clamp(model):
    w = node_named(model, "Where_0")  # Where(Greater(x, 1), 1, x): make the 1 a 2
    set_const(model, w.input[1], 2.0)


CASES = {
    "Sign of the raw input": ("ge", _sign_on_input, "GreaterOrEqual_0", ["raw input"]),
    "Sign reaching 0": ("sign", None, "Sign_0", ["is 0 for neuron"]),
    "2x - 0.5": (
        "ge",
        lambda s, m: set_const(m, _const_of(m, "Sub_2", 1), 0.5),
        "GreaterOrEqual_1",
        ["not a sign"],
    ),
    "Where 1/0": (
        "where",
        lambda s, m: _where_values(m, 1.0, 0.0),
        "GreaterOrEqual_1",
        ["not a sign"],
    ),
    "Where -1/+1 (falling)": (
        "where",
        lambda s, m: _where_values(m, -1.0, 1.0),
        "GreaterOrEqual_1",
        ["not a sign"],
    ),
    "Where that is not a clamp": (
        "gt_clip",
        lambda s, m: _where_not_clamp(m),
        "Where_0",
        ["not a clamp"],
    ),
    "clamp at the threshold": (
        "sign",
        lambda s, m: set_const(m, _const_of(m, "Clip_0", 1), 0.0),
        "Clip_0",
        ["not transparent"],
    ),
    "Cast to int": (
        "ge",
        lambda s, m: set_attr(node_named(m, "Cast_1"), to=TensorProto.INT32),
        "Cast_1",
        ["non-float"],
    ),
    "clamp into a Gemm": (
        "ge",
        lambda s, m: _splice(m, "Gemm_1", "Clip", "Clip_x", [-1.0, 1.0]),
        "Clip_x",
        ["feeds no sign"],
    ),
    "one weight at half magnitude": (
        "ge",
        lambda s, m: _halve_one_weight(m),
        "Gemm_0",
        ["not binary"],
    ),
    "Where with per-element values": (
        "where",
        lambda s, m: _where_values(
            m, np.array([1.0, 2.0] * 10)[: len(s.layers[0].signs)], -1.0, "Where_0"
        ),
        "Where_0",
        ["differ per element"],
    ),
    "2-bit Quant between layers": (
        "ge",
        lambda s, m: _splice(
            m,
            "Gemm_1",
            "Quant",
            "Quant_x",
            [0.5, 0.0, 2.0],
            domain="qonnx.custom_op.general",
            signed=1,
            narrow=0,
            rounding_mode="ROUND",
        ),
        "Quant_x",
        ["2 bits"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_looks_binary_but_is_not(case, tmp_path):
    sign, mutate, node, words = CASES[case]
    spec, model = _mlp(sign)
    if mutate is not None:
        mutate(spec, model)
    else:
        _zero_reachable(spec, model)
    refused(model, tmp_path, node, *words)


def test_sign_after_batchnorm_node_proven_or_refused(tmp_path):
    """The proof replays a BatchNormalization node too: half-integer means pass, a mean on a
    reachable accumulator gives an exact 0 and is refused."""
    spec = random_spec(np.random.default_rng(71), width=10)
    x = random_pixels(spec, np.random.default_rng(72), 200)
    agree(plain_graph(spec, "sign", bn=True), x, tmp_path, PLAIN)
    model = plain_graph(spec, "sign", bn=True)
    mean = node_named(model, "BatchNormalization_0").input[3]  # weights are +-0.5
    set_const(model, mean, np.full(len(spec.layers[0].signs), 0.5 * (spec.layers[0].fan_in % 2)))
    refused(model, tmp_path, "Sign_0", "is 0 for neuron")


def test_cli_refusal_is_one_line(tmp_path, capsys):
    spec, model = _mlp("sign")
    _zero_reachable(spec, model)
    cli_refuses(model, tmp_path, "Sign_0", capsys)


@pytest.mark.slow  # a Verilator build (shared by the three dialects' tests)
def test_mlp_passes_verify_on_verilator(tmp_path_factory, capsys):
    spec = digits_spec(11)
    folder = tmp_path_factory.getbasetemp() / "dialect_verify"
    verify_on_verilator(plain_graph(spec, "ge"), folder, capsys)


@pytest.mark.slow  # one Verilator build, shared with the FINN and Larq CNN tests
def test_cnn_passes_verify_on_verilator(tmp_path_factory, capsys):
    """The Larq fixture's CNN as torch.onnx.export writes it (GreaterOrEqual/Cast/Mul/Sub
    signs, BatchNorm folded into +-0.5 Conv/Gemm weights and biases, an ArgMax), on the
    digits test split."""
    model = plain_graph(cnn_spec(), "ge", tail="argmax")
    out = verify_cnn_on_verilator(model, tmp_path_factory, capsys)
    assert out.rstrip().endswith("359/359 frames match")
