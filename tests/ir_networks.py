"""Random folded IR networks and inputs for tests that bypass ONNX (golden, RTL)."""

from __future__ import annotations

import itertools

import numpy as np

from bnnhw.ir import InputSpec, Layer, Network


def random_network(
    rng: np.random.Generator, widths: list[int], spec: InputSpec, *, per_class_scores=False
) -> Network:
    """Random +-1 weights, thresholds around (and beyond) the reachable range, both directions."""
    layers = []
    for i, (fan_in, neurons) in enumerate(itertools.pairwise(widths)):
        last = i == len(widths) - 2
        layer = Layer(
            f"fc{i}",
            rng.integers(0, 2, (neurons, fan_in), dtype=np.uint8),
            in_bits=spec.bits if i == 0 else 1,
            in_range=spec.code_range if i == 0 else (-1, 1),
            is_output=last,
        )
        if last:
            layer.out_scale, layer.out_bias = np.ones(neurons), np.zeros(neurons)
            if per_class_scores:
                layer.score_mul = rng.integers(-3, 4, neurons)
                layer.score_add = rng.integers(-5, 6, neurons)
        else:
            lo, hi = layer.acc_bounds()
            layer.thresholds = rng.integers(lo - 2, hi + 3)
            layer.directions = rng.choice(np.int8([-1, 1]), neurons)
        layers.append(layer)
    return Network("r", spec, layers)


def random_frames(rng: np.random.Generator, spec: InputSpec, n: int) -> np.ndarray:
    """Float frames covering the whole code range of ``spec`` (bipolar: +-0.5)."""
    if spec.bits == 1:
        return (rng.integers(0, 2, (n, *spec.shape)) - 0.5).astype(np.float32)
    lo, hi = spec.code_range
    codes = rng.integers(lo, hi + 1, (n, *spec.shape))
    return (codes * spec.scale).astype(np.float32)
