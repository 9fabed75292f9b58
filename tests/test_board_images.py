"""PNG inputs for `bnnhw run`: reading (Pillow), resizing, and the CLI on a golden board.

The test images are written by Pillow's encoder and checked against pixel values worked out
by hand, so the reader is never its own oracle.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bnnhw import golden
from bnnhw.boards.images import png_frames, read_png, resize
from bnnhw.boards.link import GoldenBoard
from bnnhw.build import compile_model
from bnnhw.errors import BnnhwError, InputError

from conftest import ROOT

# a 2x3 image per mode, one (row of) pixel tuple(s) per row
PIXELS = {
    "L": [[0, 128, 255], [7, 64, 200]],
    "LA": [[(0, 255), (128, 0), (255, 17)], [(7, 1), (64, 2), (200, 3)]],
    "RGB": [[(255, 0, 0), (0, 255, 0), (0, 0, 255)], [(1, 2, 3), (10, 20, 30), (99, 98, 97)]],
    "RGBA": [[(255, 0, 0, 255), (0, 255, 0, 0), (0, 0, 255, 128)], [(1, 2, 3, 4)] * 3],
}


def write_png(path, mode: str, rows, **save) -> Path:
    """A PNG written by Pillow from pixel tuples (rows of them)."""
    image = Image.new(mode, (len(rows[0]), len(rows)))
    for y, row in enumerate(rows):
        for x, value in enumerate(row):
            image.putpixel((x, y), value)
    image.save(path, format="PNG", **save)
    return path


@pytest.mark.parametrize("mode", list(PIXELS))
def test_png_reader_gives_the_written_samples(tmp_path, mode):
    rows = PIXELS[mode]
    expected = np.array(rows, dtype=np.uint8).reshape(2, 3, -1)
    assert np.array_equal(read_png(write_png(tmp_path / "x.png", mode, rows)), expected)
    # Pillow's smallest file (other row filters and compression) decodes the same
    smallest = write_png(tmp_path / "o.png", mode, rows, optimize=True, compress_level=9)
    assert np.array_equal(read_png(smallest), expected)


def test_png_reader_expands_palette_and_1_bit_images(tmp_path):
    palette = Image.new("P", (2, 1))
    palette.putpalette([10, 20, 30, 200, 150, 100])
    palette.putpixel((0, 0), 1)
    palette.putpixel((1, 0), 0)
    palette.save(tmp_path / "p.png")
    assert read_png(tmp_path / "p.png").tolist() == [[[200, 150, 100], [10, 20, 30]]]
    bits = write_png(tmp_path / "b.png", "1", [[0, 1, 1], [1, 0, 0]])
    assert read_png(bits)[..., 0].tolist() == [[0, 255, 255], [255, 0, 0]]


def test_png_gray_is_the_luma_with_alpha_on_black(tmp_path):
    path = write_png(tmp_path / "c.png", "RGBA", [[(200, 100, 50, 255), (200, 100, 50, 51)]])
    luma = 0.299 * 200 + 0.587 * 100 + 0.114 * 50  # 124.2
    x = png_frames([path], (1, 1, 2))
    assert np.allclose(x[0, 0, 0], [luma / 255, luma / 5 / 255], atol=1e-6)


def test_png_reader_refuses_what_it_cannot_read(tmp_path):
    deep = Image.new("I;16", (4, 4))
    deep.save(tmp_path / "deep.png")
    with pytest.raises(InputError, match="16-bit grayscale PNG"):
        read_png(tmp_path / "deep.png")
    (tmp_path / "x.png").write_bytes(b"GIF89a....")
    with pytest.raises(InputError, match="not a PNG"):
        read_png(tmp_path / "x.png")
    with pytest.raises(InputError, match="no such file"):
        read_png(tmp_path / "missing.png")
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3)).tolist()
    good = write_png(tmp_path / "cut.png", "RGB", [list(map(tuple, row)) for row in noise])
    data = good.read_bytes()
    for size in (40, len(data) // 2):
        good.write_bytes(data[:size])
        with pytest.raises(InputError, match="truncated or corrupt"):
            read_png(good)


def test_png_reader_names_pillow_when_it_is_missing(tmp_path, monkeypatch):
    path = write_png(tmp_path / "x.png", "L", PIXELS["L"])
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import Image` now fails
    with pytest.raises(BnnhwError, match="pip install pillow"):
        read_png(path)


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
    Image.fromarray(rgb).save(tmp_path / "d.png")
    x = png_frames([tmp_path / "d.png"], (1, 8, 8))
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
        pixels = rng.integers(0, 256, (24, 24), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    monkeypatch.setattr(serial, "serial_for_url", lambda *a, **k: GoldenBoard(build))
    assert main(["run", str(build.folder), *paths, "--port", "fake"]) == 0
    out = capsys.readouterr().out
    expected = golden.predict(build.net, png_frames(paths, build.net.input.shape))
    for i, cls in enumerate(expected.tolist()):
        assert f"frame {i}: class {cls}" in out
    assert "3 frames" in out
    assert main(["run", str(build.folder), paths[0], "x.npy", "--port", "fake"]) != 0
    assert "one .npy array or one or more .png images" in capsys.readouterr().err
