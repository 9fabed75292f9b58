"""The compiler as a list of named steps, each saving what it made (FINN style).

    import      ONNX -> unfolded IR                 DIR/steps/1_import/
    streamline  passes -> integer IR                DIR/steps/2_streamline/
    fold        PE/SIMD per layer                   DIR/steps/3_fold/  (= DIR/ir/)
    verilog     Amaranth -> DIR/<top>.v
    report      DIR/report.json, DIR/report.md

Any later stage can start from a saved folder: ``load_build(DIR)`` gives the folded IR and
the accelerator settings back without touching the ONNX file again.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bnnhw.errors import InputError
from bnnhw.ir import Network, load_network, save_network
from bnnhw.passes import streamline
from bnnhw.passes.folding import (
    DEFAULT_MAX_LANES,
    DEFAULT_REGISTER_EVERY,
    fold_auto,
    fold_explicit,
    load_folding,
)

if TYPE_CHECKING:
    from bnnhw.port_format import PortFormat
    from bnnhw.rtl_gen import Accelerator

SETTINGS = "build.json"


@dataclass
class Build:
    """Everything one compile made; ``folder`` holds it on disk."""

    folder: Path
    model: str
    folding: str = "auto"
    max_lanes: int | None = DEFAULT_MAX_LANES  # None with a board: the board's fit decides
    board: str | None = None  # fold for (and check against) this board's resources
    in_word: int | None = None
    out_beat: int = 0
    with_scores: bool = True
    register_every: int = DEFAULT_REGISTER_EVERY
    read_register: bool | None = None  # None: the board's (``Board.read_register``), or no
    # layers whose weight ROM slices are read late: those the board leaves in logic
    late_slices: list[int] = field(default_factory=list)
    net: Network | None = None
    top: str = ""
    verilog: Path | None = None
    report: dict = field(default_factory=dict)
    fit: dict | None = None  # the board resource estimate (boards/fit.py), with a board
    progress: Callable[[str], None] | None = field(default=None, repr=False, compare=False)
    seconds: dict[str, float] = field(default_factory=dict)

    def accelerator(self, contents: bool = True) -> Accelerator:
        """A fresh Amaranth Accelerator for this build (elaborate it once per use);
        ``contents=False``: its ROMs left empty, for resource estimates."""
        from bnnhw.rtl_gen import Accelerator

        return Accelerator(
            self.net,
            in_word=self.in_word,
            with_scores=self.with_scores,
            register_every=self.register_every,
            out_beat=self.out_beat,
            contents=contents,
            read_register=bool(self.read_register),
            late_slices=self.late_slices,
        )

    def port_format(self) -> PortFormat:
        """How a host packs frames for this build and reads its results."""
        from bnnhw.rtl_gen.accelerator import port_format_for

        return port_format_for(self.net, self.in_word, self.with_scores, self.out_beat)


def step_import(build: Build) -> None:
    from bnnhw.frontend import import_onnx

    build.net = import_onnx(build.model)
    save_network(build.net, build.folder / "steps" / "1_import")


def step_streamline(build: Build) -> None:
    build.net = streamline(build.net)
    save_network(build.net, build.folder / "steps" / "2_streamline")


def step_fold(build: Build) -> None:
    board = None
    if build.board:
        from bnnhw.boards import get_board

        board = get_board(build.board)
    if build.read_register is None:
        build.read_register = board is not None and board.read_register
    if build.folding == "auto" and build.max_lanes is None:
        if board is None:
            build.max_lanes = DEFAULT_MAX_LANES
        else:
            from bnnhw.boards.fit import fold_for_board

            def tried(line: str) -> None:
                if build.progress:
                    build.progress(f"fit {line}")

            build.net, fit = fold_for_board(build.net, board, progress=tried)
            build.max_lanes, build.fit = fit.max_lanes, fit.as_dict()
    if build.fit is None:
        if build.folding == "auto":
            build.net = fold_auto(build.net, build.max_lanes)
        else:
            build.net = fold_explicit(build.net, load_folding(build.folding), build.folding)
        if board is not None:
            from bnnhw.boards.fit import check_fits

            build.fit = check_fits(build.net, board).as_dict()
    if board is not None and build.read_register:
        from bnnhw.boards.late_slices import late_slice_layers

        empty = functools.partial(build.accelerator, contents=False)
        build.late_slices = late_slice_layers(build.net, empty, board)
    save_network(build.net, build.folder / "steps" / "3_fold")
    save_network(build.net, build.folder / "ir")


def step_verilog(build: Build) -> None:
    from bnnhw.rtl_gen import to_verilog, top_name

    build.top = top_name(build.net.name)
    try:
        build.port_format()  # checks the host word width before building anything
    except ValueError as exc:
        raise InputError(f"{build.model}: {exc}") from None
    accelerator = build.accelerator()
    build.verilog = build.folder / f"{build.top}.v"
    build.verilog.write_text(to_verilog(accelerator, build.top))
    build.report = _hardware_report(build, accelerator)


def step_report(build: Build) -> None:
    from bnnhw.reports import build_markdown

    build.report["seconds"] = dict(build.seconds)
    if build.fit is not None:
        build.report["fit"] = build.fit
    (build.folder / "report.json").write_text(json.dumps(build.report, indent=1) + "\n")
    (build.folder / "report.md").write_text(build_markdown(build.report))
    settings = {
        k: getattr(build, k)
        for k in (
            "model",
            "folding",
            "max_lanes",
            "board",
            "in_word",
            "out_beat",
            "with_scores",
            "register_every",
            "read_register",
            "late_slices",
            "top",
        )
    }
    (build.folder / SETTINGS).write_text(json.dumps(settings, indent=1) + "\n")


STEPS: list[tuple[str, Callable[[Build], None]]] = [
    ("import", step_import),
    ("streamline", step_streamline),
    ("fold", step_fold),
    ("verilog", step_verilog),
    ("report", step_report),
]


def compile_model(
    model: str | Path | Network,
    folder: str | Path,
    *,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    **settings,
) -> Build:
    """Run every step; refuses to write into a non-empty folder unless ``force``.

    ``model``: an ONNX file, or an IR (its import step is the IR itself, and it is
    streamlined unless it already is).
    """
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not force:
        raise InputError(f"{folder} is not empty; pass --force to overwrite what is in it")
    given = model if isinstance(model, Network) else None
    if given is None and not Path(model).is_file():
        raise InputError(f"{model}: no such model file")
    before = _paths_under(folder)
    created = _first_missing(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        source = (given.source or given.name) if given is not None else str(model)
        build = Build(folder=folder, model=source, progress=progress, **settings)
        skip: set[str] = set()
        if given is not None:
            build.net = given
            save_network(given, folder / "steps" / "1_import")
            skip = {"import", "streamline"} if given.folded else {"import"}
        for name, step in STEPS:
            if name in skip:
                continue
            start = time.perf_counter()
            step(build)
            build.seconds[name] = round(time.perf_counter() - start, 3)
            if progress:
                progress(f"{name:<11} {build.seconds[name]:7.2f} s")
    except BaseException:
        _remove_new(folder, before, created)
        raise
    return build


def _paths_under(folder: Path) -> set[Path] | None:
    """Everything under ``folder`` before a compile (None: no folder yet)."""
    if not folder.is_dir():
        return None
    paths = set()
    for root, dirs, files in os.walk(folder):
        paths.update(Path(root) / name for name in dirs + files)
    return paths


def _first_missing(folder: Path) -> Path | None:
    """The outermost folder ``mkdir(parents=True)`` will create for ``folder``, if any."""
    if os.path.lexists(folder):
        return None
    top = folder
    while top.parent != top and not os.path.lexists(top.parent):
        top = top.parent
    return top


def _remove_new(folder: Path, before: set[Path] | None, created: Path | None) -> None:
    """Undo a failed compile: remove what it made and nothing else, so it can be rerun.

    A folder the compile created goes whole; in a folder that existed (--force, or
    empty), only paths that were not there before go, never the user's own files.
    """
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)
        return
    if before is None:
        return
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files + dirs:
            path = Path(root) / name
            if path in before:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)


def load_build(folder: str | Path) -> Build:
    """A build folder written by :func:`compile_model`, without redoing any step."""
    folder = Path(folder)
    settings_path = folder / SETTINGS
    if not settings_path.is_file():
        raise InputError(f"{folder}: not a bnnhw build folder (no {SETTINGS}); run bnnhw compile")
    try:  # a build folder is user data: a damaged one is named, not a crash
        settings = json.loads(settings_path.read_text())
        top = settings.pop("top")
        if not isinstance(top, str):
            raise TypeError(f"top {top!r} is not a name")
        build = Build(folder=folder, **settings)
        report = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        message = f"{folder}: damaged bnnhw build folder ({reason}); compile again"
        raise InputError(message) from None
    build.net, build.top = load_network(folder / "ir"), top
    build.verilog = folder / f"{top}.v"
    build.report = report
    return build


def _hardware_report(build: Build, accelerator: Accelerator) -> dict:
    from bnnhw.boards.memories import rom_kind
    from bnnhw.rtl_gen.layer_params import LayerHW
    from bnnhw.rtl_gen.mvtu import MVTU

    def rom(hw: LayerHW, mvtu: MVTU) -> dict:
        depth, width = hw.nf * hw.sf, hw.pe * hw.simd
        return {
            "depth": depth,
            "width": width,
            "bits": depth * width,
            "kind": rom_kind(width, depth),
            "slices": mvtu.weight_slices,
            "slices_read_late": mvtu.slices_read_late,
        }

    def geometry(hw: LayerHW) -> dict:
        if hw.window is None:
            return {"kind": "dense"}
        win = hw.window
        return {
            "kind": "conv",
            "map": [win.channels, win.height, win.width],
            "kernel": list(win.kernel),
            "stride": list(win.stride),
            "pads": list(win.pads),
            "out_map": [hw.neurons, win.out_height, win.out_width],
            "pool": None if hw.pool is None else list(hw.pool.kernel),
            "pool_stride": None if hw.pool is None else list(hw.pool.stride),
            "ternary": hw.ternary,
        }

    fmt = accelerator.port_format
    layers = [
        {
            "name": hw.name,
            **geometry(hw),
            "fan_in": hw.fan_in,
            "neurons": hw.neurons,
            "input_bits": hw.in_bits,
            "pe": hw.pe,
            "simd": hw.simd,
            "nf": hw.nf,
            "sf": hw.sf,
            "positions": hw.positions,
            "cycles_per_frame": hw.walk_cycles,
            "weight_bits": hw.neurons * hw.fan_in,
            "weight_rom": rom(hw, stage.mvtu if hw.window else stage),
            "line_buffer_bits": line_bits,
            "fifo_bits": fifo_bits,
            "pipeline_latency": (stage.mvtu if hw.window else stage).latency,
            "out_beats": hw.pool.positions if hw.pool else hw.positions,
            "out_beat_bits": hw.neurons if not hw.is_output else None,
        }
        for hw, stage, line_bits, fifo_bits in zip(
            accelerator.layers,
            accelerator.stages,
            accelerator.line_buffer_bits,
            accelerator.fifo_bits,
            strict=True,
        )
    ]
    return {
        "model": build.model,
        "top": build.top,
        "verilog": build.verilog.name,
        "initiation_interval": accelerator.ideal_cycles,
        "latency_cycles": accelerator.latency_cycles,
        "latency_exact": not accelerator.has_windows,
        "line_buffer_bits": sum(accelerator.line_buffer_bits),
        "fifo_bits": sum(accelerator.fifo_bits),
        "interface": fmt.interface(),
        "layers": layers,
    }
