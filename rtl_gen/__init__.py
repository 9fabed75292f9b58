"""Amaranth generators: the only part of bnnhw that knows Amaranth.

``Accelerator(net)`` builds the streaming dataflow hardware for a folded IR network;
``to_verilog`` writes it out. Components: ``MVTU`` (one layer), width converters,
``Argmax``. ``Classifier(net)`` is the accelerator as a component for users' own
designs (``lib.data`` payloads read by name). ``PortFormat`` (how a host packs frames and
reads results) lives in :mod:`bnnhw.port_format`, free of Amaranth; it is re-exported here.
"""

from bnnhw.port_format import PortFormat
from bnnhw.rtl_gen.accelerator import Accelerator
from bnnhw.rtl_gen.classifier import Classifier, ResourceEstimate
from bnnhw.rtl_gen.verilog import to_rtlil, to_verilog, top_name

__all__ = [
    "Accelerator",
    "Classifier",
    "PortFormat",
    "ResourceEstimate",
    "to_rtlil",
    "to_verilog",
    "top_name",
]
