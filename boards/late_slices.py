"""Which layers read their weight ROM slices late: those the board leaves in logic anyway.

A layer with read registers whose wide weight ROM Yosys leaves in logic slices it by
input copy (``rtl_gen/weight_rom.py``). Read like a block, a slice's word is registered
twice more on its way to the PEs (``w_word``, ``w_copy``): two flip-flops a lane. Read at
an address two cycles late, its own read register beside the PEs is its only one, but in
a block that read (5.6 ns on the ECP5) would reach the adder trees unregistered. So the
build reads a layer's slices late where the memory plan forces none of them into a block
(with the blocks full, as CNV-w1a1 folded for 10,000 frames/s has them), and the slices
so read are never forced (``memories.LATE_SLICE``). That CNV-w1a1 folding routed in an
hour at 118.8 MHz with its slices read late; with the two registers a lane (51,282
flip-flops) routing stalled after 46 minutes (docs/qor.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bnnhw.boards.memories import (
    WEIGHT_SLICE,
    BlockRamError,
    Mem,
    MemoryPlan,
    parse_memories,
    plan_memories,
)

if TYPE_CHECKING:
    from bnnhw.boards.targets import Board
    from bnnhw.ir import Network
    from bnnhw.rtl_gen import Accelerator


def modules_left_in_logic(mems: list[Mem], plan: MemoryPlan) -> list[str]:
    """Modules with weight ROM slices of which ``plan`` forces none into a block."""
    forced = {m.module for m in plan.forced if m.name.startswith(WEIGHT_SLICE)}
    sliced = {m.module for m in mems if m.name.startswith(WEIGHT_SLICE)}
    return sorted(sliced - forced)


def late_slice_layers(net: Network, make: Callable[[], Accelerator], board: Board) -> list[int]:
    """The layers of the accelerator ``make`` builds for ``net`` (its ROMs may be empty)
    whose weight slices ``board``'s memory plan leaves in logic: the ones to read late."""
    from amaranth.back import rtlil

    from bnnhw.boards.fit import usable_blocks
    from bnnhw.rtl_gen.accelerator import layer_of
    from bnnhw.rtl_gen.board_top import BoardTop
    from bnnhw.rtl_gen.layer_params import layer_hw
    from bnnhw.rtl_gen.mvtu import FANOUT_PES

    if all(layer_hw(layer).pe <= FANOUT_PES for layer in net.layers):
        return []  # no layer copies its input word, so none slices its weights

    top = BoardTop(make, divisor=16, family=board.family)
    mems = parse_memories(rtlil.convert(top, name="top"))
    try:
        plan = plan_memories(mems, board.family, board.ram_blocks, usable_blocks(board))
    except BlockRamError:
        return []  # synthesis refuses the design, with the numbers
    layers = {layer_of(module) for module in modules_left_in_logic(mems, plan)}
    return sorted(layer for layer in layers if layer is not None)
