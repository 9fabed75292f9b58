"""Folding chosen for a board: the fastest design whose resource estimate fits it.

A layer's cost grows with its XNOR lanes (PE x SIMD) and its speed with them too, so the
search tries the foldings of a ladder of lane budgets (``fold_auto``'s ``max_lanes``),
fastest first, and keeps the first whose design fits. "Fits" is decided before any
synthesis:

* **Block RAM**, exactly as the build will place it: the board top (link, accelerator) is
  elaborated, its memories read from the RTLIL and given to the same planner the build
  runs (:func:`bnnhw.boards.memories.plan_memories`); it must place every memory Yosys
  would put in block RAM, and the ROMs it leaves in logic are charged to the logic.
* **Logic cells** (:func:`folding_cells`), from the hand-set per-layer model
  (:func:`layer_cells`, calibrated on nextpnr's packing), which the resource model fitted
  to real builds (``bnnhw/sweep/resources.py``) replaces for an iCE40 network with n-bit
  lanes and may raise on ECP5 (:data:`FITTED_ROLE`). The estimate is held to a share of
  the device (:func:`logic_budget`, or up to :data:`LOGIC_LIMIT` for a model whose
  smallest folding needs more): past 81-85 % of an iCE40 nextpnr's placer fails on the
  flip-flops' shared clock-enable and reset nets.
* **Block RAM share**: on the ECP5 an automatic folding fills at most
  :data:`BLOCK_BUDGET` of the blocks, since routing around nearly all of them stalls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bnnhw.boards.memories import (
    FIFO_STORAGE,
    GEOMETRY,
    BlockRamError,
    Mem,
    auto_block,
    blocks,
    check_rom_capacity,
    parse_memories,
    plan_memories,
)
from bnnhw.errors import BoardError
from bnnhw.ir import Network
from bnnhw.passes.folding import divisors, fold_auto, may_pad, upstream_pixels

if TYPE_CHECKING:
    from bnnhw.boards.targets import Board
    from bnnhw.rtl_gen.layer_params import LayerHW

# the share of the device's logic cells an automatic folding may plan to use: nextpnr's
# iCE40 placer fails at 81-85 % (TFC 16x20 placed at 83 %, a CNV failed at 85 %); on the
# ECP5-85F routing takes long before the cells run out: TFC at 7,376 lanes (37 % by the
# estimate) did not route in 30 minutes before wide layers copied their input word, at
# 4,983-5,328 lanes (estimated 35-37 %, placed in 29-31 %) it routes in 17-21. 42 % lets
# SFC take 60 cycles a frame (2 M frames/s at 125 MHz needs 62 or fewer; docs/qor.md)
LOGIC_BUDGET = {"ice40": 0.82, "ecp5": 0.42}
# the share of the block RAM an automatic folding may fill, where routing around nearly
# every block is the limit: SFC 128x25 32x32 32x32 5x8 (206 of the ECP5-85F's 208
# blocks) had 106,000 arcs left after 10 minutes of routing, where TFC's 12-cycle builds
# (151-163 blocks) had about 90,000 and routed in 17-21 (docs/qor.md)
BLOCK_BUDGET = {"ecp5": 0.85}


def usable_blocks(board: Board) -> int:
    """Blocks the memory plan may fill by forcing memories into them (``BLOCK_BUDGET``)."""
    return math.floor(BLOCK_BUDGET.get(board.family, 1.0) * board.ram_blocks)


# a network with n-bit lanes on the iCE40, priced by the fitted model: the share its sweep
# was judged against. At 82 % TFC 8-bit took 16x3 1x4 1x4 1x1 (4,330 cells placed) and
# ran at 42 MHz, where 16x2 (3,847) ran at 51.5
NBIT_LOGIC_BUDGET = {"ice40": 0.79}


def logic_budget(net: Network, family: str) -> float:
    """The share of the cells an automatic folding of ``net`` may plan on."""
    if family in NBIT_LOGIC_BUDGET and any(layer.in_bits > 1 for layer in net.layers):
        return NBIT_LOGIC_BUDGET[family]
    return LOGIC_BUDGET[family]


# How the model fitted to the sweeps (bnnhw/sweep/resources.py) is used. ECP5: the
# budget stands in for routing (fan-out of an input word to many PEs), calibrated against
# the hand model's figures for builds that routed and builds that did not; the fitted
# model only raises an estimate there. iCE40: it replaces the hand model for a network
# with n-bit lanes (8-bit inputs), which the hand model prices up to 2.4x too low, and
# is not used for a binary one: its sweep built binary layers of 1-8 PEs with 7-bit
# accumulators and gave accumulators no cost, so it priced TFC's layer 0 at PE 64 (64
# 12-bit accumulators and compares) at 3,709 cells where nextpnr packed 4,948. The hand
# model, recalibrated on four binary builds, is within 8 % of each (docs/qor.md).
FITTED_ROLE = {"ice40": "replaces n-bit", "ecp5": "raises"}
# the most ROM left in logic of any build the model was fitted to (1,984 bits): past it
# the fit's price for ROM in logic is an extrapolation, and the hand model is used
FITTED_ROM_BITS = 2048
# a model whose smallest folding needs more than its family's budget may still use this
# share: the budget limits how far a folding is unrolled, not which models are built
LOGIC_LIMIT = 0.75
# such a model's budget: its smallest folding by the per-layer model, plus this share
# for what only the full estimate adds (memories left in logic) and a step faster
OVER_SMALLEST = 1.25
# The model's coefficients, fitted to nextpnr's logic cells (ICESTORM_LC) of TFC and the
# digits MLP on the iCEBreaker at four foldings (16 to 260 lanes, SIMD 4 to 98): within
# 5 % of every one (docs/qor.md has the table). UART, link FSM, CRC, frame store:
LINK_CELLS = 800
LAYER_CELLS = 250  # per layer: counters, credit and bank control, issue, thresholds
# per XNOR lane: the XNOR-popcount tree and its pipeline registers, which grow with the
# tree's depth: 1.5 + 0.6 x log2(SIMD) (3.9 cells a lane at SIMD 16)
LANE_CELLS, LANE_CELLS_PER_LEVEL = 1.5, 0.6
ACC_CELLS_PER_BIT = 2.0  # a PE's accumulator and compare: two carry chains, per bit
CELLS_PER_OUTPUT_BIT = 1.0  # the output vector register (the FIFO's register packs)
CELLS_PER_WINDOW_BIT = 2.0  # a convolution's window registers and their multiplexers
# a WindowReader (LayerHW.reads_windows): counters and address, the pixel's chunk
# multiplexer, its output FIFO of SIMD words (bench/windows.py: FINN's CNV-w1a1 layers
# took 79-537 LUT4 and 103-367 flip-flops on ECP5 besides the harness's)
READER_CELLS, READER_CELLS_PER_PIXEL_BIT, READER_CELLS_PER_WORD_BIT = 150, 1.0, 6.0
# A convolutional network's hand estimate on an iCE40, scaled to what nextpnr packed for
# the bundled CNVs' iCEBreaker picks (docs/qor.md, "Convolutions on the UP5K"): 4,499
# cells against 4,066 estimated with binary lanes only (placement failed at 85 %), 5,568
# against 4,039 and 5,482 against 4,084 with an 8-bit input layer. The per-layer model was set on
# dense layers; a convolution's lanes and window registers are flip-flop heavy (as many
# FFs as LUTs, which pack into fewer shared cells), and n-bit lanes (8-bit codes, the
# ternary codes of a padded binary convolution) cost several cells each.
CONV_SCALE = {"ice40": {"binary lanes": 1.15, "n-bit lanes": 1.4}}


@dataclass(frozen=True)
class Estimate:
    """What a folded network needs on a board, before synthesis."""

    board: str
    max_lanes: int  # the automatic folding's budget (0: the folding was given)
    word_bits: int | None  # the automatic folding's preferred input word width
    folding: tuple[tuple[int, int], ...]  # (PE, SIMD) per layer
    interval: int  # cycles per frame
    lanes: int
    logic_cells: int
    logic_cells_available: int
    blocks: int
    blocks_available: int
    rom_bits_in_logic: int
    problem: str | None  # why it does not fit, or None
    blocks_short: bool = False  # the problem is the block RAM (counted, not estimated)

    @property
    def fits(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict:
        return {
            "board": self.board,
            "max_lanes": self.max_lanes,
            "word_bits": self.word_bits,
            "folding": [f"{pe}x{simd}" for pe, simd in self.folding],
            "interval": self.interval,
            "lanes": self.lanes,
            "logic_cells": self.logic_cells,
            "logic_cells_available": self.logic_cells_available,
            "blocks": self.blocks,
            "blocks_available": self.blocks_available,
            "rom_bits_in_logic": self.rom_bits_in_logic,
            "problem": self.problem,
        }


def layer_cells(hw: LayerHW) -> float:
    """Logic cells of one layer (MVTU, and a convolution's window and pool) by the model."""
    from bnnhw.rtl_gen.layer_params import signed_width

    lanes = hw.pe * hw.simd
    acc_bits = signed_width(*hw.acc_range)
    out_bits = hw.neurons * (signed_width(*hw.score_range) if hw.is_output else 1)
    cells = LAYER_CELLS + lanes * (LANE_CELLS + LANE_CELLS_PER_LEVEL * math.log2(hw.simd))
    cells += ACC_CELLS_PER_BIT * hw.pe * acc_bits + CELLS_PER_OUTPUT_BIT * out_bits
    if hw.reads_windows:
        cells += READER_CELLS + READER_CELLS_PER_PIXEL_BIT * hw.stream_word
        cells += READER_CELLS_PER_WORD_BIT * hw.simd * hw.in_bits
    elif hw.window is not None:
        cells += CELLS_PER_WINDOW_BIT * hw.window.taps * hw.stream_word
    if hw.pool is not None:
        cells += CELLS_PER_WINDOW_BIT * hw.pool.taps * hw.neurons
    return cells


def folding_cells(net: Network, family: str, roms_in_logic: Sequence[Mem] = ()) -> float:
    """Logic cells of a folded ``net`` (link included) on an FPGA ``family``.

    ``roms_in_logic``: the ROMs the memory plan leaves out of block RAM. The hand-set
    per-layer model always; the model fitted to real builds where it was fitted (dense
    layers, little ROM in logic; its error on held-out builds is in
    ``bench/results/sweep_fit.md``) replaces it or only raises it (:data:`FITTED_ROLE`).
    """
    from bnnhw.rtl_gen.layer_params import layer_hw
    from bnnhw.sweep import resources

    hws = [layer_hw(layer) for layer in net.layers]
    rom_bits = sum(m.bits for m in roms_in_logic)
    hand = LINK_CELLS + sum(layer_cells(hw) for hw in hws) + sum(map(rom_cells, roms_in_logic))
    if any(hw.window is not None for hw in hws) and family in CONV_SCALE:
        nbit = any(hw.in_bits > 1 for hw in hws)
        hand *= CONV_SCALE[family]["n-bit lanes" if nbit else "binary lanes"]
    fitted = resources.load_coefficients()["families"].get(family, {})
    role = FITTED_ROLE.get(family)
    if (
        role is None
        or (role == "replaces n-bit" and all(hw.in_bits == 1 for hw in hws))
        or "logic_cells" not in fitted
        or any(hw.window is not None for hw in hws)  # no sweep has built a convolution
        or rom_bits > FITTED_ROM_BITS  # nor left more ROM than this in logic
    ):
        return hand  # outside what the fit has seen: it would extrapolate
    cells = resources.predict(net, family, rom_bits)["logic_cells"]
    return cells if role == "replaces n-bit" else max(cells, hand)


def rom_cells(mem: Mem) -> int:
    """LUT4s of a ROM in logic: one per output bit for every 16 words (a 1-word ROM is
    constants, folded into the gates it feeds)."""
    return 0 if mem.depth == 1 else mem.width * math.ceil(mem.depth / 16)


def estimate(
    net: Network,
    board: Board,
    max_lanes: int | None = None,
    share: float | None = None,
    word_bits: int | None = None,
) -> Estimate:
    """Resources of ``net`` (already folded) on ``board``, and whether they fit.

    ``share``: of the device's logic cells the design may use (default
    :func:`logic_budget`, the automatic folding's; a folding the user chose may use all).
    """
    from amaranth.back import rtlil

    from bnnhw.rtl_gen import Accelerator
    from bnnhw.rtl_gen.board_top import BoardTop

    top = BoardTop(lambda: Accelerator(net, contents=False), divisor=16, family=board.family)
    mems = parse_memories(rtlil.convert(top, name="top"))
    logic_available = board.luts
    cells, problem, blocks, rom_logic, roms = 0.0, None, 0, 0, []
    blocks_short = False
    try:
        plan = plan_memories(mems, board.family, board.ram_blocks, usable_blocks(board))
    except BlockRamError as exc:
        problem = exc.fact
        blocks_short = True
    else:
        blocks = plan.auto_blocks + plan.forced_blocks
        # a RAM left in logic is a flip-flop per bit (FIFO storage is in layer_cells)
        in_blocks = {m.path for m in plan.forced}
        ram_bits = sum(
            m.bits
            for m in mems
            if not m.rom
            and m.path not in in_blocks
            and m.name != FIFO_STORAGE
            and not auto_block(m, board.family)
        )
        roms = [
            m for m in mems if m.rom and m.path not in in_blocks and not auto_block(m, board.family)
        ]
        rom_logic = plan.logic_rom_bits  # the bits of ``roms``
        cells += ram_bits
    cells = math.ceil(cells + folding_cells(net, board.family, roms))
    share = logic_budget(net, board.family) if share is None else share
    budget = int(share * logic_available)
    if problem is None and cells > budget:
        problem = (
            f"an estimated {cells} logic cells, over the {budget} "
            f"({share:.0%} of the {board.device}'s {logic_available}) it may use"
        )
    acc = top.accelerator
    return Estimate(
        board=board.name,
        max_lanes=max_lanes or 0,
        word_bits=word_bits,
        folding=tuple((hw.pe, hw.simd) for hw in acc.layers),
        interval=max(acc.ideal_cycles, acc.port_format.frame_words),
        lanes=sum(hw.pe * hw.simd for hw in acc.layers),
        logic_cells=cells,
        logic_cells_available=logic_available,
        blocks=blocks,
        blocks_available=board.ram_blocks,
        rom_bits_in_logic=rom_logic,
        problem=problem,
        blocks_short=blocks_short,
    )


def lane_ladder(net: Network) -> list[int]:
    """Lane budgets from one lane to the largest layer unrolled: about x1.4 apart, plus
    the budget of every interval some layer reaches exactly.

    A geometric ladder alone skips foldings: TFC's layer 0 (784 = 2^4 x 7^2 inputs) has
    no interval between 128 and 196 cycles, and a rung at 187 lanes asks for 268 cycles,
    the next at 264 for 190, so the 196-cycle folding would never be tried.
    """
    largest = max(layer.cycles_at(1, 1) for layer in net.layers)
    ladder, lanes = {largest}, 1
    while lanes < largest:
        ladder.add(lanes)
        lanes = max(lanes + 1, round(lanes * 2**0.5))
    for layer, pixel in zip(net.layers, upstream_pixels(net), strict=True):
        # one SIMD per distinct SF: a padded layer's intervals too (TFC: 784 in 40 words)
        simds = {-(-layer.fan_in // sf): None for sf in range(1, layer.fan_in + 1)}
        for pe in divisors(layer.neurons):
            for simd in simds if may_pad(layer, pixel) else divisors(layer.fan_in):
                ladder.add(math.ceil(largest / layer.cycles_at(pe, simd)))
    return sorted(ladder)


def weight_blocks(net: Network, family: str) -> int:
    """Blocks the weight ROMs Yosys maps by itself take: a floor on the design's count."""
    roms = [Mem("", "weights", la.pe * la.simd, la.nf * la.sf, rom=True) for la in net.layers]
    return sum(blocks(m, family) for m in roms if auto_block(m, family))


def fold_for_board(net: Network, board: Board, progress=None) -> tuple[Network, Estimate]:
    """The folding of ``net`` with the fewest cycles per frame that fits ``board``.

    Logic grows with the lane budget, block RAM does not always (very narrow, deep ROMs
    waste blocks as much as very wide, shallow ones), so the distinct foldings of
    :func:`lane_ladder` are tried from the fastest down: those over the logic budget by
    the model alone are passed over without elaborating them, and the first whose full
    estimate fits is taken.
    """
    from bnnhw.rtl_gen.layer_params import layer_hw

    weight_bits = sum(layer.neurons * layer.fan_in for layer in net.layers)
    check_rom_capacity([Mem("top", "weights", 1, weight_bits, rom=True)], board)
    port = max(width for width, _ in GEOMETRY[board.family][0])
    foldings: dict[tuple, tuple[int, float, int, int | None, Network]] = {}
    for lanes in lane_ladder(net):
        # fewest lanes, or input words at most one or two ports wide (a padded SIMD of
        # fewest lanes may be a wide word on few PEs: TFC's 4 x 79 where 16 x 20 fits)
        for word_bits in (None, port, 2 * port):
            folded = fold_auto(net, lanes, word_bits)
            key = tuple((la.pe, la.simd) for la in folded.layers)
            if key not in foldings:
                cells = folding_cells(folded, board.family)
                interval = max(layer_hw(layer).walk_cycles for layer in folded.layers)
                foldings[key] = (interval, cells, lanes, word_bits, folded)
    smallest = min(candidate[1] for candidate in foldings.values())
    if smallest > LOGIC_LIMIT * board.luts:
        # a fact (block RAM, counted exactly) before an estimate (logic)
        _refuse_if_short_of_blocks(net, [c[4] for c in foldings.values()], board)
        raise BoardError(
            f"{board.name}: no folding of {net.name} fits: even its smallest folding needs an "
            f"estimated {smallest:.0f} logic cells, over the {LOGIC_LIMIT * board.luts:.0f} "
            f"({LOGIC_LIMIT:.0%} of the {board.device}'s {board.luts}) a design may plan on; "
            "build for a board with more logic, or give a folding yourself (--max-lanes, "
            "--folding: refused only past the whole device, left to nextpnr otherwise)"
        )
    budget = max(
        logic_budget(net, board.family) * board.luts,
        min(OVER_SMALLEST * smallest, LOGIC_LIMIT * board.luts),
    )
    last, short_of_blocks = None, True
    for _interval, cells, lanes, word_bits, folded in sorted(foldings.values(), key=_speed):
        if cells > budget or weight_blocks(folded, board.family) > board.ram_blocks:
            continue  # over budget by the model alone: not worth elaborating
        last = estimate(folded, board, lanes, share=budget / board.luts, word_bits=word_bits)
        block_budget = usable_blocks(board)
        if last.fits and last.blocks > block_budget:
            last = replace(
                last,
                problem=f"{last.blocks} blocks, over the {block_budget} "
                f"({block_budget / board.ram_blocks:.0%}) an automatic folding may fill",
            )
        if progress:
            verdict = "fits" if last.fits else f"does not fit: {last.problem}"
            progress(
                f"max lanes {lanes}: {last.interval} cycles/frame, ~{last.logic_cells} logic "
                f"cells, {last.blocks} blocks; {verdict}"
            )
        if last.fits:
            return folded, last
        short_of_blocks &= last.blocks_short
    if last is not None and short_of_blocks:  # every folding tried: say so for the blocks
        _refuse_if_short_of_blocks(net, [c[4] for c in foldings.values()], board)
    if last is None:  # every folding within the logic has its weights over the blocks
        raise BoardError(
            f"{board.name}: no folding of {net.name} fits: the weight ROMs of every folding "
            f"within {budget:.0f} logic cells need more than the {board.ram_blocks} blocks of "
            "block RAM; build for a board with more block RAM, or use a smaller model"
        )
    tried = " ".join(f"{pe}x{simd}" for pe, simd in last.folding)
    raise BoardError(
        f"{board.name}: no folding of {net.name} fits (the last tried, {tried}: "
        f"{last.problem}); build for a board with more block RAM and logic, or use a "
        "smaller model"
    )


def _refuse_if_short_of_blocks(net: Network, foldings: list[Network], board: Board) -> None:
    """BoardError naming the blocks when even the folding with the fewest weight blocks
    has more memories in block RAM than the board holds."""
    least = min(foldings, key=lambda f: weight_blocks(f, board.family))
    short = estimate(least, board, share=1.0)
    if short.blocks_short:
        tried = " ".join(f"{pe}x{simd}" for pe, simd in short.folding)
        raise BoardError(
            f"{board.name}: no folding of {net.name} fits: with the fewest weight blocks "
            f"({tried}) {short.problem}; build for a board with more block RAM, or use "
            "a smaller model"
        )


def _speed(candidate: tuple) -> tuple:
    """Fastest first; among equally fast, the fewest logic cells."""
    return candidate[0], candidate[1]


def check_fits(net: Network, board: Board) -> Estimate:
    """Refuse, before synthesis, a folding given by the user that cannot fit ``board``."""
    result = estimate(net, board, share=1.0)
    if not result.fits:
        raise BoardError(
            f"{board.name}: the folding {' '.join(f'{p}x{s}' for p, s in result.folding)} "
            f"does not fit: {result.problem}; use a smaller --max-lanes or leave the folding "
            "to the board (no --max-lanes, no --folding)"
        )
    return result
