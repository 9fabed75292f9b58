"""Sliding window read by address from a block-RAM row buffer, SIMD elements per beat.

``SlidingWindow`` holds a whole window in registers (kh x kw pixels) and an output
register as wide, and a downsizer cuts it into the MVTU's SIMD words: for FINN's CNV-w1a1
that is ~21,700 logic cells at its smallest folding (windows of up to 9 x 256 bits and
their multiplexers). This unit, like FINN's ConvolutionInputGenerator, keeps the rows in
block RAM and reads the window's words from it one at a time: its logic is a few counters
and one pixel-wide multiplexer, whatever the window's size.

Rows of the map go into a circular buffer (a slot per row, slot = row mod its rows); a
window row is read once its kh rows are in, while the rows the next one needs are
written (``buffer_rows``). Data path (latency in brackets)::

    write: pixel -> buffer[slot * W + col]; a row's last pixel makes it available
    issue: (window, ky, kx, chunk) when kh rows are available and the output FIFO has
           room for every word in flight; address = slot(ky) * W + ox * sw + kx     [1]
    read:  buffer[address] (a pixel, C x elem_bits)                                   [1]
    with ``read_register``: the pixel registered whole                              [1]*
    pick:  chunk `chunk` of the pixel: SIMD x elem_bits bits                         [1]
    o <- output FIFO (``fifo_depth`` words)

[1]*: an ECP5 block's read without its output register is 5.8 ns from clock to data;
registered whole, ``boards/outreg.py`` moves the register into the block (1.0 ns), and
the chunk's multiplexer starts from a flip-flop (the MVTU's ``read_register``).

Words go out in ``windows``' order: windows in row-major order of their positions, in
each window (ky, kx, c) with c fastest, ``channels / simd`` words a pixel. Padding is not
handled (a padded map's border has no row in the buffer): padded convolutions keep
``SlidingWindow``. A frame's rows below its last window (a stride can leave them out)
are written and never read.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from bnnhw.ir import Window
from bnnhw.rtl_gen.checks import refuse

# issue -> address register -> the memory's read -> the chunk's register
LATENCY = 3
# words the output FIFO holds besides those in flight: room to keep issuing as they drain
FIFO_SLACK = 3


def rows_to_next_frame(win: Window) -> int:
    """Rows from the top of a frame's last window row to the next frame's first row."""
    return win.height - (win.out_height - 1) * win.stride[0]


def buffer_rows(win: Window) -> int:
    """Rows the circular buffer holds: a window row's kh, and room to write the rows the
    next window row needs while this one is read: stride_h rows, or at a frame's last
    window row its rest and the next frame's first kh (no refill between frames)."""
    return win.kernel[0] + max(win.stride[0], rows_to_next_frame(win))


def buffer_bits(win: Window, elem_bits: int) -> int:
    """Bits of the row buffer (block RAM)."""
    return buffer_rows(win) * win.width * win.channels * elem_bits


class WindowReader(wiring.Component):
    """Pixels of ``win.channels x elem_bits`` in; SIMD-element words of windows out."""

    def __init__(
        self, win: Window, elem_bits: int, simd: int, *, read_register: bool = False
    ) -> None:
        problem = None
        if not isinstance(win, Window):
            problem = f"WindowReader needs a bnnhw.ir.Window, got {type(win).__name__}"
        elif win.padded:
            problem = (
                f"WindowReader: window {win} is padded and its buffer holds the map's own "
                "rows only; use SlidingWindow for a padded convolution"
            )
        elif elem_bits < 1:
            problem = f"WindowReader: elem_bits must be >= 1, got {elem_bits}"
        elif simd < 1 or win.channels % simd:
            problem = (
                f"WindowReader: SIMD {simd} must divide the {win.channels} channels (a word "
                "is part of one pixel); fold the layer with such a SIMD"
            )
        if problem:
            refuse(self, problem)
        self.win, self.elem_bits, self.simd = win, elem_bits, simd
        self.read_register = read_register
        self.chunks = win.channels // simd
        super().__init__(
            {
                "i": In(stream.Signature(win.channels * elem_bits)),
                "o": Out(stream.Signature(simd * elem_bits)),
            }
        )

    @property
    def latency(self) -> int:
        """Cycles from issuing a word's address to writing it into the output FIFO."""
        return LATENCY + self.read_register

    @property
    def fifo_depth(self) -> int:
        """Words of the output FIFO: every word in flight, and the slack."""
        return self.latency + FIFO_SLACK

    @property
    def buffer_bits(self) -> int:
        return buffer_bits(self.win, self.elem_bits)

    def elaborate(self, platform) -> Module:
        m = Module()
        win = self.win
        kh, kw = win.kernel
        sh, sw = win.stride
        rows, width = buffer_rows(win), win.width
        to_next_frame = rows_to_next_frame(win)

        # a row is never read while it is written (a window row reads only complete rows,
        # the writer only rows none will read). The read is combinational with a register
        # of our own, which Yosys merges into a synchronous read whose collisions with the
        # write ``no_rw_check`` declares don't-care (as the MVTU's input buffer): a
        # synchronous port keeps Amaranth's read-before-write promise with a bypass in
        # logic between the block and its reader.
        pixel_bits = win.channels * self.elem_bits
        m.submodules.buffer = buffer = memory.Memory(
            shape=unsigned(pixel_bits), depth=rows * width, init=[], attrs={"no_rw_check": 1}
        )
        write, read = buffer.write_port(), buffer.read_port(domain="comb")
        read_data = Signal(pixel_bits, reset_less=True)
        m.d.sync += read_data.eq(read.data)

        # -- rows available from the reader's top row on: the writer adds a row as it
        # completes one, the reader drops stride_h rows (or a frame's rest) as it finishes
        # a window row. Negative while the writer fills rows no window reads (a window
        # row drops its rows with kh of them in: at least kh - the most it drops).
        most_dropped = max(sh, to_next_frame)
        available = Signal(range(min(0, kh - most_dropped), rows + 1))
        row_written, rows_dropped = Signal(), Signal(range(most_dropped + 1))
        m.d.sync += available.eq(available + row_written - rows_dropped)

        # -- write: one pixel per beat into its row's slot -----------------------------------
        w_addr, w_col = Signal(range(rows * width)), Signal(range(width))
        take = self.i.valid & self.i.ready
        m.d.comb += [
            self.i.ready.eq(available < rows),
            write.addr.eq(w_addr),
            write.data.eq(self.i.payload),
            write.en.eq(take),
            row_written.eq(take & (w_col == width - 1)),
        ]
        with m.If(take):
            m.d.sync += [
                w_col.eq(wrap(w_col + 1, width)),
                w_addr.eq(wrap(w_addr + 1, rows * width)),
            ]

        # -- issue: one word's address per cycle ---------------------------------------------
        depth = self.fifo_depth
        m.submodules.out = out = fifo.SyncFIFOBuffered(width=len(self.o.payload), depth=depth)
        chunk, kx, ky = Signal(range(self.chunks)), Signal(range(kw)), Signal(range(kh))
        ox_col, oy = Signal(range(win.width)), Signal(range(win.out_height))
        top = Signal(range(rows))  # the slot of the window row's top row
        issue = Signal()
        m.d.comb += issue.eq((available >= kh) & (out.w_level <= depth - self.latency - 1))
        last_chunk, last_kx, last_ky = chunk == self.chunks - 1, kx == kw - 1, ky == kh - 1
        last_ox = ox_col == (win.out_width - 1) * sw
        window_done = issue & last_chunk & last_kx & last_ky
        row_done = window_done & last_ox
        frame_done = row_done & (oy == win.out_height - 1)
        m.d.comb += rows_dropped.eq(Mux(row_done, Mux(frame_done, to_next_frame, sh), 0))
        with m.If(issue):
            m.d.sync += chunk.eq(Mux(last_chunk, 0, chunk + 1))
            with m.If(last_chunk):
                m.d.sync += kx.eq(Mux(last_kx, 0, kx + 1))
                with m.If(last_kx):
                    m.d.sync += ky.eq(Mux(last_ky, 0, ky + 1))
        with m.If(window_done):
            m.d.sync += ox_col.eq(Mux(last_ox, 0, ox_col + sw))
        with m.If(row_done):
            m.d.sync += [
                oy.eq(Mux(frame_done, 0, oy + 1)),
                top.eq(wrap(top + Mux(frame_done, to_next_frame, sh), rows)),
            ]

        # -- address [1], read [1], pick the chunk [1] -> output FIFO ------------------------
        # data registers are reset-less (``valid`` says which hold a word), and the
        # pixel's must be, for outreg.py to move it into the block
        row_start = Array(Const(slot * width, range(rows * width)) for slot in range(rows))
        addr = Signal(range(rows * width), reset_less=True)
        valid = Signal(self.latency)
        picked = [
            Signal(range(self.chunks), name=f"chunk{k}", reset_less=True)
            for k in range(self.latency - 1)
        ]
        pixel = read_data
        if self.read_register:
            pixel = Signal(pixel_bits, reset_less=True)
            m.d.sync += pixel.eq(read_data)
        word = Signal(len(self.o.payload), reset_less=True)
        m.d.sync += [
            addr.eq(row_start[wrap(top + ky, rows)] + ox_col + kx),
            valid.eq(Cat(issue, valid[:-1])),
            Cat(*picked).eq(Cat(chunk, *picked[:-1])),
            word.eq(pixel.word_select(picked[-1], len(word))),
        ]
        m.d.comb += [
            read.addr.eq(addr),
            out.w_data.eq(word),
            out.w_en.eq(valid[-1]),
        ]
        wiring.connect(m, out.r_stream, wiring.flipped(self.o))
        return m


def wrap(value, modulus: int):
    """``value mod modulus`` for a value below ``2 * modulus``: one compare, one subtract."""
    return Mux(value >= modulus, value - modulus, value)
