"""Typed results of the Python API (``bnnhw.compile``, ``verify``, ``build``, ``asic``, ``sweep``).

Each result reads the build's report (the dict written to ``report.json``) once, here, and
exposes its figures as attributes; ``report`` keeps the whole dict for anything not
lifted out. Nothing is recomputed: the numbers are the report's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bnnhw.ir import Network
from bnnhw.port_format import PortFormat


@dataclass(frozen=True)
class LayerReport:
    """One layer of the compiled accelerator, as ``report.json`` lists it."""

    name: str
    kind: str  # "dense" or "conv"
    fan_in: int
    neurons: int
    pe: int
    simd: int
    nf: int
    sf: int
    positions: int
    cycles_per_frame: int
    weight_bits: int
    pipeline_latency: int

    @property
    def lanes(self) -> int:
        """XNOR lanes (PE x SIMD) of the layer."""
        return self.pe * self.simd

    @classmethod
    def from_report(cls, layer: Mapping[str, Any]) -> LayerReport:
        return cls(**{name: layer[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class CompileResult:
    """``bnnhw.compile``: the Verilog, the folding, cycles per frame and latency."""

    folder: Path
    verilog: Path
    top: str
    initiation_interval: int  # cycles per frame of the slowest layer
    latency_cycles: int
    latency_exact: bool  # False with convolutions: an upper estimate
    layers: tuple[LayerReport, ...]
    port_format: PortFormat
    net: Network = field(repr=False)
    fit: Mapping[str, Any] | None = field(default=None, repr=False)  # the board estimate
    report: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def folding(self) -> tuple[tuple[int, int], ...]:
        """(PE, SIMD) per layer."""
        return tuple((layer.pe, layer.simd) for layer in self.layers)

    @classmethod
    def from_build(cls, build) -> CompileResult:
        """From a :class:`bnnhw.build.Build` (compiled or loaded from its folder)."""
        report = build.report
        return cls(
            folder=Path(build.folder),
            verilog=Path(build.folder) / report["verilog"],
            top=report["top"],
            initiation_interval=report["initiation_interval"],
            latency_cycles=report["latency_cycles"],
            latency_exact=report["latency_exact"],
            layers=tuple(LayerReport.from_report(layer) for layer in report["layers"]),
            port_format=PortFormat.from_interface(report["interface"]),
            net=build.net,
            fit=report.get("fit"),
            report=report,
        )


@dataclass(frozen=True)
class VerifyResult:
    """``bnnhw.verify``: how many frames the simulated Verilog got right, bit for bit."""

    ok: bool
    simulator: str
    bench: str  # "fast" or "cocotb"
    frames: int
    matched: int
    bad_frames: tuple[int, ...]
    cycles_per_frame: float | None  # measured
    latency: int | None  # measured, cycles
    initiation_interval: int  # the report's
    summary: str  # the CLI's last line, e.g. "100/100 frames match"
    rtl_accuracy: float | None = None  # with a data set
    golden_accuracy: float | None = None
    build: CompileResult | None = field(default=None, repr=False)
    folder: Path | None = None  # the kept build folder (None: a temporary one, removed)


@dataclass(frozen=True)
class BoardResult:
    """``bnnhw.build``: the bitstream and what nextpnr and the clock search found."""

    board: str
    bitstream: Path
    luts: int | None
    ffs: int | None
    logic_cells: int | None
    logic_cells_available: int | None
    bram: int | None
    bram_available: int | None
    clock_mhz: float
    fmax_mhz: float | None
    frames_per_s: int  # in the accelerator, at the clock
    latency_cycles: int
    latency_us: float
    uart_frames_per_s: float
    baud: int
    build: CompileResult = field(repr=False)
    report: Mapping[str, Any] = field(default_factory=dict, repr=False)  # report["board"]

    @property
    def timing_met(self) -> bool:
        return self.fmax_mhz is None or self.fmax_mhz >= self.clock_mhz

    @classmethod
    def from_report(cls, board: Mapping[str, Any], build: CompileResult) -> BoardResult:
        return cls(
            board=board["board"],
            bitstream=Path(board["bitstream"]),
            luts=board.get("luts"),
            ffs=board.get("ffs"),
            logic_cells=board.get("logic_cells"),
            logic_cells_available=board.get("logic_cells_available"),
            bram=board.get("bram"),
            bram_available=board.get("bram_available"),
            clock_mhz=board["clock_mhz"],
            fmax_mhz=board.get("fmax_mhz"),
            frames_per_s=board["accelerator_frames_per_s"],
            latency_cycles=board["latency_cycles"],
            latency_us=board["latency_us"],
            uart_frames_per_s=board["uart_frames_per_s"],
            baud=board["baud"],
            build=build,
            report=board,
        )


@dataclass(frozen=True)
class AsicResult:
    """``bnnhw.asic``: standard-cell area, OpenSTA timing and energy per frame."""

    ok: bool  # the gate-level netlist agreed with the golden model
    library: str | None
    cells: int
    area_um2: float | None
    area_ge: float | None
    fmax_mhz: float | None
    cycles_per_frame: int | None
    frames_per_s: float | None
    latency_cycles: int | None
    energy_per_frame_nj: float | None
    netlist: Path
    build: CompileResult = field(repr=False)
    report: Mapping[str, Any] = field(default_factory=dict, repr=False)  # report["asic"]

    @classmethod
    def from_report(cls, asic: Mapping[str, Any], build: CompileResult, ok: bool) -> AsicResult:
        timing = asic.get("timing") or {}
        energy = asic.get("energy") or {}
        return cls(
            ok=ok,
            library=asic.get("library"),
            cells=asic["cells"],
            area_um2=asic.get("area_um2"),
            area_ge=asic.get("area_ge"),
            fmax_mhz=timing.get("fmax_mhz"),
            cycles_per_frame=asic.get("cycles_per_frame"),
            frames_per_s=asic.get("frames_per_s"),
            latency_cycles=asic.get("latency_cycles"),
            energy_per_frame_nj=energy.get("energy_per_frame_nj"),
            netlist=build.folder / "asic" / "netlist.v",
            build=build,
            report=asic,
        )


@dataclass(frozen=True)
class SweepPoint:
    """One folding of a sweep, as ``sweep.json`` records it (None: not built)."""

    folding: str  # "PExSIMD" per layer, e.g. "4x16 4x16 4x16 5x2"
    status: str  # "ok" or "failed"
    reason: str | None  # why it failed
    estimated_cells: int | None
    logic_cells: int | None
    luts: int | None
    ffs: int | None
    bram: int | None
    fmax_mhz: float | None
    interval: int | None  # cycles per frame
    frames_per_s: float | None  # at Fmax
    pareto: bool
    picked: bool  # the folding ``bnnhw build`` picks for the board
    cached: bool
    record: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> SweepPoint:
        return cls(
            folding=r["folding"],
            status=r.get("status", "failed"),
            reason=r.get("reason"),
            estimated_cells=r.get("estimated_cells"),
            logic_cells=r.get("logic_cells"),
            luts=r.get("luts"),
            ffs=r.get("ffs"),
            bram=r.get("bram"),
            fmax_mhz=r.get("fmax_mhz"),
            interval=r.get("interval"),
            frames_per_s=r.get("frames_per_s"),
            pareto=bool(r.get("pareto")),
            picked=bool(r.get("picked")),
            cached=bool(r.get("cached")),
            record=r,
        )


@dataclass(frozen=True)
class SweepResult:
    """``bnnhw.sweep``: every point built (or why not), the Pareto front, the files."""

    folder: Path  # sweep.json, sweep.csv, pareto.md, pareto.png (and the cache)
    board: str
    points: tuple[SweepPoint, ...]
    wall_seconds: float
    fit_table: str | None = None  # the resource model's held-out errors, with ``fit=True``
    meta: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def pareto(self) -> tuple[SweepPoint, ...]:
        """The built points no other beats on both logic cells and frames/s, fewest cells first."""
        front = [p for p in self.points if p.pareto]
        return tuple(sorted(front, key=lambda p: (p.logic_cells or 0, p.folding)))

    @property
    def picked(self) -> SweepPoint | None:
        """The point ``bnnhw build`` would pick, if the sweep holds it."""
        return next((p for p in self.points if p.picked), None)

    @property
    def failed(self) -> tuple[SweepPoint, ...]:
        return tuple(p for p in self.points if not p.ok)
