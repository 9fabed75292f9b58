"""PNG inputs for `bnnhw run`: the zlib-only reader, resizing, and the CLI on a golden board."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from bnnhw import golden
from bnnhw.boards.images import png_frames, read_png, resize
from bnnhw.boards.link import GoldenBoard
from bnnhw.build import compile_model
from bnnhw.errors import InputError

from conftest import ROOT


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def write_png(path, pixels: np.ndarray, colour: int, filters=(0,), depth=8, interlace=0):
    """A PNG written the long way: every row with one of ``filters`` (cycled)."""
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1).astype(np.int64)
    bpp = rows.shape[1] // w
    raw, prev = bytearray(), np.zeros(rows.shape[1], dtype=np.int64)
    for y, row in enumerate(rows):
        kind = filters[y % len(filters)]
        out = []
        for x, v in enumerate(row):
            a = row[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][kind]
            out.append((v - pred) & 0xFF)
        raw += bytes([kind, *out])
        prev = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw)))
        + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize(("colour", "channels"), [(0, 1), (2, 3), (4, 2), (6, 4)])
def test_png_reader_undoes_every_filter(tmp_path, colour, channels):
    rng = np.random.default_rng(colour)
    pixels = rng.integers(0, 256, (7, 9, channels), dtype=np.uint8)
    path = write_png(tmp_path / "x.png", pixels, colour, filters=(0, 1, 2, 3, 4))
    assert np.array_equal(read_png(path), pixels)


def test_png_reader_refuses_what_it_cannot_read(tmp_path):
    pixels = np.zeros((4, 4, 1), dtype=np.uint8)
    with pytest.raises(InputError, match="16-bit grayscale PNG"):
        read_png(write_png(tmp_path / "deep.png", pixels, 0, depth=16))
    with pytest.raises(InputError, match="palette PNG"):
        read_png(write_png(tmp_path / "pal.png", pixels, 3))
    with pytest.raises(InputError, match="interlaced"):
        read_png(write_png(tmp_path / "adam7.png", pixels, 0, interlace=1))
    (tmp_path / "x.png").write_bytes(b"GIF89a....")
    with pytest.raises(InputError, match="not a PNG"):
        read_png(tmp_path / "x.png")
    good = write_png(tmp_path / "cut.png", pixels, 0).read_bytes()
    (tmp_path / "cut.png").write_bytes(good[:40])
    with pytest.raises(InputError, match=r"truncated|corrupt"):
        read_png(tmp_path / "cut.png")


def test_resize_averages_areas():
    image = np.arange(16.0).reshape(4, 4)
    assert np.allclose(resize(image, 2, 2), [[2.5, 4.5], [10.5, 12.5]])
    assert np.allclose(resize(image, 4, 4), image)
    assert np.allclose(resize(np.full((28, 28), 7.0), 8, 8), 7.0)  # not a multiple
    assert resize(image, 3, 5).shape == (3, 5)


def test_png_frames_match_the_training_scale(tmp_path):
    # a 16x16 RGB image of an 8x8 digits-style frame, each pixel doubled
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 17, (8, 8)) * 255 // 16
    big = np.repeat(np.repeat(frame, 2, 0), 2, 1).astype(np.uint8)
    rgb = np.stack([big] * 3, axis=-1)
    x = png_frames([write_png(tmp_path / "d.png", rgb, 2)], (1, 8, 8))
    assert x.shape == (1, 1, 8, 8) and x.dtype == np.float32
    assert np.allclose(x[0, 0], frame / 255, atol=1e-6)
    inverted = png_frames([tmp_path / "d.png"], (1, 8, 8), invert=True)
    assert np.allclose(inverted, 1 - x, atol=1e-6)
    with pytest.raises(InputError, match="one grayscale image"):
        png_frames([tmp_path / "d.png"], (3, 8, 8))


def test_cli_run_classifies_png_files(tmp_path, monkeypatch, capsys):
    import serial

    from bnnhw.cli.main import main

    build = compile_model(
        ROOT / "models" / "digits_w1a1_in1_classic.onnx", tmp_path / "b", max_lanes=8
    )
    rng = np.random.default_rng(5)
    paths = []
    for i in range(3):
        pixels = rng.integers(0, 256, (24, 24, 1), dtype=np.uint8)
        paths.append(str(write_png(tmp_path / f"{i}.png", pixels, 0, filters=(i,))))
    monkeypatch.setattr(serial, "serial_for_url", lambda *a, **k: GoldenBoard(build))
    assert main(["run", str(build.folder), *paths, "--port", "fake"]) == 0
    out = capsys.readouterr().out
    expected = golden.predict(build.net, png_frames(paths, build.net.input.shape))
    for i, cls in enumerate(expected.tolist()):
        assert f"frame {i}: class {cls}" in out
    assert "3 frames" in out
    assert main(["run", str(build.folder), paths[0], "x.npy", "--port", "fake"]) != 0
    assert "one .npy array or one or more .png images" in capsys.readouterr().err
