"""The accelerator's host interface: how frames become input words and results come back.

Plain Python (NumPy for frames), without Amaranth, so the hardware generator, the test
benches inside a simulator, the board link and the tests all pack and unpack words with
this one definition. Every word is little-endian: field 0 in the low bits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np


def pack_fields(values: Iterable[int], bits: int) -> int:
    """Fields of ``bits`` bits, field 0 lowest; a negative value goes in two's complement."""
    mask = (1 << bits) - 1
    word = 0
    for i, value in enumerate(values):
        word |= (int(value) & mask) << (i * bits)
    return word


def unpack_fields(word: int, bits: int, count: int, *, signed: bool) -> list[int]:
    """The ``count`` fields of ``bits`` bits in ``word``, field 0 lowest (inverse of pack)."""
    mask, top = (1 << bits) - 1, 1 << (bits - 1)
    fields = [(word >> (i * bits)) & mask for i in range(count)]
    return [f - (1 << bits) if signed and f & top else f for f in fields]


@dataclass(frozen=True)
class PortFormat:
    """How a host talks to the accelerator (all little-endian, element 0 first).

    A frame is ``input_elements`` codes of ``input_bits`` bits each (two's complement for
    a signed input; bipolar inputs are 1 bit, 1 = +1), packed into ``frame_words`` words of
    ``in_word`` bits, the last one zero-padded at the top when the word does not divide the
    frame (a first layer's SIMD word: 784 bits in 12 words of 66). Each result is one
    ``out_word``-bit word: the class in the low ``class_bits`` bits, then (if
    ``with_scores``) one ``score_bits``-bit signed score per class, class 0 first. With
    ``out_beat`` set, the result leaves in ``out_beats`` words of ``out_beat`` bits, low
    bits first, zero-padded at the top.
    """

    input_elements: int
    input_bits: int
    in_word: int
    classes: int
    class_bits: int
    score_bits: int
    with_scores: bool
    out_beat: int = 0  # 0: the whole result in one word

    @property
    def frame_bits(self) -> int:
        return self.input_elements * self.input_bits

    @property
    def frame_words(self) -> int:
        return -(-self.frame_bits // self.in_word)

    @property
    def sent_bits(self) -> int:
        """A frame as the host sends it: whole words, the padding included."""
        return self.frame_words * self.in_word

    @property
    def out_word(self) -> int:
        return self.class_bits + (self.classes * self.score_bits if self.with_scores else 0)

    @property
    def out_beat_bits(self) -> int:
        """Width of the output port: one beat."""
        return self.out_beat or self.out_word

    @property
    def out_beats(self) -> int:
        return -(-self.out_word // self.out_beat_bits)

    # -- input frames ---------------------------------------------------------------------
    def pack_frames(self, codes: np.ndarray) -> list[list[int]]:
        """Input codes (N, input_elements) -> per frame, its ``frame_words`` input words."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[1] != self.input_elements:
            raise ValueError(f"codes must be (N, {self.input_elements}), got {codes.shape}")
        frames = []
        for row in codes.tolist():
            frame = pack_fields(row, self.input_bits)
            frames.append(unpack_fields(frame, self.in_word, self.frame_words, signed=False))
        return frames

    def frame_codes(self, frame: int, *, signed: bool) -> list[int]:
        """A frame's words joined into one integer (word 0 lowest) -> its input codes."""
        return unpack_fields(frame, self.input_bits, self.input_elements, signed=signed)

    # -- results --------------------------------------------------------------------------
    def pack_result(self, cls: int, scores: Iterable[int] = ()) -> int:
        """(class, scores) -> the result word; scores are dropped without ``with_scores``."""
        word = int(cls)
        if self.with_scores:
            word |= pack_fields(scores, self.score_bits) << self.class_bits
        return word

    def unpack_result(self, word: int) -> tuple[int, list[int]]:
        """One result word -> (class, scores); scores is empty without ``with_scores``."""
        cls = word & ((1 << self.class_bits) - 1)
        if not self.with_scores:
            return cls, []
        fields = word >> self.class_bits
        return cls, unpack_fields(fields, self.score_bits, self.classes, signed=True)

    def join_beats(self, beats: list[int]) -> int:
        """The output beats of one result (low bits first) -> the result word."""
        return pack_fields(beats, self.out_beat_bits)

    def split_result(self, word: int) -> list[int]:
        """A result word -> the beats the accelerator sends for it."""
        return unpack_fields(word, self.out_beat_bits, self.out_beats, signed=False)

    # -- as written in report.json and the vectors header ---------------------------------
    def interface(self) -> dict[str, int | bool]:
        """The ``interface`` section of report.json."""
        return {
            "in_word": self.in_word,
            "frame_words": self.frame_words,
            "input_elements": self.input_elements,
            "input_bits": self.input_bits,
            "out_word": self.out_word,
            "out_beat_bits": self.out_beat_bits,
            "out_beats": self.out_beats,
            "class_bits": self.class_bits,
            "score_bits": self.score_bits,
            "with_scores": self.with_scores,
            "classes": self.classes,
        }

    @classmethod
    def from_interface(cls, interface: Mapping[str, int | bool]) -> PortFormat:
        """Read back what :meth:`interface` wrote."""
        beats = int(interface.get("out_beats", 1))
        return cls(
            input_elements=int(interface["input_elements"]),
            input_bits=int(interface["input_bits"]),
            in_word=int(interface["in_word"]),
            classes=int(interface["classes"]),
            class_bits=int(interface["class_bits"]),
            score_bits=int(interface["score_bits"]),
            with_scores=bool(interface["with_scores"]),
            out_beat=int(interface["out_beat_bits"]) if beats > 1 else 0,
        )
