"""An MVTU's weight ROM: one memory, banks one block deep, or a slice per group of PEs.

    rom_addr -> ROM [1] -> word                                        one memory
    rom_addr -> bank b [1] -> w_bank{b} [1] -> bank multiplexer -> word   banks
               (past 8 banks: -> group multiplexer [1] -> multiplexer of the groups)
    address copy c -> slice c [1] -> its PEs' bits of the word          slices
    rom_addr [1] -> address copy c [1] -> slice c [1] -> its PEs' bits    slices read late

Banks (ECP5, a ROM deeper than one DP16KD at its width): Yosys stacks a deep ROM's blocks
by depth and chooses among their unregistered reads with a multiplexer: CNV-w1a1's layer
5 (32 bits x 18,432 words in 36 DP16KDs) had a 5.6 ns read and a three-LUT multiplexer,
12.1 ns, the worst path at 80 MHz. A bank's register moves into its block
(``boards/outreg.py``), so the multiplexer starts 1.0 ns after the clock; a cycle more.
With 36 banks the multiplexer itself (three LUT levels, the banks' routes from across the
die) was the worst path at 125 MHz (9.2 ns): past ``MUX_BANKS`` banks each group of
eight is chosen into a register, then the group; a cycle more again.

Slices (ECP5, a wide ROM Yosys leaves in logic, in a layer whose PEs take the input word
from copies): each bit is a few LUTs of the address, and one address register drove all of
them across the die: CNV-w1a1's layer 1 (1,536 bits x 24 words) had 3.0 ns of route from
it and three LUT levels, 9.9 ns, the worst path at 125 MHz. Each group of PEs that shares
an input copy has its slice of the ROM, read at its own copy of the address
(``ADDRESS_COPY``, kept apart by the build like the input copies); no cycle added.
Slices read late (``MVTU.late_slices``): the copies take the address two cycles late, in
place of the two registers a word read from a block takes to its PEs (``w_word``,
``w_copy`` in ``mvtu.py``), so a slice's read register, beside its PEs, is its only
flip-flop a lane where a word had three. Named ``memories.LATE_SLICE``, the build never
forces them into a block. A ROM of two words (wires of its address: each bit a constant,
the address or its inverse) is always read so: digits 1-bit at 2 cycles a frame needed
84 blocks fewer and 6,000 flip-flops fewer. A deeper one where the board's memory plan
leaves the slices in logic anyway: CNV-w1a1 folded for 10,000 frames/s.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Signal, Value, unsigned
from amaranth.lib import memory

from bnnhw.boards.memories import LATE_SLICE, WEIGHT_SLICE
from bnnhw.rtl_gen.adder_tree import delay

# the address copies' registers are named after this, for a synthesis script to keep apart
ADDRESS_COPY = "rom_addr_copy"
# banks one multiplexer chooses among: 8 x 32 bits is a LUT4 pair and an L6MUX a bit
MUX_BANKS = 8


def read_weights(
    m: Module,
    words: list[int],
    shape: tuple[int, int],
    addrs: list[Signal],
    *,
    bank_depth: int,
    banks: int,
    slice_bits: int,
    late: bool = False,
) -> Value:
    """The word at the address, a cycle later (and ``bank_stages`` more with banks).

    ``words``: the ROM's contents (empty: left blank); ``shape``: its (width, depth);
    ``addrs``: the address, or one copy per slice of ``slice_bits`` bits (the last one
    may be narrower); ``bank_depth``: a power of two, with ``banks`` > 1; ``late``: the
    slices are read at addresses two cycles late (named for the build to keep in logic).
    """
    width, depth = shape
    if len(addrs) > 1:
        parts, name = [], LATE_SLICE if late else WEIGHT_SLICE
        for c, addr in enumerate(addrs):
            first, bits = c * slice_bits, min(slice_bits, width - c * slice_bits)
            part = [(w >> first) & ((1 << bits) - 1) for w in words]
            parts.append(_rom(m, f"{name}{c}", part, (bits, depth), addr))
        return Cat(*parts)
    if banks == 1:
        return _rom(m, "weights", words, shape, addrs[0])
    (addr,) = addrs
    low = bank_depth.bit_length() - 1
    # the bank index is used after a bank's read and its register
    high = delay(m, addr[low:], 2, "w_bank_select", reset_less=True)
    reads = []
    for b in range(banks):
        bank_words = (b * bank_depth, min(depth, (b + 1) * bank_depth))
        data = _rom(
            m,
            f"weights{b}",
            words[bank_words[0] : bank_words[1]],
            (width, bank_words[1] - bank_words[0]),
            addr[:low],
        )
        # fed by the read alone: ``boards/outreg.py`` moves it into the block
        reads.append(delay(m, data, 1, f"w_bank{b}", reset_less=True))
    if banks <= MUX_BANKS:
        return Array(reads)[high]
    # two levels: each group of MUX_BANKS banks chosen into a register, then the group
    group_bits = MUX_BANKS.bit_length() - 1
    groups = [
        delay(
            m,
            Array(reads[g : g + MUX_BANKS])[high[:group_bits]],
            1,
            f"w_group{g // MUX_BANKS}",
            reset_less=True,
        )
        for g in range(0, banks, MUX_BANKS)
    ]
    return Array(groups)[delay(m, high[group_bits:], 1, "w_group_select", reset_less=True)]


def bank_stages(banks: int) -> int:
    """Registers between a banked ROM's reads and its word: the banks' own, and with more
    than ``MUX_BANKS`` banks the groups'."""
    return 0 if banks == 1 else 1 if banks <= MUX_BANKS else 2


def _rom(m: Module, name: str, words: list[int], shape: tuple[int, int], addr: Value) -> Value:
    """A ROM's synchronous read at ``addr``."""
    width, depth = shape
    m.submodules[name] = rom = memory.Memory(shape=unsigned(width), depth=depth, init=words)
    port = rom.read_port()
    m.d.comb += port.addr.eq(addr)
    return port.data
