"""Sliding window over a streamed feature map: line buffers and a register window.

A convolution's matrix product needs a whole window per position; the map arrives one
pixel (all channels) per beat in HWC order. This unit turns the pixel stream into the
im2col stream of ``bnnhw.golden.window.windows``: one window per beat, elements in
``(ky, kx, c)`` order, ``c`` fastest, windows in row-major order of their positions.

Data path, one advance per cycle (the output register is the only latency, [1])::

    (row, col) walks the PADDED map; an image position takes one input pixel,
      a padding position takes none (pixel 0, "inside" flag 0)
    column = line buffer[col] (rows row-kh+1 .. row-1) + pixel (row)
    line buffer[col] <= column without its top pixel    (Memory, padded_width x kh-1 pixels)
    register window: the kw-1 previous columns shift left; the new column completes it
    o <= window, when (row, col) is the bottom-right corner of a stride-aligned window  [1]

The line buffer's read is synchronous, so each advance reads the column of the NEXT
position; the read port is transparent for the write port, so a one-column map reads the
word written in the same cycle. With ``read_register`` (the ECP5's, on maps at least 3
columns wide) each advance reads the column two positions ahead into a register, and a
second register holds the next position's: the column then comes from a flip-flop, which
``boards/outreg.py`` moves into the block's output register, not from a DP16KD's read 5.6
ns after the clock (cnv_digits_nopad's worst path at 125 MHz: that read, a LUT and the
block's write data, 9.5 ns). No cycle is added: the reads run ahead of the walk.

Nothing is cleared between frames: rows and columns of a previous frame (or of before a
reset) leave the window before any window using them goes out. The next frame's top
padding needs no input, so frames follow with no bubble.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from bnnhw.ir import Window
from bnnhw.rtl_gen.checks import refuse


def line_buffer_bits(win: Window, stored_pixel_bits: int) -> int:
    """Bits of line-buffer memory: kh-1 rows of the padded width."""
    return (win.kernel[0] - 1) * win.padded_width * stored_pixel_bits


def lookup(table: Sequence[bool], index: Value) -> Value:
    """One bit of a constant table: a small ROM indexed by a position counter."""
    return Const(sum(1 << k for k, bit in enumerate(table) if bit), len(table)).bit_select(index, 1)


class SlidingWindow(wiring.Component):
    """Pixels of ``win.channels x elem_bits`` in; windows of ``win.elements`` elements out.

    ``ternary`` (binary maps only) emits 2-bit two's complement codes: bit 1 -> +1,
    bit 0 -> -1, padding -> 0, because a zero-padded binary map has three values.
    """

    def __init__(
        self, win: Window, elem_bits: int, ternary: bool = False, read_register: bool = False
    ) -> None:
        problem = None
        if not isinstance(win, Window):
            problem = f"SlidingWindow needs a bnnhw.ir.Window, got {type(win).__name__}"
        elif elem_bits < 1:
            problem = f"SlidingWindow: elem_bits must be >= 1, got {elem_bits}"
        elif ternary and elem_bits != 1:
            problem = (
                f"SlidingWindow: ternary codes are for a binary map (elem_bits=1), "
                f"got elem_bits={elem_bits}"
            )
        if problem:
            refuse(self, problem)
        self.win, self.elem_bits, self.ternary = win, elem_bits, ternary
        # two columns ahead needs a third to be written meanwhile
        self.reads_ahead = read_register and win.kernel[0] > 1 and win.padded_width >= 3
        self.out_bits = 2 if ternary else elem_bits
        self.pixel_bits = win.channels * elem_bits
        # a stored pixel: its bits, plus an "inside the map" flag for the ternary codes
        self.stored_bits = self.pixel_bits + (1 if ternary else 0)
        super().__init__(
            {
                "i": In(stream.Signature(self.pixel_bits)),
                "o": Out(stream.Signature(win.elements * self.out_bits)),
            }
        )

    @property
    def cycles_per_frame(self) -> int:
        """Steady-state cycles per frame: one per padded position."""
        return self.win.walk_cycles

    @property
    def line_buffer_bits(self) -> int:
        return line_buffer_bits(self.win, self.stored_bits)

    @property
    def latency(self) -> int:
        """Cycles from advancing a window's bottom-right position to the window on ``o``."""
        return 1

    def elaborate(self, platform) -> Module:
        m = Module()
        win, q = self.win, self.stored_bits
        kh, kw = win.kernel
        sh, sw = win.stride
        ph, pw = win.padded_height, win.padded_width
        top, left = win.pads[0], win.pads[1]

        # -- position in the padded map, and what happens there -----------------------------
        row, col = Signal(range(ph)), Signal(range(pw))
        last_col = col == pw - 1
        next_col = Mux(last_col, 0, col + 1)
        next_row = Mux(last_col, Mux(row == ph - 1, 0, row + 1), row)
        row_inside = [top <= r < top + win.height for r in range(ph)]
        col_inside = [left <= c < left + win.width for c in range(pw)]
        row_emits = [r >= kh - 1 and (r - kh + 1) % sh == 0 for r in range(ph)]
        col_emits = [c >= kw - 1 and (c - kw + 1) % sw == 0 for c in range(pw)]
        # looked up for the next position as the walk advances: flip-flops, not a
        # lookup's LUTs in front of the handshake
        inside = Signal(init=row_inside[0] and col_inside[0])
        emits = Signal(init=row_emits[0] and col_emits[0])

        # -- handshake: advance when the pixel is here and a due window has room ------------
        # ``held``: a window is due here and the output register still holds the last one
        # (emits & o.valid), a flip-flop set from both next states, so the enable of every
        # window register is two LUTs from registers and the consumer's ready
        held = Signal()
        room = ~held | self.o.ready
        advance = Signal()
        m.d.comb += [
            self.i.ready.eq(inside & room),
            advance.eq((~inside | self.i.valid) & room),
        ]
        next_emits = Mux(advance, lookup(row_emits, next_row) & lookup(col_emits, next_col), emits)
        next_valid = (advance & emits) | (self.o.valid & ~self.o.ready)
        m.d.sync += [emits.eq(next_emits), held.eq(next_emits & next_valid)]
        with m.If(advance):
            m.d.sync += [
                col.eq(next_col),
                row.eq(next_row),
                inside.eq(lookup(row_inside, next_row) & lookup(col_inside, next_col)),
            ]

        # -- the new pixel: input or zero padding ---------------------------------------------
        pixel = Signal(q)
        data = Cat(self.i.payload, Const(1, 1)) if self.ternary else self.i.payload
        m.d.comb += pixel.eq(Mux(inside, data, 0))

        # -- line buffer: the kh-1 rows above, per column ---------------------------------------
        column = self._column(m, pixel, col, next_col, advance) if kh > 1 else pixel

        # -- register window: kw-1 columns, the new one completes it --------------------------
        previous = [Signal(kh * q, name=f"window_col{kx}") for kx in range(kw - 1)]
        window = [*previous, column]
        with m.If(advance):
            m.d.sync += [reg.eq(nxt) for reg, nxt in zip(previous, window[1:], strict=True)]
        elements = Cat(
            *(
                self._codes(window[kx][ky * q : (ky + 1) * q])
                for ky in range(kh)
                for kx in range(kw)
            )
        )

        # -- output register -----------------------------------------------------------------
        # written from ``due`` (a window is due and its pixel here, no ready in it) and
        # not from ``advance``, so the consumer's ready is one LUT from the register's
        # enable and data (cnv_digits_nopad's worst path on the UP5K ran from a word
        # selector's ready through ``advance`` to this enable: five LUTs, 20.9 ns)
        due = Signal()
        m.d.comb += due.eq((~inside | self.i.valid) & emits)
        with m.If(due & (~held | self.o.ready)):  # = advance & emits
            m.d.sync += self.o.payload.eq(elements)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(due)
        with m.Elif(due & ~held):
            m.d.sync += self.o.valid.eq(1)
        return m

    def _column(
        self, m: Module, pixel: Signal, col: Signal, next_col: Value, advance: Signal
    ) -> Value:
        """Column ``col`` of the window's kh rows, the top row (ky = 0) in the low bits:
        the kh-1 rows above from the line buffer, and ``pixel``. Each advance writes it
        back without its top pixel."""
        win, q = self.win, self.stored_bits
        kh, pw = win.kernel[0], win.padded_width
        width = (kh - 1) * q
        # read ahead, a column is never read while written: collisions are don't-care
        attrs = {"no_rw_check": 1} if self.reads_ahead else {}
        m.submodules.lines = lines = memory.Memory(
            shape=unsigned(width), depth=pw, init=[], attrs=attrs
        )
        wr = lines.write_port()
        if self.reads_ahead:
            # the column two positions ahead (a combinational read and a register of its
            # own: a synchronous read), then the next position's; reset-less and fed by
            # the read alone, so the second becomes the block's output register
            rd = lines.read_port(domain="comb")
            ahead = Signal(range(pw), init=2)
            fetched = Signal(width, reset_less=True)
            above = Signal(width, reset_less=True)
            with m.If(advance):
                m.d.sync += [
                    ahead.eq(Mux(ahead == pw - 1, 0, ahead + 1)),
                    fetched.eq(rd.data),
                    above.eq(fetched),
                ]
            m.d.comb += rd.addr.eq(ahead)
        else:
            rd = lines.read_port(transparent_for=(wr,))
            m.d.comb += [rd.addr.eq(next_col), rd.en.eq(advance)]
            above = rd.data
        column = Cat(above, pixel)
        m.d.comb += [wr.addr.eq(col), wr.data.eq(column[q:]), wr.en.eq(advance)]
        return column

    def _codes(self, pixel: Value) -> Value:
        """A stored pixel's output elements: its bits, or ternary codes from bits + flag."""
        if not self.ternary:
            return pixel
        channels = self.win.channels
        inside = pixel[channels]
        return Cat(*(Cat(inside, inside & ~pixel[c]) for c in range(channels)))
