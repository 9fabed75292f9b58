"""FINN-ONNX graphs (MultiThreshold, XnorPopcountMatMul, finn_datatype, TopK) against
qonnx's own execution of them, and the FINN graphs bnnhw must refuse."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from dialect_checks import (
    agree,
    cli_refuses,
    cnn_spec,
    node_named,
    reference,
    refused,
    set_attr,
    set_const,
    verify_cnn_on_verilator,
    verify_on_verilator,
)
from dialect_graphs import (
    LayerSpec,
    NetSpec,
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


@pytest.mark.parametrize("nhwc", [False, True])
def test_lowered_cnn_im2col_on_dataset(nhwc, tmp_path):
    """FINN's LowerConvsToMatMul form: Transpose -> Im2Col -> MatMul (NHWC), thresholds
    NCHW after a Transpose back, or NHWC between Transposes (after
    AbsorbTransposeIntoMultiThreshold, the pool then MaxPoolNHWC); the second convolution
    is padded."""
    spec = digits_spec(3, conv=True)
    assert [layer.pads for layer in spec.layers if layer.conv] == [0, 1]
    model = finn_graph(spec, "streamlined", tail="topk", nhwc=nhwc, lowered=True)
    assert sum(n.op_type == "Im2Col" for n in model.graph.node) >= 1
    x = digits_frames(spec, np.random.default_rng(4), extra=100)
    assert len(x) >= 1000
    agree(model, x, tmp_path, FINN)
    rewrites = describe(tmp_path / "model.onnx").rewrites
    convs = sum(layer.conv for layer in spec.layers)
    assert sum("FINN's lowered convolution read back" in r for r in rewrites) == convs
    assert sum(layer.pool for layer in spec.layers) == 1
    pools = int(nhwc)  # the NHWC form pools with MaxPoolNHWC
    assert sum(n.op_type == "MaxPoolNHWC" for n in model.graph.node) == pools
    assert sum(r.startswith("MaxPoolNHWC ") for r in rewrites) == pools
    # every Transpose of the graph cancels one of those the rewrites add (2 a conv or pool)
    transposes = sum(n.op_type == "Transpose" for n in model.graph.node)
    assert 2 * sum("cancel" in r for r in rewrites) == transposes + 2 * (convs + pools)
    im2col = node_named(model, "Im2Col_1")  # NHWC form: reads the pool directly
    assert (
        model.graph.node[list(model.graph.node).index(im2col) - 1].op_type == "Transpose"
    ) != nhwc
    # pads: the border windows hold the pad value 0 (neither +1 nor -1) in the reference
    cols = reference(model, x[:50], every_tensor=True)["Im2Col_1_out0"]
    assert np.any(cols == 0) and np.all(np.isin(cols, [-1.0, 0.0, 1.0]))


def test_batched_im2col_execution_is_finns_batch_of_one():
    """``execute_batched`` (Im2Col per frame, other nodes batched) gives, frame for frame,
    exactly qonnx's own ``execute_onnx`` at batch 1, as FINN runs these graphs."""
    rng = np.random.default_rng(12)
    spec = digits_spec(3, conv=True)
    model = finn_graph(spec, "streamlined", "none", nhwc=True, lowered=True)
    x = random_pixels(spec, rng, 12)
    assert {"Im2Col", "MaxPoolNHWC"} <= {n.op_type for n in model.graph.node}
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    wrapper = ModelWrapper(model).transform(InferShapes())  # the graph as it is, batch 1
    out = model.graph.output[0].name
    one_by_one = [execute_onnx(wrapper, {"x": x[i : i + 1]})[out] for i in range(len(x))]
    np.testing.assert_array_equal(reference(model, x), np.concatenate(one_by_one))


@pytest.mark.filterwarnings("ignore:Some old-style domain")  # qonnx renames finn.* (expected)
def test_lowered_pointwise_conv_without_im2col(tmp_path):
    """A 1x1 convolution is lowered to Transpose -> MatMul with no Im2Col."""
    rng = np.random.default_rng(9)

    def signs(*shape):
        return rng.choice([-1.0, 1.0], shape).astype(np.float32)

    layers = [
        LayerSpec(signs(3, 1, 2, 2), np.array([-2.0, 0.0, 1.0], np.float32)),  # 6x6 -> 5x5
        LayerSpec(signs(2, 3, 1, 1), np.array([-1.0, 1.0], np.float32)),  # 1x1: 2 x 5x5
        LayerSpec(signs(4, 2 * 5 * 5), None),
    ]
    spec = NetSpec((6, 6), 36, layers, np.ones(4, np.float32), np.zeros(4, np.float32), 100.0)
    model = finn_graph(spec, "streamlined", "argmax", nhwc=True, lowered=True)
    assert [n.op_type for n in model.graph.node].count("Im2Col") == 1
    for node in model.graph.node:  # older FINN's domain (qonnx renames it on load)
        node.domain = "finn.custom_op.general" if node.domain else ""
    model.opset_import.append(onnx.helper.make_opsetid("finn.custom_op.general", 1))
    agree(model, random_pixels(spec, rng, 300), tmp_path, FINN)
    rewrites = describe(tmp_path / "model.onnx").rewrites
    assert any("MatMul_1 on an NHWC map -> Conv 1x1" in r for r in rewrites)


def test_lowered_strided_conv(tmp_path):
    """Im2Col with stride 2 and padding: a 3x3/2 convolution on 7x7 gives 4x4."""
    rng = np.random.default_rng(10)
    conv = LayerSpec(rng.choice([-1.0, 1.0], (3, 1, 3, 3)).astype(np.float32), None, pads=1)
    conv.thresholds, conv.stride = np.array([-1.0, 0.0, 2.0], np.float32), 2
    last = LayerSpec(rng.choice([-1.0, 1.0], (5, 3 * 4 * 4)).astype(np.float32), None)
    spec = NetSpec((7, 7), 49, [conv, last], np.ones(5, np.float32), np.zeros(5, np.float32), 90.0)
    model = finn_graph(spec, "streamlined", "topk", lowered=True)
    agree(model, random_pixels(spec, rng, 300), tmp_path, FINN)
    rewrites = describe(tmp_path / "model.onnx").rewrites
    assert any("-> Conv 3x3 (strides [2, 2], pads [1, 1, 1, 1])" in r for r in rewrites)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    conv=st.booleans(),
    form=st.sampled_from(["streamlined", "batchnorm", "xnor"]),
    tail=st.sampled_from(["topk", "argmax", "none"]),
    nhwc=st.booleans(),
    lowered=st.booleans(),
)
def test_random_finn_networks_agree(seed, conv, form, tail, nhwc, lowered, tmp_path_factory):
    rng = np.random.default_rng(seed)
    spec = random_spec(rng, conv=conv)
    model = finn_graph(spec, form, tail, nhwc=nhwc, lowered=lowered)
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
    refused(model, tmp_path, "Im2Col_0", "stride must be two strides")  # none given


def _lowered():
    spec = digits_spec(3, conv=True)  # second convolution padded (Im2Col_1)
    return finn_graph(spec, "streamlined", tail="topk", nhwc=True, lowered=True)


def _im2col(name="Im2Col_1", **attrs):
    return lambda m: set_attr(node_named(m, name), **attrs)


def _im2col_into(op):
    def mutate(m):
        im, mm = node_named(m, "Im2Col_0"), node_named(m, "MatMul_0")
        node = onnx.helper.make_node(op, [im.output[0]], ["r"], name=f"{op}_x")
        mm.input[0] = "r"
        m.graph.node.insert(list(m.graph.node).index(mm), node)

    return mutate


def _xnor_after_im2col(m):
    mm = node_named(m, "MatMul_0")
    mm.op_type, mm.domain = "XnorPopcountMatMul", "qonnx.custom_op.general"


IM2COL_CASES = {
    "pad value 1": (_im2col(pad_value=1), "Im2Col_1", ["pads with the value 1"]),
    "depthwise": (_im2col(depthwise=1), "Im2Col_1", ["depthwise"]),
    "dilated": (_im2col("Im2Col_0", dilations=[2, 2]), "Im2Col_0", ["dilated"]),
    "input_shape of another map": (
        _im2col("Im2Col_1", input_shape="(1,5,5,2)"),
        "Im2Col_1",
        ["differs from its input's"],
    ),
    "one kernel size": (_im2col(kernel_size=[3]), "Im2Col_1", ["kernel_size"]),
    "stride 0": (_im2col(stride=[0, 1]), "Im2Col_1", ["stride"]),
    "pads of three": (_im2col(pad_amount=[1, 1, 1]), "Im2Col_1", ["pad_amount"]),
    "Im2Col into a Relu": (_im2col_into("Relu"), "Im2Col_0", ["does not feed one MatMul"]),
    "Im2Col into XnorPopcountMatMul": (_xnor_after_im2col, "MatMul_0", ["Xnor"]),
    "weight 0.5 annotated BIPOLAR": (
        lambda m: _weight(m, "MatMul_0", 0.5),
        "MatMul_0",
        ["BIPOLAR"],
    ),
    "weight annotated INT2": (lambda m: _weight(m, "MatMul_1", 1.0, "INT2"), "MatMul_1", ["2-bit"]),
    "dilated MaxPoolNHWC": (
        _im2col("MaxPoolNHWC_0", dilations=[2, 2]),
        "MaxPoolNHWC_0",
        ["dilated"],
    ),
}


@pytest.mark.parametrize("case", list(IM2COL_CASES))
def test_lowered_conv_that_is_not_a_binary_conv(case, tmp_path):
    mutate, node, words = IM2COL_CASES[case]
    model = _lowered()
    mutate(model)
    refused(model, tmp_path, node, *words)


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


@pytest.mark.slow  # one Verilator build, shared with the plain and Larq CNN tests
def test_lowered_cnn_passes_verify_on_verilator(tmp_path_factory, capsys):
    """The Larq fixture's CNN written as FINN writes it after LowerConvsToMatMul and
    AbsorbTransposeIntoMultiThreshold (Im2Col, NHWC thresholds), on the digits test split."""
    model = finn_graph(cnn_spec(), "streamlined", "topk", nhwc=True, lowered=True)
    assert any(n.op_type == "Im2Col" for n in model.graph.node)
    out = verify_cnn_on_verilator(model, tmp_path_factory, capsys)
    assert out.rstrip().endswith("359/359 frames match")
