"""The ONNX/QONNX frontend: the only part of bnnhw that knows ONNX."""

from bnnhw.frontend.dialects import Normalized, describe
from bnnhw.frontend.importer import import_onnx

__all__ = ["Normalized", "describe", "import_onnx"]
