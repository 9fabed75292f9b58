"""bnnhw: binary neural networks from ONNX to bit-exact hardware.

``bnnhw.load`` gives the integer IR every later stage consumes; ``bnnhw.golden`` runs it.
"""

from __future__ import annotations

from pathlib import Path

from bnnhw import golden
from bnnhw.errors import BnnhwError, InputError, ModelError
from bnnhw.ir import Network, load_network, save_network

__version__ = "0.1.0"


def load(path: str | Path) -> Network:
    """An ONNX/QONNX file (imported and streamlined) or a folder holding a saved IR."""
    from bnnhw.frontend import import_onnx
    from bnnhw.passes import streamline

    path = Path(path)
    if path.is_dir():
        net = load_network(path)
        return net if net.folded else streamline(net)
    return streamline(import_onnx(path))


__all__ = [
    "BnnhwError",
    "InputError",
    "ModelError",
    "Network",
    "golden",
    "load",
    "load_network",
    "save_network",
]
