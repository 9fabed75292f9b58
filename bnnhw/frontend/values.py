"""The abstract values the importer tracks for each tensor (see importer.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bnnhw.ir import ElementwiseOp, Layer


@dataclass
class RawInput:
    frame: tuple[int, ...]
    ops: list[ElementwiseOp] = field(default_factory=list)


@dataclass
class Codes:
    frame: tuple[int, ...]
    scale: float
    bits: int
    code_range: tuple[int, int]
    layer: Layer | None = None  # the layer whose activation these are; None: the input
    hwc_map: tuple[int, int, int] | None = None  # (C, H, W) streamed in HWC order


@dataclass
class Accumulator:
    frame: tuple[int, ...]
    layer: Layer

    @property
    def hwc_map(self) -> tuple[int, int, int] | None:
        return self.layer.out_map if self.layer.window is not None else None


Value = RawInput | Codes | Accumulator
