"""The accelerator as a component for your own Amaranth design.

``Classifier(net)`` wraps :class:`~bnnhw.rtl_gen.accelerator.Accelerator` behind two
``lib.stream`` ports whose payloads are ``lib.data`` views, so a design connects it with
``wiring.connect`` and reads the result by name::

    clf = Classifier(bnnhw.load("models/digits_w1a1_in1_classic.onnx"), max_lanes=16)
    m.submodules.clf = clf
    wiring.connect(m, camera.o, clf.i)      # payload: clf.frame_layout (input codes)
    m.d.comb += leds.eq(clf.o.payload.label)  # and clf.o.payload.scores[k]

The bits are exactly the accelerator's (:class:`bnnhw.port_format.PortFormat`): a frame is
``frame_words`` beats of ``in_word // input_bits`` input codes, element 0 in the low bits;
a result is the class (``label``) then, with scores, one signed score per class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module, Shape, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from bnnhw.ir import Network
from bnnhw.passes.folding import (
    DEFAULT_MAX_LANES,
    DEFAULT_REGISTER_EVERY,
    fold_auto,
    fold_explicit,
)
from bnnhw.port_format import PortFormat
from bnnhw.rtl_gen.accelerator import Accelerator
from bnnhw.rtl_gen.checks import refuse


@dataclass(frozen=True)
class ResourceEstimate:
    """What the classifier costs before synthesis (``boards/fit.py``'s model).

    ``logic_cells`` is the hand-set iCE40 model summed over the layers, without the board
    link the model adds for a whole-chip design; weights live in ROMs of ``weight_bits``.
    """

    lanes: int  # XNOR lanes (PE x SIMD), all layers
    logic_cells: int
    weight_bits: int
    line_buffer_bits: int
    fifo_bits: int


class Classifier(wiring.Component):
    """A folded binary network as a streaming classifier: frames in, classes out.

    ``net`` is an integer IR (``bnnhw.load``). Its folding: ``folding`` (a mapping
    ``{"layer name or index": {"pe": P, "simd": S}}``), else ``max_lanes`` (the automatic
    folding's budget), else the PE/SIMD already on the layers, else the automatic folding
    with the default budget. ``in_word`` is the input beat width (default: the first
    layer's SIMD word); it must hold whole input codes. ``with_scores=False`` drops the
    scores from the result.

    Ports: ``i``, a stream of :attr:`frame_layout` (an array of input codes, bipolar
    codes 1 = +1), and ``o``, a stream of :attr:`result_layout` (``label``, ``scores``).
    Frames are accepted back to back; the output stream may apply backpressure.
    """

    def __init__(
        self,
        net: Network,
        *,
        folding: Mapping[str, Mapping[str, int]] | None = None,
        max_lanes: int | None = None,
        in_word: int | None = None,
        with_scores: bool = True,
        register_every: int = DEFAULT_REGISTER_EVERY,
    ) -> None:
        if not net.folded:
            refuse(self, f"{net.name}: streamline the network first (bnnhw.load does)")
        if folding is not None:
            net = fold_explicit(net, {k: dict(v) for k, v in folding.items()}, "folding")
        elif max_lanes is not None or any(la.pe is None for la in net.layers):
            net = fold_auto(net, max_lanes or DEFAULT_MAX_LANES)
        self.net = net
        self.accelerator = Accelerator(
            net, in_word=in_word, with_scores=with_scores, register_every=register_every
        )
        fmt = self.port_format
        if fmt.in_word % fmt.input_bits:
            refuse(
                self,
                f"input word of {fmt.in_word} bits: give a multiple of the "
                f"{fmt.input_bits}-bit input code",
            )
        self.frame_layout = data.ArrayLayout(self._code_shape(), fmt.in_word // fmt.input_bits)
        fields: dict[str, Shape | data.Layout] = {"label": unsigned(fmt.class_bits)}
        if with_scores:
            fields["scores"] = data.ArrayLayout(signed(fmt.score_bits), fmt.classes)
        self.result_layout = data.StructLayout(fields)
        assert self.result_layout.size == fmt.out_word  # the same bits as the accelerator's
        super().__init__(
            {
                "i": In(stream.Signature(self.frame_layout)),
                "o": Out(stream.Signature(self.result_layout)),
            }
        )

    def _code_shape(self) -> Shape:
        spec = self.net.input
        return signed(spec.bits) if spec.bits > 1 and spec.signed else unsigned(spec.bits)

    # -- what it is -----------------------------------------------------------------------
    @property
    def port_format(self) -> PortFormat:
        """The accelerator's words, for hosts and test benches (plain Python)."""
        return self.accelerator.port_format

    @property
    def frame_words(self) -> int:
        """Beats of ``i`` per frame."""
        return self.port_format.frame_words

    @property
    def initiation_interval(self) -> int:
        """Cycles per frame in steady state: the slowest layer, or the input beats.

        The same bound ``bnnhw build`` reports (``initiation_interval_cycles``).
        """
        return max(self.accelerator.ideal_cycles, self.frame_words)

    @property
    def latency(self) -> int:
        """Cycles from a frame's first input beat to its result, without stalls.

        Exact for dense networks (pinned against simulation); an upper estimate with
        convolutions (:attr:`latency_exact`).
        """
        return self.accelerator.latency_cycles

    @property
    def latency_exact(self) -> bool:
        return not self.accelerator.has_windows

    @property
    def folding(self) -> tuple[tuple[int, int], ...]:
        """(PE, SIMD) per layer."""
        return tuple((layer.pe, layer.simd) for layer in self.net.layers)

    @property
    def resources(self) -> ResourceEstimate:
        """The pre-synthesis estimate (``boards/fit.py``: logic cells per layer)."""
        from bnnhw.boards.fit import layer_cells

        acc = self.accelerator
        return ResourceEstimate(
            lanes=sum(hw.pe * hw.simd for hw in acc.layers),
            logic_cells=round(sum(layer_cells(hw) for hw in acc.layers)),
            weight_bits=sum(hw.neurons * hw.fan_in for hw in acc.layers),
            line_buffer_bits=sum(acc.line_buffer_bits),
            fifo_bits=sum(acc.fifo_bits),
        )

    # -- frames and results on the host side ---------------------------------------------
    def encode(self, x: np.ndarray) -> list[list[int]]:
        """Float frames ``(N, *input shape)`` -> per frame, its ``frame_words`` beats.

        The host-side quantisation is the golden model's, so the words are what the
        graph's own quantizer makes of ``x``.
        """
        from bnnhw import golden

        x = golden.check_inputs(self.net.input, np.asarray(x))
        return self.port_format.pack_frames(golden.layer_outputs(self.net, x)[0])

    def decode(self, result: int) -> tuple[int, list[int]]:
        """A result payload (as an integer) -> (class, scores)."""
        return self.port_format.unpack_result(result)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.accelerator = acc = self.accelerator
        m.d.comb += [
            acc.i.payload.eq(self.i.payload),
            acc.i.valid.eq(self.i.valid),
            self.i.ready.eq(acc.i.ready),
            self.o.payload.eq(acc.o.payload),
            self.o.valid.eq(acc.o.valid),
            acc.o.ready.eq(self.o.ready),
        ]
        return m
