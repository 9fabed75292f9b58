"""Each pass alone. Threshold folding is proven against onnxruntime's BatchNormalization on
every reachable accumulator value, boundaries and ties included."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, helper

from bnnhw.errors import ModelError
from bnnhw.ir import ElementwiseOp, InputSpec, Layer, Network
from bnnhw.passes import absorb_scales, derive_output_map, fold_thresholds


def _net(layer: Layer, fan_in: int) -> Network:
    out = Layer("out", np.ones((2, layer.neurons), np.uint8), is_output=True)
    return Network("t", InputSpec(shape=(fan_in,), bits=1), [layer, out])


def _bn(gamma, beta, mean, var, eps) -> ElementwiseOp:
    f = lambda v: np.asarray(v, np.float32)  # noqa: E731
    return ElementwiseOp(
        "batchnorm",
        {"scale": f(gamma), "bias": f(beta), "mean": f(mean), "var": f(var), "epsilon": f(eps)},
    )


def _ort_batchnorm_decisions(acc: np.ndarray, gamma, beta, mean, var, eps) -> np.ndarray:
    """BipolarQuant(BatchNormalization(acc)) >= 0 as onnxruntime computes it."""
    c = len(gamma)
    inits = [
        helper.make_tensor(n, TensorProto.FLOAT, [c], np.asarray(v, np.float32))
        for n, v in zip("gbmv", (gamma, beta, mean, var), strict=True)
    ]
    node = helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], epsilon=eps)
    graph = helper.make_graph(
        [node],
        "bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, c])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, c])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.repeat(acc.astype(np.float32)[:, None], c, axis=1)
    return session.run(None, {"x": x})[0] >= 0


def _decisions(layer: Layer, acc: np.ndarray) -> np.ndarray:
    a = acc[:, None]
    return np.where(layer.directions > 0, a >= layer.thresholds, a <= layer.thresholds)


FAN_IN = 15  # odd: bipolar accumulators are odd, so ties need odd means
special = st.sampled_from([0.0, -0.0, 1e-30, -1e-30, 1e30, np.inf, -np.inf])


@given(
    gamma=st.lists(
        st.one_of(st.floats(-4, 4, width=32), st.sampled_from([0.0, -1.0, 1e-20])),
        min_size=1,
        max_size=6,
    ),
    data=st.data(),
)
def test_fold_batchnorm_equals_onnxruntime_everywhere(gamma, data):
    c = len(gamma)
    draw = data.draw
    tie_means = st.integers(-FAN_IN, FAN_IN).map(lambda m: float(m | 1))  # reachable odd values
    mean = draw(
        st.lists(
            st.one_of(tie_means, st.floats(-40, 40, width=32), st.sampled_from([1e6, -1e6])),
            min_size=c,
            max_size=c,
        )
    )
    beta = draw(
        st.lists(st.one_of(st.just(0.0), st.floats(-5, 5, width=32)), min_size=c, max_size=c)
    )
    var = draw(
        st.lists(
            st.one_of(st.sampled_from([0.0, 1e-30, 1e-12]), st.floats(0, 100, width=32)),
            min_size=c,
            max_size=c,
        )
    )
    eps = draw(st.sampled_from([1e-5, 1e-3, 1e-12]))
    scale = draw(st.sampled_from([1.0, 0.5, 2.0]))
    weights = np.random.default_rng(c).integers(0, 2, (c, FAN_IN), dtype=np.uint8)
    layer = Layer(
        "fc",
        weights,
        acc_scale=np.full(c, scale, np.float32),
        post_ops=[_bn(gamma, beta, mean, var, eps)],
    )
    folded = fold_thresholds(absorb_scales(_net(layer, FAN_IN))).layers[0]
    acc = layer.acc_values()
    expected = _ort_batchnorm_decisions(acc * np.float32(scale), gamma, beta, mean, var, eps)
    assert np.array_equal(_decisions(folded, acc), expected)


@pytest.mark.parametrize("gamma, direction", [(1.5, 1), (-0.25, -1)])
def test_tie_at_threshold_goes_to_plus_one(gamma, direction):
    """BN output exactly 0 at acc == mean: BipolarQuant gives +1, so t == mean."""
    layer = Layer(
        "fc", np.ones((1, FAN_IN), np.uint8), post_ops=[_bn([gamma], [0.0], [5.0], [1.0], 0.0)]
    )
    folded = fold_thresholds(_net(layer, FAN_IN)).layers[0]
    assert folded.thresholds[0] == 5 and folded.directions[0] == direction


def test_zero_variance_and_out_of_range_thresholds():
    layer = Layer(
        "fc",
        np.ones((3, FAN_IN), np.uint8),
        post_ops=[_bn([1, 1, -1], [0, 0, 0], [3, 1e6, 1e6], [0, 1, 1], 1e-5)],
    )
    folded = fold_thresholds(_net(layer, FAN_IN)).layers[0]
    acc = layer.acc_values()
    d = _decisions(folded, acc)
    assert np.array_equal(d[:, 0], acc >= 3)
    assert not d[:, 1].any()  # mean far above the range: never +1
    assert d[:, 2].all()  # negative gamma, mean far above: always +1


def test_non_threshold_decision_is_refused():
    """1/acc - 0.75 >= 0 is true only for acc in {1} around zero: two steps."""
    layer = Layer(
        "fc",
        np.ones((1, 4), np.uint8),
        post_ops=[
            ElementwiseOp("rdiv", {"c": np.float32([1])}, "inv"),
            ElementwiseOp("sub", {"c": np.float32([0.75])}, "shift"),
        ],
    )
    layer.in_bits, layer.in_range = 2, (-2, 1)
    with pytest.raises(ModelError, match="not a threshold"):
        fold_thresholds(_net(layer, 4))


def test_absorb_scales_is_pure_and_skips_unit_scale():
    layer = Layer("fc", np.ones((2, 3), np.uint8), acc_scale=np.float32([0.5, 0.25]))
    net = _net(layer, 3)
    net.layers[1].acc_scale = np.float32([1, 1])
    out = absorb_scales(net)
    assert net.layers[0].acc_scale is not None and not net.layers[0].post_ops  # input untouched
    assert [op.kind for op in out.layers[0].post_ops] == ["mul"]
    assert out.layers[0].acc_scale is None and out.layers[1].post_ops == []


def _output_net(ops, neurons=4, fan_in=8) -> Network:
    layer = Layer("out", np.ones((neurons, fan_in), np.uint8), is_output=True, post_ops=ops)
    return Network("t", InputSpec(shape=(fan_in,), bits=1), [layer])


def _c(*values) -> dict:
    return {"c": np.float32(values)}


def _assert_argmax_preserved(net: Network, out: Layer) -> None:
    """For random accumulators: argmax of integer scores == argmax of float32 replay."""
    from bnnhw.ir.elementwise import apply_ops

    acc = np.random.default_rng(0).choice(out.acc_values(), (500, out.neurons))
    floats = apply_ops(net.layers[-1].post_ops, acc.astype(np.float32))
    assert np.array_equal(np.argmax(out.scores(acc), axis=1), np.argmax(floats, axis=1))
    np.testing.assert_allclose(out.out_scale * out.scores(acc) + out.out_bias, floats, rtol=1e-6)


@pytest.mark.parametrize(
    "ops, k, m",
    [
        ([ElementwiseOp("mul", _c(0.5)), ElementwiseOp("add", _c(3))], [1, 1, 1, 1], [0, 0, 0, 0]),
        ([ElementwiseOp("mul", _c(-0.25))], [-1, -1, -1, -1], [0, 0, 0, 0]),
        ([ElementwiseOp("mul", _c(1, 0.5, 2, 1))], [2, 1, 4, 2], [0, 0, 0, 0]),
        ([ElementwiseOp("add", _c(0, 0.5, -1, 0))], [2, 2, 2, 2], [0, 1, -2, 0]),
        ([ElementwiseOp("mul", _c(0)), ElementwiseOp("add", _c(7))], [0, 0, 0, 0], [0, 0, 0, 0]),
    ],
    ids=["common", "negative", "per-class-pow2-scale", "per-class-bias", "constant"],
)
def test_output_map_integer_scores(ops, k, m):
    net = _output_net(ops)
    out = derive_output_map(net).layers[0]
    assert out.score_mul.tolist() == k and out.score_add.tolist() == m
    assert not out.post_ops
    _assert_argmax_preserved(net, out)


@pytest.mark.parametrize(
    "ops, message",
    [
        ([ElementwiseOp("mul", _c(0.1234567, 0.7654321, 1, 1))], "cannot reproduce exactly"),
        ([ElementwiseOp("mul", _c(2.0**-30)), ElementwiseOp("add", _c(1))], "merges scores"),
        ([ElementwiseOp("rdiv", _c(1))], "not affine"),
    ],
)
def test_output_map_refuses_what_integers_cannot_reproduce(ops, message):
    with pytest.raises(ModelError, match=message):
        derive_output_map(_output_net(ops))
