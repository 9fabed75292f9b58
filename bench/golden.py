"""Golden model throughput vs a float32 NumPy evaluation of the same graph.

The float32 evaluation is the graph as the ONNX file computes it: dequantized inputs,
float +-1 weight matrices through BLAS, the float post-ops (BatchNorm, scales) and a sign
per layer. The golden model computes the same classes with bit-packed integers.

    .venv/bin/python bench/golden.py [--frames 10000] [--repeat 3] [models/*.onnx ...]
    .venv/bin/python bench/golden.py --smoke   # one MLP and one CNN, 50 frames (CI)

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
from bnnhw.golden.window import windows
from bnnhw.ir import Layer, Network, Window
from bnnhw.ir.elementwise import apply_ops
from bnnhw.passes import absorb_scales

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ["digits_w1a1_in1_classic", "cnv_digits_pad_w1a1_in8_classic"]


class FloatGraph:
    """The unfolded IR evaluated in float32, as the ONNX graph does it.

    A convolution is a float product over every zero-padded window (im2col, maps in stream
    order); a max-pool takes the float max where the graph pools before the sign (a
    ``maxpool`` marker in the post-ops), else the max of the +-1 activations.
    """

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
            if layer.window is not None:  # (N, positions, elements) @ (elements, neurons)
                acc = (windows(value, layer.window) @ weight).reshape(len(value), -1)
            else:
                acc = value @ weight
            y = self._post_ops(layer, acc)
            if layer.is_output:
                value = y
                continue
            value = np.where(y >= 0, 1, -1).astype(np.float32)
            if layer.pool is not None and not _pool_marker(layer):
                value = _float_pool(value, layer.pool)
        return np.argmax(value, axis=1)

    @staticmethod
    def _post_ops(layer: Layer, acc: np.ndarray) -> np.ndarray:
        """The float ops on a (N, map in stream order) accumulator, pooling at the marker."""
        n, channels = len(acc), layer.neurons
        y = acc.reshape(n, -1, channels)  # per-channel parameters broadcast on the last axis
        at = _pool_marker(layer)
        if at is None:
            return apply_ops(layer.post_ops, y).reshape(n, -1)
        y = apply_ops(layer.post_ops[:at], y).reshape(n, -1)
        y = _float_pool(y, layer.pool).reshape(n, -1, channels)
        return apply_ops(layer.post_ops[at + 1 :], y).reshape(n, -1)


def _pool_marker(layer: Layer) -> int | None:
    """Index of the ``maxpool`` marker in the layer's post-ops, if the graph pools there."""
    return next((i for i, op in enumerate(layer.post_ops) if op.kind == "maxpool"), None)


def _float_pool(values: np.ndarray, pool: Window) -> np.ndarray:
    """Max over each pool window of a (N, H*W*C) float map in stream order."""
    n = len(values)
    taps = windows(values, pool).reshape(n, pool.positions, pool.taps, pool.channels)
    return taps.max(axis=2).reshape(n, -1)


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
    parser.add_argument("--smoke", action="store_true", help="a tiny run: " + ", ".join(SMOKE))
    args = parser.parse_args()
    if args.smoke:
        args.models = [str(ROOT / "models" / f"{stem}.onnx") for stem in SMOKE]
        args.frames, args.repeat = 50, 1
    models = args.models or sorted(glob.glob(str(ROOT / "models" / "*_classic.onnx")))
    rng = np.random.default_rng(0)
    print(f"{'model':<34} {'layers':<22} {'golden f/s':>12} {'float32 f/s':>12} {'speed-up':>9}")
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
            f"{Path(path).stem:<34} {widths:<22} {fast:>12,.0f} {slow:>12,.0f} {fast / slow:>8.2f}x"
        )


if __name__ == "__main__":
    main()
