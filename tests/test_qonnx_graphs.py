"""Checks of the test-graph builder itself (tests/qonnx_graphs.py), independent of bnnhw.

If the builder were wrong, every importer test built on it would test the wrong thing; these
tests pin it to qonnx's reference executor and to the exact float32 semantics of the ops.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as rt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from mlp_specs import binary_mlp_specs, edge_inputs, make_spec
from qonnx_graphs import (
    BatchNormSpec,
    LayerSpec,
    MLPSpec,
    batchnorm_f32,
    build_model,
    execute_reference,
    numpy_reference,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _seed_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@SETTINGS
@given(spec=binary_mlp_specs(), seed=st.integers(0, 2**31))
def test_random_graphs_are_valid_and_match_numpy(spec: MLPSpec, seed: int) -> None:
    """Every generated graph passes the checker and executes bit-exactly like its spec."""
    model = build_model(spec)
    onnx.checker.check_model(model, full_check=True)
    x = edge_inputs(spec, _seed_rng(seed), 24)
    out = execute_reference(model, x)
    assert out.dtype == np.float32
    assert out.shape == (24, spec.widths[-1])
    np.testing.assert_array_equal(out, numpy_reference(spec, x))


def _op_types(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def test_gemm_form_op_list() -> None:
    """The Gemm form is exactly what Brevitas' w1a1 export has, in order."""
    spec = make_spec([12, 8, 4], 0, bn_kinds=("generic",), last="tensornorm")
    assert _op_types(build_model(spec)) == [
        "Mul", "Sub", "BipolarQuant",
        "BipolarQuant", "Gemm", "BatchNormalization", "BipolarQuant",
        "BipolarQuant", "Gemm", "Sub", "Div", "Mul", "Add",
    ]  # fmt: skip
    model = build_model(spec)
    domains = {n.op_type: n.domain for n in model.graph.node}
    assert domains["BipolarQuant"] == "qonnx.custom_op.general"
    assert domains["Gemm"] == ""
    opsets = {o.domain: o.version for o in model.opset_import}
    assert opsets == {"": 13, "qonnx.custom_op.general": 1}


def test_matmul_image_int8_form_op_list() -> None:
    """The TorchScript form: Reshape, 8-bit Quant, BipolarQuant -> Transpose -> MatMul."""
    spec = make_spec(
        [20, 6, 3], 1, input_kind="int8", linear="matmul", image_shape=(4, 5),
        flatten="reshape", with_bias=True, bn_kinds=("tie",),
    )  # fmt: skip
    model = build_model(spec)
    assert _op_types(model) == [
        "Reshape", "Quant",
        "BipolarQuant", "Transpose", "MatMul", "Add", "BatchNormalization", "BipolarQuant",
        "BipolarQuant", "Transpose", "MatMul", "Add",
    ]  # fmt: skip
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 1, 4, 5]


@pytest.mark.parametrize("linear", ["gemm", "matmul"])
@pytest.mark.parametrize("input_kind", ["bipolar", "int8"])
def test_dynamo_style_executes_the_same(linear: str, input_kind: str) -> None:
    """Listing initializers as inputs and merging equal constants changes nothing numerically."""
    kw = dict(input_kind=input_kind, linear=linear, last="bn", with_bias=True)
    plain = make_spec([30, 17, 9, 5], 7, **kw)  # type: ignore[arg-type]
    dyn = make_spec([30, 17, 9, 5], 7, dynamo_style=True, **kw)  # type: ignore[arg-type]
    m_plain, m_dyn = build_model(plain), build_model(dyn)
    onnx.checker.check_model(m_dyn, full_check=True)
    init_names = {t.name for t in m_dyn.graph.initializer}
    assert init_names <= {i.name for i in m_dyn.graph.input}
    assert len(m_dyn.graph.initializer) < len(m_plain.graph.initializer)  # constants merged
    x = edge_inputs(plain, _seed_rng(3), 40)
    np.testing.assert_array_equal(execute_reference(m_plain, x), execute_reference(m_dyn, x))


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(linear="matmul", per_channel_scale=True, last="tensornorm"),
        dict(input_kind="int8", image_shape=(5, 6), flatten="reshape", dynamo_style=True),
        dict(linear="matmul", dynamo_style=True, with_bias=True, last="bn", batch="N",
             image_shape=(5, 6), flatten="reshape", flatten_first=False),
    ],
)  # fmt: skip
def test_cleanup_model_keeps_outputs(kw: dict[str, object]) -> None:
    """qonnx's cleanup_model (the usual first step) folds forms but not numbers."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    spec = make_spec([30, 11, 6], 5, **kw)  # type: ignore[arg-type]
    model = build_model(spec)
    cleaned = cleanup_model(ModelWrapper(model)).model
    onnx.checker.check_model(cleaned)
    assert "Transpose" not in _op_types(cleaned)  # folded into the weight initializer
    assert len(cleaned.graph.input) == 1  # static (initializer) inputs removed
    x = edge_inputs(spec, _seed_rng(2), 32)
    np.testing.assert_array_equal(execute_reference(cleaned, x), execute_reference(model, x))


def test_batch_rows_are_independent() -> None:
    """One batch of N rows gives the same as N single-row runs (the batch rewrite is sound)."""
    spec = make_spec([16, 9, 4], 11, image_shape=(4, 4), flatten="reshape", last="bn")
    model = build_model(spec)
    x = edge_inputs(spec, _seed_rng(4), 6)
    whole = execute_reference(model, x)
    rows = np.concatenate([execute_reference(model, x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_array_equal(whole, rows)


def test_symbolic_batch_graph_executes() -> None:
    """A graph whose batch dim is symbolic ('N') runs once the batch is fixed."""
    spec = make_spec([10, 5, 3], 12, batch="N")
    model = build_model(spec)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    x = edge_inputs(spec, _seed_rng(5), 9)
    np.testing.assert_array_equal(execute_reference(model, x), numpy_reference(spec, x))


def _single_layer(
    weight: list[list[float]], bn: BatchNormSpec | None = None, **kw: object
) -> MLPSpec:
    layer = LayerSpec(np.array(weight, np.float32), np.float32(1.0), bn=bn)
    return MLPSpec(layers=[layer], **kw)  # type: ignore[arg-type]


def test_bipolar_input_half_maps_to_plus_one() -> None:
    """2*0.5-1 = 0 and BipolarQuant(0) = +1; the float below 0.5 gives -1; -0.0 weight is +1."""
    spec = _single_layer([[1.0, 0.0, -0.0]])
    below = np.nextafter(np.float32(0.5), np.float32(0))
    x = np.array([[0.5, 0.5, 0.5], [below, 0.5, 0.5], [0.0, 1.0, 0.0]], np.float32)
    out = execute_reference(build_model(spec), x)
    np.testing.assert_array_equal(out[:, 0], [3.0, 1.0, -1.0])


def test_int8_input_rounds_half_to_even_and_clips() -> None:
    """Quant(x, 2^-7, 0, 8, signed, not narrow, ROUND): half-to-even, clip to [-128, 127]."""
    spec = _single_layer([[1.0]], input_kind="int8")
    x = np.array([[1 / 256], [3 / 256], [-1 / 256], [-3 / 256], [1.5], [-1.5], [1.0]], np.float32)
    out = execute_reference(build_model(spec), x)[:, 0] * 128
    np.testing.assert_array_equal(out, [0, 2, 0, -2, 127, -128, 127])


def test_bn_tie_gives_exact_zero_and_plus_one() -> None:
    """BN mean on a reachable accumulator with beta = 0 gives exactly 0, hence +1 downstream."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    bn = BatchNormSpec(
        gamma=np.array([-1.7], np.float32), beta=np.array([0.0], np.float32),
        mean=np.array([1.0], np.float32), var=np.array([0.3], np.float32), epsilon=1e-5,
    )  # fmt: skip
    hidden = LayerSpec(np.ones((1, 3), np.float32), np.float32(1.0), bn=bn, act_scale=0.5)
    last = LayerSpec(np.ones((2, 1), np.float32), np.float32(1.0))
    spec = MLPSpec(layers=[hidden, last], batch=2)
    model = ModelWrapper(build_model(spec)).transform(InferShapes())
    x = np.array([[1, 1, 0], [1, 1, 1]], np.float32)  # accumulators 1 (the tie) and 3
    ctx = execute_onnx(model, {"global_in": x}, return_full_exec_context=True)
    bn_out = next(n.output[0] for n in model.graph.node if n.op_type == "BatchNormalization")
    assert ctx[bn_out][0, 0] == 0.0 and not np.signbit(ctx[bn_out][0, 0])
    np.testing.assert_array_equal(ctx["global_out"], [[0.5, 0.5], [-0.5, -0.5]])


def _ort_batchnorm(x: np.ndarray, bn: BatchNormSpec, opset: int) -> np.ndarray:
    c = x.shape[1]
    node = helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"],
                            epsilon=bn.epsilon)  # fmt: skip
    inits = [
        numpy_helper.from_array(np.asarray(a, np.float32), n)
        for a, n in [(bn.gamma, "g"), (bn.beta, "b"), (bn.mean, "m"), (bn.var, "v")]
    ]
    graph = helper.make_graph(
        [node], "bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [x.shape[0], c])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    sess = rt.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.mark.parametrize("opset", [13, 15, 18])
def test_onnxruntime_batchnorm_is_scale_then_bias_in_float32(opset: int) -> None:
    """Pins the float32 formula the importer has to reproduce at thresholds (no FMA)."""
    rng = _seed_rng(9)
    c = 2048
    unit = (np.float32(2.0) ** rng.integers(-6, 6, size=c)).astype(np.float32)
    bn = BatchNormSpec(
        gamma=(rng.normal(size=c) * rng.choice([1e-3, 1, 1e3], size=c)).astype(np.float32),
        beta=rng.normal(size=c).astype(np.float32),
        mean=(rng.integers(-70, 71, size=c) * unit * rng.choice([1, 1.0001], size=c)).astype(
            np.float32
        ),
        var=(np.abs(rng.normal(size=c)) * rng.choice([0, 1e-9, 1, 1e3], size=c)).astype(np.float32),
        epsilon=1e-5,
    )
    x = (rng.integers(-70, 71, size=(64, c)) * unit).astype(np.float32)
    ort = _ort_batchnorm(x, bn, opset)
    np.testing.assert_array_equal(ort, batchnorm_f32(x, bn))
    # the textbook order of operations is *not* what runs: it differs in the last bits
    direct = (x - bn.mean) / np.sqrt(bn.var + np.float32(bn.epsilon)) * bn.gamma + bn.beta
    assert np.any(direct.astype(np.float32) != ort)
