"""The whole network as one streaming accelerator, built from a folded IR.

    i (host words) -> register slice -> [width converter] -> layer 0 -> [converter] -> ...
                   -> layer n -> argmax (pipelined) -> o (class, and optionally the scores)

A dense layer is an MVTU; a convolution is a ConvLayer (sliding window, MVTU, pool) that
takes and gives one pixel per beat. Every MVTU ends in its own output FIFO, so layers run
concurrently and the slowest one sets the throughput. ``port_format`` describes the words
on ``i`` and ``o``.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bnnhw.ir import Network
from bnnhw.passes.folding import DEFAULT_REGISTER_EVERY
from bnnhw.port_format import PortFormat
from bnnhw.rtl_gen.argmax import argmax_for
from bnnhw.rtl_gen.checks import refuse
from bnnhw.rtl_gen.conv_layer import ConvLayer
from bnnhw.rtl_gen.layer_params import LayerHW, layer_hw, signed_width
from bnnhw.rtl_gen.mvtu import MVTU
from bnnhw.rtl_gen.read_register_fifo import ReadRegisterFIFO
from bnnhw.rtl_gen.skid import SkidBuffer
from bnnhw.rtl_gen.width import (
    FAST_SELECT_PIECES,
    MAX_SELECT_PIECES,
    Downsizer,
    Gearbox,
    WordSelector,
    converter,
)


def port_format_for(
    net: Network, in_word: int | None, with_scores: bool, out_beat: int = 0
) -> PortFormat:
    """The host interface an Accelerator for ``net`` will have (no hardware is built)."""
    layers = [layer_hw(layer) for layer in net.layers]
    first, last = layers[0], layers[-1]
    word = first.stream_word
    frame = first.frame_bits
    if first.pad:
        # by default the host sends the first layer's own SIMD words, the frame's last one
        # zero-padded as the layer pads it: no converter (TFC's 784 bits in 12 words of
        # 66). A width of whole codes that divides the frame may be asked for instead, and
        # a Gearbox repacks it (its shift multiplexer is SIMD word / gcd places deep)
        code = first.element_bits
        in_word = in_word or word
        if in_word < 1 or in_word % code or (frame % in_word and in_word != word):
            raise ValueError(
                f"input word of {in_word} bits: it must be the first layer's {word}-bit "
                f"SIMD word, or divide the {frame}-bit frame in whole {code}-bit codes"
            )
    else:
        in_word = in_word or word
        what = "pixel (channels x input bits)" if first.window else "word (SIMD x input bits)"
        if in_word < 1 or not (
            word % in_word == 0 or (in_word % word == 0 and frame % in_word == 0)
        ):
            raise ValueError(
                f"input word of {in_word} bits: it must divide the first layer's "
                f"{word}-bit {what}, or be a multiple of it that divides the {frame}-bit "
                "frame"
            )
    if out_beat < 0:
        raise ValueError(f"output word of {out_beat} bits: give a positive width")
    out_word = max(1, (net.classes - 1).bit_length()) + (
        net.classes * signed_width(*last.score_range) if with_scores else 0
    )
    return PortFormat(
        input_elements=net.input.size,
        input_bits=net.input.bits,
        in_word=in_word,
        classes=net.classes,
        class_bits=max(1, (net.classes - 1).bit_length()),
        score_bits=signed_width(*last.score_range),
        with_scores=with_scores,
        out_beat=out_beat if 0 < out_beat < out_word else 0,
    )


# the accelerator's submodule for layer i is named LAYER + str(i)
LAYER = "layer"


def layer_of(module: str) -> int | None:
    """The layer a module of the design belongs to, from its hierarchical name
    (``top.accelerator.layer3.mvtu``: 3), or None."""
    found = re.search(rf"(?:^|\.)accelerator\.{LAYER}(\d+)(?:\.|$)", module)
    return int(found.group(1)) if found else None


class Accelerator(wiring.Component):
    """All layers of ``net`` (folded, with PE/SIMD set) behind one input and one output."""

    def __init__(
        self,
        net: Network,
        *,
        in_word: int | None = None,
        with_scores: bool = True,
        register_every: int = DEFAULT_REGISTER_EVERY,
        out_beat: int = 0,
        contents: bool = True,
        read_register: bool = False,
        bank_words: int | None = None,
        late_slices: Collection[int] = (),
    ) -> None:
        """``contents=False``: ROMs of the right shapes, left empty (resource estimates);
        ``read_register``: every MVTU registers its memories' reads, and ``bank_words`` sets
        the depth of its weight ROM's banks; ``late_slices``: the layers (indices) whose
        weight ROM slices are read late (``MVTU``)."""
        try:
            self.port_format = port_format_for(net, in_word, with_scores, out_beat)
        except ValueError as exc:
            refuse(self, str(exc))
        self.layers: list[LayerHW] = [layer_hw(layer) for layer in net.layers]
        self.register_every, self.read_register = register_every, read_register
        self.interval = max(hw.walk_cycles for hw in self.layers)
        # a hidden layer's output is its neurons' bits; between dense layers the next
        # layer reads the FIFO's word in place, and the selector holds it while it does
        # (with read registers, a fast clock's, only a word of a few pieces)
        widths = [self.port_format.in_word] + [hw.neurons for hw in self.layers[:-1]]
        pieces = FAST_SELECT_PIECES if read_register else MAX_SELECT_PIECES
        self.converters = [
            Gearbox(width, hw.stream_word, self.port_format.frame_words)
            # host words of another width into zero-padded SIMD words, per frame
            if index == 0 and hw.pad and width != hw.stream_word
            else converter(
                width,
                hw.stream_word,
                in_place=index > 0 and self.layers[index - 1].window is None,
                max_pieces=pieces,
            )
            for index, (width, hw) in enumerate(zip(widths, self.layers, strict=True))
        ]
        holds = [c.ratio if isinstance(c, WordSelector) else 0 for c in self.converters[1:]]
        self.stages = [
            ConvLayer(
                hw,
                register_every=register_every,
                run_ahead=index > 0,
                interval=self.interval,
                contents=contents,
                read_register=read_register,
                bank_words=bank_words,
                late_slices=index in late_slices,
            )
            if hw.window is not None
            else MVTU(
                hw,
                register_every=register_every,
                contents=contents,
                consumer_hold=hold,
                read_register=read_register,
                bank_words=bank_words,
                late_slices=index in late_slices,
            )
            for index, (hw, hold) in enumerate(zip(self.layers, [*holds, 0], strict=True))
        ]
        self.argmax = argmax_for(
            net.classes,
            self.port_format.score_bits,
            with_scores=with_scores,
            interval=self.interval,
            serial=not read_register,
        )
        super().__init__(
            {
                "i": In(stream.Signature(self.port_format.in_word)),
                "o": Out(stream.Signature(self.port_format.out_beat_bits)),
            }
        )

    @property
    def has_windows(self) -> bool:
        return any(hw.window is not None for hw in self.layers)

    @property
    def ideal_cycles(self) -> int:
        """Cycles per frame of the slowest layer: the steady-state initiation interval.

        A convolution's layer costs its window walk (one padded position per cycle), its
        products (NF x SF per window) or its pool walk, whichever is slowest.
        """
        return self.interval

    @property
    def line_buffer_bits(self) -> list[int]:
        """Per layer: bits of line-buffer memory (0 for a dense layer)."""
        return [s.line_buffer_bits if isinstance(s, ConvLayer) else 0 for s in self.stages]

    @property
    def fifo_bits(self) -> list[int]:
        """Per layer: bits of a convolution's pixel and window FIFOs (0 for a dense layer)."""
        return [s.fifo_bits if isinstance(s, ConvLayer) else 0 for s in self.stages]

    @property
    def latency_cycles(self) -> int:
        """Clock edges from a frame's first input handshake to its result's, with no stalls.

        Per layer: its input words arrive (SF, or the host's words for layer 0; through a
        ``Gearbox``, its ``frame_cycles``), NF * SF compute cycles and ``MVTU.latency``
        (its pipeline registers); plus one per registered width converter (``latency``),
        the input register slice and the
        argmax's pipeline (``SkidBuffer.latency``, ``Argmax.latency``); with output beats,
        one for the output converter and one per further beat (to the result's last beat).
        Pinned against simulation by the tests. With convolutions the figure is an upper
        estimate: every layer's whole frame of work, one after another.
        """
        if self.has_windows:
            return self._conv_latency_estimate()
        total = SkidBuffer.latency + self.argmax.latency
        stages = zip(self.layers, self.stages, self.converters, strict=True)
        for index, (hw, mvtu, conv) in enumerate(stages):
            load = max(hw.sf, self.port_format.frame_words) if index == 0 else hw.sf
            if isinstance(conv, Gearbox):  # its padded last word may cost a cycle more
                total += conv.frame_cycles + hw.cycles + mvtu.latency
            else:
                total += load + hw.cycles + mvtu.latency + (conv.latency if conv else 0)
        if self.port_format.out_beats > 1:
            total += self.port_format.out_beats
        return total

    def _conv_latency_estimate(self) -> int:
        """Every layer's steady-state frame, its first vector's load, its MVTU and the
        registers a convolution puts around its MVTU, one layer after another."""
        # conv_layer.py's registers in front of and behind the MVTU: pixel FIFO and window
        # FIFO (each SyncFIFOBuffered, 2 cycles from write to read, or with read registers
        # a ReadRegisterFIFO), the window generator's output register (1), a Downsizer to
        # SIMD words past 16 pieces (1; read in place up to 16, 0), the register slice
        # before the window FIFO (1), the pool's window and output registers (2). Counted
        # for every layer, dense ones too: an upper estimate.
        queue = ReadRegisterFIFO.latency if self.read_register else 2
        around_mvtu = queue + 1 + queue + 1 + SkidBuffer.latency + 2
        total = SkidBuffer.latency + self.argmax.latency
        total += self.port_format.frame_words + self.port_format.out_beats
        for hw, stage in zip(self.layers, self.stages, strict=True):
            mvtu = stage.mvtu if isinstance(stage, ConvLayer) else stage
            total += hw.walk_cycles + hw.sf + mvtu.latency + around_mvtu
        return total

    def elaborate(self, platform) -> Module:
        m = Module()
        # a register slice, so no path runs from the producer's logic into layer 0's
        m.submodules.input_slice = input_slice = SkidBuffer(self.port_format.in_word)
        wiring.connect(m, wiring.flipped(self.i), input_slice.i)
        upstream = input_slice.o
        stages = zip(self.stages, self.converters, strict=True)
        for index, (stage, conv) in enumerate(stages):
            if conv is not None:
                m.submodules[f"convert{index}"] = conv
                wiring.connect(m, upstream, conv.i)
                upstream = conv.o
            m.submodules[f"{LAYER}{index}"] = stage
            wiring.connect(m, upstream, stage.i)
            upstream = stage.o
        m.submodules.argmax = self.argmax
        wiring.connect(m, upstream, self.argmax.i)
        fmt = self.port_format
        if fmt.out_beats == 1:
            wiring.connect(m, self.argmax.o, wiring.flipped(self.o))
            return m
        # results leave in out_beat-bit words: zero-pad to whole beats, then downsize
        m.submodules.convert_out = out = Downsizer(
            fmt.out_beats * fmt.out_beat_bits, fmt.out_beat_bits
        )
        m.d.comb += [
            out.i.payload.eq(self.argmax.o.payload),
            out.i.valid.eq(self.argmax.o.valid),
            self.argmax.o.ready.eq(out.i.ready),
        ]
        wiring.connect(m, out.o, wiring.flipped(self.o))
        return m
