"""The golden model: integer, bit-packed inference on a folded Network.

This is the reference the hardware is compared with, so it computes what the hardware
computes: XNOR/popcount on 64-bit words for binary layers, an exact integer dot product
for an n-bit first layer, integer threshold compares, integer scores, argmax with ties
going to the lowest class index.

Speed: a neuron with direction -1 (``acc <= t``) is evaluated as ``-acc >= -t`` with its
weight row inverted, so every neuron is one compare; a binary layer compares the number of
disagreeing bits with a per-neuron bound directly. Frames go in cache-sized blocks, spread
over the CPU's cores (NumPy releases the GIL inside its loops).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bnnhw.errors import BnnhwError
from bnnhw.golden.bits import pack_bits
from bnnhw.golden.encode import encode_inputs
from bnnhw.golden.window import max_pool, valid_mask, windows
from bnnhw.ir import Layer, Network

BLOCK = 512  # frames per block: the (frames x neurons) uint64 work array stays in L2
THREADS = os.cpu_count() or 1


def _mismatches(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(N, W) and (M, W) uint64 -> (N, M) number of differing bits (XOR popcount)."""
    buf = np.empty((x.shape[0], w.shape[0]), np.uint64)
    if x.shape[1] == 1:
        np.bitwise_xor(x[:, 0, None], w[None, :, 0], out=buf)
        return np.bitwise_count(buf)
    count = np.zeros(buf.shape, np.uint16)
    for k in range(x.shape[1]):
        np.bitwise_xor(x[:, k, None], w[None, :, k], out=buf)
        count += np.bitwise_count(buf)
    return count


class _PackedLayer:
    """A layer prepared once: packed (direction-normalised) weights and integer bounds."""

    def __init__(self, layer: Layer) -> None:
        self.layer = layer
        flip = np.zeros(layer.neurons, bool)
        if not layer.is_output:
            flip = layer.directions < 0
            self.threshold = np.where(flip, -layer.thresholds, layer.thresholds)
            # binary input: acc = n - 2 * mismatches >= t  <=>  mismatches <= (n - t) // 2
            bound = np.clip((layer.fan_in - self.threshold) // 2, -1, layer.fan_in)
            self.max_mismatch = bound.astype(np.int32)
        rows = np.where(flip[:, None], 1 - layer.weights, layer.weights)
        self.words = pack_bits(rows)
        self.padded = layer.ternary
        if self.padded:
            # a zero-padded element is neither +1 nor -1: it adds 0. Its input bit is 0,
            # so XOR counts a mismatch wherever the row has a 1 there; take those out.
            valid = valid_mask(layer.window)
            self.valid_count = valid.sum(axis=1).astype(np.int64)  # (positions,)
            self.pad_ones = (~valid).astype(np.int64) @ rows.T.astype(np.int64)
        if layer.in_bits > 1:
            # n-bit input: an integer dot product with the 0/1 weight rows. Every partial
            # sum is an integer bounded by fan_in * max|code|, so BLAS in float32 (below
            # 2^24) or float64 (below 2^53) is exact whatever order it adds in.
            lo, hi = layer.in_range
            bound = layer.fan_in * max(abs(lo), abs(hi))
            self.float = np.float32 if bound < 2**24 else np.float64
            if bound >= 2**53:
                raise BnnhwError(f"layer {layer.name!r}: accumulator range too wide")
            self.ones_t = rows.T.astype(self.float)

    def _nbit_acc(self, codes: np.ndarray) -> np.ndarray:
        """acc = sum_i (2 b_i - 1) c_i = 2 * (c @ b) - sum_i c_i, exactly."""
        c = codes.astype(self.float)
        selected = (c @ self.ones_t).astype(np.int64)
        return 2 * selected - codes.sum(axis=1, dtype=np.int64)[:, None]

    def _binary_padded_acc(self, mismatches: np.ndarray, frames: int) -> np.ndarray:
        per_position = mismatches.reshape(frames, -1, self.layer.neurons) - self.pad_ones
        acc = self.valid_count[:, None] - 2 * per_position
        return acc.reshape(mismatches.shape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(N, in_size) bits (binary input) or codes (n-bit) -> (N, out_size) bits or scores.

        A convolution runs as one matrix product over every window (im2col, stream
        order); its (N * positions, neurons) result is already the output map in HWC.
        """
        layer, frames = self.layer, len(x)
        if layer.window is not None:
            x = windows(x, layer.window).reshape(-1, layer.fan_in)
        if layer.in_bits == 1:
            mismatches = _mismatches(pack_bits(x), self.words)
            if self.padded:
                acc = self._binary_padded_acc(mismatches.astype(np.int64), frames)
            elif layer.is_output:
                return layer.scores(layer.fan_in - 2 * mismatches.astype(np.int64))
            else:
                out = (mismatches <= self.max_mismatch).astype(np.uint8)
                return self._pool(out.reshape(frames, -1))
        else:
            acc = self._nbit_acc(x)
        if layer.is_output:
            return layer.scores(acc)
        return self._pool((acc >= self.threshold).astype(np.uint8).reshape(frames, -1))

    def _pool(self, bits: np.ndarray) -> np.ndarray:
        if self.layer.pool is None:
            return bits
        return max_pool(bits, self.layer.pool, self.layer.pool_and)


def _packed_layers(net: Network) -> list[_PackedLayer]:
    if not net.folded:
        raise BnnhwError(
            f"network {net.name!r} still has float arithmetic; run bnnhw.passes.streamline"
        )
    return [_PackedLayer(layer) for layer in net.layers]


def _blocks(n: int) -> list[slice]:
    return [slice(s, min(s + BLOCK, n)) for s in range(0, max(n, 1), BLOCK)]


def _map_blocks(fn, n: int) -> list:
    blocks = _blocks(n)
    if THREADS == 1 or len(blocks) == 1:
        return [fn(b) for b in blocks]
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(fn, blocks))


def scores(net: Network, x: np.ndarray) -> np.ndarray:
    """Integer scores (N, classes) of the output layer."""
    return code_scores(net, encode_inputs(net.input, x))


def code_scores(net: Network, codes: np.ndarray) -> np.ndarray:
    """Integer scores (N, classes) of already encoded input codes (N, input size).

    For a host that holds the codes, not the float frames: a board answering a request.
    """
    layers = _packed_layers(net)

    def run(block: slice) -> np.ndarray:
        value = codes[block]
        for layer in layers:
            value = layer.forward(value)
        return value

    return np.concatenate(_map_blocks(run, len(codes)))


def layer_outputs(net: Network, x: np.ndarray) -> list[np.ndarray]:
    """Every layer's output: the input codes, each hidden layer's bits, the scores.

    Bits are in IR polarity (1 = +1), maps in stream (HWC) order, after the pool. These
    are the values the hardware bench dumps to locate a mismatch.
    """
    layers = _packed_layers(net)
    codes = encode_inputs(net.input, x)
    outputs = [codes]
    value = codes
    for layer in layers:
        value = layer.forward(value)
        outputs.append(value)
    return outputs


def predict(net: Network, x: np.ndarray) -> np.ndarray:
    """Class index per frame; ties go to the lowest index, as np.argmax and ONNX ArgMax."""
    return np.argmax(scores(net, x), axis=1).astype(np.int64)


def float_outputs(net: Network, x: np.ndarray) -> np.ndarray:
    """The scores mapped back to the graph's float outputs (float64)."""
    last = net.layers[-1]
    return scores(net, x) * last.out_scale + last.out_bias
