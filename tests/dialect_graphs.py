"""Binary networks written as FINN-ONNX, plain torch-style ONNX and Larq/tf2onnx graphs.

One random ``NetSpec`` (integer accumulator thresholds, +-1 weight signs, an output
affine) is written by each dialect in its own words, with ``onnx.helper``:

* FINN:  ``Div 255 -> MultiThreshold(BIPOLAR)`` input, MatMul/Conv with +-1 weights annotated
  ``finn_datatype`` BIPOLAR, MultiThreshold per channel (or BatchNorm then a shared
  MultiThreshold at 0, before streamlining; or BINARY thresholds into
  XnorPopcountMatMul), ``Mul``/``Add`` and a TopK/ArgMax tail;
* plain: ``GreaterOrEqual/Cast/Mul/Sub``, ``Where(x >= 0, 1, -1)``, ``Sign`` and hardtanh
  clamps (Clip or a Where chain), BatchNorm folded into Gemm/Conv weights ``+-s`` and bias;
* Larq: ``Sign(Sign(x) + 0.1)``, +-1 weights, BatchNorm as Mul + Add, an NHWC input and
  ``Transpose`` around convolutions, a trailing Softmax.

Each graph is its own reference (``execute_onnx``); nothing here computes the expected
result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FINN_DOMAIN = "qonnx.custom_op.general"
f32 = np.float32


@dataclass
class LayerSpec:
    signs: np.ndarray  # dense (out, in) or conv (out, in_ch, k, k), entries +-1
    thresholds: np.ndarray | None  # hidden: integer accumulator thresholds; None: last
    pads: int = 0
    pool: bool = False  # a 2x2 MaxPool after a conv's activation
    stride: int = 1

    @property
    def conv(self) -> bool:
        return self.signs.ndim == 4

    @property
    def fan_in(self) -> int:
        return int(np.prod(self.signs.shape[1:]))


@dataclass
class NetSpec:
    image: tuple[int, int] | None  # (h, w) of a one-channel input, or None: dense input
    width: int  # dense input width (image: h * w)
    layers: list[LayerSpec]
    out_mul: np.ndarray = field(default_factory=lambda: np.ones(1, f32))
    out_add: np.ndarray = field(default_factory=lambda: np.zeros(1, f32))
    input_threshold: float = 128.0  # pixel value (0..255) from which the input is +1

    @property
    def frame(self) -> tuple[int, ...]:
        return (1, *self.image) if self.image else (self.width,)


def random_spec(rng: np.random.Generator, conv: bool = False, image=(6, 6), width=12) -> NetSpec:
    """Small random network; thresholds land on reachable accumulators (ties happen)."""
    layers: list[LayerSpec] = []
    if conv:
        c, (h, w) = 1, image
        for i in range(int(rng.integers(1, 3))):
            k, pads = int(rng.integers(2, 4)), int(rng.integers(0, 2))
            k = min(k, min(h, w) + 2 * pads)
            out = int(rng.integers(2, 5))
            signs = rng.choice([-1.0, 1.0], size=(out, c, k, k)).astype(f32)
            pool = i == 0 and h + 2 * pads - k + 1 >= 4 and bool(rng.integers(0, 2))
            layers.append(LayerSpec(signs, _thresholds(rng, out, c * k * k), pads, pool))
            h, w, c = h + 2 * pads - k + 1, w + 2 * pads - k + 1, out
            if pool:
                h, w = h // 2, w // 2
        n_in = c * h * w
    else:
        n_in = width
    for _ in range(int(rng.integers(0, 3))):
        out = int(rng.integers(3, 10))
        layers.append(
            LayerSpec(rng.choice([-1.0, 1.0], (out, n_in)).astype(f32), _thresholds(rng, out, n_in))
        )
        n_in = out
    classes = int(rng.integers(2, 6))
    layers.append(LayerSpec(rng.choice([-1.0, 1.0], (classes, n_in)).astype(f32), None))
    mul = rng.choice([0.25, 0.5, 1.0, 2.0], classes).astype(f32)
    add = (rng.integers(-4, 5, classes) * 0.5).astype(f32)
    return NetSpec(
        image if conv else None,
        width if not conv else image[0] * image[1],
        layers,
        mul,
        add,
        float(rng.integers(60, 200)),
    )


def _thresholds(rng: np.random.Generator, out: int, fan_in: int) -> np.ndarray:
    t = rng.integers(-fan_in // 2, fan_in // 2 + 1, out).astype(f32)
    return t + f32(0.5) * rng.integers(0, 2, out) * (rng.random(out) < 0.3)


def random_pixels(spec: NetSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    """Pixels 0..255 as float32, with many exactly on the input threshold."""
    x = rng.integers(0, 256, (n, *spec.frame)).astype(f32)
    ties = rng.random(x.shape) < 0.2
    x[ties] = f32(spec.input_threshold)
    return x


class Writer:
    """Collects nodes, initializers and annotations; names are unique and readable."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.annotations: dict[str, str] = {}
        self.count: dict[str, int] = {}
        self.out_info: tuple[int, list[int]] = (TensorProto.FLOAT, [1, 1])
        self.shapes: dict[str, list[int]] = {}  # value_info, as FINN keeps for every tensor

    def const(self, value: object, hint: str = "c", dtype=f32) -> str:
        name = f"{hint}_{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], n_out: int = 1, domain: str = "", **attrs) -> str:
        index = self.count.get(op, 0)
        self.count[op] = index + 1
        name = f"{op}_{index}"
        outs = [f"{name}_out{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, domain=domain, **attrs))
        return outs[0] if n_out == 1 else outs

    def model(
        self, x_shape: list, out: str, producer: str = "", opset: int = 13
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "net",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
            [helper.make_tensor_value_info(out, *self.out_info)],
            self.inits,
            value_info=[
                helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
                for name, shape in self.shapes.items()
            ],
        )
        for tensor, dt in self.annotations.items():
            ann = onnx.TensorAnnotation(tensor_name=tensor)
            ann.quant_parameter_tensor_names.add(key="finn_datatype", value=dt)
            graph.quantization_annotation.append(ann)
        opsets = [helper.make_opsetid("", opset), helper.make_opsetid(FINN_DOMAIN, 1)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name=producer)
        model.ir_version = 8
        return model


def _layer(g: Writer, t: str, layer: LayerSpec, weights: np.ndarray, bias=None) -> str:
    if layer.conv:
        inputs = [t, g.const(weights, "W")] + ([g.const(bias, "b")] if bias is not None else [])
        return g.node("Conv", inputs, pads=[layer.pads] * 4, strides=[layer.stride] * 2)
    if bias is not None:
        return g.node("Gemm", [t, g.const(weights, "W"), g.const(bias, "b")], transB=1)
    return g.node("MatMul", [t, g.const(weights.T, "W")])


def _flatten_if_needed(g: Writer, t: str, prev: LayerSpec | None, layer: LayerSpec) -> str:
    return (
        g.node("Flatten", [t], axis=1) if not layer.conv and prev is not None and prev.conv else t
    )


def _channel(v: np.ndarray, layer: LayerSpec) -> np.ndarray:
    return v.reshape(1, -1, 1, 1) if layer.conv else v.reshape(1, -1)


def _tail(g: Writer, t: str, spec: NetSpec, tail: str) -> str:
    t = g.node("Mul", [t, g.const(spec.out_mul.reshape(1, -1), "out_mul")])
    t = g.node("Add", [t, g.const(spec.out_add.reshape(1, -1), "out_add")])
    classes = len(spec.layers[-1].signs)
    g.out_info = (
        (TensorProto.INT64, [1, 1])
        if tail in ("topk", "argmax")
        else (TensorProto.FLOAT, [1, classes])
    )
    if tail == "topk":
        return g.node("TopK", [t, g.const([1], "k", np.int64)], n_out=2, axis=-1)[1]
    if tail == "argmax":
        return g.node("ArgMax", [t], axis=1, keepdims=1)
    if tail == "softmax":
        return g.node("Softmax", [t], axis=-1)
    return t


def _pool(g: Writer, t: str, layer: LayerSpec) -> str:
    return g.node("MaxPool", [t], kernel_shape=[2, 2], strides=[2, 2]) if layer.pool else t


def _lowered_conv(g: Writer, t: str, layer: LayerSpec, hw: tuple[int, int]) -> str:
    """A Conv as qonnx's LowerConvsToMatMul writes it: Transpose to NHWC, Im2Col, MatMul
    (the result stays NHWC). Im2Col's executor reads its input's ``finn_datatype``; a
    padded one must allow the pad value 0, so a padded input is annotated INT2."""
    out, c, k, _ = layer.signs.shape
    t = g.node("Transpose", [t], perm=[0, 2, 3, 1])
    g.annotations[t] = "INT2" if layer.pads else "BIPOLAR"
    if k > 1 or layer.pads or layer.stride > 1:
        t = g.node(
            "Im2Col",
            [t],
            domain=FINN_DOMAIN,
            kernel_size=[k, k],
            stride=[layer.stride] * 2,
            pad_amount=[layer.pads] * 4,
            input_shape=f"(1,{hw[0]},{hw[1]},{c})",
        )
    w = layer.signs.transpose(0, 2, 3, 1).reshape(out, -1).T
    t = g.node("MatMul", [t, g.const(w, "W")])
    g.annotations[g.nodes[-1].input[1]] = "BIPOLAR"
    return t


def _remove_consecutive_transposes(g: Writer) -> None:
    """FINN's RemoveConsecutiveTransposes: NHWC -> NCHW -> NHWC between two lowered layers
    is dropped, so an Im2Col reads the NHWC thresholds or pool directly."""
    for back in [n for n in g.nodes if n.op_type == "Transpose"]:
        users = [n for n in g.nodes if back.output[0] in n.input]
        if list(back.attribute[0].ints) != [0, 3, 1, 2] or len(users) != 1:
            continue
        again = users[0]
        if again.op_type != "Transpose" or list(again.attribute[0].ints) != [0, 2, 3, 1]:
            continue
        for n in g.nodes:  # readers of the second Transpose read the NHWC source
            n.input[:] = [back.input[0] if i == again.output[0] else i for i in n.input]
        if again.output[0] in g.annotations:
            g.annotations[back.input[0]] = g.annotations.pop(again.output[0])
        g.nodes = [n for n in g.nodes if n is not back and n is not again]


def finn_graph(
    spec: NetSpec,
    form: str = "streamlined",
    tail: str = "topk",
    nhwc: bool = False,
    lowered: bool = False,
) -> onnx.ModelProto:
    """``form``: streamlined (thresholds per channel), batchnorm (before streamlining) or
    xnor (BINARY thresholds into XnorPopcountMatMul, for dense networks). ``lowered``:
    convolutions as Im2Col + MatMul in NHWC (FINN's LowerConvsToMatMul); with ``nhwc`` the
    thresholds then stay NHWC (AbsorbTransposeIntoMultiThreshold) and pools are
    MaxPoolNHWC (MakeMaxPoolNHWC), else a Transpose back to NCHW follows each MatMul."""
    g = Writer()
    hw = spec.image
    t = g.node("Div", ["x", g.const(255.0, "div")])
    t_in = f32(spec.input_threshold) / f32(255)
    t = g.node(
        "MultiThreshold",
        [t, g.const([[t_in]], "t_in")],
        domain=FINN_DOMAIN,
        out_dtype="BIPOLAR",
        out_scale=2.0,
        out_bias=-1.0,
    )
    binary_in, prev = False, None
    for i, layer in enumerate(spec.layers):
        t = _flatten_if_needed(g, t, prev, layer)
        in_nhwc = False
        if binary_in:
            w01 = g.const((layer.signs.T + 1) / 2, "W01")
            g.annotations[w01] = "BINARY"
            t = g.node("XnorPopcountMatMul", [t, w01], domain=FINN_DOMAIN)
        elif lowered and layer.conv:
            t = _lowered_conv(g, t, layer, hw)
            k = layer.signs.shape[-1]
            hw = tuple((d + 2 * layer.pads - k) // layer.stride + 1 for d in hw)
            in_nhwc = nhwc and form != "batchnorm"
            if not in_nhwc:
                t = g.node("Transpose", [t], perm=[0, 3, 1, 2])
        else:
            t = _layer(g, t, layer, layer.signs)
            g.annotations[g.nodes[-1].input[1]] = "BIPOLAR"
        if layer.thresholds is None:
            if lowered and nhwc:
                _remove_consecutive_transposes(g)
            return g.model([1, *spec.frame], _tail(g, t, spec, tail))
        th = layer.thresholds
        xnor = form == "xnor" and not layer.conv and i + 1 < len(spec.layers)
        if binary_in:  # popcount P = (acc + K) / 2
            th = (th + layer.fan_in) / 2
        if form == "batchnorm":
            c = len(th)
            t = g.node(
                "BatchNormalization",
                [
                    t,
                    g.const(np.ones(c), "g"),
                    g.const(np.zeros(c), "b"),
                    g.const(th, "mean"),
                    g.const(np.ones(c), "var"),
                ],
                epsilon=0.0,
            )
            th = np.zeros(1, f32)
        attrs = (
            dict(out_dtype="BINARY")
            if xnor
            else dict(out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0)
        )
        if nhwc and layer.conv:  # FINN's thresholds on an NHWC map, between Transposes
            if not in_nhwc:
                t = g.node("Transpose", [t], perm=[0, 2, 3, 1])
            attrs["data_layout"] = "NHWC"
        t = g.node(
            "MultiThreshold", [t, g.const(th.reshape(-1, 1), "T")], domain=FINN_DOMAIN, **attrs
        )
        pooled = False
        if nhwc and layer.conv:
            if lowered and layer.pool:  # MakeMaxPoolNHWC: the pool stays NHWC too
                # qonnx infers MaxPoolNHWC's shape only from its input's known shape
                g.shapes[t] = [1, *hw, len(layer.signs)]
                t = g.node(
                    "MaxPoolNHWC",
                    [t],
                    domain=FINN_DOMAIN,
                    kernel_shape=[2, 2],
                    strides=[2, 2],
                    pads=[0, 0, 0, 0],
                )
                pooled = True
            t = g.node("Transpose", [t], perm=[0, 3, 1, 2])
        if not pooled:
            t = _pool(g, t, layer)
        if layer.pool and hw:
            hw = (hw[0] // 2, hw[1] // 2)
        binary_in, prev = xnor, layer
    raise AssertionError("no last layer")


SIGNS = ("ge", "where", "sign", "gt_clip")


def plain_graph(
    spec: NetSpec, sign: str = "ge", scales=None, tail: str = "none", bn: bool = False
) -> onnx.ModelProto:
    """torch.onnx.export style: BN folded into ``+-s`` weights and a bias per neuron
    (``bn``: a BatchNormalization node after a bias-free layer instead)."""
    g = Writer()
    t = g.node("Div", ["x", g.const(255.0, "div")])
    t = g.node("Sub", [t, g.const(f32(spec.input_threshold) / f32(255), "mid")])
    t = _plain_sign(g, t, "ge")
    prev = None
    for i, layer in enumerate(spec.layers):
        t = _flatten_if_needed(g, t, prev, layer)
        n = len(layer.signs)
        s = np.full(n, 0.5, f32) if scales is None else scales[i]
        w = layer.signs * s.reshape(-1, *([1] * (layer.signs.ndim - 1)))
        if layer.thresholds is None:
            t = _layer(g, t, layer, w, np.zeros(n, f32))
            return g.model([1, *spec.frame], _tail(g, t, spec, tail))
        th = layer.thresholds
        if sign == "sign":  # a half-integer threshold: Sign never sees 0
            th = (np.floor(th) + f32(0.5)).astype(f32)
        if bn:
            c, ones = len(th), np.ones(len(th), f32)
            mean, gamma = (th * s).astype(f32), np.where(np.arange(c) % 2, 1.5, -0.75)
            stats = [g.const(v, k) for v, k in ((gamma, "g"), (0 * ones, "b"), (mean, "m"))]
            t = _layer(g, t, layer, w)
            t = g.node("BatchNormalization", [t, *stats, g.const(ones, "v")], epsilon=0.0)
        else:
            t = _layer(g, t, layer, w, (-th * s).astype(f32))
        t = _plain_sign(g, t, sign)
        t = _pool(g, t, layer)
        prev = layer
    raise AssertionError("no last layer")


def _plain_sign(g: Writer, t: str, sign: str) -> str:
    zero = g.const(0.0, "zero")
    if sign == "ge":
        t = g.node("Cast", [g.node("GreaterOrEqual", [t, zero])], to=TensorProto.FLOAT)
        return g.node("Sub", [g.node("Mul", [t, g.const(2.0, "two")]), g.const(1.0, "one")])
    if sign == "where":
        return g.node(
            "Where", [g.node("GreaterOrEqual", [t, zero]), g.const(1.0, "one"), g.const(-1.0, "m1")]
        )
    if sign == "sign":
        return g.node("Sign", [g.node("Clip", [t, g.const(-1.0, "lo"), g.const(1.0, "hi")])])
    # hardtanh as a Where chain, then x > 0 written as Less(0, x) into Where(-1 / +1)
    hi = g.node("Where", [g.node("Greater", [t, g.const(1.0, "hi")]), g.const(1.0, "hi"), t])
    lo = g.node("Where", [g.node("Less", [hi, g.const(-1.0, "lo")]), g.const(-1.0, "lo"), hi])
    return g.node("Where", [g.node("Less", [lo, zero]), g.const(-1.0, "m1"), g.const(1.0, "one")])


def larq_graph(
    spec: NetSpec, tail: str = "softmax", flip: bool = True, wrap: bool = False
) -> onnx.ModelProto:
    """tf2onnx style: NHWC input, Sign(Sign(x) + 0.1), BN as Mul + Add, NHWC flatten.

    ``wrap``: as tf2onnx writes it before its transpose optimizer, maps stay NHWC and every
    Conv and MaxPool sits between Transposes to NCHW and back."""
    g = Writer()
    t = g.node("Div", ["x", g.const(255.0, "div")])
    t = g.node("Sub", [t, g.const(f32(spec.input_threshold) / f32(255), "mid")])
    if spec.image and not wrap:
        t = g.node("Transpose", [t], perm=[0, 3, 1, 2])  # NHWC (one channel) to NCHW
    t = _sign_sign(g, t)
    prev = None
    for layer in spec.layers:
        if not layer.conv and prev is not None and prev.conv:
            if not wrap:
                t = g.node("Transpose", [t], perm=[0, 2, 3, 1])
            t = g.node("Reshape", [t, g.const([1, -1], "flat", np.int64)])
        if wrap and layer.conv:
            t = g.node("Transpose", [t], perm=[0, 3, 1, 2])
        t = _layer(g, t, layer, layer.signs)
        if layer.thresholds is None:
            return g.model(
                [1, *spec.frame[1:], 1] if spec.image else [1, spec.width],
                _tail(g, t, spec, tail),
                producer="tf2onnx",
            )
        gamma = np.where((np.arange(len(layer.thresholds)) % 3 == 2) & flip, -0.5, 0.25)
        gamma, beta = gamma.astype(f32), (-gamma * layer.thresholds).astype(f32)
        if wrap and layer.conv:
            t = g.node("Transpose", [t], perm=[0, 2, 3, 1])
            gamma, beta = gamma.reshape(1, 1, 1, -1), beta.reshape(1, 1, 1, -1)
        else:
            gamma, beta = _channel(gamma, layer), _channel(beta, layer)
        t = g.node("Mul", [t, g.const(gamma, "bn_mul")])
        t = _sign_sign(g, g.node("Add", [t, g.const(beta, "bn_add")]))
        if wrap and layer.pool:
            t = g.node("Transpose", [t], perm=[0, 3, 1, 2])
            t = g.node("Transpose", [_pool(g, t, layer)], perm=[0, 2, 3, 1])
        else:
            t = _pool(g, t, layer)
        prev = layer
    raise AssertionError("no last layer")


def _sign_sign(g: Writer, t: str, shift: float = 0.1) -> str:
    return g.node("Sign", [g.node("Add", [g.node("Sign", [t]), g.const(shift, "shift")])])


def nhwc(spec: NetSpec, x: np.ndarray) -> np.ndarray:
    """Frames (N, 1, h, w) as the Larq graph's NHWC input."""
    return x.transpose(0, 2, 3, 1) if spec.image else x


def digits_spec(seed: int, conv: bool = False) -> NetSpec:
    """A network on 8x8 digits (input threshold at pixel 8/16, i.e. 127.5 of 255)."""
    rng = np.random.default_rng(seed)
    spec = random_spec(rng, conv=conv, image=(8, 8), width=64)
    if not conv:
        spec.layers = [
            LayerSpec(rng.choice([-1.0, 1.0], (24, 64)).astype(f32), _thresholds(rng, 24, 64)),
            LayerSpec(rng.choice([-1.0, 1.0], (10, 24)).astype(f32), None),
        ]
        spec.out_mul, spec.out_add = np.full(10, 0.5, f32), np.zeros(10, f32)
    spec.input_threshold = 127.5
    return spec


def digits_frames(spec: NetSpec, rng: np.random.Generator, extra: int = 300) -> np.ndarray:
    """All 1,797 digits as pixels 0..255 (exact multiples of 255/16), plus random frames."""
    from bnnhw.datasets import load_digits_split

    x_train, _, x_test, _ = load_digits_split()
    images = np.concatenate([x_train, x_test]) * f32(255)
    images = images.reshape(len(images), *spec.frame)
    return np.concatenate([images, random_pixels(spec, rng, extra)]).astype(f32)


def spec_from_network(net) -> NetSpec:
    """The NetSpec of an imported network (weights, thresholds, pools), so the other
    dialects can write the very same network: the same integer IR, the same Verilog.

    Only what the writers can say: an 8x8 one-channel image binarized at pixel 127.5,
    thresholds ``acc >= t`` (direction +1), 2x2 OR pools, unpadded convolutions and an
    output layer with score = acc."""
    layers, conv_map = [], None
    for layer in net.layers:
        signs = 2.0 * layer.weights.astype(f32) - 1.0
        if layer.window is not None:
            win = layer.window
            assert win.pads == (0, 0, 0, 0) and win.stride == (1, 1)
            ky, kx = win.kernel
            signs = signs.reshape(-1, ky, kx, win.channels).transpose(0, 3, 1, 2)
        elif conv_map is not None:  # stream (HWC) columns back to the graph's CHW flatten
            c, h, w = conv_map
            signs = signs.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(len(signs), -1)
            conv_map = None
        pool = layer.pool is not None
        assert not pool or (layer.pool.kernel == (2, 2) and not np.any(layer.pool_and))
        if layer.is_output:
            assert np.all(layer.score_mul == 1) and np.all(layer.score_add == 0)
            layers.append(LayerSpec(signs.astype(f32), None))
        else:
            assert np.all(layer.directions == 1)
            layers.append(LayerSpec(signs.astype(f32), layer.thresholds.astype(f32), 0, pool))
        if layer.window is not None:
            conv_map = layer.out_map
    classes = len(layers[-1].signs)
    return NetSpec(
        (8, 8), 64, layers, np.ones(classes, f32), np.zeros(classes, f32), input_threshold=127.5
    )
