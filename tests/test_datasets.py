"""Tests for bnnhw.datasets: the IDX reader, MNIST and digits loaders."""

from __future__ import annotations

import gzip
import importlib.util
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from bnnhw import datasets
from bnnhw.errors import InputError

CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as an IDX file (big-endian header and data)."""
    header = struct.pack(">BBBB", 0, 0, CODES[array.dtype], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("dtype", list(CODES), ids=[d.name for d in CODES])
def test_round_trip(tmp_path: Path, dtype: np.dtype, compress: bool) -> None:
    rng = np.random.default_rng(1)
    if dtype.kind == "f":
        array = rng.standard_normal((3, 4, 5)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, size=(3, 4, 5), endpoint=True, dtype=dtype)
    # The name says nothing about compression: gzip is detected from the content.
    out = datasets.read_idx(write_idx(tmp_path / "data.idx", array, compress))
    assert out.dtype == dtype and out.dtype.isnative
    assert out.shape == array.shape
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("shape", [(0,), (7,), (2, 1, 3, 2)])
def test_round_trip_shapes(tmp_path: Path, shape: tuple[int, ...]) -> None:
    array = np.arange(int(np.prod(shape)), dtype=np.int16).reshape(shape) - 3
    out = datasets.read_idx(write_idx(tmp_path / "x.gz", array))
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_truncated_data(tmp_path: Path, compress: bool) -> None:
    data = idx_bytes(np.zeros((4, 5), dtype=np.int32))[:-3]
    path = tmp_path / "short"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(InputError, match=r"short: truncated IDX data"):
        datasets.read_idx(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "header"
    path.write_bytes(idx_bytes(np.zeros((4, 5, 6), dtype=np.uint8))[:9])
    with pytest.raises(InputError, match=r"header: truncated IDX header"):
        datasets.read_idx(path)


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.ones((50, 50), dtype=np.uint8)))[:-10])
    with pytest.raises(InputError, match=r"cut\.gz: corrupt or truncated gzip"):
        datasets.read_idx(path)


def test_trailing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(np.zeros(3, dtype=np.uint8)) + b"\0")
    with pytest.raises(InputError, match=r"long: 1 unexpected trailing bytes"):
        datasets.read_idx(path)


def test_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "notidx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(InputError, match=r"notidx: not an IDX file") as info:
        datasets.read_idx(path)
    assert "\n" not in str(info.value)


def test_unknown_type_code(tmp_path: Path) -> None:
    path = tmp_path / "code"
    path.write_bytes(bytes([0, 0, 0x0A, 1]) + struct.pack(">I", 1) + b"\0")
    with pytest.raises(InputError, match=r"code: unknown IDX type code 0x0A"):
        datasets.read_idx(path)


def test_tiny_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "tiny").write_bytes(b"\0\0")
    with pytest.raises(InputError, match=r"tiny: not an IDX file"):
        datasets.read_idx(tmp_path / "tiny")
    with pytest.raises(InputError, match=r"nothere: no such file"):
        datasets.read_idx(tmp_path / "nothere")


@pytest.mark.parametrize(
    ("pattern", "compress"),
    [("{p}-{k}-idx{n}-ubyte", False), ("{p}-{k}.idx{n}-ubyte.gz", True)],
)
def test_load_mnist_file_names(tmp_path: Path, pattern: str, compress: bool) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=5, dtype=np.uint8)
    for kind, ndim, array in [("images", 3, images), ("labels", 1, labels)]:
        write_idx(tmp_path / pattern.format(p="t10k", k=kind, n=ndim), array, compress)
    got_images, got_labels = datasets.load_mnist(tmp_path, "test")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    x = datasets.mnist_to_float(got_images)
    assert x.dtype == np.float32 and x.shape == (5, 1, 28, 28)
    np.testing.assert_array_equal(x[:, 0], images.astype(np.float32) / np.float32(255))


def test_load_mnist_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"MNIST folder does not exist"):
        datasets.load_mnist(tmp_path / "absent")
    with pytest.raises(InputError, match=r"looked for train-images-idx3-ubyte, ") as info:
        datasets.load_mnist(tmp_path, "train")
    assert "train-images.idx3-ubyte.gz" in str(info.value)
    with pytest.raises(InputError, match=r"unknown MNIST split"):
        datasets.load_mnist(tmp_path, "valid")


def test_load_mnist_mismatched_counts(tmp_path: Path) -> None:
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(InputError, match=r"2 labels for 3 images"):
        datasets.load_mnist(tmp_path, "test")


def test_default_mnist_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BNNHW_MNIST", str(tmp_path / "mine"))
    assert datasets.default_mnist_folder() == tmp_path / "mine"
    monkeypatch.delenv("BNNHW_MNIST")
    # a project laid out by hand: tmp/project/bnnhw/datasets.py and tmp/shared/data/mnist
    package = tmp_path / "project" / "bnnhw"
    package.mkdir(parents=True)
    shutil.copy(datasets.__file__, package / "datasets.py")
    spec = importlib.util.spec_from_file_location("moved_datasets", package / "datasets.py")
    moved = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(moved)
    assert moved.default_mnist_folder() is None  # no shared folder next to the project
    (tmp_path / "shared" / "data" / "mnist").mkdir(parents=True)
    assert moved.default_mnist_folder() == tmp_path / "shared" / "data" / "mnist"


def test_real_mnist_test_split() -> None:
    folder = datasets.default_mnist_folder()
    if folder is None or not folder.is_dir():
        # the bundled MNIST models are tested on this split too: a missing folder is a
        # broken setup, not a reason to pass quietly
        pytest.fail(f"no MNIST folder ({folder or '../shared/data/mnist'}); set BNNHW_MNIST")
    images, labels = datasets.load_mnist(folder, "test")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and labels.dtype == np.uint8
    assert set(np.unique(labels).tolist()) == set(range(10))
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_digits_split_is_reproducible() -> None:
    from sklearn.datasets import load_digits

    x_train, y_train, x_test, y_test = datasets.load_digits_split(seed=0)
    assert x_train.shape == (1438, 1, 8, 8) and x_test.shape == (359, 1, 8, 8)
    assert x_train.dtype == np.float32 and y_train.dtype == np.uint8
    assert x_train.min() >= 0.0 and x_train.max() <= 1.0
    digits = load_digits()
    train, test = datasets.digits_split_indices(len(digits.target), seed=0)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 1797
    np.testing.assert_array_equal(x_test[:, 0], digits.images[test] / 16)
    np.testing.assert_array_equal(y_test, digits.target[test])
    other = datasets.load_digits_split(seed=1)
    assert not np.array_equal(other[3], y_test)
