"""Random folded IR networks with convolutions, for tests that bypass ONNX (golden, RTL).

A network is ``conv [-> conv ...] -> dense hidden -> dense output``; each conv has a
:class:`~bnnhw.ir.Window` (any kernel, stride and zero padding), random +-1 weight rows
in the window's ``(ky, kx, c)`` order, integer thresholds where the accumulator really
goes (plus neurons that always or never fire, and both directions), and an optional
binary max-pool whose channels pool with OR or AND.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnnhw.ir import InputSpec, Layer, Network, Window
from bnnhw.passes.folding import check_folding, divisors, simd_fits, upstream_pixels


@dataclass(frozen=True)
class ConvSpec:
    """One convolution: output channels, kernel, stride, pads (top, left, bottom, right).

    ``pool`` is (kernel, stride) of a max-pool over the layer's output, both (h, w);
    ``pool_and`` is ``"or"``, ``"and"`` or ``"mixed"`` (a random choice per channel).
    """

    neurons: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    pool: tuple[tuple[int, int], tuple[int, int]] | None = None
    pool_and: str = "or"


def conv_input(channels: int, height: int, width: int, bits: int = 1, signed: bool = True):
    """The input quantizer of an image (bipolar, or n-bit codes with scale 1)."""
    return InputSpec(
        shape=(channels, height, width),
        bits=bits,
        signed=bits > 1 and signed,
        channels_last=True,
    )


def set_thresholds(rng: np.random.Generator, layer: Layer) -> None:
    """Thresholds where random inputs put the accumulator, some beyond it; both directions.

    Most thresholds sit within a standard deviation or so of the accumulator's mean (the
    neuron's output then depends on the input); about a quarter sit on or beyond the
    reachable range (neurons that always or never fire, and the bounds themselves).
    """
    lo, hi = layer.acc_bounds()
    n = layer.neurons
    lo_code, hi_code = layer.in_range
    spread = np.sqrt(layer.fan_in) * (hi_code - lo_code) / 2
    t = np.rint((lo + hi) / 2 + rng.normal(0, 0.7, n) * spread).astype(np.int64)
    edges = np.stack([lo - 2, lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, hi + 2], axis=1)
    extreme = rng.random(n) < 0.25
    t = np.where(extreme, edges[np.arange(n), rng.integers(0, 8, n)], t)
    layer.thresholds = np.clip(t, lo - 2, hi + 2)
    layer.directions = rng.choice(np.int8([-1, 1]), n)


def conv_out_map(in_map: tuple[int, int, int], spec: ConvSpec) -> tuple[int, int, int]:
    """(channels, height, width) a conv of ``spec`` makes from ``in_map``, after its pool."""
    win = Window(*in_map, spec.kernel, spec.stride, spec.pads)
    pool = _pool_window(spec, spec.neurons, win.out_height, win.out_width)
    if pool is None:
        return spec.neurons, win.out_height, win.out_width
    return spec.neurons, pool.out_height, pool.out_width


def _pool_window(spec: ConvSpec, neurons: int, height: int, width: int) -> Window | None:
    if spec.pool is None:
        return None
    (ph, pw), (sh, sw) = spec.pool
    return Window(neurons, height, width, (min(ph, height), min(pw, width)), (sh, sw))


def conv_layer(
    rng: np.random.Generator,
    name: str,
    in_map: tuple[int, int, int],
    spec: ConvSpec,
    *,
    in_bits: int = 1,
    in_range: tuple[int, int] = (-1, 1),
) -> Layer:
    """A hidden convolution over ``in_map`` (C, H, W) with random weights and thresholds."""
    window = Window(*in_map, spec.kernel, spec.stride, spec.pads)
    layer = Layer(
        name,
        rng.integers(0, 2, (spec.neurons, window.elements), dtype=np.uint8),
        in_bits=in_bits,
        in_range=in_range,
        window=window,
    )
    layer.pool = _pool_window(spec, spec.neurons, window.out_height, window.out_width)
    if layer.pool is not None:
        choice = {"or": 0.0, "and": 1.0, "mixed": 0.5}[spec.pool_and]
        layer.pool_and = rng.random(spec.neurons) < choice
    set_thresholds(rng, layer)
    return layer


def dense_layer(
    rng: np.random.Generator,
    name: str,
    fan_in: int,
    neurons: int,
    *,
    is_output: bool = False,
    per_class_scores: bool = False,
) -> Layer:
    """A binary-input dense layer: hidden with thresholds, or the output with scores."""
    layer = Layer(name, rng.integers(0, 2, (neurons, fan_in), dtype=np.uint8), is_output=is_output)
    if not is_output:
        set_thresholds(rng, layer)
        return layer
    layer.out_scale, layer.out_bias = np.ones(neurons), np.zeros(neurons)
    if per_class_scores:
        layer.score_mul = rng.integers(-3, 4, neurons)
        layer.score_add = rng.integers(-5, 6, neurons)
    return layer


def random_conv_network(
    rng: np.random.Generator,
    spec: InputSpec,
    convs: list[ConvSpec],
    *,
    hidden: int = 8,
    classes: int = 4,
    per_class_scores: bool = False,
) -> Network:
    """``convs`` on the input image, then a dense hidden layer (if ``hidden``) and output."""
    layers: list[Layer] = []
    in_map = tuple(spec.shape)
    for i, conv in enumerate(convs):
        first = i == 0
        layer = conv_layer(
            rng,
            f"conv{i}",
            in_map,
            conv,
            in_bits=spec.bits if first else 1,
            in_range=spec.code_range if first else (-1, 1),
        )
        layers.append(layer)
        in_map = layer.out_map
    fan_in = int(np.prod(in_map))
    if hidden:
        layers.append(dense_layer(rng, "fc0", fan_in, hidden))
        fan_in = hidden
    layers.append(
        dense_layer(rng, "out", fan_in, classes, is_output=True, per_class_scores=per_class_scores)
    )
    net = Network("conv", spec, layers)
    net.validate()
    return net


def foldings(layer: Layer, pixel: int | None) -> list[tuple[int, int]]:
    """Every valid (PE, SIMD) of a layer receiving ``pixel``-channel pixels (or None)."""
    return [
        (pe, simd)
        for pe in divisors(layer.neurons)
        for simd in divisors(layer.fan_in)
        if simd_fits(simd, pixel)
    ]


def random_folding(
    rng: np.random.Generator,
    net: Network,
    *,
    max_cycles: int | None = None,
    max_lanes: int = 1024,
    max_word_bits: int = 2048,
) -> Network:
    """Random valid PE/SIMD per layer (in place); ``check_folding`` must accept it.

    With ``max_cycles`` a layer takes a random folding among those no slower than that
    (or its fastest one if none is), so simulation time stays bounded. ``max_lanes`` caps
    PE x SIMD, which the simulator pays for every cycle, and ``max_word_bits`` the SIMD
    word (SIMD x input bits, 2 for ternary): Amaranth's Python simulator cannot compile a
    memory write port much wider than ~2700 bits (RecursionError).
    """
    for layer, pixel in zip(net.layers, upstream_pixels(net), strict=True):
        bits = layer.code_bits
        valid = foldings(layer, pixel)
        options = [f for f in valid if f[0] * f[1] <= max_lanes and f[1] * bits <= max_word_bits]
        options = options or [min(valid, key=lambda f: f[0] * f[1])]
        fast = [f for f in options if max_cycles is None or layer.cycles_at(*f) <= max_cycles]
        if not fast:
            fast = [min(options, key=lambda f: (layer.cycles_at(*f), f[0] * f[1]))]
        layer.pe, layer.simd = (int(v) for v in fast[rng.integers(len(fast))])
    check_folding(net)
    return net


def walk_cycles(net: Network) -> int:
    """The slowest window or pool walk of the network (at least 1)."""
    return max(1, *(layer.walk_cycles for layer in net.layers))
