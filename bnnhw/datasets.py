"""Data sets for the bundled models: an IDX reader (MNIST) and scikit-learn's digits.

Pure NumPy. Preprocessing, exactly as the bundled models were trained and exported:

* MNIST: ``mnist_to_float(images)`` = ``images.astype(float32) / 255``, shape (N, 1, 28, 28).
* digits: ``load_digits_split`` returns float32 = ``pixels / 16`` (pixels are 0..16), shape
  (N, 1, 8, 8); the test split is the last 20 % of a ``np.random.default_rng(seed)``
  permutation of the 1,797 images (``digits_split_indices``).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from bnnhw.errors import InputError

__all__ = [
    "default_mnist_folder",
    "digits_split_indices",
    "load_digits_split",
    "load_mnist",
    "mnist_to_float",
    "read_idx",
]

#: IDX type code -> big-endian NumPy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"
DIGITS_TEST_FRACTION = 0.2


def _read_bytes(path: Path) -> bytes:
    """Return the file's content, gunzipped when it starts with the gzip magic bytes."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: corrupt or truncated gzip data ({exc})") from None


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (plain or gzip, detected by content) into a native-endian array.

    Raises InputError (one line naming the file) on a bad magic number, an unknown type
    code, or a data section that is shorter or longer than the header says.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise InputError(f"{path}: not an IDX file (only {len(data)} bytes, header needs 4)")
    if data[0] != 0 or data[1] != 0:
        raise InputError(
            f"{path}: not an IDX file (magic number starts {data[:2].hex()}, expected 0000)"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise InputError(f"{path}: unknown IDX type code 0x{code:02X} (supported: {known})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InputError(f"{path}: truncated IDX header ({len(data)} bytes, needs {header})")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    actual = len(data) - header
    if actual < expected:
        raise InputError(
            f"{path}: truncated IDX data ({actual} bytes after the header, shape {shape} "
            f"of {dtype.name} needs {expected})"
        )
    if actual > expected:
        raise InputError(
            f"{path}: {actual - expected} unexpected trailing bytes after the IDX data "
            f"(shape {shape})"
        )
    array = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def _mnist_names(prefix: str, kind: str, ndim: int) -> list[str]:
    """Accepted file names for one MNIST file, e.g. train-images-idx3-ubyte[.gz]."""
    stems = [f"{prefix}-{kind}-idx{ndim}-ubyte", f"{prefix}-{kind}.idx{ndim}-ubyte"]
    return [name + ext for name in stems for ext in ("", ".gz")]


def _find_mnist_file(folder: Path, prefix: str, kind: str, ndim: int) -> Path:
    names = _mnist_names(prefix, kind, ndim)
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"{folder}: no MNIST {kind} file found (looked for {', '.join(names)})")


def load_mnist(
    folder: str | os.PathLike[str], split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Load one MNIST split from IDX files in ``folder``.

    ``split`` is "train" (train-*) or "test" (t10k-*). Both file-name conventions
    (``train-images-idx3-ubyte`` and ``train-images.idx3-ubyte``), gzip or not, are found.
    Returns images uint8 (N, 28, 28) and labels uint8 (N,).
    """
    prefixes = {"train": "train", "test": "t10k"}
    if split not in prefixes:
        raise InputError(f"unknown MNIST split {split!r} (supported: train, test)")
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: MNIST folder does not exist")
    prefix = prefixes[split]
    images_path = _find_mnist_file(folder, prefix, "images", 3)
    labels_path = _find_mnist_file(folder, prefix, "labels", 1)
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise InputError(
            f"{images_path}: expected uint8 images of shape (N, 28, 28), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise InputError(
            f"{labels_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}"
        )
    if labels.shape[0] != images.shape[0]:
        raise InputError(
            f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images "
            f"in {images_path.name}"
        )
    return images, labels


def mnist_to_float(images: np.ndarray) -> np.ndarray:
    """MNIST uint8 (N, 28, 28) -> float32 in [0, 1] = images / 255, shape (N, 1, 28, 28)."""
    images = np.asarray(images)
    return (images.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)


def default_mnist_folder() -> Path | None:
    """The MNIST folder to use by default, or None when there is none.

    $BNNHW_MNIST when set (returned as given; ``load_mnist`` reports it if it is missing),
    else ``<project root>/../shared/data/mnist`` if that folder exists, where the project
    root is the parent of the ``bnnhw`` package folder.
    """
    env = os.environ.get("BNNHW_MNIST")
    if env:
        return Path(env)
    folder = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"
    return folder if folder.is_dir() else None


def digits_split_indices(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: a ``default_rng(seed)`` permutation, its last 20 % is test."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = round(n * DIGITS_TEST_FRACTION)
    return order[: n - n_test], order[n - n_test :]


def load_digits_split(
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits, split as ``digits_split_indices(1797, seed)``.

    Returns x_train, y_train, x_test, y_test: images float32 (N, 1, 8, 8) = pixels / 16
    (in [0, 1], multiples of 1/16), labels uint8 (N,). With seed=0: 1,438 train, 359 test.
    """
    from sklearn.datasets import load_digits  # lazy: scikit-learn is a dev/train extra

    digits = load_digits()
    x = (digits.images.astype(np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.uint8)
    train, test = digits_split_indices(len(y), seed)
    return x[train], y[train], x[test], y[test]


def load_test_split(
    name: str, data_dir: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Float frames and labels of a bundled data set's test split ("mnist" or "digits")."""
    if name == "mnist":
        folder = data_dir or default_mnist_folder()
        if folder is None:
            raise InputError("no MNIST folder found; pass --data-dir or set BNNHW_MNIST")
        images, labels = load_mnist(folder, split="test")
        return mnist_to_float(images), labels
    _, _, x, labels = load_digits_split()
    return x, labels
