"""Argmax over the output layer's scores; ties go to the lowest class, as np.argmax.

A comparison tree with a register after every level, so the longest path is one signed
compare (a carry chain) and a 2:1 mux, not the whole tree::

    i (scores) -> level 1: pairs compared, winners registered          [1]
               -> level 2 ... level L (L = ceil(log2(classes)))         [1 each]
               -> o (class in the low bits, then the scores, if kept)

Every node keeps its lower-index input unless the higher one is strictly greater. The
stages move together: the whole pipeline advances whenever its last stage is empty or
being read, so it takes one frame per cycle and never drops one under backpressure. The
scores, when kept, travel beside the tree in the same stages.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bnnhw.rtl_gen.checks import refuse


def argmax_levels(classes: int) -> int:
    """Comparison levels of the tree: ``ceil(log2(classes))`` (0 for one class)."""
    return max(0, (classes - 1).bit_length())


class Argmax(wiring.Component):
    """Scores vector in; ``class`` (low bits) and, with ``with_scores``, the scores out."""

    def __init__(self, classes: int, score_width: int, *, with_scores: bool = True) -> None:
        if classes < 1 or score_width < 1:
            refuse(
                self,
                f"Argmax needs classes >= 1 and score_width >= 1, got {classes}, {score_width}",
            )
        self.classes, self.score_width = classes, score_width
        self.index_width = max(1, (classes - 1).bit_length())
        self.with_scores = with_scores
        out = self.index_width + (classes * score_width if with_scores else 0)
        super().__init__(
            {"i": In(stream.Signature(classes * score_width)), "o": Out(stream.Signature(out))}
        )

    @property
    def latency(self) -> int:
        """Clock edges from taking a scores vector to its result on ``o``."""
        return max(1, argmax_levels(self.classes))

    def elaborate(self, platform) -> Module:
        m = Module()
        sw = self.score_width
        advance = Signal()  # every stage moves on by one
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        level: list[tuple[Value, Value]] = [
            (Const(c, self.index_width), self.i.payload[c * sw : (c + 1) * sw].as_signed())
            for c in range(self.classes)
        ]
        valid: Value = self.i.valid
        scores: Value = self.i.payload
        for stage in range(self.latency):
            merged = [
                self._pick(m, a, b) for a, b in zip(level[::2], level[1::2], strict=False)
            ] + ([level[-1]] if len(level) % 2 else [])
            level = []
            for n, (idx, val) in enumerate(merged):
                idx_r = Signal(self.index_width, name=f"s{stage}_idx{n}")
                val_r = Signal(signed(sw), name=f"s{stage}_val{n}")
                with m.If(advance):
                    m.d.sync += [idx_r.eq(idx), val_r.eq(val)]
                level.append((idx_r, val_r))
            valid_r = Signal(name=f"s{stage}_valid")
            with m.If(advance):
                m.d.sync += valid_r.eq(valid)
            valid = valid_r
            if self.with_scores:
                scores_r = Signal(len(self.i.payload), name=f"s{stage}_scores")
                with m.If(advance):
                    m.d.sync += scores_r.eq(scores)
                scores = scores_r
        result = Cat(level[0][0], scores) if self.with_scores else level[0][0]
        m.d.comb += [self.o.payload.eq(result), self.o.valid.eq(valid)]
        return m

    def _pick(
        self, m: Module, a: tuple[Value, Value], b: tuple[Value, Value]
    ) -> tuple[Value, Value]:
        """The winner of two (index, score) nodes: ``b`` only when strictly greater."""
        take_b = b[1] > a[1]
        return Mux(take_b, b[0], a[0]), Mux(take_b, b[1], a[1])
