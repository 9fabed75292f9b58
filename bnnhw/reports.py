"""Human-readable summaries of a Network (what `bnnhw inspect` prints) and of a build.

:class:`HardwareSummary` is the typed part of a build's report.json that other modules
(the vectors, the board link) rely on, so none of them indexes the JSON itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bnnhw.ir import Layer, Network
from bnnhw.port_format import PortFormat


@dataclass(frozen=True)
class LayerSummary:
    """One layer of report.json as the vectors use it."""

    name: str
    neurons: int
    cycles_per_frame: int
    out_beats: int  # beats per frame on the layer's output stream: 1, or a map's pixels


@dataclass(frozen=True)
class HardwareSummary:
    """What other modules read of report.json, typed; the JSON keys stay as they are."""

    top: str
    port_format: PortFormat
    initiation_interval: int
    latency_cycles: int
    layers: tuple[LayerSummary, ...]
    baud: int | None = None  # the board link's, once `bnnhw board` made a bitstream

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> HardwareSummary:
        """Read a report dict (as written to report.json) once, here."""
        layers = tuple(
            LayerSummary(
                name=layer["name"],
                neurons=layer["neurons"],
                cycles_per_frame=layer["cycles_per_frame"],
                out_beats=layer.get("out_beats", 1),
            )
            for layer in report["layers"]
        )
        return cls(
            top=report["top"],
            port_format=PortFormat.from_interface(report["interface"]),
            initiation_interval=report["initiation_interval"],
            latency_cycles=report["latency_cycles"],
            layers=layers,
            baud=report.get("board", {}).get("baud"),
        )


def _input_line(net: Network) -> str:
    spec = net.input
    shape = "x".join(map(str, spec.shape))
    if spec.bits == 1:
        kind = "1-bit bipolar (+1 where value >= 0)"
    else:
        lo, hi = spec.code_range
        kind = f"{spec.bits}-bit {'signed' if spec.signed else 'unsigned'} [{lo}, {hi}]"
        kind += f", scale {spec.scale:g}, {spec.rounding.lower()}"
    pre = ", ".join(op.kind for op in spec.preprocess) or "none"
    return f"input  {shape} = {spec.size} values, {kind}; preprocessing: {pre}"


def _geometry(layer: Layer) -> str:
    """``conv 3x3/1 pad 1 on 16x14x14 -> 32x14x14, maxpool 2x2/2 -> 32x7x7`` or ''."""
    win = layer.window
    if win is None:
        return ""
    text = (
        f"conv {win.kernel[0]}x{win.kernel[1]}/{win.stride[0]}"
        + (f" pad {','.join(map(str, win.pads))}" if win.padded else "")
        + f" on {win.channels}x{win.height}x{win.width} -> "
        f"{layer.neurons}x{win.out_height}x{win.out_width}"
    )
    if layer.pool is not None:
        pool, (c, h, w) = layer.pool, layer.out_map
        text += f", maxpool {pool.kernel[0]}x{pool.kernel[1]}/{pool.stride[0]} -> {c}x{h}x{w}"
        if layer.pool_and is not None and layer.pool_and.any():
            text += f" ({int(layer.pool_and.sum())} channels by AND)"
    return "\n       " + text


def _layer_line(index: int, layer: Layer) -> str:
    head = (
        f"{index:>3}  {layer.name:<24} {layer.fan_in:>5} -> {layer.neurons:<5} "
        f"in {layer.in_bits}-bit  weights {layer.weights.size:>7} bits "
        f"({int(layer.weights.sum())} x +1)"
    )
    return _layer_numbers(head, layer) + _geometry(layer)


def _layer_numbers(head: str, layer: Layer) -> str:
    if layer.is_output:
        if layer.out_scale is None:
            return head + "  scores (unfolded)"
        return f"{head}  scores, float = {layer.out_scale[0]:.6g} * score + {layer.out_bias[0]:.6g}"
    if layer.thresholds is None:
        return head + "  thresholds not folded"
    lo, hi = layer.acc_bounds()
    t, d = layer.thresholds, layer.directions
    never = int(np.sum((d > 0) & (t > hi)))
    always = int(np.sum((d > 0) & (t <= lo)))
    return (
        f"{head}  thresholds [{t.min()}, {t.max()}] within acc [{lo.min()}, {hi.max()}], "
        f"{int(np.sum(d < 0))} inverted (acc <= t), {always} always +1, {never} always -1"
    )


def summary(net: Network) -> str:
    """A few lines: input quantizer, one line per layer, totals."""
    lines = [f"network {net.name}  ({net.source})", _input_line(net)]
    lines += [_layer_line(i, layer) for i, layer in enumerate(net.layers)]
    total = sum(layer.weights.size for layer in net.layers)
    lines.append(f"total  {len(net.layers)} layers, {total} weight bits, {net.classes} classes")
    return "\n".join(lines)


def _kind(layer: dict) -> str:
    """dense, or conv KxK/stride (pads), with its pool and ternary input."""
    if layer.get("kind", "dense") == "dense":
        return "dense"
    c, h, w = layer["map"]
    text = f"conv {'x'.join(map(str, layer['kernel']))} s{layer['stride'][0]} on {c}x{h}x{w}"
    if any(layer["pads"]):
        text += f" pad {','.join(map(str, layer['pads']))}"
    if layer["pool"]:
        text += f", pool {'x'.join(map(str, layer['pool']))}"
    return text + (", ternary in" if layer.get("ternary") else "")


def _slices(rom: Mapping[str, Any]) -> str:
    """A sliced weight ROM's slices, and whether they are read late (an old report: none)."""
    slices = rom.get("slices", 1)
    if slices == 1:
        return ""
    return f", {slices} slices{' read late' if rom.get('slices_read_late') else ''}"


def build_markdown(report: Mapping[str, Any]) -> str:
    """report.md of a build: one row per layer, then the whole network."""
    rows = [
        "| # | layer | kind | fan-in -> neurons | in bits | PE | SIMD | cycles/frame "
        "| weight bits | weight ROM (depth x width, kind) | line buffer bits |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, layer in enumerate(report["layers"]):
        rom = layer["weight_rom"]
        rows.append(
            f"| {i} | `{layer['name']}` | {_kind(layer)} | {layer['fan_in']} -> "
            f"{layer['neurons']} | {layer['input_bits']} | {layer['pe']} | {layer['simd']} "
            f"| {layer['cycles_per_frame']} | {layer['weight_bits']} "
            f"| {rom['depth']} x {rom['width']} ({rom['kind']}{_slices(rom)}) "
            f"| {layer.get('line_buffer_bits', 0)} |"
        )
    io = report["interface"]
    lines = [
        f"# {report['top']}",
        "",
        f"Model `{report['model']}`, Verilog `{report['verilog']}`.",
        "",
        *rows,
        "",
        f"- initiation interval: {report['initiation_interval']} cycles per frame "
        "(the slowest layer)",
        f"- latency: {'' if report.get('latency_exact', True) else 'at most about '}"
        f"{report['latency_cycles']} cycles from a frame's first input word handshake to "
        "its result's",
        f"- line buffers: {report.get('line_buffer_bits', 0)} bits in all; convolutions' "
        f"pixel and window FIFOs: {report.get('fifo_bits', 0)} bits",
        f"- input: {io['frame_words']} words of {io['in_word']} bits per frame "
        f"({io['input_elements']} x {io['input_bits']}-bit codes)",
        f"- output: {io['out_word']}-bit word, class in bits [{io['class_bits'] - 1}:0]"
        + (f", then {io['classes']} x {io['score_bits']}-bit scores" if io["with_scores"] else "")
        + (
            f"; sent as {io['out_beats']} words of {io['out_beat_bits']} bits, low bits first"
            if io.get("out_beats", 1) > 1
            else ""
        ),
        "- weight ROM kind is a prediction; synthesis decides (see `bnnhw build`)",
    ]
    fit = report.get("fit")
    if fit:
        how = f"max lanes {fit['max_lanes']}" if fit["max_lanes"] else "the folding given"
        lines.append(
            f"- folded for {fit['board']} ({how}): an estimated {fit['logic_cells']} of "
            f"{fit['logic_cells_available']} logic cells and {fit['blocks']} of "
            f"{fit['blocks_available']} block RAMs (`boards/fit.py`; synthesis decides)"
        )
    if "seconds" in report:
        steps = ", ".join(f"{k} {v:.2f} s" for k, v in report["seconds"].items())
        lines.append(f"- compile time: {steps}")
    return "\n".join(lines) + "\n"


def board_summary(r: dict) -> str:
    """The line `bnnhw build` prints: resources, Fmax, frames/s, latency, the UART link."""
    fmax = f"{r['fmax_mhz']:.1f} MHz" if r["fmax_mhz"] else "unknown"
    spram = f", SPRAM {r['spram']}" if r.get("spram") is not None else ""
    return (
        f"{r['board']}: {r['luts']} LUT4, {r['ffs']} FF, {r['logic_cells']}/"
        f"{r['logic_cells_available']} logic cells, BRAM {r['bram']}/{r['bram_available']}"
        f"{spram}; Fmax {fmax} for a {r['clock_mhz']:g} MHz clock; "
        f"{r['accelerator_frames_per_s']:,} frames/s in the accelerator, latency "
        f"{r['latency_us']} us; {r['uart_frames_per_s']} frames/s over the UART at {r['baud']} baud"
    )


def clock_search_text(tries: list[dict] | None) -> str | None:
    """The builds ``bnnhw build`` made to find its clock, e.g. "12 MHz: Fmax 44.2 (met)"."""
    if not tries:
        return None
    return "; ".join(
        f"{t['clock_mhz']:g} MHz: Fmax {t['fmax_mhz']} ({'met' if t['met'] else 'missed'})"
        for t in tries
    )


def board_markdown(r: dict) -> str:
    """report.md's Board section, from report.json's ``board``."""
    rows = [
        ("board", r["board"]),
        ("bitstream", f"`{Path(r['bitstream']).name}`"),
        ("LUT4 / FF (Yosys)", f"{r['luts']} / {r['ffs']}"),
        ("logic cells (nextpnr)", f"{r['logic_cells']} of {r['logic_cells_available']}"),
        ("block RAM", f"{r['bram']} of {r['bram_available']}"),
        ("SPRAM", r.get("spram")),
        ("clock / Fmax", f"{r['clock_mhz']:g} MHz / {r['fmax_mhz']} MHz"),
        ("PLL", r.get("pll") and ", ".join(f"{k} {v}" for k, v in r["pll"].items())),
        ("clock search", clock_search_text(r.get("clock_search"))),
        ("accelerator frames/s at the clock", f"{r['accelerator_frames_per_s']:,}"),
        ("accelerator frames/s at Fmax", r["accelerator_frames_per_s_at_fmax"]),
        (
            "block-RAM bandwidth used",
            f"{r['ebr_bandwidth_share']:.1%} of every block's widest port each cycle"
            if r.get("ebr_bandwidth_share") is not None
            else None,
        ),
        (
            "XNOR lanes / LUT4 per lane",
            f"{r['xnor_lanes']} / {r['lut4_per_lane']}" if r.get("xnor_lanes") else None,
        ),
        ("latency", f"{r['latency_cycles']} cycles = {r['latency_us']} us"),
        (
            "bench mode (bnnhw run --bench)",
            f"up to {r['bench_frames']} frames replayed from block RAM"
            if r.get("bench_frames")
            else "off"
            if "bench_frames" in r
            else None,
        ),
        (
            "UART link",
            f"{r['baud']} baud, {r['uart_bytes_per_frame']} bytes per frame, "
            f"at most {r['uart_frames_per_s']} frames/s",
        ),
    ]
    lines = ["", "## Board", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows if v is not None]
    return "\n".join(lines) + "\n"
