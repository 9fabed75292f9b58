"""What one MVTU needs, derived from an IR layer: plain integers, no Amaranth.

* Rows of neurons with direction -1 are inverted, so every neuron compares ``>=``
  (``acc <= t`` is ``-acc >= -t``, and inverting a +-1 row negates ``acc``).
* A binary-input layer counts matching bits ``m`` (XNOR popcount); ``acc = 2m - fan_in``,
  so ``acc >= t`` becomes ``m >= ceil((t + fan_in) / 2)``, clipped to ``[0, fan_in + 1]``.
* A zero-padded binary convolution takes ternary codes (2-bit, -1/0/+1) into an n-bit
  MVTU: its sliding window turns the incoming bits into codes and padding into 0.
* Weight ROM word ``nf * SF + sf`` holds PE rows' SIMD-element slices: bit
  ``p * SIMD + i`` is the weight of neuron ``nf * PE + p`` for input ``sf * SIMD + i``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from bnnhw.ir import Layer
from bnnhw.passes.folding import window_readable


def signed_width(lo: int, hi: int) -> int:
    """Bits of a two's complement signal holding every integer in [lo, hi]."""
    return max(int(hi).bit_length(), int(-lo - 1).bit_length() if lo < 0 else 0) + 1


def _from_layer(attr: str, doc: str = "") -> property:
    """A read-only LayerHW attribute that is the IR layer's own (one definition)."""
    return property(lambda self: getattr(self.layer, attr), doc=doc or f"``Layer.{attr}``")


@dataclass(frozen=True)
class LayerHW:
    """An IR layer's MVTU data: direction-normalised rows and hardware thresholds.

    Shape, folding and geometry (neurons, PE, NF, positions, cycles, window, ...) are the
    IR layer's own: read from ``layer``, not recomputed here.
    """

    layer: Layer  # the folded IR layer (a shallow copy: its folding as it was)
    rows: np.ndarray  # uint8 (neurons, fan_in), direction-normalised
    thresholds: np.ndarray | None  # int64 (neurons,): matches (1-bit) or acc (n-bit) >= T
    score_mul: np.ndarray | None  # int64 (neurons,), output layer
    score_add: np.ndarray | None
    pool_and: tuple[bool, ...] | None = None  # per channel: pool with AND, not OR

    name = _from_layer("name")
    neurons = _from_layer("neurons")
    fan_in = _from_layer("fan_in")
    pe = _from_layer("pe")
    simd = _from_layer("simd")
    is_output = _from_layer("is_output")
    window = _from_layer("window", "a convolution's window over its input map")
    pool = _from_layer("pool", "max-pool over the output map")
    ternary = _from_layer("ternary")
    in_bits = _from_layer("code_bits", "bits of one code into the product (2: ternary)")
    element_bits = _from_layer("in_bits", "bits of one element on the input stream")
    positions = _from_layer("positions")
    nf = _from_layer("nf")
    sf = _from_layer("sf")
    pad = _from_layer("pad", "zero elements that fill the input vector's last SIMD word")
    cycles = _from_layer("product_cycles", "cycles of one matrix-vector product: NF x SF")
    frame_cycles = _from_layer("cycles", "compute cycles per frame")
    walk_cycles = _from_layer("steady_cycles", "steady-state cycles per frame (walks included)")

    @property
    def in_signed(self) -> bool:
        return self.layer.in_range[0] < 0

    @property
    def stream_word(self) -> int:
        """Bits of one beat on the layer's input: a pixel (conv) or SIMD elements (dense)."""
        if self.window is not None:
            return self.window.channels * self.element_bits
        return self.simd * self.in_bits

    @property
    def reads_windows(self) -> bool:
        """A convolution whose SIMD words are read from a block-RAM row buffer
        (``WindowReader``): unpadded, SIMD dividing its channels. Else its windows are
        held in registers and cut into words (``SlidingWindow``)."""
        return window_readable(self.layer, self.simd)

    @property
    def frame_bits(self) -> int:
        """Bits of one input frame on the layer's input stream."""
        return self.layer.in_size * self.element_bits

    @property
    def in_width(self) -> int:
        """Bits of one input vector."""
        return self.fan_in * self.in_bits

    @property
    def acc_range(self) -> tuple[int, int]:
        """Range of the value the accumulator holds (matches, or the n-bit dot product)."""
        if self.in_bits == 1:
            return 0, self.fan_in
        lo, hi = (
            (-(2 ** (self.in_bits - 1)), 2 ** (self.in_bits - 1) - 1)
            if self.in_signed
            else (0, 2**self.in_bits - 1)
        )
        reach = self.fan_in * max(abs(lo), abs(hi))
        return -reach, reach

    @property
    def score_range(self) -> tuple[int, int]:
        """Range of the output layer's scores."""
        lo, hi = self.acc_range
        if self.in_bits == 1:
            lo, hi = -self.fan_in, self.fan_in
        k, m = self.score_mul, self.score_add
        ends = np.concatenate([k * lo + m, k * hi + m])
        return int(ends.min()), int(ends.max())

    def weight_words(self) -> list[int]:
        """The weight ROM contents, one PE * SIMD-bit word per (nf, sf).

        A padded element is a 0 on the input (a -1 code, or the n-bit code 0) and its
        weight bit is 1: XNOR(0, 1) = 0 adds no match, and an n-bit lane adds +0.
        """
        rows = np.pad(self.rows, ((0, 0), (0, self.pad)), constant_values=1)
        tiles = rows.reshape(self.nf, self.pe, self.sf, self.simd).transpose(0, 2, 1, 3)
        flat = tiles.reshape(self.nf * self.sf, self.pe * self.simd)
        return [int.from_bytes(np.packbits(w, bitorder="little").tobytes(), "little") for w in flat]

    def threshold_words(self) -> list[list[int]]:
        """Thresholds grouped as the MVTU reads them: one list of PE values per nf."""
        assert self.thresholds is not None
        return self.thresholds.reshape(self.nf, self.pe).tolist()


def layer_hw(layer: Layer) -> LayerHW:
    """Map a folded IR layer with its PE/SIMD onto MVTU parameters."""
    if not layer.folded or layer.pe is None or layer.simd is None:
        raise ValueError(f"layer {layer.name!r} needs integer thresholds and a folding")
    ternary = layer.ternary
    rows = layer.weights.astype(np.uint8)
    thresholds = score_mul = score_add = None
    if layer.is_output:
        n = layer.neurons
        score_mul = layer.score_mul if layer.score_mul is not None else np.ones(n, np.int64)
        score_add = layer.score_add if layer.score_add is not None else np.zeros(n, np.int64)
    else:
        flip = layer.directions < 0
        rows = np.where(flip[:, None], 1 - rows, rows).astype(np.uint8)
        t = np.where(flip, -layer.thresholds, layer.thresholds).astype(np.int64)
        if layer.in_bits == 1 and not ternary:
            t = np.clip(-((-(t + layer.fan_in)) // 2), 0, layer.fan_in + 1)  # ceil
        else:
            # a flipped neuron accumulates -acc: its reach is the mirror of the layer's.
            # A threshold past the reach becomes one just past it, so it fits the compare
            lo_acc, hi_acc = layer.acc_bounds()
            lo, hi = np.where(flip, -hi_acc, lo_acc), np.where(flip, -lo_acc, hi_acc)
            t = np.clip(t, lo, hi + 1)
        thresholds = t
    return LayerHW(
        layer=copy.copy(layer),
        rows=rows,
        thresholds=thresholds,
        score_mul=score_mul,
        score_add=score_add,
        pool_and=None if layer.pool_and is None else tuple(bool(b) for b in layer.pool_and),
    )
