"""The accelerator's host interface: how frames become input words and results come back.

Plain NumPy, shared by the simulators, the test benches and the board link, so every one
of them packs and unpacks words the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PortFormat:
    """How a host talks to the accelerator (all little-endian, element 0 first).

    A frame is ``input_elements`` codes of ``input_bits`` bits each (two's complement for
    a signed input; bipolar inputs are 1 bit, 1 = +1), packed into ``frame_words`` words of
    ``in_word`` bits. Each result is one ``out_word``-bit word: the class in the low
    ``class_bits`` bits, then (if ``with_scores``) one ``score_bits``-bit signed score per
    class, class 0 first. With ``out_beat`` set, the result leaves in ``out_beats`` words of
    ``out_beat`` bits, low bits first, zero-padded at the top.
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
        return self.frame_bits // self.in_word

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

    def join_beats(self, beats: list[int]) -> int:
        """The output beats of one result (low bits first) -> the result word."""
        return sum(b << (i * self.out_beat_bits) for i, b in enumerate(beats))

    def split_result(self, word: int) -> list[int]:
        """A result word -> the beats the accelerator sends for it."""
        mask = (1 << self.out_beat_bits) - 1
        return [(word >> (i * self.out_beat_bits)) & mask for i in range(self.out_beats)]

    def pack_frames(self, codes: np.ndarray) -> list[list[int]]:
        """Input codes (N, input_elements) -> per frame, its ``frame_words`` input words."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[1] != self.input_elements:
            raise ValueError(f"codes must be (N, {self.input_elements}), got {codes.shape}")
        mask = (1 << self.input_bits) - 1
        frames = []
        for row in codes:
            value = 0
            for i, code in enumerate(row.tolist()):
                value |= (code & mask) << (i * self.input_bits)
            word_mask = (1 << self.in_word) - 1
            frames.append(
                [(value >> (w * self.in_word)) & word_mask for w in range(self.frame_words)]
            )
        return frames

    def unpack_result(self, word: int) -> tuple[int, list[int]]:
        """One output word -> (class, scores); scores is empty without ``with_scores``."""
        cls = word & ((1 << self.class_bits) - 1)
        scores = []
        if self.with_scores:
            sb = self.score_bits
            for c in range(self.classes):
                raw = (word >> (self.class_bits + c * sb)) & ((1 << sb) - 1)
                scores.append(raw - (1 << sb) if raw >> (sb - 1) else raw)
        return cls, scores
