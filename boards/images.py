"""PNG files as model inputs for ``bnnhw run``, without an imaging library.

:func:`read_png` decodes 8-bit, non-interlaced PNGs (grayscale, RGB, and either with
alpha; every filter type) with ``zlib`` alone and refuses anything else with a one-line
reason. :func:`png_frames` turns files into frames of the model's input shape (C, H, W):
grayscale (ITU-R 601 luma), area-averaged to H x W, scaled to [0, 1] (``pixels / 255``,
the range the bundled models were trained on: MNIST / 255, digits / 16).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from bnnhw.errors import InputError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel
KINDS = {0: "grayscale", 2: "RGB", 3: "palette", 4: "grayscale+alpha", 6: "RGBA"}


def read_png(path: str | Path) -> np.ndarray:
    """The image as uint8 (H, W, channels)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    data = path.read_bytes()
    if not data.startswith(SIGNATURE):
        raise InputError(f"{path}: not a PNG file (no PNG signature)")
    pos, header, idat = len(SIGNATURE), None, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if len(body) < length:
            break
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or not idat:
        raise InputError(f"{path}: truncated PNG (no IHDR or IDAT chunk)")
    width, height, depth, colour, _, _, interlace = header
    if colour not in CHANNELS or depth != 8 or interlace:
        kind = KINDS.get(colour, f"colour type {colour}")
        raise InputError(
            f"{path}: a {depth}-bit {kind}{' interlaced' if interlace else ''} PNG; bnnhw "
            "reads 8-bit non-interlaced grayscale, RGB or RGBA PNGs: convert it, or save "
            "the frames with np.save and pass the .npy"
        )
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise InputError(f"{path}: corrupt PNG image data ({exc})") from None
    bpp = CHANNELS[colour]
    stride = width * bpp
    if len(raw) != height * (stride + 1):
        raise InputError(
            f"{path}: PNG image data has {len(raw)} bytes, not {height * (stride + 1)}"
        )
    return _unfilter(raw, height, stride, bpp, path).reshape(height, width, bpp)


def _unfilter(raw: bytes, height: int, stride: int, bpp: int, path) -> np.ndarray:
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + prev) & 0xFF
        elif kind in (1, 3, 4):  # depend on the bytes to the left: one pixel at a time
            cur = np.zeros(stride, dtype=np.int32)
            for x in range(stride):
                a = cur[x - bpp] if x >= bpp else 0
                b, c = prev[x], prev[x - bpp] if x >= bpp else 0
                if kind == 1:
                    pred = a
                elif kind == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + pred) & 0xFF
        else:
            raise InputError(f"{path}: PNG row {y} has unknown filter type {kind}")
        out[y], prev = cur, cur
    return out


def to_gray(image: np.ndarray) -> np.ndarray:
    """float64 (H, W) in 0..255: luma of RGB, alpha composited on black."""
    pixels = image.astype(np.float64)
    channels = pixels.shape[2]
    color = pixels[..., :3] if channels >= 3 else pixels[..., :1]
    gray = color @ np.array([0.299, 0.587, 0.114]) if channels >= 3 else color[..., 0]
    if channels in (2, 4):
        gray = gray * pixels[..., -1] / 255
    return gray


def _area_weights(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in): each output cell averages the input cells it overlaps, by overlap."""
    edges = np.linspace(0, n_in, n_out + 1)
    weights = np.zeros((n_out, n_in))
    for i in range(n_out):
        for j in range(int(edges[i]), min(n_in, int(np.ceil(edges[i + 1])))):
            weights[i, j] = min(edges[i + 1], j + 1) - max(edges[i], j)
    return weights / weights.sum(axis=1, keepdims=True)


def resize(gray: np.ndarray, height: int, width: int) -> np.ndarray:
    return _area_weights(height, gray.shape[0]) @ gray @ _area_weights(width, gray.shape[1]).T


def png_frames(paths: list[str | Path], shape: tuple[int, ...], invert: bool = False) -> np.ndarray:
    """float32 (N, *shape) from PNG files, for a model taking (1, H, W) or (H, W) frames."""
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[0] != 1):
        raise InputError(
            f"PNG input needs a model that takes one grayscale image, (1, H, W); this one "
            f"takes {tuple(shape)}: pass a .npy array instead"
        )
    height, width = shape[-2:]
    frames = []
    for path in paths:
        pixels = resize(to_gray(read_png(path)), height, width) / 255
        frames.append(1 - pixels if invert else pixels)
    return np.asarray(frames, dtype=np.float32).reshape(len(frames), *shape)
