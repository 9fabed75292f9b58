"""PortFormat against words worked out by hand: the oracle every bench and link relies on."""

from __future__ import annotations

import numpy as np

from bnnhw.port_format import PortFormat, pack_fields, unpack_fields

# 2 classes in 2 class bits, 4-bit scores: class 3, scores [-2, 5]
#   class 0b11, score 0 = -2 = 0b1110, score 1 = 5 = 0b0101, low bits first:
#   0b0101_1110_11 = 256 + 64 + 32 + 16 + 8 + 2 + 1 = 379
RESULT = PortFormat(3, 4, 6, classes=2, class_bits=2, score_bits=4, with_scores=True)


def test_result_word_by_hand():
    assert RESULT.out_word == 10
    assert RESULT.pack_result(3, [-2, 5]) == 379
    assert RESULT.unpack_result(379) == (3, [-2, 5])
    assert RESULT.unpack_result(0b1000_0111_00) == (0, [7, -8])  # the extremes of 4 bits


def test_result_without_scores_is_the_class():
    fmt = PortFormat(3, 4, 6, classes=2, class_bits=2, score_bits=4, with_scores=False)
    assert fmt.out_word == 2
    assert fmt.pack_result(3, [-2, 5]) == 3
    assert fmt.unpack_result(3) == (3, [])


def test_result_beats_by_hand():
    fmt = PortFormat(3, 4, 6, 2, 2, 4, True, out_beat=4)
    # 379 = 0x17B: three 4-bit beats, low first, the top one zero-padded
    assert (fmt.out_beat_bits, fmt.out_beats) == (4, 3)
    assert fmt.split_result(379) == [0xB, 0x7, 0x1]
    assert fmt.join_beats([0xB, 0x7, 0x1]) == 379


def test_frame_words_by_hand():
    # codes [-1, 2, 5] in 4 bits: 0xF, 0x2, 0x5 -> 0x52F = 1327 = 20 * 64 + 47
    assert RESULT.frame_words == 2
    assert RESULT.pack_frames(np.array([[-1, 2, 5]])) == [[47, 20]]
    assert RESULT.frame_codes(1327, signed=True) == [-1, 2, 5]
    assert RESULT.frame_codes(1327, signed=False) == [15, 2, 5]


def test_fields_by_hand():
    assert pack_fields([1, 0, 1, 1], 1) == 0b1101
    assert pack_fields([-1, 3], 3) == 0b011_111
    assert unpack_fields(0b011_111, 3, 2, signed=True) == [-1, 3]
    assert unpack_fields(0b011_111, 3, 2, signed=False) == [7, 3]


def test_interface_round_trip():
    for fmt in (RESULT, PortFormat(3, 4, 6, 2, 2, 4, True, out_beat=4)):
        interface = fmt.interface()
        assert interface["out_word"] == 10 and interface["frame_words"] == 2
        assert PortFormat.from_interface(interface) == fmt
