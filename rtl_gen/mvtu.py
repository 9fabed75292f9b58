"""Matrix-vector-threshold unit: one binary layer, folded by PE and SIMD.

Data path, one stage per line (the latency of each is in brackets)::

    i (SIMD x in_bits per beat) -> double-buffered input memory, 2 x SF words
        (SF = ceil(fan_in / SIMD): the upstream zero-pads the last word, whose padded
        elements have weight bits that make their products 0)
    issue: (nf, sf) for nf < NF, sf < SF; read input word + weight ROM word   [1]
    with ``read_register``: both words registered in the fabric                [1]***
    with ``read_register`` and a weight ROM deeper than one block: the ROM is
    banks one block deep, each read into a register of its own, and a register
    after the multiplexer that chooses the bank; past 8 banks, a register
    after each group of 8 too                                                  [1 | 2]*****
    with ``read_register`` and PE > 8: the input word registered again, in one
    copy per 8 PEs, and the weight word registered again beside its PEs        [1]****
    n-bit input only: PE x SIMD +-code (a carry chain each), registered        [1]*
    PE x (XNOR + popcount | signed add/subtract) adder tree                     [tree]
    PE accumulators, cleared on sf == 0; threshold ROM read by nf              [1]
    compare (hidden: acc >= T -> PE bits | output: scores; segment.py), registered [1]**
    the segment shifts into the frame's output vector register                 [1]
    the whole vector is pushed into the output FIFO (a register when it holds
    one vector; else a memory and then a register)                             [1 | 2]
    o (whole output vector per beat) <- output FIFO

[1]*: with ``register_every`` 0 (a combinational tree) the +-code is not registered.
[1]**: hidden layers only (``compare_stages``); an output layer's scores go straight on.
[1]***: an ECP5 block RAM's read, without the output register Yosys does not infer, is
5.8 ns from clock to data: registered, it ends in a flip-flop instead of the XNORs (the
threshold ROM is then read a stage early and registered too, for the compare), and
``boards/outreg.py`` moves that flip-flop into the block's output register (1.0 ns).
[1]****: one input word fans out to every PE, and a wide layer's PEs sit beside their
weight blocks all over the die: TFC 64x66's worst path was the word's 7.6 ns route from
its buffer to a PE. Each copy drives ``FANOUT_PES`` PEs, and the ECP5 build keeps Yosys
from merging the copies back into one (``boards/synth.py``, the ``x_copy`` registers).
The weight blocks of such a layer fill columns across the die, and a block at its edge is
far from its PE: SFC 64x49's worst path was a 6.4-7.1 ns route from one to its PE's first
adder level. Its word is registered a second time too (``w_copy``, a flip-flop per lane),
which nextpnr places between the block and the PE (a ROM sliced in logic of two words
delays its address instead: ``weight_rom.py``). The accumulators' enable and clear
fan out to every PE as well: with an adder-tree register, its last stage makes a copy of
them per ``FANOUT_PES`` PEs (``acc_control``; no cycle added): SFC 128x27's worst path
was the clear's 4.7 ns route to 128 PEs.
[1]*****: with read registers, a ROM deeper than one ECP5 block is banks one block deep,
each read registered before the bank multiplexer (past 8 banks, in two levels); a wide
ROM in logic is sliced by input copy, each slice read at a copy of the address
(``weight_rom.py``); slices read late (``slices_read_late``: a ROM of two words, or
slices a board leaves in logic) at copies two cycles late, and their word is then not
registered again: the same latency, one flip-flop a lane.

A frame is issued only when the output FIFO is sure to have room for it (a credit
counter of frames in flight), so the pipeline never stalls mid-frame; frames issue back
to back, so a frame costs exactly NF * SF cycles in steady state.
"""

from __future__ import annotations

import math

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from bnnhw.boards.memories import GEOMETRY, WIRED_ROM_WORDS, rom_kind
from bnnhw.passes.folding import DEFAULT_REGISTER_EVERY
from bnnhw.rtl_gen.adder_tree import (
    adder_tree,
    delay,
    register_each,
    tree_stages,
    xnor_popcount,
)
from bnnhw.rtl_gen.checks import refuse
from bnnhw.rtl_gen.layer_params import LayerHW, signed_width
from bnnhw.rtl_gen.segment import scores, threshold_bits
from bnnhw.rtl_gen.weight_rom import ADDRESS_COPY, bank_stages, read_weights

# PEs one copy of the input word drives, in a layer with read registers (``input_copies``)
FANOUT_PES = 8
# the copies' registers are named after this, for a synthesis script to keep them apart
INPUT_COPY = "x_copy"
# and the copies of the accumulators' enable and clear, one beside each input copy's PEs
CONTROL_COPY = "acc_control"


class MVTU(wiring.Component):
    """One layer. ``register_every``: adder-tree levels between pipeline registers;
    ``read_register``: a register after the input and weight memories' reads.

    ``bank_words``: with ``read_register``, the words of one bank of the weight ROM (a
    power of two; default: one ECP5 block's), which tests make small.

    ``consumer_hold``: cycles the consumer may keep an output word in place before taking
    it (a ``WordSelector``'s pieces); the frame's output credit is out that much longer,
    so the output FIFO is sized for it.

    ``contents=False`` leaves the weight and threshold ROMs empty (same shapes): a design
    for resource estimates, which elaborates in a fraction of the time.

    ``late_slices``: a sliced weight ROM is read at addresses two cycles late (``weight_rom.py``)
    even when deeper than ``WIRED_ROM_WORDS``; the build asks for it where the board's
    memory plan leaves the slices in logic (``memories.late_slice_layers``).
    """

    def __init__(
        self,
        hw: LayerHW,
        *,
        register_every: int = DEFAULT_REGISTER_EVERY,
        contents: bool = True,
        consumer_hold: int = 0,
        read_register: bool = False,
        bank_words: int | None = None,
        late_slices: bool = False,
    ) -> None:
        problem = None
        if hw.neurons % hw.pe or hw.simd > hw.fan_in:
            problem = (
                f"layer {hw.name!r}: PE={hw.pe} must divide its {hw.neurons} neurons and "
                f"SIMD={hw.simd} be at most its fan-in {hw.fan_in}"
            )
        elif register_every < 0:
            problem = f"layer {hw.name!r}: register_every must be >= 0, got {register_every}"
        elif consumer_hold < 0:
            problem = f"layer {hw.name!r}: consumer_hold must be >= 0, got {consumer_hold}"
        elif bank_words is not None and (bank_words < 1 or bank_words & (bank_words - 1)):
            problem = f"layer {hw.name!r}: bank_words must be a power of two, got {bank_words}"
        if problem:
            refuse(self, problem)
        self.hw = hw
        self.register_every = register_every
        self.consumer_hold = consumer_hold
        self.read_register = read_register
        self.bank_words = bank_words
        self.contents = contents
        self.late_slices = late_slices
        if hw.is_output:
            lo, hi = hw.score_range
            self.score_shape = signed(signed_width(lo, hi))
            out_width = hw.neurons * self.score_shape.width
        else:
            out_width = hw.neurons
        super().__init__(
            {
                "i": In(stream.Signature(hw.simd * hw.in_bits)),
                "o": Out(stream.Signature(out_width)),
            }
        )

    @property
    def latency(self) -> int:
        """Cycles from issuing a frame's last word to its output vector on ``o``: the
        memory reads (and their register), the signed terms, the tree, the accumulator,
        the compare, the vector register and the FIFO (a register, or its memory and then
        a register)."""
        stages = self.read_stages + self.signed_term_stages + self.compare_stages
        fifo = 1 if self.fifo_depth == 1 else 2
        return 2 + stages + tree_stages(self.hw.simd, self.register_every) + fifo

    @property
    def credits(self) -> int:
        """Frames that may be between their start and the consumer taking their output.

        A frame holds a credit for its latency (at most the deeper FIFO's), 3 cycles and
        the consumer's hold; enough credits keep frames issuing back to back.
        """
        stages = self.read_stages + self.signed_term_stages + self.compare_stages
        longest = 4 + stages + tree_stages(self.hw.simd, self.register_every)
        return math.ceil((longest + 3 + self.consumer_hold) / self.hw.cycles) + 1

    @property
    def fifo_depth(self) -> int:
        """Output vectors the FIFO holds.

        With two credits, one: the vector register holds the other credit's vector until
        the FIFO, a single register whose ``w_rdy`` is exact, has room, which it has
        by the cycle the next frame's last segment can arrive. With more (short frames),
        every credit's: a deeper buffered FIFO's ``w_rdy`` can lag a read by a cycle, and
        a back-to-back frame's last segment would overwrite a vector not yet pushed.
        """
        return 1 if self.credits == 2 else self.credits

    @property
    def compare_stages(self) -> int:
        """A hidden layer's threshold compare is registered; an output layer's scores are
        not (a register per score bit would cost a logic cell each, for no critical path)."""
        return 0 if self.hw.is_output else 1

    @property
    def read_stages(self) -> int:
        """The register after the memories' reads, when asked for, and the input word's
        copies after it."""
        banked = bank_stages(self.weight_banks)
        return (1 if self.read_register else 0) + banked + (1 if self.input_copies > 1 else 0)

    @property
    def weight_bank_depth(self) -> int:
        """``bank_words``, or the words of one ECP5 DP16KD at the weight word's width (the
        deepest configuration at least that wide; 512 for a word wider than a block)."""
        if self.bank_words is not None:
            return self.bank_words
        width = self.hw.pe * self.hw.simd
        configs = GEOMETRY["ecp5"][0]
        return max((d for w, d in configs if w >= width), default=min(d for _, d in configs))

    @property
    def weight_banks(self) -> int:
        """Banks of the weight ROM: with read registers, one per block of its depth."""
        words = self.hw.nf * self.hw.sf
        return math.ceil(words / self.weight_bank_depth) if self.read_register else 1

    @property
    def weight_slices(self) -> int:
        """Slices of the weight ROM, one per input copy's PEs, each read at its own copy of
        the address (``weight_rom.py``): with read registers, for a ROM of more than one
        word that Yosys leaves in the ECP5's logic."""
        words = self.hw.nf * self.hw.sf
        width = self.hw.pe * self.hw.simd
        if self.weight_banks > 1 or words == 1 or rom_kind(width, words, "ecp5") == "bram":
            return 1
        return self.input_copies

    @property
    def slices_read_late(self) -> bool:
        """Are the weight ROM's slices read at address copies two cycles late, so that the
        read register beside the PEs is a slice's only one (``weight_rom.py``)? Asked for
        (``late_slices``), or wires of their address (at most ``WIRED_ROM_WORDS`` words)."""
        wired = self.hw.nf * self.hw.sf <= WIRED_ROM_WORDS
        return self.weight_slices > 1 and (self.late_slices or wired)

    @property
    def input_copies(self) -> int:
        """Registered copies of the input word, one per ``FANOUT_PES`` PEs, in a layer
        with read registers and more PEs than that (1: the read register drives them all)."""
        if not self.read_register or self.hw.pe <= FANOUT_PES:
            return 1
        return math.ceil(self.hw.pe / FANOUT_PES)

    @property
    def signed_term_stages(self) -> int:
        """An n-bit input lane's +-code is registered, unless the tree is combinational."""
        return 1 if self.hw.in_bits > 1 and self.register_every else 0

    def elaborate(self, platform) -> Module:
        m = Module()
        hw = self.hw
        nf_n, sf_n, pe, simd, bits = hw.nf, hw.sf, hw.pe, hw.simd, hw.in_bits

        # -- input: double-buffered memory, written SIMD elements per beat ------------------
        # a bank is never read for a frame while it is written (it is written only while
        # not full, read only while full). The read is combinational with a register of our
        # own, which Yosys merges into a synchronous read whose collisions with the write
        # ``no_rw_check`` declares don't-care; a synchronous port would keep Amaranth's
        # read-before-write promise, emulated in logic between the block RAM and its reader
        m.submodules.inbuf = inbuf = memory.Memory(
            shape=unsigned(simd * bits), depth=2 * sf_n, init=[], attrs={"no_rw_check": 1}
        )
        wr, rd = inbuf.write_port(), inbuf.read_port(domain="comb")
        x_read = Signal(simd * bits, reset_less=True)
        m.d.sync += x_read.eq(rd.data)
        full = Signal(2)  # bank holds a complete frame
        w_bank, w_addr, r_bank = Signal(), Signal(range(sf_n)), Signal()
        w_last = Signal(init=sf_n == 1)  # w_addr == SF - 1, kept as a flip-flop
        # the memory's addresses, bank * SF + word: the bank bit above the word when SF is
        # a power of two, else counters of their own, so no adder sits before the memory
        banks_by_bit = sf_n & (sf_n - 1) == 0
        w_mem_addr, r_mem_addr = Signal(range(2 * sf_n)), Signal(range(2 * sf_n))
        write = self.i.valid & self.i.ready
        w_done = write & w_last
        # ready = the write bank is free, kept as a flip-flop (set from the next cycle's
        # bank and full bits), so the upstream's handshake starts at a register
        ready = Signal(init=1)
        m.d.comb += [
            self.i.ready.eq(ready),
            wr.addr.eq(Cat(w_addr, w_bank) if banks_by_bit else w_mem_addr),
            wr.data.eq(self.i.payload),
            wr.en.eq(write),
        ]
        with m.If(write):
            m.d.sync += [
                w_addr.eq(Mux(w_last, 0, w_addr + 1)),
                w_last.eq(Mux(w_last, sf_n == 1, w_addr == sf_n - 2)),
            ]
            if not banks_by_bit:
                m.d.sync += w_mem_addr.eq(Mux(w_last & w_bank, 0, w_mem_addr + 1))
        next_w_bank = w_bank ^ w_done
        m.d.sync += w_bank.eq(next_w_bank)

        # -- output FIFO; a frame starts only with a free slot guaranteed --------------------
        depth = self.credits
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFOBuffered(
            width=len(self.o.payload), depth=self.fifo_depth
        )
        # frames that may still start: one is taken at a start, given back when the
        # consumer reads a frame's output (started - read = in flight + in the FIFO)
        credits = Signal(range(depth + 1), init=depth)
        # a start's credit leaves ``credits`` a cycle later, from this flip-flop, so the
        # start decision (a few LUTs deep) drives no counter enable
        started = Signal()
        taken = Signal()
        push = Signal()
        m.d.comb += [
            self.o.payload.eq(out_fifo.r_data),
            self.o.valid.eq(out_fifo.r_rdy),
            out_fifo.r_en.eq(self.o.ready),
            taken.eq(self.o.ready & out_fifo.r_rdy),
        ]

        # -- issue: one (nf, sf) word per cycle while busy -----------------------------------
        # the counters' end conditions are flip-flops set a cycle ahead, and the counters
        # wrap to zero on a frame's last word, so they rest at zero between frames: a
        # frame's start only sets ``busy`` (and the bank and credit bookkeeping), which
        # keeps it off the counters' enables and a few LUTs from registers
        busy = Signal()
        nf, sf = Signal(range(nf_n)), Signal(range(sf_n))
        rom_addr = Signal(range(nf_n * sf_n))
        words = nf_n * sf_n
        sf_first, sf_last = Signal(init=1), Signal(init=sf_n == 1)  # sf == 0, sf == SF - 1
        at_last = Signal(init=words == 1)  # rom_addr == NF * SF - 1: the frame's last word
        last_word = busy & at_last
        next_bank = Mux(last_word, ~r_bank, r_bank)
        next_full = full.bit_select(next_bank, 1) | (w_done & (w_bank == next_bank))
        have_credit = Mux(started, credits > 1, credits != 0)  # credits - started > 0
        start = (~busy | last_word) & next_full & have_credit
        m.d.sync += [busy.eq(start | (busy & ~at_last)), started.eq(start)]
        # the weight ROM's slices are read at copies of the address, loaded alike; slices
        # read late at copies two cycles late, in place of the two registers a whole word
        # takes to its PEs (``w_word``, ``w_copy``, a flip-flop per lane each)
        copies = self.weight_slices if self.weight_slices > 1 else 0
        late = self.slices_read_late
        addr_copies = [Signal.like(rom_addr, name=f"{ADDRESS_COPY}{c}") for c in range(copies)]
        if late:
            late_addr = delay(m, rom_addr, 1, "rom_addr_late", reset_less=True)
            m.d.sync += [a.eq(late_addr) for a in addr_copies]
        with m.If(busy):
            if not late:
                m.d.sync += [a.eq(Mux(at_last, 0, rom_addr + 1)) for a in addr_copies]
            m.d.sync += [
                rom_addr.eq(Mux(at_last, 0, rom_addr + 1)),
                sf.eq(Mux(sf_last, 0, sf + 1)),
                sf_first.eq(sf_last),
                sf_last.eq(Mux(sf_last, sf_n == 1, sf == sf_n - 2)),
                at_last.eq(Mux(at_last, words == 1, rom_addr == words - 2)),
            ]
            with m.If(sf_last):
                m.d.sync += nf.eq(Mux(at_last, 0, nf + 1))
            if not banks_by_bit:
                # a segment's end goes back to its bank's start, a frame's to the other's
                r_next = Mux(sf_last, Mux(at_last ^ r_bank, sf_n, 0), r_mem_addr + 1)
                m.d.sync += r_mem_addr.eq(r_next)
        with m.If(last_word):
            m.d.sync += r_bank.eq(~r_bank)
        set_bits = Mux(w_done, Const(1, 2) << w_bank, 0)
        clear_bits = Mux(last_word, Const(1, 2) << r_bank, 0)
        next_full_bits = (full | set_bits) & ~clear_bits
        m.d.sync += [full.eq(next_full_bits), ready.eq(~next_full_bits.bit_select(next_w_bank, 1))]
        with m.If(started & ~taken):
            m.d.sync += credits.eq(credits - 1)
        with m.Elif(taken & ~started):
            m.d.sync += credits.eq(credits + 1)

        r_addr = Cat(sf, r_bank) if banks_by_bit else r_mem_addr
        m.d.comb += rd.addr.eq(r_addr)
        w_data = read_weights(
            m,
            hw.weight_words() if self.contents else [],
            (pe * simd, nf_n * sf_n),
            addr_copies or [rom_addr],
            bank_depth=self.weight_bank_depth,
            banks=self.weight_banks,
            slice_bits=FANOUT_PES * simd,
            late=late,
        )
        # side band, registered like the synchronous memory reads
        v1, first1, last1 = Signal(), Signal(), Signal()
        nf1 = Signal(range(nf_n), reset_less=True)  # data beside v1, as every nf below
        m.d.sync += [v1.eq(busy), first1.eq(sf_first), last1.eq(sf_last), nf1.eq(nf)]
        x_word, w_word = x_read, w_data
        # the group index at every stage from the reads to the accumulator: with the read
        # register, the threshold ROM is read a stage early and registered too
        nf_at = [nf1]
        if self.read_register:
            # the data registers are reset-less and fed by the read alone: on ECP5 they
            # become the block RAM's own output register (``boards/outreg.py``)
            # (with banks, the word comes from the register after the bank multiplexer)
            x_stages = 1 + bank_stages(self.weight_banks)
            x_word = delay(m, x_word, x_stages, "x_word", reset_less=True)
            if not late:
                w_word = delay(m, w_word, 1, "w_word", reset_less=True)
        x_words = [x_word] * pe
        if self.input_copies > 1:
            copies = [
                delay(m, x_word, 1, f"{INPUT_COPY}{c}", reset_less=True)
                for c in range(self.input_copies)
            ]
            x_words = [copies[p // FANOUT_PES] for p in range(pe)]
            if not late:
                w_word = delay(m, w_word, 1, "w_copy", reset_less=True)
        for stage in range(self.read_stages):
            v1, first1, last1 = (
                delay(m, s, 1, f"{n}_r{stage}")
                for s, n in ((v1, "v1"), (first1, "first1"), (last1, "last1"))
            )
            nf_at.append(delay(m, nf_at[-1], 1, f"nf1_r{stage}", reset_less=True))

        # -- PE arithmetic: XNOR popcount, or +-code for an n-bit input ----------------------
        sums, stages = [], 0
        for p in range(pe):
            w, x = w_word[p * simd : (p + 1) * simd], x_words[p]
            if bits == 1:
                total, stages = xnor_popcount(m, x, w, self.register_every, f"pe{p}")
            else:
                codes = [x[i * bits : (i + 1) * bits] for i in range(simd)]
                codes = [c.as_signed() if hw.in_signed else c.as_unsigned() for c in codes]
                # negating a code is a carry chain of its own: registered, so that no
                # cycle holds negate, add and accumulate in a row
                terms = [Mux(w[i], c, -c) for i, c in enumerate(codes)]
                if self.signed_term_stages:
                    terms = register_each(m, terms, f"pe{p}_signed")
                total, stages = adder_tree(m, terms, self.register_every, f"pe{p}")
                stages += self.signed_term_stages
            sums.append(total)
        v2, first2, last2 = (
            delay(m, s, stages, n) for s, n in ((v1, "v"), (first1, "first"), (last1, "last"))
        )
        # the accumulators' enable and clear, one copy per input copy's PEs
        acc_v, acc_first = [v2] * pe, [first2] * pe
        if self.input_copies > 1 and stages:
            v_pre, first_pre = (
                delay(m, v1, stages - 1, "v_pre"),
                delay(m, first1, stages - 1, "first_pre"),
            )
            controls = [
                (
                    delay(m, v_pre, 1, f"{CONTROL_COPY}_v{c}"),
                    delay(m, first_pre, 1, f"{CONTROL_COPY}_first{c}"),
                )
                for c in range(self.input_copies)
            ]
            acc_v = [controls[p // FANOUT_PES][0] for p in range(pe)]
            acc_first = [controls[p // FANOUT_PES][1] for p in range(pe)]
        for stage in range(stages):
            nf_at.append(delay(m, nf_at[-1], 1, f"nf_s{stage}", reset_less=True))
        nf2 = nf_at[-1]

        # -- accumulate ----------------------------------------------------------------------
        acc_shape = signed(signed_width(*hw.acc_range))
        # the accumulators keep their reset: an ASIC's flip-flops start unknown, and the
        # gate-level simulation carries that X through the clear of the first word (the
        # other data registers are reset-less: the reset reaches control flip-flops only)
        accs = [Signal(acc_shape, name=f"acc{p}") for p in range(pe)]
        for acc, total, v, first in zip(accs, sums, acc_v, acc_first, strict=True):
            with m.If(v):
                # the segment's first word clears the addend, not the sum: the choice sits
                # on the flip-flop side of the carry chain instead of after it
                m.d.sync += acc.eq(total + Mux(first, 0, acc))
        done3, nf3 = Signal(), Signal(range(nf_n), reset_less=True)
        m.d.sync += [done3.eq(v2 & last2), nf3.eq(nf2)]

        # -- threshold or score, registered: the compare's carry chain ends in a flip-flop
        # of its own logic cell rather than in a long route to the output vector ----------
        if hw.is_output:
            segment = scores(m, hw, accs, nf3, self.score_shape.width)
        else:
            segment = threshold_bits(
                m, hw, accs, nf_at, read_register=self.read_register, contents=self.contents
            )
        done4, nf4 = done3, nf3
        if self.compare_stages:
            compared, segment = segment, Signal(len(segment), reset_less=True)
            done4, nf4 = Signal(), Signal(range(nf_n), reset_less=True)
            m.d.sync += [segment.eq(compared), done4.eq(done3), nf4.eq(nf3)]

        # -- assemble the frame's output vector ----------------------------------------------
        # every segment shifts in from the top (one shared enable, no address decoder);
        # after the last, the register holds the whole vector until the FIFO has room
        # (``fifo_depth``: with two credits it is one credit's slot, and the FIFO holds
        # one vector fewer)
        seg_width = len(segment)
        vector = Signal(nf_n * seg_width, reset_less=True)
        complete = Signal()  # ``vector`` holds a whole frame's output, not yet pushed
        with m.If(done4):
            m.d.sync += vector.eq(Cat(vector[seg_width:], segment))
        m.d.comb += [
            push.eq(complete & out_fifo.w_rdy),
            out_fifo.w_en.eq(push),
            out_fifo.w_data.eq(vector),
        ]
        with m.If(done4 & (nf4 == nf_n - 1)):
            m.d.sync += complete.eq(1)
        with m.Elif(push):
            m.d.sync += complete.eq(0)
        return m
