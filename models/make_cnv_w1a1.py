"""Write FINN's CNV-w1a1 topology as a QONNX graph, with random binary weights and BatchNorm.

    3 x 32 x 32 8-bit input -> 64C3 -> 64C3 -> MP2 -> 128C3 -> 128C3 -> MP2 -> 256C3 -> 256C3
    -> FC 512 -> FC 512 -> FC 10                       (no padding: 32 -> 30 -> 28 -> 14 ...)

The graph is written the way Brevitas' ``export_qonnx`` writes a w1a1 network (the
bundled ``cnv_*`` models show it): an 8-bit ``Quant`` of the input, ``BipolarQuant`` of
each weight, ``Conv``/``MatMul`` then ``BatchNormalization`` then a ``BipolarQuant`` sign,
``MaxPool`` after the sign, ``Flatten`` before the dense layers, and a plain last layer.
The weights and BatchNorm statistics are random (seeded): the model measures hardware,
not accuracy. No torch is needed: ``python models/make_cnv_w1a1.py [-o FILE] [--seed N]``.
"""

from __future__ import annotations

import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QONNX = "qonnx.custom_op.general"
CONVS = [(3, 64), (64, 64), "pool", (64, 128), (128, 128), "pool", (128, 256), (256, 256)]
DENSE = [(256, 512), (512, 512), (512, 10)]  # 256 channels x 1 x 1 after the last conv


class Graph:
    """Nodes and initializers, with names made unique by a counter."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng, self.nodes, self.inits, self.count = rng, [], [], 0

    def name(self, what: str) -> str:
        self.count += 1
        return f"{what}_{self.count}"

    def const(self, what: str, value) -> str:
        name = self.name(what)
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], domain: str = "", **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], domain=domain, **attrs))
        return out

    def sign(self, x: str) -> str:
        return self.node("BipolarQuant", [x, self.const("act_scale", 1.0)], QONNX)

    def binary_weight(self, shape: tuple[int, ...]) -> str:
        w = self.const("weight", self.rng.standard_normal(shape))
        return self.node("BipolarQuant", [w, self.const("weight_scale", 1.0)], QONNX)

    def batch_norm(self, x: str, channels: int, fan_in: int) -> str:
        """Random statistics around the binary dot product's range (+-fan_in)."""
        spread = np.sqrt(fan_in)
        gamma = self.rng.uniform(0.5, 1.5, channels) * self.rng.choice([-1, 1], channels)
        params = [
            gamma,
            self.rng.uniform(-0.5, 0.5, channels),
            self.rng.uniform(-spread, spread, channels),
            self.rng.uniform(0.5, 2.0, channels) * fan_in,
        ]
        kinds = ("gamma", "beta", "mean", "var")
        names = [self.const(n, p) for n, p in zip(kinds, params, strict=True)]
        return self.node("BatchNormalization", [x, *names], epsilon=1e-5)


def cnv_w1a1(seed: int = 0) -> onnx.ModelProto:
    g = Graph(np.random.default_rng(seed))
    x = g.node(
        "Quant",
        ["image", g.const("in_scale", 2.0**-7), g.const("in_zero", 0.0), g.const("in_bits", 8)],
        QONNX,
        narrow=0,
        rounding_mode="ROUND",
        signed=1,
    )
    for stage in CONVS:
        if stage == "pool":
            x = g.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])
            continue
        c_in, c_out = stage
        w = g.binary_weight((c_out, c_in, 3, 3))
        x = g.node("Conv", [x, w], kernel_shape=[3, 3], pads=[0, 0, 0, 0], strides=[1, 1])
        x = g.sign(g.batch_norm(x, c_out, 9 * c_in))
    x = g.node("Flatten", [x], axis=1)
    for index, (f_in, f_out) in enumerate(DENSE):
        w = g.node("Transpose", [g.binary_weight((f_out, f_in))], perm=[1, 0])
        x = g.node("MatMul", [x, w])
        if index < len(DENSE) - 1:
            x = g.sign(g.batch_norm(x, f_out, f_in))
    graph = helper.make_graph(
        g.nodes,
        "cnv_w1a1",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 10])],
        g.inits,
    )
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid(QONNX, 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="bnnhw make_cnv_w1a1")
    onnx.checker.check_model(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", default="models/cnv_w1a1_random.onnx")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    onnx.save(cnv_w1a1(args.seed), args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
