"""Which memories of a design go to block RAM: read from the RTLIL, told to Yosys by attribute.

Yosys' ``memory_libmap`` prices a ROM in logic at 1/16 per bit and an iCE40 EBR at 64, so a
wide, shallow weight ROM (64 bits x 64 words: 4 EBR for 4 kbit) stays in logic and costs
~300 LUTs. On a small FPGA the logic runs out long before the block RAM, so
:func:`memory_script` sets ``ram_style = "block"`` on the largest ROMs that Yosys would
leave in logic, as long as the blocks Yosys maps by itself plus the forced ones fit the
board. :func:`check_rom_capacity` refuses, before any synthesis, a design whose ROMs need
more bits than the board's initialisable block RAM holds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bnnhw.errors import BoardError

if TYPE_CHECKING:
    from bnnhw.boards.targets import Board

# (width, depth) configurations of one block, and its capacity in bits
GEOMETRY = {
    "ice40": ([(16, 256), (8, 512), (4, 1024), (2, 2048)], 4096, 64),  # SB_RAM40_4K
    "ecp5": ([(36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)], 18432, 128),
}
LOGIC_COST_ROM, LOGIC_COST_RAM = 1 / 16, 1.0  # memory_libmap's defaults, per bit
# distributed RAM in the logic (written memories only): (width, depth, memory_libmap's cost)
# of one cell. Yosys maps an ECP5 RAM that is wide and shallow (a line buffer of 512 bits
# x 3, a pixel FIFO of 256 x 11) into TRELLIS_DPR16X4s and read flip-flops, not DP16KDs
LUTRAM = {"ecp5": (4, 16, 4)}
# a ``lib.fifo`` queue's memory: its read data goes straight into the consumer's logic,
# 5.6 ns after the clock from an ECP5 DP16KD, so where distributed RAM holds it cheaply
# it is not forced into a block (an output FIFO forced there was TFC's worst path)
FIFO_STORAGE = "storage"
# an MVTU's threshold ROM: its word meets the accumulator in a comparator's carry chain,
# the tightest path after a read. Up to 16 words it is a LUT4 per bit placed beside the
# comparators; forced into a block it reads from whichever block is left, on the ECP5 one
# at the die's edge (TFC 12 cycles: a 5.35 ns route, the worst path at 125 MHz)
THRESHOLDS = "thresholds"
# a slice of a weight ROM in logic (``rtl_gen/weight_rom.py``), numbered: a LUT a bit,
# forced into a block where one is left, as other ROMs are (TFC's 4,608-bit layer 0 in
# logic missed 125 MHz by 19 %, docs/qor.md)
WEIGHT_SLICE = "weights_slice"
# a slice read at an address two cycles late, so that its read register is the only one
# before its PEs (``MVTU.late_slices``): never forced into a block, where its 5.6 ns read
# would reach their adder trees unregistered. One of at most ``WIRED_ROM_WORDS`` words is
# always read late (wires of its address: each bit a constant, the address or its
# inverse); a deeper one where the board's memory plan leaves its layer's slices in logic
# anyway (``boards/late_slices.py``)
LATE_SLICE = "weights_late"
WIRED_ROM_WORDS = 2
# memories never forced into a block, by family and name (without a slice's number): the
# deepest kept (None: any)
KEEP_IN_LOGIC: dict[str, dict[str, int | None]] = {
    "ice40": {LATE_SLICE: None},
    "ecp5": {FIFO_STORAGE: None, THRESHOLDS: 16, LATE_SLICE: None},
}
MIN_FORCED_LOGIC = 16  # LUTs or FFs: below this, a memory is not worth a block


class BlockRamError(BoardError):
    """The design's ROMs do not fit the board's block RAM.

    ``fact``: what does not fit, without the advice (for callers that advise otherwise).
    """

    def __init__(self, message: str, fact: str | None = None) -> None:
        super().__init__(message)
        self.fact = fact or message


@dataclass(frozen=True)
class Mem:
    module: str  # RTLIL module, e.g. "top.accelerator.layer0"
    name: str  # memory name in that module, e.g. "weights"
    width: int
    depth: int
    rom: bool  # no write port
    sync_read: bool = True  # every read port registered (block RAM reads are)

    @property
    def bits(self) -> int:
        return self.width * self.depth

    @property
    def path(self) -> str:
        return f"{self.module}.{self.name}"


_ASYNC_READ = re.compile(
    r'cell \$memrd\S* \S+\s+parameter \\MEMID "\\\\([^"]+)"'
    r"(?:\s+parameter \\(?!CLK_ENABLE)\S+ \S+)*"
    r"\s+parameter \\CLK_ENABLE (?:1'0|0)\s"
    r"(?:\s+parameter \\\S+ \S+)*(?:\s+connect \\(?!DATA)\S+ [^\n]+)*"
    r"\s+connect \\DATA (\S+)"
)


def _registered(chunk: str, data: str) -> bool:
    """Does a flip-flop take the wire ``data`` whole, so that Yosys' ``memory_dff`` merges
    it into the read port (a combinational read with a register of its own)?"""
    flop = (
        rf"cell \$dff \S+(?:\s+parameter [^\n]+)*\s+connect \\D {re.escape(data)}(?: \[\d+:0\])?\n"
    )
    return re.search(flop, chunk) is not None


def parse_memories(rtlil: str) -> list[Mem]:
    """Every ``memory`` of every module, and whether any ``$memwr`` cell writes it."""
    mems: list[Mem] = []
    for chunk in re.split(r"^module \\", rtlil, flags=re.M)[1:]:
        module = chunk.split(None, 1)[0]
        written = set(re.findall(r'cell \$memwr\S* \S+\s+parameter \\MEMID "\\\\([^"]+)"', chunk))
        async_read = {
            name for name, data in re.findall(_ASYNC_READ, chunk) if not _registered(chunk, data)
        }
        found = re.findall(r"^\s*memory width (\d+) size (\d+) \\(\S+)", chunk, re.M)
        for width, depth, name in found:
            rom, sync = name not in written, name not in async_read
            mems.append(Mem(module, name, int(width), int(depth), rom, sync))
    return mems


def blocks(mem: Mem, family: str) -> int:
    """Blocks of the family's block RAM that hold ``mem`` in the best configuration."""
    configs = GEOMETRY[family][0]
    return min(math.ceil(mem.width / w) * math.ceil(mem.depth / d) for w, d in configs)


def auto_block(mem: Mem, family: str) -> bool:
    """Would Yosys map it to block RAM by itself (its cost model, without the mux terms)?"""
    return _logic(mem, family) > blocks(mem, family) * GEOMETRY[family][2]


def rom_kind(width: int, depth: int, family: str = "ice40") -> str:
    """Where Yosys puts a ROM of this shape by itself: "bram" or "lut" (logic).

    The build report's prediction, before any board is chosen; iCE40 is the family of the
    smallest supported boards.
    """
    return "bram" if auto_block(Mem("", "", width, depth, rom=True), family) else "lut"


@dataclass
class MemoryPlan:
    forced: list[Mem]  # memories given ram_style = "block"
    auto_blocks: int  # blocks Yosys takes by itself (an estimate)
    forced_blocks: int
    logic_rom_bits: int  # ROM bits left in logic

    def script(self) -> str:
        """Yosys commands to run after ``read_rtlil``."""
        return "\n".join(
            f'setattr -set ram_style "block" {m.module}/m:{m.name}' for m in self.forced
        )


def _logic(mem: Mem, family: str) -> float:
    """Yosys' logic cost of a memory: ~LUTs for a ROM; for a RAM, flip-flops or, where the
    family has it and it is cheaper, distributed RAM."""
    if mem.rom:
        return mem.bits * LOGIC_COST_ROM
    cost = mem.bits * LOGIC_COST_RAM
    if family in LUTRAM:
        width, depth, cell = LUTRAM[family]
        cost = min(cost, math.ceil(mem.width / width) * math.ceil(mem.depth / depth) * cell)
    return cost


def kept_in_logic(mem: Mem, family: str) -> bool:
    """Is ``mem`` one the family keeps out of the blocks it would be forced into
    (:data:`KEEP_IN_LOGIC`)?"""
    kept = KEEP_IN_LOGIC.get(family, {})
    name = mem.name if mem.name in kept else mem.name.rstrip("0123456789")
    if name not in kept:
        return False
    deepest = kept[name]
    return deepest is None or mem.depth <= deepest


def saved_per_block(mem: Mem, family: str) -> float:
    """Logic a memory frees by moving to block RAM, per block."""
    return _logic(mem, family) / blocks(mem, family)


def plan_memories(
    mems: list[Mem], family: str, available: int, force_up_to: int | None = None
) -> MemoryPlan:
    """Force the memories Yosys leaves in logic into the blocks left, most logic saved first.

    RAMs (the layers' input buffers) count a flip-flop per bit in logic; ROMs a sixteenth
    of a LUT per bit. A RAM with an unregistered read port cannot go to block RAM.
    ``force_up_to``: blocks in use past which no more memories are forced (a device
    nearly full of blocks routes badly); the memories Yosys puts in blocks by itself may
    still fill ``available``.
    """
    limit = available if force_up_to is None else min(available, force_up_to)
    auto = sum(blocks(m, family) for m in mems if auto_block(m, family))
    if auto > available:
        fact = _too_many_blocks(mems, family, auto, available)
        advice = (
            "rebuild with a smaller --max-lanes (narrower weight ROMs and input buffers) "
            "or build for a board with more block RAM"
        )
        raise BlockRamError(f"{fact}; {advice}", fact=fact)
    left = [
        m
        for m in mems
        if not auto_block(m, family)
        and m.sync_read
        and _logic(m, family) >= MIN_FORCED_LOGIC
        and not kept_in_logic(m, family)
    ]
    forced, used = [], 0
    for mem in sorted(left, key=lambda m: (-saved_per_block(m, family), m.path)):
        need = blocks(mem, family)
        if auto + used + need <= limit:
            forced.append(mem)
            used += need
    logic = sum(m.bits for m in mems if m.rom and not auto_block(m, family) and m not in forced)
    return MemoryPlan(forced, auto, used, logic)


def _too_many_blocks(mems: list[Mem], family: str, auto: int, available: int) -> str:
    """Which memories take the blocks, largest first, for the refusal."""
    mine = sorted((m for m in mems if auto_block(m, family)), key=lambda m: -blocks(m, family))
    named = ", ".join(
        f"{m.path.removeprefix('top.')} {blocks(m, family)} ({m.depth} x {m.width} bits)"
        for m in mine[:3]
    )
    return (
        f"the memories Yosys puts in block RAM need {auto} blocks and the device has "
        f"{available} ({named})"
    )


def check_rom_capacity(mems: list[Mem], board: Board) -> None:
    """BlockRamError when the ROMs alone exceed what the board's block RAM can hold."""
    per_block = GEOMETRY[board.family][1]
    capacity = board.ram_blocks * per_block
    need = sum(m.bits for m in mems if m.rom)
    if need <= capacity:
        return
    kbit = per_block // 1024
    spram = (
        f" (its {board.spram_kbit} kbit of SPRAM cannot be loaded by the bitstream: it "
        "starts empty)"
        if board.spram_kbit
        else ""
    )
    bigger = [
        b.name
        for b in _boards()
        if b.ram_blocks * GEOMETRY[b.family][1] >= need and b.name != board.name
    ]
    hint = f"build for {' or '.join(bigger)}" if bigger else "no supported board holds it"
    raise BlockRamError(
        f"{board.name}: the weights and thresholds need {need / 1024:.0f} kbit of ROM, and the "
        f"{board.device} has {capacity // 1024} kbit of block RAM ({board.ram_blocks} x "
        f"{kbit} kbit){spram}; {hint}, or use a smaller model "
        f"({need / capacity:.1f}x too big)"
    )


def _boards():
    from bnnhw.boards.targets import BOARDS

    return BOARDS.values()
