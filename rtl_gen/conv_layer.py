"""A convolutional layer: sliding window, then the MVTU on every window, then a max-pool.

Unpadded, with SIMD dividing the channels (``LayerHW.reads_windows``)::

    i (one pixel per beat) -> WindowReader (rows in block RAM, SIMD words read by
                              address) -> MVTU -> [BinaryPool] -> o (one pixel per beat)

Otherwise (a padded map's border, words that straddle pixels)::

    i (one pixel per beat) -> [pixel FIFO] -> SlidingWindow -> [SIMD-element pieces of its
                              output register, read in place (a Downsizer past 16 pieces)]
                           -> [register slice -> window FIFO] -> MVTU -> [BinaryPool]
                           -> o (one pixel per beat)

With read registers (ECP5) both FIFOs are ``ReadRegisterFIFO``s, whose block-RAM read
leaves through the block's output register.

The MVTU treats each window as one input vector and emits one output pixel (all its
channels) per window, so the layer is the dense MVTU unchanged, fed by the window
generator. Its output is a map in the same pixel-per-beat form the next layer takes.

Why the FIFOs: the window generator walks the padded map one position per cycle, but
emits windows only at some positions; between two windows (the longest such run is the
"gap": a frame's first kh-1 rows, rows a stride skips) the MVTU would idle unless windows
wait in front of it, and the layer before would idle unless it could run ahead by those
rows. The window FIFO holds the windows the MVTU computes while the generator crosses
the gap (at the input's pace when this layer is not the slowest); the pixel FIFO
(``run_ahead``) holds kh-1+stride rows plus a window's width, or the gap if longer.
A ``WindowReader``'s row buffer does both: it reads windows while the next rows come.
"""

from __future__ import annotations

import math

from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from bnnhw.ir import Window
from bnnhw.passes.folding import DEFAULT_REGISTER_EVERY
from bnnhw.rtl_gen.binary_pool import BinaryPool
from bnnhw.rtl_gen.checks import refuse
from bnnhw.rtl_gen.layer_params import LayerHW
from bnnhw.rtl_gen.mvtu import MVTU
from bnnhw.rtl_gen.read_register_fifo import ReadRegisterFIFO
from bnnhw.rtl_gen.skid import SkidBuffer
from bnnhw.rtl_gen.sliding_window import SlidingWindow
from bnnhw.rtl_gen.width import converter
from bnnhw.rtl_gen.window_reader import WindowReader


def longest_gap(win: Window) -> int:
    """Most walk positions from one window to the next, wrapping into the next frame."""
    kh, kw = win.kernel
    sh, sw = win.stride
    rows = [r for r in range(win.padded_height) if r >= kh - 1 and (r - kh + 1) % sh == 0]
    cols = [c for c in range(win.padded_width) if c >= kw - 1 and (c - kw + 1) % sw == 0]
    rows, cols = rows[: win.out_height], cols[: win.out_width]
    at = [r * win.padded_width + c for r in rows for c in cols]
    walk = win.walk_cycles
    return max(b - a for a, b in zip(at, [*at[1:], at[0] + walk], strict=True))


class ConvLayer(wiring.Component):
    """One convolution (``hw.window`` set), with its optional pool."""

    def __init__(
        self,
        hw: LayerHW,
        *,
        register_every: int = DEFAULT_REGISTER_EVERY,
        run_ahead: bool = True,
        interval: int | None = None,
        contents: bool = True,
        read_register: bool = False,
        late_slices: bool = False,
        bank_words: int | None = None,
    ) -> None:
        """``interval``: the network's cycles per frame (default: this layer's own);
        ``contents``, ``read_register``, ``late_slices``, ``bank_words``: the MVTU's (False:
        empty ROMs, for resource estimates; a register after its memories' reads; its
        weight slices read late; its weight banks)."""
        if hw.window is None or hw.is_output:
            refuse(self, f"layer {hw.name!r}: ConvLayer needs a hidden layer with a window")
        self.hw, self.read_register = hw, read_register
        win = hw.window
        self.reader = hw.reads_windows
        walk = win.walk_cycles
        gap = longest_gap(win)
        rows = (win.kernel[0] - 1 + win.stride[0]) * win.padded_width + win.kernel[1]
        self.fifo_depth = max(rows, gap) if run_ahead else 0
        interval = interval or hw.frame_cycles
        pace = 1.0 if hw.frame_cycles >= interval else max(1.0, interval / walk)
        # the windows computed while the generator crosses the gap, plus two of slack
        # (measured on random geometries: with less, a layer as fast as its walk, or one
        # feeding a dense layer of the same speed, loses cycles)
        self.window_depth = math.ceil(gap * pace / hw.cycles) + 2
        self.window: SlidingWindow | WindowReader
        if self.reader:  # its row buffer holds what the FIFOs would
            self.fifo_depth = self.window_depth = 0
            self.window = WindowReader(win, hw.element_bits, hw.simd, read_register=read_register)
        else:
            self.window = SlidingWindow(
                win, hw.element_bits, ternary=hw.ternary, read_register=read_register
            )
        self.mvtu = MVTU(
            hw,
            register_every=register_every,
            contents=contents,
            read_register=read_register,
            bank_words=bank_words,
            late_slices=late_slices,
        )
        self.pool = (
            BinaryPool(hw.pool, hw.pool_and, read_register=read_register)
            if hw.pool is not None
            else None
        )
        super().__init__(
            {
                "i": In(stream.Signature(hw.stream_word)),
                "o": Out(stream.Signature(hw.neurons)),
            }
        )

    @property
    def line_buffer_bits(self) -> int:
        """Line-buffer memory of the window generator (or row buffer) and of the pool."""
        window = self.window.buffer_bits if self.reader else self.window.line_buffer_bits
        return window + (self.pool.line_buffer_bits if self.pool else 0)

    @property
    def window_fifo_shape(self) -> tuple[int, int]:
        """(width, depth) of the window FIFO: ``window_depth`` windows, held as the SIMD
        words the MVTU takes (the downsizer's output, or the window when they are equal)."""
        word = self.hw.simd * self.hw.in_bits
        # at least 3 words: the registered room (``elaborate``) relies on it
        return word, max(3, math.ceil(self.window_depth * len(self.window.o.payload) / word))

    @property
    def fifo_bits(self) -> int:
        """Bits of the pixel and window FIFOs (a ``WindowReader``'s output FIFO)."""
        if self.reader:
            return self.window.fifo_depth * len(self.window.o.payload)
        width, depth = self.window_fifo_shape
        return self.fifo_depth * self.hw.stream_word + (depth * width if self.window_depth else 0)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.window = self.window
        if self.reader:
            wiring.connect(m, wiring.flipped(self.i), self.window.i)
            m.submodules.mvtu = self.mvtu
            wiring.connect(m, self.window.o, self.mvtu.i)
            return self._pool(m, self.mvtu.o)
        if self.fifo_depth and self.read_register:
            m.submodules.pixels = pixels = ReadRegisterFIFO(self.hw.stream_word, self.fifo_depth)
            wiring.connect(m, wiring.flipped(self.i), pixels.i)
            wiring.connect(m, pixels.o, self.window.i)
        elif self.fifo_depth:
            m.submodules.pixels = pixels = fifo.SyncFIFOBuffered(
                width=self.hw.stream_word, depth=self.fifo_depth
            )
            wiring.connect(m, wiring.flipped(self.i), pixels.w_stream)
            wiring.connect(m, pixels.r_stream, self.window.i)
        else:
            wiring.connect(m, wiring.flipped(self.i), self.window.i)
        # the window FIFO holds windows as the MVTU's SIMD words, after the downsizer: a
        # narrow, deep memory packs into block RAM where whole windows (kh x kw pixels
        # wide, a few deep) would take a block per port width for a few hundred bits
        upstream = self.window.o
        word, depth = self.window_fifo_shape
        # read in place: the window generator holds its output register until taken
        split = converter(len(upstream.payload), word, in_place=True)
        if split is not None:
            m.submodules.split = split
            wiring.connect(m, upstream, split.i)
            upstream = split.o
        if self.window_depth:
            # a register slice: the window FIFO's fill level would otherwise reach, through
            # the downsizer's and the window generator's handshakes, the pixel FIFO and the
            # enable of every window register in one cycle
            m.submodules.to_windows = to_windows = SkidBuffer(word)
            wiring.connect(m, upstream, to_windows.i)
            upstream = to_windows.o
        if self.window_depth and self.read_register:
            m.submodules.windows = windows = ReadRegisterFIFO(word, depth)
            wiring.connect(m, upstream, windows.i)
            upstream = windows.o
        elif self.window_depth:
            m.submodules.windows = windows = fifo.SyncFIFOBuffered(width=word, depth=depth)
            # and the slice's ready is a flip-flop too: room for a word next cycle, from
            # this cycle's level (one write a cycle at most), so the level's compare does
            # not reach the slice's enables. With 3 words or more, a level below depth - 1
            # also means the FIFO's inner memory has room (its w_rdy).
            room = Signal()
            m.d.sync += room.eq(windows.w_level < depth - 1)
            m.d.comb += [
                windows.w_data.eq(to_windows.o.payload),
                windows.w_en.eq(to_windows.o.valid & room),
                to_windows.o.ready.eq(room),
            ]
            upstream = windows.r_stream
        m.submodules.mvtu = self.mvtu
        wiring.connect(m, upstream, self.mvtu.i)
        return self._pool(m, self.mvtu.o)

    def _pool(self, m: Module, upstream: stream.Interface) -> Module:
        """The MVTU's pixels, through the pool if there is one, to ``o``."""
        if self.pool is not None:
            m.submodules.pool = self.pool
            wiring.connect(m, upstream, self.pool.i)
            upstream = self.pool.o
        wiring.connect(m, upstream, wiring.flipped(self.o))
        return m
