"""Argmax over the output layer's scores; ties go to the lowest class, as np.argmax.

Two implementations with the same ports; :func:`argmax_for` picks one.

``SerialArgmax`` compares one class per cycle with one comparator, while the scores turn
in a register: a frame every ``classes + 1`` cycles, for a few LUTs and no copies of the
scores. Every network whose slowest layer takes at least that long gets it.

``Argmax`` is a comparison tree with a register after every level, so the longest path
is one signed compare (a carry chain) and a 2:1 mux, not the whole tree::

    i (scores) -> level 1: pairs compared, winners registered          [1]
               -> level 2 ... level L (L = ceil(log2(classes)))         [1 each]
               -> o (class in the low bits, then the scores, if kept)

With ``split`` (a fast clock's) each level takes two stages: the pairs' compares into a
register beside the pairs, then the choice, so the longest path is the carry chain
alone. CNV-w1a1 built at 115 MHz on the ECP5 had a level's compare and choice (the
flip-flops' route, a carry chain, two LUTs) as its worst path, 8.4 ns::

    i -> level 1: pairs compared, compare bits and pairs registered    [1]
               -> winners chosen, registered                           [1]  ... per level

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


def argmax_for(
    classes: int, score_width: int, *, with_scores: bool, interval: int, serial: bool = True
) -> Argmax | SerialArgmax:
    """The cheapest argmax that takes a frame every ``interval`` cycles.

    ``serial=False``: the tree whatever the interval, with its levels split, for a fast
    clock (the ECP5's 125 MHz): the serial one's compare feeds the enables of its
    best-so-far registers through a wide multiplexer, SFC 128x27's worst path at 8.4 ns.
    """
    if serial and serial_keeps_up(classes, interval):
        return SerialArgmax(classes, score_width, with_scores=with_scores)
    return Argmax(classes, score_width, with_scores=with_scores, split=not serial)


def serial_keeps_up(classes: int, interval: int) -> bool:
    """Does ``SerialArgmax`` (a frame every ``classes + 1`` cycles) keep up?"""
    return interval >= classes + 1


def argmax_levels(classes: int) -> int:
    """Comparison levels of the tree: ``ceil(log2(classes))`` (0 for one class)."""
    return max(0, (classes - 1).bit_length())


class Argmax(wiring.Component):
    """Scores vector in; ``class`` (low bits) and, with ``with_scores``, the scores out."""

    def __init__(
        self, classes: int, score_width: int, *, with_scores: bool = True, split: bool = False
    ) -> None:
        if classes < 1 or score_width < 1:
            refuse(
                self,
                f"Argmax needs classes >= 1 and score_width >= 1, got {classes}, {score_width}",
            )
        self.classes, self.score_width = classes, score_width
        self.index_width = max(1, (classes - 1).bit_length())
        self.with_scores, self.split = with_scores, split
        out = self.index_width + (classes * score_width if with_scores else 0)
        super().__init__(
            {"i": In(stream.Signature(classes * score_width)), "o": Out(stream.Signature(out))}
        )

    @property
    def latency(self) -> int:
        """Clock edges from taking a scores vector to its result on ``o``."""
        return max(1, argmax_levels(self.classes) * (2 if self.split else 1))

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

        def register(value: Value, name: str) -> Signal:
            reg = Signal.like(value, name=name)
            with m.If(advance):
                m.d.sync += reg.eq(value)
            return reg

        takes: list[Signal] = []
        for stage in range(self.latency):
            pairs = list(zip(level[::2], level[1::2], strict=False))
            if self.split and stage % 2 == 0:
                # compare: each pair's compare bit, beside the nodes registered as they are
                takes = [
                    register(b[1] > a[1], f"s{stage}_take{n}") for n, (a, b) in enumerate(pairs)
                ]
                level = [
                    (
                        idx if isinstance(idx, Const) else register(idx, f"s{stage}_idx{n}"),
                        register(val, f"s{stage}_val{n}"),
                    )
                    for n, (idx, val) in enumerate(level)
                ]
            else:
                # choose (the pairs compared a stage ago, with ``split``)
                merged = [
                    self._pick(a, b, takes[n] if self.split else b[1] > a[1])
                    for n, (a, b) in enumerate(pairs)
                ] + ([level[-1]] if len(level) % 2 else [])
                level = [
                    (register(idx, f"s{stage}_idx{n}"), register(val, f"s{stage}_val{n}"))
                    for n, (idx, val) in enumerate(merged)
                ]
            valid = register(valid, f"s{stage}_valid")
            if self.with_scores:
                scores = register(scores, f"s{stage}_scores")
        result = Cat(level[0][0], scores) if self.with_scores else level[0][0]
        m.d.comb += [self.o.payload.eq(result), self.o.valid.eq(valid)]
        return m

    @staticmethod
    def _pick(a: tuple[Value, Value], b: tuple[Value, Value], take_b: Value) -> tuple[Value, Value]:
        """The winner of two (index, score) nodes: ``b`` when ``take_b`` (strictly greater)."""
        return Mux(take_b, b[0], a[0]), Mux(take_b, b[1], a[1])


class SerialArgmax(Argmax):
    """The same ports as :class:`Argmax`; one class per cycle, a frame every ``classes + 1``.

    Taking a frame loads the scores turned by one class (class 1 at the bottom) and
    class 0 as the best so far; each cycle after compares the bottom class with the best,
    keeps the strictly greater one and turns the scores by one more class. After
    ``classes - 1`` compares the scores are back in order and the result is ready; the
    next frame is taken the cycle after the result leaves.
    """

    @property
    def latency(self) -> int:
        return max(1, self.classes)

    def elaborate(self, platform) -> Module:
        m = Module()
        sw, n = self.score_width, self.classes
        scores = Signal(len(self.i.payload))
        best = Signal(signed(sw))
        index, count = Signal(self.index_width), Signal(range(max(2, n)))
        busy = Signal()
        m.d.comb += [
            # from flip-flops only: the consumer's ready does not reach the scores' load
            self.i.ready.eq(~busy & ~self.o.valid),
            self.o.payload.eq(Cat(index, scores) if self.with_scores else index),
        ]
        turned = Cat(scores[sw:], scores[:sw]) if n > 1 else scores
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            payload = self.i.payload
            m.d.sync += [
                scores.eq(Cat(payload[sw:], payload[:sw]) if n > 1 else payload),
                best.eq(payload[:sw].as_signed()),
                index.eq(0),
                count.eq(1),
            ]
            if n > 1:
                m.d.sync += busy.eq(1)
            else:
                m.d.sync += self.o.valid.eq(1)
        with m.Elif(busy):
            candidate = scores[:sw].as_signed()
            with m.If(candidate > best):
                m.d.sync += [best.eq(candidate), index.eq(count)]
            m.d.sync += [scores.eq(turned), count.eq(count + 1)]
            with m.If(count == n - 1):
                m.d.sync += [busy.eq(0), self.o.valid.eq(1)]
        return m
