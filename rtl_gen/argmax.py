"""Argmax over the output layer's scores; ties go to the lowest class, as np.argmax."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bnnhw.rtl_gen.checks import refuse


class Argmax(wiring.Component):
    """Scores vector in; ``class`` (low bits) and, with ``with_scores``, the scores out.

    A comparison tree, each node keeping its lower-index input unless the higher one is
    strictly greater, followed by one output register.
    """

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

    def elaborate(self, platform) -> Module:
        m = Module()
        sw = self.score_width
        level = [
            (Const(c, self.index_width), self.i.payload[c * sw : (c + 1) * sw].as_signed())
            for c in range(self.classes)
        ]
        while len(level) > 1:
            merged = []
            for a, b in zip(level[::2], level[1::2], strict=False):
                take_b = b[1] > a[1]
                idx = Signal(self.index_width)
                val = Signal(signed(sw))
                m.d.comb += [idx.eq(Mux(take_b, b[0], a[0])), val.eq(Mux(take_b, b[1], a[1]))]
                merged.append((idx, val))
            if len(level) % 2:
                merged.append(level[-1])
            level = merged
        result = Cat(level[0][0], self.i.payload) if self.with_scores else level[0][0]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.payload.eq(result), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        return m
