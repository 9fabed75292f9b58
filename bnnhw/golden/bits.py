"""Bit packing shared by the golden model and (later) the test-vector writers.

Bit ``i`` of a vector lands in word ``i // 64`` at bit position ``i % 64`` (little-endian
within a word), so word 0 bit 0 is element 0, the order the hardware streams bits in.
"""

from __future__ import annotations

import numpy as np


def words_for(bits: int) -> int:
    return (bits + 63) // 64


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """(N, n) array of 0/1 -> (N, ceil(n/64)) uint64; padding bits are 0."""
    bits = np.asarray(bits, dtype=np.uint8)
    n = bits.shape[-1]
    packed = np.packbits(bits, axis=-1, bitorder="little")
    pad = words_for(n) * 8 - packed.shape[-1]
    if pad:
        packed = np.concatenate([packed, np.zeros((*packed.shape[:-1], pad), np.uint8)], axis=-1)
    return np.ascontiguousarray(packed).view("<u8")


def unpack_bits(words: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: (N, W) uint64 -> (N, n) uint8."""
    as_bytes = np.ascontiguousarray(words).view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, count=n, bitorder="little")
