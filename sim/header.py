"""The JSON header of a vectors file: the build's interface and timing, typed.

The bench inside the simulator and the runner read these fields, so they are one frozen
dataclass here rather than dictionary keys spread over three modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bnnhw.port_format import PortFormat

FORMAT = 1


@dataclass(frozen=True)
class LayerHeader:
    """One layer's entry in the header: what its output stream carries per frame."""

    name: str
    neurons: int
    beats: int  # 1, or a convolution's output pixels
    cycles_per_frame: int
    score_bits: int | None = None  # set for the output layer, whose beats are scores

    def to_json(self) -> dict[str, Any]:
        kind = "bits" if self.score_bits is None else "scores"
        out = {"name": self.name, "neurons": self.neurons, "kind": kind, "beats": self.beats}
        if self.score_bits is not None:
            out["score_bits"] = self.score_bits
        return out | {"cycles_per_frame": self.cycles_per_frame}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LayerHeader:
        score_bits = d["score_bits"] if d["kind"] == "scores" else None
        beats, cycles = d.get("beats", 1), d["cycles_per_frame"]
        return cls(d["name"], d["neurons"], beats, cycles, score_bits)


@dataclass(frozen=True)
class Header:
    """The JSON beside the arrays: the build's interface and timing, and where frames came from."""

    top: str
    model: str
    frames: int
    source: str
    port_format: PortFormat
    initiation_interval: int
    latency_cycles: int
    layers: tuple[LayerHeader, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "top": self.top,
            "model": self.model,
            "frames": self.frames,
            "source": self.source,
            "interface": self.port_format.interface(),
            "initiation_interval": self.initiation_interval,
            "latency_cycles": self.latency_cycles,
            "layers": [layer.to_json() for layer in self.layers],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Header:
        return cls(
            top=d["top"],
            model=d["model"],
            frames=d["frames"],
            source=d["source"],
            port_format=PortFormat.from_interface(d["interface"]),
            initiation_interval=d["initiation_interval"],
            latency_cycles=d["latency_cycles"],
            layers=tuple(LayerHeader.from_json(layer) for layer in d["layers"]),
        )
