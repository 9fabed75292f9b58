"""PNG files as model inputs for ``bnnhw run``, decoded by Pillow.

:func:`read_png` gives a PNG's 8-bit samples (grayscale, RGB, either with alpha; palette
and 1-bit images expanded to those) and refuses anything else with a one-line reason.
:func:`png_frames` turns files into frames of the model's input shape (C, H, W):
grayscale (ITU-R 601 luma), area-averaged to H x W, scaled to [0, 1] (``pixels / 255``,
the range the bundled models were trained on: MNIST / 255, digits / 16).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bnnhw.errors import BnnhwError, InputError

SIGNATURE = b"\x89PNG\r\n\x1a\n"  # tells "not a PNG" from a damaged one
EIGHT_BIT = ("L", "LA", "RGB", "RGBA")  # Pillow modes of 8-bit samples: 1 to 4 channels


def read_png(path: str | Path) -> np.ndarray:
    """The image as uint8 (H, W, channels)."""
    try:
        from PIL import Image
    except ImportError:
        raise BnnhwError("reading PNG images needs Pillow: pip install pillow") from None
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with path.open("rb") as file:
        if file.read(len(SIGNATURE)) != SIGNATURE:
            raise InputError(f"{path}: not a PNG file (no PNG signature)")
    try:
        with Image.open(path, formats=["PNG"]) as image:
            image.load()
            if image.mode in ("1", "P", "PA"):  # lossless expansion to 8-bit samples
                alpha = image.mode == "PA" or "transparency" in image.info
                image = image.convert("L" if image.mode == "1" else "RGBA" if alpha else "RGB")
            if image.mode not in EIGHT_BIT:
                kind = "16-bit grayscale" if image.mode.startswith("I") else image.mode
                raise InputError(
                    f"{path}: a {kind} PNG; bnnhw reads 8-bit grayscale, RGB or RGBA PNGs: "
                    "convert it, or save the frames with np.save and pass the .npy"
                )
            pixels = np.array(image, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as exc:  # what Pillow raises on a bad file
        raise InputError(f"{path}: truncated or corrupt PNG ({exc})") from None
    return pixels.reshape(*pixels.shape[:2], -1)


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
