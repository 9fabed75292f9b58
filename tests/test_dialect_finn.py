"""FINN-ONNX graphs (MultiThreshold, XnorPopcountMatMul, finn_datatype, TopK) against
qonnx's own execution of them, and the FINN graphs bnnhw must refuse."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from dialect_checks import (
    agree,
    cli_refuses,
    node_named,
    refused,
    set_attr,
    set_const,
    verify_on_verilator,
)
from dialect_graphs import (
    digits_frames,
    digits_spec,
    finn_graph,
    random_pixels,
    random_spec,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from bnnhw.frontend import describe

from qonnx_graphs import execute_reference

FINN = "FINN-ONNX"


@pytest.mark.parametrize("form", ["streamlined", "batchnorm", "xnor"])
def test_digits_mlp_on_dataset_and_threshold_ties(form, tmp_path):
    spec = digits_spec(1)
    model = finn_graph(spec, form, tail="none")
    x = digits_frames(spec, np.random.default_rng(2))
    assert len(x) >= 1000
    agree(model, x, tmp_path, FINN)
    # the frames really sit on thresholds: input pixels at 127.5, accumulators at t
    tensors = execute_reference(model, x[:500], every_tensor=True)
    assert np.any(x == 127.5)
    acc = tensors["MatMul_0_out0"]
    assert np.any(acc == spec.layers[0].thresholds[None, :])


@pytest.mark.parametrize("nhwc", [False, True])
def test_digits_cnn_with_topk(nhwc, tmp_path):
    spec = digits_spec(3, conv=True)
    model = finn_graph(spec, "streamlined", tail="topk", nhwc=nhwc)
    x = digits_frames(spec, np.random.default_rng(4), extra=100)
    agree(model, x, tmp_path, FINN)
    cancelled = [r for r in describe(tmp_path / "model.onnx").rewrites if "cancel" in r]
    assert len(cancelled) == (sum(layer.conv for layer in spec.layers) if nhwc else 0)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    conv=st.booleans(),
    form=st.sampled_from(["streamlined", "batchnorm", "xnor"]),
    tail=st.sampled_from(["topk", "argmax", "none"]),
    nhwc=st.booleans(),
)
def test_random_finn_networks_agree(seed, conv, form, tail, nhwc, tmp_path_factory):
    rng = np.random.default_rng(seed)
    spec = random_spec(rng, conv=conv)
    model = finn_graph(spec, form, tail, nhwc=nhwc)
    agree(model, random_pixels(spec, rng, 64), tmp_path_factory.mktemp("finn"), FINN)


def test_inspect_names_dialect_and_rewrites(tmp_path, capsys):
    from bnnhw.cli.main import main

    spec = random_spec(np.random.default_rng(5))
    path = tmp_path / "finn.onnx"
    onnx.save(finn_graph(spec, "xnor", "topk"), path)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "dialect: FINN-ONNX" in out
    assert "rewrite: TopK TopK_0 dropped" in out
    assert "rewrite: MultiThreshold MultiThreshold_0 -> BipolarQuant" in out
    assert len(describe(path).rewrites) == out.count("  rewrite: ")


def _mlp(tail="none", form="streamlined"):
    spec = random_spec(np.random.default_rng(7), width=10)
    while len(spec.layers) < 2:
        spec = random_spec(np.random.default_rng(len(spec.layers) + 8), width=10)
    return finn_graph(spec, form, tail)


def _mt(model, i=1):
    return node_named(model, f"MultiThreshold_{i}")


def _int2(m):
    t = _mt(m).input[1]
    c = onnx.numpy_helper.to_array(next(x for x in m.graph.initializer if x.name == t))
    set_const(m, t, np.concatenate([c - 1, c, c + 1], axis=1))
    set_attr(_mt(m), out_dtype="INT2", out_scale=1.0, out_bias=-2.0)


def _weight(m, node, value, dt=None):
    w = node_named(m, node).input[1]
    arr = onnx.numpy_helper.to_array(next(x for x in m.graph.initializer if x.name == w)).copy()
    arr.flat[0] = value
    set_const(m, w, arr)
    if dt:
        next(
            a for a in m.graph.quantization_annotation if a.tensor_name == w
        ).quant_parameter_tensor_names[0].value = dt


CASES = {
    "INT2 thresholds": (_int2, "MultiThreshold_1", ["2-bit"]),
    "INT2 out_dtype, one threshold": (
        lambda m: set_attr(_mt(m), out_dtype="INT2"),
        "MultiThreshold_1",
        ["2-bit"],
    ),
    "0/2 output": (lambda m: set_attr(_mt(m), out_bias=0.0), "MultiThreshold_1", ["not a sign"]),
    "falling step": (
        lambda m: set_attr(_mt(m), out_scale=-2.0, out_bias=1.0),
        "MultiThreshold_1",
        ["not a sign"],
    ),
    "shifted output": (
        lambda m: set_attr(_mt(m), out_bias=-0.5),
        "MultiThreshold_1",
        ["not a sign"],
    ),
    "infinite threshold": (
        lambda m: set_const(m, _mt(m).input[1], np.full((1, 1), np.inf)),
        "MultiThreshold_1",
        ["infinite"],
    ),
    "threshold rows": (
        lambda m: set_const(m, _mt(m).input[1], np.zeros((2, 1))),
        "MultiThreshold_1",
        ["threshold rows"],
    ),
    "weight 0.5 annotated BIPOLAR": (
        lambda m: _weight(m, "MatMul_0", 0.5),
        "MatMul_0",
        ["BIPOLAR"],
    ),
    "weight annotated INT2": (lambda m: _weight(m, "MatMul_0", 1.0, "INT2"), "MatMul_0", ["2-bit"]),
    "BINARY weight on MatMul": (
        lambda m: _weight(m, "MatMul_0", 1.0, "BINARY"),
        "MatMul_0",
        ["BINARY"],
    ),
    "TopK k=2": (
        lambda m: set_const(m, node_named(m, "TopK_0").input[1], [2]),
        "TopK_0",
        ["k other than 1"],
    ),
    "TopK largest=0": (
        lambda m: set_attr(node_named(m, "TopK_0"), largest=0),
        "TopK_0",
        ["argmin"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_looks_binary_but_is_not(case, tmp_path):
    mutate, node, words = CASES[case]
    model = _mlp(tail="topk")
    mutate(model)
    refused(model, tmp_path, node, *words)


def test_xnor_refusals(tmp_path):
    model = _mlp(form="xnor")
    _weight(model, "XnorPopcountMatMul_0", 2.0)
    refused(model, tmp_path, "XnorPopcountMatMul_0", "not BINARY")
    model = _mlp(form="xnor")  # a BINARY activation into a non-matrix op
    xnor = node_named(model, "XnorPopcountMatMul_0")
    relu = onnx.helper.make_node("Relu", [xnor.input[0]], ["r"], name="Relu_x")
    xnor.input[0] = "r"
    model.graph.node.insert(list(model.graph.node).index(xnor), relu)
    refused(model, tmp_path, "Relu_x", "BINARY (0/1)")


def test_argmax_last_index_and_im2col_refused(tmp_path, capsys):
    model = _mlp(tail="argmax")
    set_attr(node_named(model, "ArgMax_0"), select_last_index=1)
    cli_refuses(model, tmp_path, "ArgMax_0", capsys)
    model = _mlp()
    mt = _mt(model, 0)
    im = onnx.helper.make_node(
        "Im2Col",
        [mt.output[0]],
        ["cols"],
        name="Im2Col_0",
        domain="qonnx.custom_op.general",
        kernel_size=[1, 1],
        input_shape="(1, 1, 1, 10)",
    )
    model.graph.node.insert(list(model.graph.node).index(mt) + 1, im)
    node_named(model, "MatMul_0").input[0] = "cols"
    refused(model, tmp_path, "Im2Col_0", "Im2Col")


@pytest.mark.slow  # a Verilator build (shared by the three dialects' tests)
def test_mlp_passes_verify_on_verilator(tmp_path_factory, capsys):
    spec = digits_spec(11)
    folder = tmp_path_factory.getbasetemp() / "dialect_verify"
    verify_on_verilator(finn_graph(spec, "streamlined", "topk"), folder, capsys)


def test_qonnx_multibit_weights_refused_with_bit_width(tmp_path):
    """Item 4 for QONNX: a 4-bit weight Quant names the node and the width."""
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.float32(1.0), "one"),
        numpy_helper.from_array(
            np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32), "W"
        ),
        numpy_helper.from_array(np.float32(0.125), "s"),
        numpy_helper.from_array(np.float32(0.0), "z"),
        numpy_helper.from_array(np.float32(4.0), "bits"),
    ]
    q = "qonnx.custom_op.general"
    nodes = [
        helper.make_node("BipolarQuant", ["x", "one"], ["xq"], name="in_q", domain=q),
        helper.make_node(
            "Quant",
            ["W", "s", "z", "bits"],
            ["Wq"],
            name="w_quant",
            domain=q,
            signed=1,
            narrow=0,
            rounding_mode="ROUND",
        ),
        helper.make_node("MatMul", ["xq", "Wq"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(q, 1)]
    )
    refused(model, tmp_path, "w_quant", "weights to 4 bits")
