"""Verilog out of an Accelerator, through Amaranth's back end (its built-in Yosys)."""

from __future__ import annotations

import re

from amaranth.back import verilog

from bnnhw.rtl_gen.accelerator import Accelerator


def top_name(name: str) -> str:
    """A Verilog identifier from a model name (``tfc-w1a1.v2`` -> ``tfc_w1a1_v2``)."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return ident if re.match(r"[A-Za-z_]", ident) else f"bnn_{ident}"


def to_verilog(accelerator: Accelerator, name: str) -> str:
    """Verilog text with module ``name``; ports clk, rst, i__*, o__* (see PortFormat)."""
    return verilog.convert(accelerator, name=name, emit_src=False)
