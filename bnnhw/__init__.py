"""bnnhw: binary neural networks from ONNX to bit-exact hardware.

``bnnhw.load`` gives the integer IR every later stage consumes; ``bnnhw.golden`` runs it.
``compile``, ``verify``, ``build``, ``asic`` and ``sweep`` are the CLI's verbs as
functions with typed results (:mod:`bnnhw.api`, :mod:`bnnhw.results`; docs/api.md).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from bnnhw import golden

# bnnhw.build, bnnhw.asic and bnnhw.sweep are also the names of modules. They are imported
# here first, so that the functions bound below stay what ``bnnhw.build`` (etc.) name: a
# submodule is set on its package only when it is first imported. (Import the modules'
# contents with ``from bnnhw.build import ...``.)
for _module in ("bnnhw.build", "bnnhw.asic", "bnnhw.sweep"):
    importlib.import_module(_module)

from bnnhw.api import asic, build, compile, sweep, verify  # noqa: E402
from bnnhw.errors import BnnhwError, BoardError, InputError, ModelError  # noqa: E402
from bnnhw.ir import Network, load_network, save_network  # noqa: E402
from bnnhw.results import (  # noqa: E402
    AsicResult,
    BoardResult,
    CompileResult,
    LayerReport,
    SweepPoint,
    SweepResult,
    VerifyResult,
)

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
    "AsicResult",
    "BnnhwError",
    "BoardError",
    "BoardResult",
    "CompileResult",
    "InputError",
    "LayerReport",
    "ModelError",
    "Network",
    "SweepPoint",
    "SweepResult",
    "VerifyResult",
    "asic",
    "build",
    "compile",
    "golden",
    "load",
    "load_network",
    "save_network",
    "sweep",
    "verify",
]
