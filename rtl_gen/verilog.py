"""Verilog out of an Accelerator: Amaranth's RTLIL, written out by Yosys.

Amaranth's own Verilog back end (``proc -nomux -norom; memory_collect``) keeps every
process as an ``always @*`` block and every flip-flop's enable and reset inside its
``always @(posedge clk)``. An event-driven simulator pays for each of those: Icarus' vvp
runs them as threads, each load and store a few hundred instructions (``docs/verify.md``).
``WRITE_PASSES`` turn the processes into multiplexers (continuous assignments) and leave
every flip-flop a bare ``q <= d``, so a TFC cycle costs vvp 1.7x fewer instructions.
Same modules, ports and named signals; only Yosys' equivalence-preserving passes run.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from amaranth.back import rtlil
from amaranth.lib import wiring

from bnnhw.yosys import run_yosys

# ``-norom``: a ROM stays a memory (read by address), not a case statement.
# ``-nodffe -nosdff``: enables and synchronous resets stay multiplexers in front of a
# plain flip-flop, whose ``always`` block then loads one value instead of three.
# ``pmuxtree``: a parallel multiplexer (an FSM's next state) as a tree of ``?:``, since
# ``write_verilog`` writes one as a function named ``\$procmux$N``, which Icarus 11
# takes for an undefined system function (the board top's link has such FSMs).
WRITE_PASSES = ("proc -norom", "memory_collect", "opt -nodffe -nosdff", "pmuxtree", "opt_clean")


def top_name(name: str) -> str:
    """A Verilog identifier from a model name (``tfc-w1a1.v2`` -> ``tfc_w1a1_v2``)."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return ident if re.match(r"[A-Za-z_]", ident) else f"bnn_{ident}"


def to_rtlil(top: wiring.Component, name: str) -> str:
    """The design as Amaranth's RTLIL, the netlist ``to_verilog`` writes out."""
    return rtlil.convert(top, name=name, emit_src=False)


def to_verilog(top: wiring.Component, name: str) -> str:
    """Verilog text with module ``name`` and ``top``'s ports (an Accelerator's: clk, rst,
    i__*, o__*, see PortFormat)."""
    design = to_rtlil(top, name)
    with tempfile.TemporaryDirectory(prefix="bnnhw-verilog-") as folder:
        work = Path(folder)
        (work / "design.il").write_text(design)
        script = ["read_rtlil design.il", *WRITE_PASSES, "write_verilog -norename design.v"]
        run_yosys("\n".join(script) + "\n", work, "write_verilog")
        return (work / "design.v").read_text()
