"""The ONNX/QONNX frontend: the only part of bnnhw that knows ONNX."""

from bnnhw.frontend.importer import import_onnx

__all__ = ["import_onnx"]
