"""Sliding windows and binary max-pool in stream order, as the hardware computes them.

A map travels as ``(N, height * width * channels)`` in HWC order (see ``bnnhw.ir``).
``windows`` is im2col: every window position's ``(ky, kx, c)`` elements, zero padded.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from bnnhw.ir import Window


def windows(values: np.ndarray, win: Window) -> np.ndarray:
    """(N, H*W*C) in stream order -> (N, positions, elements); padding is 0."""
    n = len(values)
    x = np.asarray(values).reshape(n, win.height, win.width, win.channels)
    top, left, bottom, right = win.pads
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    kh, kw = win.kernel
    sh, sw = win.stride
    view = sliding_window_view(x, (kh, kw), axis=(1, 2))  # (N, OH', OW', C, kh, kw)
    view = view[:, : win.out_height * sh : sh, : win.out_width * sw : sw]
    view = view.transpose(0, 1, 2, 4, 5, 3)  # (N, OH, OW, kh, kw, C)
    return view.reshape(n, win.positions, win.elements)


def valid_mask(win: Window) -> np.ndarray:
    """(positions, elements) bool: True where an element is inside the map, not padding."""
    inside = np.ones((1, win.in_size), bool)
    return windows(inside, win)[0]


def max_pool(bits: np.ndarray, win: Window, use_and: np.ndarray | None = None) -> np.ndarray:
    """Binary max-pool of (N, H*W*C) 0/1 bits -> (N, OH*OW*C) in stream order.

    The max of +-1 values is the OR of their bits; channels flagged in ``use_and`` take
    the AND instead (the graph's arithmetic after the pool is decreasing there).
    """
    if win.padded:
        raise ValueError("a binary max-pool has no padding")
    n = len(bits)
    w = windows(np.asarray(bits, np.uint8), win).reshape(n, win.positions, win.taps, -1)
    pooled = w.max(axis=2)
    if use_and is not None and use_and.any():
        pooled = np.where(use_and, w.min(axis=2), pooled)
    return pooled.reshape(n, -1).astype(np.uint8)
