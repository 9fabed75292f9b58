"""Golden model throughput vs a float32 NumPy evaluation of the same graph.

The float32 evaluation is the graph as the ONNX file computes it: dequantized inputs,
float +-1 weight matrices through BLAS, the float post-ops (BatchNorm, scales) and a sign
per layer. The golden model computes the same classes with bit-packed integers.

    .venv/bin/python bench/golden.py [--frames 10000] [--repeat 3] [models/*.onnx ...]

Prints one row per model: frames/s of each and the speed-up. Both see the same frames
(random MNIST/digits-shaped data) and the script checks they agree on every class.
"""

from __future__ import annotations

import argparse
import glob
import time
from pathlib import Path

import numpy as np

import bnnhw
from bnnhw import golden
from bnnhw.frontend import import_onnx
from bnnhw.golden.encode import encode_inputs
from bnnhw.ir import Network
from bnnhw.ir.elementwise import apply_ops
from bnnhw.passes import absorb_scales


class FloatGraph:
    """The unfolded IR evaluated in float32, as the ONNX graph does it."""

    def __init__(self, net: Network) -> None:
        self.net = absorb_scales(net)
        self.weights = [
            np.where(layer.weights > 0, 1, -1).astype(np.float32).T for layer in self.net.layers
        ]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        spec = self.net.input
        codes = encode_inputs(spec, x).astype(np.float32)
        value = 2 * codes - 1 if spec.bits == 1 else codes
        for layer, weight in zip(self.net.layers, self.weights, strict=True):
            y = apply_ops(layer.post_ops, value @ weight)
            value = y if layer.is_output else np.where(y >= 0, 1, -1).astype(np.float32)
        return np.argmax(value, axis=1)


def best_rate(fn, x: np.ndarray, repeat: int) -> float:
    best = min(_timed(fn, x) for _ in range(repeat))
    return len(x) / best


def _timed(fn, x: np.ndarray) -> float:
    start = time.perf_counter()
    fn(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="default: models/*_classic.onnx")
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    models = args.models or sorted(glob.glob(str(root / "models" / "*_classic.onnx")))
    rng = np.random.default_rng(0)
    print(f"{'model':<28} {'layers':<22} {'golden f/s':>12} {'float32 f/s':>12} {'speed-up':>9}")
    for path in models:
        net = bnnhw.load(path)
        reference = FloatGraph(import_onnx(path))
        x = rng.random((args.frames, *net.input.shape), dtype=np.float32)
        if not np.array_equal(golden.predict(net, x), reference(x)):
            raise SystemExit(f"{path}: golden and float32 evaluation disagree")
        fast = best_rate(lambda v, net=net: golden.predict(net, v), x, args.repeat)
        slow = best_rate(reference, x, args.repeat)
        widths = "-".join([str(net.input.size)] + [str(layer.neurons) for layer in net.layers])
        print(
            f"{Path(path).stem:<28} {widths:<22} {fast:>12,.0f} {slow:>12,.0f} {fast / slow:>8.2f}x"
        )


if __name__ == "__main__":
    main()
