"""The bnnhw intermediate representation: a chain of binary layers.

Plain dataclasses and NumPy arrays, nothing from ONNX or Amaranth, so every later stage
(passes, golden model, RTL generator, simulators) reads one description of the network.

Conventions
-----------
* A binary value ``+1`` is stored as bit 1, ``-1`` as bit 0.
* A layer's accumulator is ``acc[j] = sum_i w[j, i] * x[i]`` with ``w`` in {-1, +1} and ``x``
  the layer's input codes: {-1, +1} for a 1-bit input, integers for an n-bit input.
* A hidden layer emits bit 1 where ``acc >= t`` (direction +1) or ``acc <= t`` (direction -1).
* Feature maps stream pixel by pixel, rows then columns, with a pixel's channels together
  ("HWC" or stream order). A convolution is a :class:`Window` over its input map followed
  by the layer's matrix product; a window's elements are in ``(ky, kx, c)`` order, ``c``
  fastest (im2col order). Zero padding is the graph's value 0: for a binary input that is
  neither +1 nor -1, so a padded binary convolution takes ternary codes -1/0/+1.
* A layer's optional max-pool is a :class:`Window` over its output bits; each channel
  pools with OR (the max of +-1 values) or, where the graph's arithmetic after the pool is
  decreasing, with AND.
* The output layer emits integer scores ``score_mul * acc + score_add`` (per class; 1 and 0
  unless the graph's classes have different scales or biases); ``out_scale * score +
  out_bias`` maps them back to the float outputs of the source graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

OpKind = Literal["mul", "add", "sub", "rsub", "div", "rdiv", "batchnorm", "maxpool"]


@dataclass
class ElementwiseOp:
    """One float32 operation of the source graph, applied element by element.

    ``params`` holds float32 arrays broadcastable to the tensor the op applies to:
    ``{"c": ...}`` for the arithmetic kinds (``sub`` is ``x - c``, ``rsub`` is ``c - x``,
    ``rdiv`` is ``c / x``) and ``{"scale", "bias", "mean", "var", "epsilon"}`` for
    ``batchnorm``. ``maxpool`` marks where the graph max-pools a layer's output before
    its sign: element by element it is the identity. ``source`` names the ONNX node, so
    errors can point at it.
    """

    kind: OpKind
    params: dict[str, np.ndarray]
    source: str = ""


@dataclass(frozen=True)
class Window:
    """A sliding window over a ``channels x height x width`` map streamed in HWC order.

    ``pads`` are (top, left, bottom, right) rows/columns of zeros around the map, as ONNX's
    ``pads`` (begin, begin, end, end). Windows go out rows then columns of their
    top-left corner, ``stride`` apart; a window's elements are ``(ky, kx, c)``, ``c``
    fastest.
    """

    channels: int
    height: int
    width: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)

    def __post_init__(self) -> None:
        kh, kw = self.kernel
        if min(self.channels, self.height, self.width, kh, kw, *self.stride) < 1:
            raise ValueError(f"window {self}: sizes, kernel and stride must be >= 1")
        if min(self.pads) < 0 or self.out_height < 1 or self.out_width < 1:
            raise ValueError(f"window {self}: the kernel does not fit the padded map")

    @property
    def padded_height(self) -> int:
        return self.height + self.pads[0] + self.pads[2]

    @property
    def padded_width(self) -> int:
        return self.width + self.pads[1] + self.pads[3]

    @property
    def out_height(self) -> int:
        return (self.padded_height - self.kernel[0]) // self.stride[0] + 1

    @property
    def out_width(self) -> int:
        return (self.padded_width - self.kernel[1]) // self.stride[1] + 1

    @property
    def positions(self) -> int:
        """Windows per frame."""
        return self.out_height * self.out_width

    @property
    def walk_cycles(self) -> int:
        """Cycles to walk the padded map: its generator takes one position per cycle."""
        return self.padded_height * self.padded_width

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]

    @property
    def elements(self) -> int:
        """Elements in one window: kernel height x kernel width x channels."""
        return self.taps * self.channels

    @property
    def in_size(self) -> int:
        return self.channels * self.height * self.width

    @property
    def padded(self) -> bool:
        return any(self.pads)


@dataclass
class InputSpec:
    """How the graph's float input becomes the codes the first layer consumes.

    ``preprocess`` is float32 arithmetic done on the host exactly as the graph does it
    (for example the ``2x - 1`` of FINN's TFC). Then a quantizer: ``bits == 1`` is
    bipolar (+1 where the value is >= 0), otherwise an integer quantizer
    ``clip(value / scale + 0, lo, hi)`` rounded with ``rounding``.
    """

    shape: tuple[int, ...]
    bits: int
    signed: bool = True
    narrow: bool = False
    scale: float = 1.0
    rounding: str = "ROUND"
    preprocess: list[ElementwiseOp] = field(default_factory=list)
    source: str = ""
    # channels of the (C, H, W) map the first convolution reads: the host streams it in HWC
    # order (from the graph's flat order, whatever the input's own shape); 0: graph order
    channels_last: int = 0

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def code_range(self) -> tuple[int, int]:
        """Smallest and largest input code; (-1, 1) for a bipolar input."""
        if self.bits == 1:
            return -1, 1
        if self.signed:
            lo = -(2 ** (self.bits - 1)) + (1 if self.narrow else 0)
            return lo, 2 ** (self.bits - 1) - 1
        return 0, 2**self.bits - 1 - (1 if self.narrow else 0)


@dataclass
class Layer:
    """One binary layer: a matrix product over a dense input or, with a ``window``, over
    each position of a convolution's sliding window, then an optional max-pool.

    The importer fills ``weights``, ``acc_scale`` and ``post_ops`` (the graph's float math
    between the matrix product and the sign or the output); the passes turn them into
    integer ``thresholds``/``directions`` (hidden layers) or integer scores and their map
    back to floats (output layer), and clear ``post_ops``.
    """

    name: str
    weights: np.ndarray  # uint8 (neurons, fan_in), 1 = +1
    in_bits: int = 1
    in_range: tuple[int, int] = (-1, 1)  # smallest/largest input code
    is_output: bool = False
    acc_scale: np.ndarray | None = None  # float32 (neurons,): graph value = acc * acc_scale
    post_ops: list[ElementwiseOp] = field(default_factory=list)
    thresholds: np.ndarray | None = None  # int64 (neurons,)
    directions: np.ndarray | None = None  # int8 (neurons,), +1: acc >= t, -1: acc <= t
    score_mul: np.ndarray | None = None  # int64 (neurons,): score = mul * acc + add
    score_add: np.ndarray | None = None  # int64 (neurons,)
    out_scale: np.ndarray | None = None  # float64 (neurons,): float = scale * score + bias
    out_bias: np.ndarray | None = None  # float64 (neurons,)
    pe: int | None = None  # neurons computed in parallel (set by the folding pass)
    simd: int | None = None  # input elements per PE per cycle
    window: Window | None = None  # a convolution: the window over its input map
    pool: Window | None = None  # max-pool over this layer's output map (channels = neurons)
    pool_and: np.ndarray | None = None  # bool (neurons,): pool with AND, not OR

    @property
    def positions(self) -> int:
        """Matrix-vector products per frame: 1, or the convolution's output pixels."""
        return self.window.positions if self.window is not None else 1

    @property
    def ternary(self) -> bool:
        """A zero-padded binary convolution: its window elements are -1, 0 or +1."""
        return self.in_bits == 1 and self.window is not None and self.window.padded

    @property
    def in_size(self) -> int:
        """Input elements per frame."""
        return self.window.in_size if self.window is not None else self.fan_in

    @property
    def out_map(self) -> tuple[int, int, int]:
        """(channels, height, width) of this layer's output after its pool (1 x 1 if dense)."""
        h, w = (self.window.out_height, self.window.out_width) if self.window else (1, 1)
        if self.pool is not None:
            h, w = self.pool.out_height, self.pool.out_width
        return self.neurons, h, w

    @property
    def out_size(self) -> int:
        c, h, w = self.out_map
        return c * h * w

    @property
    def code_bits(self) -> int:
        """Bits of one input code into the matrix product: 2 (-1/0/+1) if ternary."""
        return 2 if self.ternary else self.in_bits

    def cycles_at(self, pe: int, simd: int) -> int:
        """Compute cycles per frame at a folding: positions * (neurons / PE) * SF, where
        SF = ceil(fan_in / SIMD) (a dense layer's vector may be zero-padded to SF x SIMD)."""
        return self.positions * (self.neurons // pe) * -(-self.fan_in // simd)

    def _folding(self) -> tuple[int, int]:
        if self.pe is None or self.simd is None:
            raise ValueError(f"layer {self.name!r} has no folding yet")
        return self.pe, self.simd

    @property
    def nf(self) -> int:
        """Neuron fold: passes of the PEs over the neurons, per matrix-vector product."""
        return self.neurons // self._folding()[0]

    @property
    def sf(self) -> int:
        """Synapse fold: SIMD words per input vector, the last one zero-padded if SIMD does
        not divide the fan-in (:attr:`pad`)."""
        return -(-self.fan_in // self._folding()[1])

    @property
    def pad(self) -> int:
        """Elements of zero padding that fill the vector's last SIMD word: their weights
        make every padded product 0, so they change no accumulator."""
        return self.sf * self._folding()[1] - self.fan_in

    @property
    def product_cycles(self) -> int:
        """Cycles of one matrix-vector product: NF x SF."""
        return self.nf * self.sf

    @property
    def cycles(self) -> int:
        """Compute cycles per frame with this folding: one product per position."""
        return self.cycles_at(*self._folding())

    @property
    def walk_cycles(self) -> int:
        """Cycles per frame the window and pool walks take, whatever the folding (0: dense)."""
        return max([0] + [w.walk_cycles for w in (self.window, self.pool) if w is not None])

    @property
    def steady_cycles(self) -> int:
        """Cycles per frame in steady state: the compute, or the walks if slower."""
        return max(self.cycles, self.walk_cycles)

    @property
    def neurons(self) -> int:
        return int(self.weights.shape[0])

    @property
    def fan_in(self) -> int:
        return int(self.weights.shape[1])

    def acc_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-neuron smallest and largest reachable accumulator value."""
        lo_code, hi_code = self.in_range
        plus = self.weights.astype(np.int64).sum(axis=1)
        minus = self.fan_in - plus
        return plus * lo_code - minus * hi_code, plus * hi_code - minus * lo_code

    def acc_values(self) -> np.ndarray:
        """Every accumulator value some input can produce, over all neurons (sorted).

        With a bipolar input ``acc`` has the parity of ``fan_in`` (unless zero padding
        drops terms); n-bit inputs reach every integer in the range.
        """
        lo, hi = self.acc_bounds()
        step = 2 if self.in_bits == 1 and not self.ternary else 1  # 0s change the parity
        return np.arange(lo.min(), hi.max() + 1, step, dtype=np.int64)

    def scores(self, acc: np.ndarray) -> np.ndarray:
        """The output layer's integer scores for accumulators ``acc`` (N, neurons)."""
        acc = np.asarray(acc, dtype=np.int64)
        if self.score_mul is None:
            return acc
        return acc * self.score_mul + self.score_add

    @property
    def folded(self) -> bool:
        """True once the passes have replaced the float math with integers."""
        if self.is_output:
            return self.out_scale is not None and not self.post_ops
        return self.thresholds is not None and not self.post_ops


@dataclass
class Network:
    """A feed-forward chain of binary layers behind an input quantizer."""

    name: str
    input: InputSpec
    layers: list[Layer]
    source: str = ""  # the file it came from, for messages

    @property
    def classes(self) -> int:
        return self.layers[-1].neurons

    @property
    def folded(self) -> bool:
        return all(layer.folded for layer in self.layers)

    def validate(self) -> None:
        """Check the chain is consistent; raises ValueError naming the layer."""
        if not self.layers:
            raise ValueError("network has no layers")
        width = self.input.size
        for i, layer in enumerate(self.layers):
            if layer.in_size != width:
                raise ValueError(
                    f"layer {layer.name!r} takes {layer.in_size} inputs but receives {width}"
                )
            if layer.window is not None and layer.window.elements != layer.fan_in:
                raise ValueError(
                    f"layer {layer.name!r}: its window has {layer.window.elements} elements "
                    f"but its weight rows {layer.fan_in}"
                )
            if layer.pool is not None:
                c, h, w = (
                    (layer.neurons, layer.window.out_height, layer.window.out_width)
                    if layer.window
                    else (layer.neurons, 1, 1)
                )
                pool = layer.pool
                if (pool.channels, pool.height, pool.width) != (c, h, w) or pool.padded:
                    raise ValueError(
                        f"layer {layer.name!r}: its pool covers a {pool.channels}x"
                        f"{pool.height}x{pool.width} map (pads {pool.pads}), the layer "
                        f"makes {c}x{h}x{w} without padding"
                    )
                if layer.is_output:
                    raise ValueError(f"layer {layer.name!r}: the output layer cannot pool")
            if layer.is_output != (i == len(self.layers) - 1):
                raise ValueError(f"layer {layer.name!r}: only the last layer is the output")
            if layer.is_output and layer.window is not None:
                raise ValueError(
                    f"layer {layer.name!r}: the output layer must be dense (flatten first)"
                )
            width = layer.out_size
