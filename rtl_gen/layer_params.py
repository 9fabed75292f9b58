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

from dataclasses import dataclass

import numpy as np

from bnnhw.ir import Layer, Window


def signed_width(lo: int, hi: int) -> int:
    """Bits of a two's complement signal holding every integer in [lo, hi]."""
    return max(int(hi).bit_length(), int(-lo - 1).bit_length() if lo < 0 else 0) + 1


@dataclass(frozen=True)
class LayerHW:
    name: str
    neurons: int
    fan_in: int
    pe: int
    simd: int
    in_bits: int
    in_signed: bool
    is_output: bool
    rows: np.ndarray  # uint8 (neurons, fan_in), direction-normalised
    thresholds: np.ndarray | None  # int64 (neurons,): matches (1-bit) or acc (n-bit) >= T
    score_mul: np.ndarray | None  # int64 (neurons,), output layer
    score_add: np.ndarray | None
    window: Window | None = None  # a convolution's window over its input map
    pool: Window | None = None  # max-pool over the output map
    pool_and: tuple[bool, ...] | None = None  # per channel: pool with AND, not OR
    stream_bits: int = 0  # bits of one element on the incoming stream (0: in_bits)

    @property
    def element_bits(self) -> int:
        """Bits of one element of the layer's input stream (before any ternary mapping)."""
        return self.stream_bits or self.in_bits

    @property
    def ternary(self) -> bool:
        return self.element_bits == 1 and self.in_bits == 2

    @property
    def stream_word(self) -> int:
        """Bits of one beat on the layer's input: a pixel (conv) or SIMD elements (dense)."""
        if self.window is not None:
            return self.window.channels * self.element_bits
        return self.simd * self.in_bits

    @property
    def frame_bits(self) -> int:
        """Bits of one input frame on the layer's input stream."""
        size = self.window.in_size if self.window is not None else self.fan_in
        return size * self.element_bits

    @property
    def positions(self) -> int:
        return self.window.positions if self.window is not None else 1

    @property
    def frame_cycles(self) -> int:
        """Compute cycles per frame: one matrix-vector product per window position."""
        return self.positions * self.cycles

    @property
    def walk_cycles(self) -> int:
        """Steady-state cycles per frame: compute, or the window and pool walks if slower."""
        walks = [self.frame_cycles]
        if self.window is not None:
            walks.append(self.window.padded_height * self.window.padded_width)
        if self.pool is not None:
            walks.append(self.pool.height * self.pool.width)
        return max(walks)

    @property
    def nf(self) -> int:
        return self.neurons // self.pe

    @property
    def sf(self) -> int:
        return self.fan_in // self.simd

    @property
    def cycles(self) -> int:
        return self.nf * self.sf

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
        """The weight ROM contents, one PE * SIMD-bit word per (nf, sf)."""
        tiles = self.rows.reshape(self.nf, self.pe, self.sf, self.simd).transpose(0, 2, 1, 3)
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
    lo, _ = layer.in_range
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
            lo_acc, hi_acc = layer.acc_bounds()
            t = np.clip(t, -np.max(np.abs(lo_acc)) - 1, np.max(np.abs(hi_acc)) + 1)
        thresholds = t
    return LayerHW(
        name=layer.name,
        neurons=layer.neurons,
        fan_in=layer.fan_in,
        pe=layer.pe,
        simd=layer.simd,
        in_bits=2 if ternary else layer.in_bits,
        in_signed=lo < 0,
        is_output=layer.is_output,
        rows=rows,
        thresholds=thresholds,
        score_mul=score_mul,
        score_add=score_add,
        window=layer.window,
        pool=layer.pool,
        pool_and=None if layer.pool_and is None else tuple(bool(b) for b in layer.pool_and),
        stream_bits=1 if ternary else 0,
    )
