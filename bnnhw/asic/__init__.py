"""Standard-cell ASIC estimates of a generated accelerator: Yosys, OpenSTA, Icarus.

No Amaranth here: this package drives the tools on the Verilog that ``bnnhw compile``
wrote (``flow.run_asic``).
"""

from bnnhw.asic.flow import run_asic

__all__ = ["run_asic"]
