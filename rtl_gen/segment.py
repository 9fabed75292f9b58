"""A PE group's result once its segment is accumulated: the PEs' output bits (a hidden
layer, each accumulator against its neuron's threshold) or their scores (the output
layer). ``MVTU`` registers the bits after the compare (``compare_stages``)."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Signal, Value, signed, unsigned
from amaranth.lib import memory

from bnnhw.rtl_gen.adder_tree import delay
from bnnhw.rtl_gen.layer_params import LayerHW, signed_width

# the registered threshold word's flip-flops are named after this, each PE's bits its own,
# for a synthesis script to keep apart
THRESHOLD_WORD = "t_word"


def threshold_bits(
    m: Module,
    hw: LayerHW,
    accs: list[Signal],
    nf_at: list[Value],
    *,
    read_register: bool,
    contents: bool = True,
) -> Signal:
    """Group ``nf_at[-1]``'s PE bits: acc >= threshold, from a ROM of one word per group.

    ``nf_at``: the group index at each stage up to the accumulator's (the last); with
    ``read_register`` the ROM is read a stage early and registered, like the other reads.
    ``contents=False`` leaves the ROM empty (same shape).
    """
    t_shape = signed(signed_width(int(hw.thresholds.min()), int(hw.thresholds.max())))
    mask = (1 << t_shape.width) - 1
    words = [
        sum((int(t) & mask) << (j * t_shape.width) for j, t in enumerate(row))
        for row in hw.threshold_words()
    ]
    if hw.nf == 1:
        # one group: the thresholds are constants in the comparators. Read from a ROM
        # of one word into a register, they were flip-flops of constant bits, which
        # Yosys merged into one per value: TFC 64x72's worst path was one of them,
        # 5.8 ns of route from a compare across the die
        t_word = Const(words[0] if contents else 0, hw.pe * t_shape.width)
    else:
        m.submodules.thresholds = t_mem = memory.Memory(
            shape=unsigned(hw.pe * t_shape.width), depth=hw.nf, init=words if contents else []
        )
        t_rd = t_mem.read_port()
        t_word = t_rd.data
        if read_register:
            m.d.comb += t_rd.addr.eq(nf_at[-2])
            # kept apart by the build (``THRESHOLD_WORD``): PEs with the same thresholds
            # would otherwise share one flip-flop per bit
            t_word = delay(m, t_word, 1, THRESHOLD_WORD, reset_less=True)
        else:
            m.d.comb += t_rd.addr.eq(nf_at[-1])
    bits = Signal(hw.pe)
    for p, acc in enumerate(accs):
        t = t_word[p * t_shape.width : (p + 1) * t_shape.width].as_signed()
        m.d.comb += bits[p].eq(acc >= t)
    return bits


def scores(m: Module, hw: LayerHW, accs: list[Signal], nf: Value, width: int) -> Signal:
    """Group ``nf``'s PE scores, ``width`` bits each: the +-1 dot product (2 x popcount -
    fan-in for binary inputs), times the neuron's scale plus its offset unless those are
    1 and 0 for every neuron."""
    k = hw.score_mul.reshape(hw.nf, hw.pe)
    add = hw.score_add.reshape(hw.nf, hw.pe)
    plain = bool((k == 1).all() and (add == 0).all())
    values = []
    for p, acc in enumerate(accs):
        value = 2 * acc - hw.fan_in if hw.in_bits == 1 else acc
        if not plain:
            mul = Array(Const(int(v), signed(18)) for v in k[:, p])[nf]
            off = Array(Const(int(v), signed(32)) for v in add[:, p])[nf]
            value = value * mul + off
        values.append(value.as_signed()[:width])
    segment = Signal(hw.pe * width)
    m.d.comb += segment.eq(Cat(*values))
    return segment
