"""bnnhw.load + golden against qonnx's executor on binary CNN graphs (tests/conv_graphs.py).

The reference is ``ReferenceExecutor`` (``execute_onnx`` on the user's file): same class on
every frame, float outputs to float32 rounding. Every hidden activation is also compared
bit for bit with the executor's tensors (NCHW turned into the IR's HWC stream order), so a
wrong window, padding, pool, flatten order or threshold shows at the layer that has it.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper

import bnnhw
from bnnhw import golden
from bnnhw.errors import ModelError
from bnnhw.frontend.reference import ReferenceExecutor
from bnnhw.ir import Window

from conv_graphs import (
    ConvNetSpec,
    ConvSpec,
    PoolSpec,
    build_conv_model,
    calibrate,
    execute_all,
    input_unit,
    output_magnitude,
    random_conv,
    random_dense,
    random_frames,
    tap_bits,
)
from mlp_specs import pow2
from qonnx_graphs import BatchNormSpec, _f32, save_model

FRAMES = 300


def check(spec: ConvNetSpec, folder: Path, frames: int = FRAMES, seed: int = 0, *, calibrated=True):
    """Save, load with bnnhw, compare geometry, outputs and hidden bits with execute_onnx.

    ``calibrated``: first move the BN means so the signs split the frames (see calibrate).
    """
    x = random_frames(spec, np.random.default_rng(seed), frames)
    if calibrated:
        calibrate(spec, x[:100])
    model = build_conv_model(spec)
    onnx.checker.check_model(model)
    path = folder / f"{spec.name}.onnx"
    save_model(model, path)
    net = bnnhw.load(path)

    maps = spec.maps()
    assert len(net.layers) == len(spec.convs) + len(spec.dense)
    assert bool(net.input.channels_last) == (spec.in_shape[0] > 1)  # host streams HWC
    for layer, conv, (c, h, w) in zip(net.layers, spec.convs, maps, strict=False):
        assert layer.window == Window(c, h, w, conv.kernel, conv.stride, conv.pads)
        assert (layer.pool is None) == (conv.pool is None)
        if conv.pool is not None:
            assert layer.pool.kernel == conv.pool.kernel
            assert layer.pool.stride == (conv.pool.stride or (1, 1))
    for layer, out_map in zip(net.layers, maps[1:], strict=False):
        assert layer.out_map == out_map

    ref = ReferenceExecutor(path)(x)
    pred, floats = golden.predict(net, x), golden.float_outputs(net, x)
    np.testing.assert_array_equal(pred, np.argmax(ref, axis=1), err_msg="class != graph argmax")
    atol = 1e-6 * max(float(np.max(np.abs(ref))), output_magnitude(spec))
    np.testing.assert_allclose(floats, ref, rtol=1e-6, atol=atol, err_msg="float outputs")

    bnnhw.save_network(net, folder / "ir")  # the saved IR keeps windows, pools and AND flags
    np.testing.assert_array_equal(
        golden.scores(bnnhw.load(folder / "ir"), x), golden.scores(net, x)
    )

    got = golden.layer_outputs(net, x)[1:-1]
    want = tap_bits(spec, execute_all(model, x))
    assert len(got) == len(want)
    for k, (g, r, name) in enumerate(zip(got, want, spec.tap_shapes, strict=True)):
        bad = np.flatnonzero((g != r).any(axis=1))
        assert not bad.size, f"layer {k} ({name}): bits differ on {bad.size} frames, first {bad[0]}"
    return net, x, ref


# ----------------------------------------------------------------------------- explicit


def _dense(rng, spec: ConvNetSpec, hidden: list[int], classes: int, **kw) -> ConvNetSpec:
    unit = spec.convs[-1].act_scale
    spec.dense = random_dense(rng, [int(np.prod(spec.maps()[-1])), *hidden, classes], unit, **kw)
    return spec


def _case_bipolar_valid(rng):
    conv = random_conv(rng, 1, 8, (3, 3), input_unit("bipolar"), pool=PoolSpec())
    return _dense(rng, ConvNetSpec((1, 10, 10), [conv], []), [12], 4)


def _case_2x1_padded_reshape(rng):
    u = input_unit("2x-1")
    c0 = random_conv(rng, 1, 6, (3, 3), u, pads=(1, 1, 1, 1), act_scale=0.5)
    c1 = random_conv(rng, 6, 8, (3, 3), (0.5, 0.5, 0.0), pads=(1, 1, 1, 1), pool=PoolSpec())
    spec = ConvNetSpec((1, 9, 9), [c0, c1], [], "2x-1", flatten="reshape", linear="matmul")
    return _dense(rng, spec, [16], 5)


def _case_int8_c1_valid(rng):
    conv = random_conv(rng, 1, 7, (3, 3), input_unit("int8"), bias=True, pool=PoolSpec())
    return _dense(rng, ConvNetSpec((1, 8, 8), [conv], [], "int8"), [10], 3)


def _case_int8_c3_stride2(rng):
    u = input_unit("int8")
    c0 = random_conv(rng, 3, 8, (5, 5), u, stride=(2, 2), pads=(2, 2, 2, 2), bias=True)
    c1 = random_conv(rng, 8, 4, (2, 3), (1.0, 1.0, 0.0), stride=(1, 2), per_channel_scale=True)
    return _dense(rng, ConvNetSpec((3, 11, 11), [c0, c1], [], "int8"), [], 6, bias=True)


def _case_uint4_c3_asymmetric(rng):
    params = [[0.9, 1.3, 1.1], [0.1, -0.2, 0], [0.3, 0.5, 0.4], [0.08, 0.1, 0.05]]
    bn = BatchNormSpec(*map(_f32, params))  # per-channel input BN, gammas > 0
    pool = PoolSpec((3, 3), (2, 2))  # overlapping
    u = input_unit("uint4")
    conv = random_conv(rng, 3, 6, (2, 4), u, stride=(1, 2), pads=(0, 2, 1, 0), pool=pool)
    spec = ConvNetSpec((3, 8, 10), [conv], [], "uint4", input_bn=bn, linear="matmul")
    return _dense(rng, spec, [9], 4)


def _case_bipolar_c3_pool_default_stride(rng):
    pool = PoolSpec((2, 2), None)  # no strides attribute: ONNX's default stride 1
    u = input_unit("bipolar")
    conv = random_conv(
        rng, 3, 5, (3, 2), u, weight_form="constant", per_channel_scale=True, pool=pool
    )
    return _dense(rng, ConvNetSpec((3, 7, 6), [conv], []), [8], 4)


def _case_1x1_stride2_whole_map(rng):
    c0 = random_conv(rng, 2, 6, (1, 1), input_unit("bipolar"), stride=(2, 2))
    c1 = random_conv(rng, 6, 9, (5, 5), (1.0, 1.0, 0.0))  # covers the whole 5x5 map
    spec = ConvNetSpec((2, 9, 9), [c0, c1], [], head_mul=-0.75, head_add=_f32([0.5, -1, 0.25]))
    return _dense(rng, spec, [], 3, bias=True)


CASES = {f.__name__[6:]: f for f in [
    _case_bipolar_valid, _case_2x1_padded_reshape, _case_int8_c1_valid, _case_int8_c3_stride2,
    _case_uint4_c3_asymmetric, _case_bipolar_c3_pool_default_stride, _case_1x1_stride2_whole_map,
]}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_explicit_conv_graphs(case: str, tmp_path: Path) -> None:
    spec = CASES[case](np.random.default_rng(sorted(CASES).index(case)))
    spec.name = case
    _, _, ref = check(spec, tmp_path)
    assert len(np.unique(np.argmax(ref, axis=1))) > 1, "frames reach one class only"


def _pool_probe(rng, at: str) -> ConvNetSpec:
    """Two padded stages, each pooling before its sign; gammas and pre-pool Muls of both
    signs. ``check`` calibrates the means, so every threshold is inside the reachable range."""
    gamma = _f32([1.0, -1.0, 0.5, -2.0, 1.5, -0.7])
    scale = _f32([1, 1, -1, -1, 0.5, -2])
    convs = []
    for in_ch in (2, 6):
        pool = PoolSpec((2, 2), (2, 2), at, scale)
        conv = random_conv(rng, in_ch, 6, (3, 3), (1.0, 1.0, 0.0), pads=(1, 1, 1, 1), pool=pool)
        conv.bn = BatchNormSpec(gamma, _f32(np.zeros(6)), _f32(np.zeros(6)), _f32(np.ones(6)))
        convs.append(conv)
    return _dense(rng, ConvNetSpec((2, 12, 12), convs, [], name=f"pool_{at}"), [8], 4)


@pytest.mark.parametrize("at", ["before_bn", "before_sign"])
def test_pool_before_the_sign_is_and_where_decreasing(at: str, tmp_path: Path) -> None:
    """A MaxPool before the sign pools bits with AND exactly where the arithmetic after the
    pool decreases: negative gamma when the BN follows the pool, never when only the sign
    does. The Mul before the pool sets the threshold direction, not the pool kind."""
    spec = _pool_probe(np.random.default_rng(7), at)
    net, x, _ = check(spec, tmp_path)
    gamma, scale = spec.convs[0].bn.gamma, spec.convs[0].pool.scale
    want_and = gamma < 0 if at == "before_bn" else np.zeros(6, bool)
    for layer in net.layers[:2]:
        np.testing.assert_array_equal(layer.pool_and, want_and)
        np.testing.assert_array_equal(layer.directions, np.where(gamma * scale < 0, -1, 1))
    assert not any(layer.pool_and is not None for layer in net.layers[2:])

    # the frames tell OR and AND apart: flipping the pools changes the bits
    flipped = copy.deepcopy(net)
    for layer in flipped.layers[:2]:
        layer.pool_and = ~layer.pool_and
    assert (golden.layer_outputs(flipped, x)[1] != golden.layer_outputs(net, x)[1]).any()


@pytest.mark.parametrize("frame", [(3 * 6 * 6,), (1, 6, 18)], ids=["flat", "1x6x18"])
def test_input_reshaped_into_a_multichannel_map(frame: tuple[int, ...], tmp_path: Path) -> None:
    """A graph input that is not the conv's (C, H, W) map (a flat vector, or another 3-D
    shape) reshaped into a 3-channel image: the host must still stream the image in HWC.
    encode_inputs takes the channel count from the input shape (shape[-3]), not the map."""
    rng = np.random.default_rng(3)
    conv = random_conv(rng, 3, 4, (3, 3), input_unit("int8"), pool=PoolSpec())
    spec = ConvNetSpec((3, 6, 6), [conv], [], "int8", input_frame=frame)
    check(_dense(rng, spec, [], 4), tmp_path)


# ----------------------------------------------------------------------------- property


@st.composite
def conv_net_specs(draw) -> ConvNetSpec:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["bipolar", "2x-1", "int8", "uint4"]))
    c, h, w = draw(st.integers(1, 16)), draw(st.integers(4, 16)), draw(st.integers(4, 16))
    flatten = draw(st.sampled_from(["flatten", "reshape"]))
    linear = draw(st.sampled_from(["gemm", "matmul"]))
    spec = ConvNetSpec((c, h, w), [], [], kind, flatten=flatten, linear=linear)
    unit = input_unit(kind)
    for _ in range(draw(st.integers(1, 2))):
        pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
        kh = draw(st.integers(1, min(5, h + pads[0] + pads[2])))
        kw = draw(st.integers(1, min(5, w + pads[1] + pads[3])))
        stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        oh, ow = ConvSpec(np.zeros((1, 1, kh, kw)), _f32(1), stride, pads).conv_out(h, w)
        pool, at = None, draw(st.sampled_from([None, "after_sign", "before_bn", "before_sign"]))
        out_ch = draw(st.integers(1, 16))
        if at is not None:
            kernel = (draw(st.integers(1, min(3, oh))), draw(st.integers(1, min(3, ow))))
            p_stride = draw(st.sampled_from([None, (1, 1), (2, 2), kernel, (2, 1)]))
            scale = (pow2(rng, -1, 1, out_ch) * rng.choice([-1, 1], out_ch)).astype(np.float32)
            pool = PoolSpec(kernel, p_stride, at, scale if draw(st.booleans()) else None)
        act = float(pow2(rng, -1, 1))
        options = {
            "bias": draw(st.booleans()),
            "per_channel_scale": draw(st.booleans()),
            "weight_form": draw(st.sampled_from(["bipolarquant", "constant"])),
        }
        conv = random_conv(
            rng,
            c,
            out_ch,
            (kh, kw),
            unit,
            stride=stride,
            pads=pads,
            pool=pool,
            act_scale=act,
            **options,
        )
        spec.convs.append(conv)
        c, h, w = spec.maps()[-1]
        unit = (act, act, 0.0)
    hidden = draw(st.lists(st.integers(2, 24), max_size=1))
    return _dense(rng, spec, hidden, draw(st.integers(2, 10)), bias=draw(st.booleans()))


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=conv_net_specs(), seed=st.integers(0, 2**31))
def test_random_conv_graphs_match_reference(spec: ConvNetSpec, seed: int, tmp_path: Path) -> None:
    check(spec, tmp_path, frames=200, seed=seed)


# ----------------------------------------------------------------------------- bad inputs


def _base_model() -> tuple[ConvNetSpec, onnx.ModelProto]:
    """Nodes: BipolarQuant_0 (input), BipolarQuant_1 (weight), Conv_0 (3x3, pads 1: 6x6 ->
    6x6), BatchNormalization_0, BipolarQuant_2, MaxPool_0, Flatten_0, BipolarQuant_3, Gemm_0.
    The mutations keep every shape, so the error comes from the mutated node."""
    rng = np.random.default_rng(0)
    conv = random_conv(rng, 2, 4, (3, 3), (1.0, 1.0, 0.0), pads=(1, 1, 1, 1), pool=PoolSpec())
    spec = _dense(rng, ConvNetSpec((2, 6, 6), [conv], [], name="bad"), [], 3)
    return spec, build_conv_model(spec)


def _node(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.name == name)


def _set_attr(node: onnx.NodeProto, name: str, value: object) -> None:
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(name, value))


def _insert_after(model: onnx.ModelProto, before: str, node: onnx.NodeProto) -> None:
    """Insert ``node`` reading the output of node ``before``, rewiring its users."""
    prev = _node(model, before)
    out = prev.output[0]
    for n in model.graph.node:
        n.input[:] = [node.output[0] if i == out else i for i in n.input]
    node.input[0] = out
    model.graph.node.insert(list(model.graph.node).index(prev) + 1, node)


def _group2(m):
    _set_attr(_node(m, "Conv_0"), "group", 2)
    w = next(t for t in m.graph.initializer if t.name == "conv0_w")
    w.CopyFrom(numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "conv0_w"))


def _dilated(m):
    _set_attr(_node(m, "Conv_0"), "dilations", [2, 2])
    _set_attr(_node(m, "Conv_0"), "pads", [2, 2, 2, 2])


def _auto_pad(m):
    conv = _node(m, "Conv_0")
    conv.attribute.remove(next(a for a in conv.attribute if a.name == "pads"))
    _set_attr(conv, "auto_pad", "SAME_UPPER")


def _pool_pads(m):
    _set_attr(_node(m, "MaxPool_0"), "pads", [0, 0, 1, 1])


def _pool_ceil(m):
    _set_attr(_node(m, "MaxPool_0"), "ceil_mode", 1)


def _pool_on_input(m):
    pool = helper.make_node(
        "MaxPool", ["global_in"], ["odd_pool_out"], "odd_pool", kernel_shape=[1, 1]
    )
    m.graph.node.insert(0, pool)
    _node(m, "BipolarQuant_0").input[0] = "odd_pool_out"


def _unquantized(m):
    _node(m, "Conv_0").input[0] = "global_in"
    m.graph.node.remove(_node(m, "BipolarQuant_0"))


def _float_weights(m):
    _node(m, "Conv_0").input[1] = "conv0_w"
    m.graph.node.remove(_node(m, "BipolarQuant_1"))


def _pixel_bias(m):
    c = np.arange(4 * 6 * 6, dtype=np.float32).reshape(1, 4, 6, 6) / 8
    m.graph.initializer.append(numpy_helper.from_array(c, "pixel_bias"))
    _insert_after(m, "Conv_0", helper.make_node("Add", ["?", "pixel_bias"], ["pb"], "odd_add"))


def _second_pool(m):
    pool = helper.make_node("MaxPool", ["?"], ["p2"], "odd_pool", kernel_shape=[1, 1])
    _insert_after(m, "MaxPool_0", pool)


# name: (mutation, node named in the message, words the message must contain). group=2
# must say "group", not that the (correct, grouped) weight shape does not fit.
BAD = {
    "group_2": (_group2, "Conv_0", ["group"]),
    "dilations_2": (_dilated, "Conv_0", ["dilat"]),
    "auto_pad_same": (_auto_pad, "Conv_0", ["auto_pad"]),
    "pool_pads": (_pool_pads, "MaxPool_0", ["pad"]),
    "pool_ceil_mode": (_pool_ceil, "MaxPool_0", ["ceil_mode"]),
    "pool_on_raw_input": (_pool_on_input, "odd_pool", ["pool", "input"]),
    "conv_on_unquantized_input": (_unquantized, "Conv_0", ["unquantized"]),
    "conv_weights_not_binary": (_float_weights, "Conv_0", ["not binary", "conv0_w"]),
    "bias_varies_per_pixel": (_pixel_bias, "odd_add", ["pixel"]),
    "second_pool_same_layer": (_second_pool, "odd_pool", ["second time", "Conv_0"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_conv_graphs_name_the_node(case: str, tmp_path: Path) -> None:
    mutate, node_name, words = BAD[case]
    _, model = _base_model()
    mutate(model)
    onnx.checker.check_model(model, full_check=True)  # a valid graph, only unsupported
    path = tmp_path / "model.onnx"  # a neutral name: the words below must come from the message
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelError) as info:
        bnnhw.load(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    for word in ["model.onnx", repr(node_name), *words]:
        assert word in message, f"{word!r} not in: {message}"


def test_base_model_of_the_bad_cases_is_fine(tmp_path: Path) -> None:
    """The mutations above are what breaks the graphs: the unmutated one loads and agrees."""
    spec, _ = _base_model()
    check(spec, tmp_path, frames=100, calibrated=False)


def test_a_convolution_as_the_output_layer_is_refused_by_name(tmp_path: Path) -> None:
    """Scores must come from a dense layer; a graph ending in a Conv gets a one-line error."""
    from qonnx_graphs import QONNX_DOMAIN

    weight = np.where(np.random.default_rng(0).random((2, 1, 3, 3)) < 0.5, -1.0, 1.0)
    graph = helper.make_graph(
        [
            helper.make_node("BipolarQuant", ["x", "s"], ["b"], domain=QONNX_DOMAIN),
            helper.make_node("Conv", ["b", "w"], ["y"], name="last_conv", kernel_shape=[3, 3]),
        ],
        "conv_out",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2, 2, 2])],
        [
            numpy_helper.from_array(np.float32(1.0), "s"),
            numpy_helper.from_array(weight.astype(np.float32), "w"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)]
    )
    model.ir_version = 8
    path = tmp_path / "ends_in_conv.onnx"
    onnx.save(model, path)
    with pytest.raises(ModelError, match=r"ends_in_conv\.onnx: .*'last_conv'.*must be dense"):
        bnnhw.load(path)
