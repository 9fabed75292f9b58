"""The Gearbox and the padded downsizers alone, under random stalls, against a repack
worked out on Python integers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bnnhw
from bnnhw.passes.folding import fold_explicit
from bnnhw.rtl_gen.accelerator import port_format_for
from bnnhw.rtl_gen.width import Downsizer, Gearbox, WordSelector
from bnnhw.sim.amaranth_streams import run_streams


def _repacked(frames: list[list[int]], src: int, dst: int) -> list[int]:
    """Each frame's words joined (word 0 lowest), cut into dst-bit words, the last padded."""
    out = []
    for words in frames:
        bits, total = sum(w << (k * src) for k, w in enumerate(words)), len(words) * src
        out += [(bits >> (k * dst)) & ((1 << dst) - 1) for k in range(-(-total // dst))]
    return out


def _word(rng: np.random.Generator, bits: int) -> int:
    """A random word of ``bits`` bits (wider than NumPy's integers go)."""
    return int.from_bytes(rng.bytes(-(-bits // 8)), "little") & ((1 << bits) - 1)


@pytest.mark.parametrize(
    ("src", "dst", "frame_words"),
    [
        (16, 20, 49),
        (56, 44, 14),
        (20, 16, 5),
        (3, 5, 7),
        (8, 3, 5),
        (4, 20, 49),
        (40, 12, 3),
        (1, 7, 9),
        (112, 157, 7),
        (16, 157, 49),
        (157, 16, 3),
    ],
)
@pytest.mark.parametrize("gap", [0.0, 0.4])
def test_gearbox_repacks_each_frame(src, dst, frame_words, gap):
    rng = np.random.default_rng(src * 100 + dst)
    frames = [[_word(rng, src) for _ in range(frame_words)] for _ in range(4)]
    expected = _repacked(frames, src, dst)
    box = Gearbox(src, dst, frame_words)
    assert box.out_words * 4 == len(expected)
    words = [w for frame in frames for w in frame]
    run = run_streams(box, words, len(expected), in_gap=gap, out_gap=gap, seed=dst)
    assert run.outputs == expected
    if gap == 0:  # the formula's span of one frame is the one simulated
        single = run_streams(Gearbox(src, dst, frame_words), words[:frame_words], box.out_words)
        assert single.out_cycles[-1] == box.frame_cycles


def test_gearbox_pads_with_zeros_not_the_next_frame():
    """784 bits in 16-bit words into 20-bit words: the 40th word holds the frame's last 4
    bits and 16 zeros, even with the next frame's words waiting (all ones)."""
    ones = [0xFFFF] * 49
    run = run_streams(Gearbox(16, 20, 49), ones + ones, 80)
    assert run.outputs[39] == 0xF and run.outputs[79] == 0xF
    assert set(run.outputs[:39] + run.outputs[40:79]) == {0xFFFFF}


def test_host_words_for_the_shallowest_shifter():
    """TFC folded 64x44 4x64 4x64 5x8 (the ULX3S's): 784 bits into 44-bit SIMD words, and
    the slowest layer takes 18 cycles, so host words of 44 bits or more (dividing 784):
    49 bits land on any of 44 places (gcd 1), 56 bits on 11 (every 4th): 56. Folded 16x20
    (the iCEBreaker's): 16-bit words land on 5 places of 20, as 4 or 8 would: the widest."""
    root = Path(__file__).resolve().parents[1]
    net = bnnhw.load(root / "models" / "tfc_w1a1_in1_classic.onnx")

    def host_word(folding: str) -> int:
        layers = [tuple(map(int, f.split("x"))) for f in folding.split()]
        fold = {str(i): {"pe": pe, "simd": simd} for i, (pe, simd) in enumerate(layers)}
        return port_format_for(fold_explicit(net, fold, "test"), None, False).in_word

    assert host_word("64x44 4x64 4x64 5x8") == 56
    assert host_word("16x20 2x13 2x13 1x4") == 16


@pytest.mark.parametrize("kind", [Downsizer, WordSelector])
@pytest.mark.parametrize("gap", [0.0, 0.4])
def test_downsizers_zero_pad_the_last_piece(kind, gap):
    """A 64-bit vector in 11-bit words: six pieces, the last with 9 zero bits on top."""
    rng = np.random.default_rng(11)
    wide = [int(rng.integers(0, 2**63)) * 2 + 1 for _ in range(6)]
    run = run_streams(kind(64, 11), wide, 36, in_gap=gap, out_gap=gap, seed=5)
    assert run.outputs == [(w >> (11 * k)) & 0x7FF for w in wide for k in range(6)]
    assert max(run.outputs[5::6]) < 2**9
