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


def test_host_words_are_the_first_layers_simd_words():
    """TFC folded 64x66 8x64 8x64 5x16 (12 cycles a frame): 784 bits in 66-bit SIMD words.
    No 66-bit word divides 784, so a Gearbox from any host word that does would shift
    into 33 places (gcd 2); instead the host sends 12 words of 66 bits, the last carrying
    58 bits and 8 zeros, and no converter sits before layer 0 (test_rtl_network). A word
    that divides the frame may be asked for (a Gearbox repacks it); one that does neither
    is refused."""
    root = Path(__file__).resolve().parents[1]
    net = bnnhw.load(root / "models" / "tfc_w1a1_in1_classic.onnx")
    fold = {
        str(i): {"pe": pe, "simd": simd}
        for i, (pe, simd) in enumerate([(64, 66), (8, 64), (8, 64), (5, 16)])
    }
    net = fold_explicit(net, fold, "test")
    fmt = port_format_for(net, None, False)
    assert (fmt.in_word, fmt.frame_words, fmt.sent_bits) == (66, 12, 792)
    frame = [fmt.pack_frames(np.ones((1, 784), np.int64))[0]]
    assert frame[0][:11] == [2**66 - 1] * 11 and frame[0][11] == 2**58 - 1
    assert port_format_for(net, 56, False).frame_words == 14  # a Gearbox's
    with pytest.raises(ValueError, match="66-bit SIMD word, or divide the 784-bit frame"):
        port_format_for(net, 60, False)


@pytest.mark.parametrize("kind", [Downsizer, WordSelector])
@pytest.mark.parametrize("gap", [0.0, 0.4])
def test_downsizers_zero_pad_the_last_piece(kind, gap):
    """A 64-bit vector in 11-bit words: six pieces, the last with 9 zero bits on top."""
    rng = np.random.default_rng(11)
    wide = [int(rng.integers(0, 2**63)) * 2 + 1 for _ in range(6)]
    run = run_streams(kind(64, 11), wide, 36, in_gap=gap, out_gap=gap, seed=5)
    assert run.outputs == [(w >> (11 * k)) & 0x7FF for w in wide for k in range(6)]
    assert max(run.outputs[5::6]) < 2**9
