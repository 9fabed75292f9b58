"""The Python API: every CLI verb that makes hardware, as a function with a typed result.

``compile``, ``verify``, ``build`` and ``asic`` take what their ``bnnhw VERB`` takes (an
ONNX file, a folder written by a compile, or here also an IR ``Network``) and return the
report as a typed object (:mod:`bnnhw.results`). A problem the user can fix raises a
:class:`bnnhw.BnnhwError` whose message is the one line the CLI prints after
``bnnhw: error:``; the CLI is a layer over these functions (``compile`` and ``build``)
or shares their code (``verify``, ``asic``). Lines the CLI would print go to
``progress`` (one string per line) when it is given, and nowhere otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bnnhw.errors import InputError
from bnnhw.ir import Network
from bnnhw.passes.folding import DEFAULT_MAX_LANES
from bnnhw.results import AsicResult, BoardResult, CompileResult, VerifyResult

if TYPE_CHECKING:
    from bnnhw.build import Build

Progress = Callable[[str], None] | None
Model = str | Path | Network


def compile(
    model: Model,
    out_dir: str | Path,
    *,
    board: str | None = None,
    folding: str | Path = "auto",
    max_lanes: int | None = None,
    in_word: int | None = None,
    out_word: int | None = None,
    scores: bool = True,
    force: bool = False,
    progress: Progress = None,
) -> CompileResult:
    """``bnnhw compile``: the model as Verilog in ``out_dir``, with its report.

    ``board`` folds for that board's logic and block RAM (no synthesis); ``max_lanes``
    (default 64 without a board) or a ``folding`` JSON file choose the folding instead.
    """
    _refuse_empty("compile", model=model, output=out_dir, folding=folding)
    build = _compile(
        model,
        out_dir,
        new_folder=True,
        force=force,
        progress=progress,
        board=board,
        folding=str(folding),
        max_lanes=max_lanes,
        in_word=in_word,
        out_beat=out_word or 0,
        with_scores=scores,
    )
    return CompileResult.from_build(build)


def verify(
    model: Model,
    *,
    sim: str = "verilator",
    out_dir: str | Path | None = None,
    vectors: int | None = None,
    inputs: str | Path | np.ndarray | None = None,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    bench: str | None = None,
    waves: bool = False,
    seed: int = 0,
    in_gap: float = 0.1,
    out_gap: float = 0.1,
    folding: str | Path = "auto",
    max_lanes: int = DEFAULT_MAX_LANES,
    progress: Progress = None,
) -> VerifyResult:
    """``bnnhw verify``: simulate the Verilog and check every frame against the golden model.

    ``model`` is an ONNX file or IR (compiled into ``out_dir``, by default a temporary
    folder removed afterwards unless a frame failed) or a build folder. ``inputs`` may be
    a .npy file or an array of float frames. A mismatch is not an exception: the result's
    ``ok`` is False, as the CLI's exit status 1.
    """
    from bnnhw.cli import verify as cli_verify

    temp = None
    if isinstance(model, Network):
        if out_dir is None:
            out_dir = temp = Path(tempfile.mkdtemp(prefix="bnnhw-verify-"))
        folder = Path(out_dir)  # as the CLI: only into an empty folder or a build folder
        if folder.is_dir() and any(folder.iterdir()) and not (folder / "build.json").is_file():
            raise InputError(f"{folder} is not empty and not a bnnhw build folder")
        _compile(
            model,
            Path(out_dir),
            force=True,
            progress=progress,
            folding=str(folding),
            max_lanes=max_lanes,
        )
        model, out_dir = out_dir, None
    args = argparse.Namespace(
        verb="verify",
        model=str(model),
        sim=sim,
        vectors=vectors,
        inputs=inputs if isinstance(inputs, np.ndarray) or inputs is None else str(inputs),
        dataset=dataset,
        data_dir=None if data_dir is None else str(data_dir),
        bench=bench,
        waves=waves,
        seed=seed,
        in_gap=in_gap,
        out_gap=out_gap,
        folding=str(folding),
        max_lanes=max_lanes,
        output=None if out_dir is None else str(out_dir),
    )
    _check_args(args)
    try:
        with _lines_to(progress):
            run = cli_verify.run(args)
    except BaseException:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
        raise
    folder = run.folder
    if temp is not None and run.result.ok and not waves:
        shutil.rmtree(temp, ignore_errors=True)
        folder = None
    return _verify_result(run, sim, args.bench or ("cocotb" if waves else "fast"), folder)


def build(
    model: Model,
    out_dir: str | Path | None = None,
    *,
    board: str,
    folding: str | Path = "auto",
    max_lanes: int | None = None,
    clock: float | None = None,
    baud: int | None = None,
    bench_frames: int | None = None,
    scores: bool = True,
    force: bool = False,
    progress: Progress = None,
) -> BoardResult:
    """``bnnhw build``: a bitstream for ``board`` (YoWASP Yosys + nextpnr) and its report.

    Without ``clock`` the clock search keeps the fastest build that meets timing; a
    design that does not fit or misses its clock raises :class:`bnnhw.BoardError`.
    ``model`` may be a build folder (``out_dir`` then defaults to it and must be it).
    """
    import json

    from bnnhw import link_protocol as lp
    from bnnhw.boards import get_board, synthesize
    from bnnhw.boards.clock_search import synthesize_fastest
    from bnnhw.boards.synth import check_report
    from bnnhw.build import load_build
    from bnnhw.cli.board import board_markdown, board_summary
    from bnnhw.passes.folding import check_max_lanes
    from bnnhw.reports import build_markdown

    say = progress or _quiet
    if out_dir is None and _is_dir(model):
        out_dir = model
    if out_dir is None:
        raise InputError("build: give the build folder to write (-o)")
    _refuse_empty("build", model=model, output=out_dir, folding=folding)
    board_spec = get_board(board)
    if _is_dir(model):
        build = load_build(model)
        if Path(out_dir).resolve() != Path(model).resolve():
            raise InputError("with a build folder as MODEL, -o must be that same folder")
    else:
        if max_lanes is not None:
            check_max_lanes(max_lanes)
        lanes = "chosen for the board" if max_lanes is None else max_lanes
        say(f"compiling {_name(model)} (folding {folding}, max lanes {lanes})")
        build = _compile(
            model,
            out_dir,
            force=force,
            folding=str(folding),
            max_lanes=max_lanes,
            board=board_spec.name,
            with_scores=scores,
            progress=lambda line: say("  " + line),
        )
    if bench_frames is not None:
        if not 0 <= bench_frames <= 255:
            raise InputError(f"--bench-frames {bench_frames}: give 0 to 255")
        build.report["link"] = {"bench_frames": bench_frames}
    bench = lp.build_bench_frames(build.report, build.port_format())
    build.report["link"] = {"bench_frames": bench}
    say(f"building the {board_spec.title} bitstream with YoWASP (the first run takes minutes)")
    if clock:
        result = synthesize(build, board_spec, baud=baud, clock_mhz=clock, progress=say)
    else:
        result = synthesize_fastest(build, board_spec, baud=baud, progress=say)
    result["bench_frames"] = bench
    build.report["board"] = result
    folder = Path(build.folder)
    (folder / "report.json").write_text(json.dumps(build.report, indent=1) + "\n")
    (folder / "report.md").write_text(build_markdown(build.report) + board_markdown(result))
    say(board_summary(result))
    check_report(result, board_spec)
    say(f"wrote {result['bitstream']}, {folder / 'report.md'}")
    return BoardResult.from_report(result, CompileResult.from_build(build))


def asic(
    model: Model,
    out_dir: str | Path | None = None,
    *,
    liberty: str | Path | None = None,
    clock_ns: float = 10.0,
    folding: str | Path = "auto",
    max_lanes: int | None = None,
    activity_frames: int = 8,
    timed_frames: int = 8,
    force: bool = False,
    progress: Progress = None,
) -> AsicResult:
    """``bnnhw asic``: standard-cell netlist, area, OpenSTA Fmax, energy per frame.

    ``folding="unrolled"`` gives every layer PE = neurons and SIMD = fan-in. A netlist
    that disagrees with the golden model is not an exception: ``ok`` is False.
    """
    from bnnhw.build import load_build
    from bnnhw.cli import asic as cli_asic

    if out_dir is None and _is_dir(model):
        out_dir = model
    if out_dir is None:
        raise InputError("asic: give the build folder to write (-o)")
    if isinstance(model, Network):
        lanes = max_lanes or DEFAULT_MAX_LANES
        if folding == "unrolled":
            folding, lanes = "auto", cli_asic.UNROLLED_LANES
        _compile(model, Path(out_dir), force=force, folding=str(folding), max_lanes=lanes)
        model = out_dir
    args = argparse.Namespace(
        verb="asic",
        model=str(model),
        output=str(out_dir),
        liberty=None if liberty is None else str(liberty),
        clock_ns=clock_ns,
        folding=str(folding),
        max_lanes=max_lanes,
        activity_frames=activity_frames,
        timed_frames=timed_frames,
        force=force,
    )
    _check_args(args)
    with _lines_to(progress):
        status = cli_asic.cmd_asic(args)
    build = load_build(out_dir)
    return AsicResult.from_report(
        build.report["asic"], CompileResult.from_build(build), ok=status == 0
    )


# -- shared by the verbs ----------------------------------------------------------------


def _compile(
    model: Model,
    folder: str | Path,
    *,
    new_folder: bool = False,
    force: bool = False,
    progress: Progress = None,
    **settings,
) -> Build:
    """compile_model for a path (the CLI's checks first, in its order) or for an IR.

    ``new_folder``: check ``folder`` as ``bnnhw compile`` does (not a file, under a folder).
    """
    from bnnhw.build import compile_model
    from bnnhw.cli.files import build_folder, checked_path
    from bnnhw.passes.folding import check_max_lanes

    settings.setdefault("max_lanes", None)
    if settings["max_lanes"] is not None:
        check_max_lanes(settings["max_lanes"])
    elif settings.get("board") is None:
        settings["max_lanes"] = DEFAULT_MAX_LANES
    if not isinstance(model, Network):
        model = checked_path(model)
    folder = build_folder(folder) if new_folder else Path(folder)
    return compile_model(model, folder, force=force, progress=progress, **settings)


def _verify_result(run, sim: str, bench: str, folder: Path | None) -> VerifyResult:
    result, build = run.result, run.build
    bad = getattr(result, "bad_frames", None)
    if bad is None:
        bad = sorted({m["frame"] for m in result.mismatches})
    accuracy = run.accuracy or (None, None)
    return VerifyResult(
        ok=result.ok,
        simulator=sim,
        bench=bench,
        frames=result.frames,
        matched=result.matched,
        bad_frames=tuple(bad),
        cycles_per_frame=result.cycles_per_frame,
        latency=result.latency,
        initiation_interval=result.ideal,
        summary=run.last_line,
        rtl_accuracy=accuracy[0],
        golden_accuracy=accuracy[1],
        build=CompileResult.from_build(build) if folder is not None else None,
        folder=folder,
    )


def _check_args(args: argparse.Namespace) -> None:
    from bnnhw.cli.main import _refuse_empty as refuse

    # only names can be empty; an array of frames is not compared with ""
    refuse(argparse.Namespace(**{k: v for k, v in vars(args).items() if isinstance(v, str)}))


def _refuse_empty(verb: str, **values) -> None:
    """The CLI's refusal of an empty name, with the same message."""
    _check_args(argparse.Namespace(verb=verb, **values))


def _is_dir(model: Model) -> bool:
    return not isinstance(model, Network) and Path(model).is_dir()


def _name(model: Model) -> str:
    return model.name if isinstance(model, Network) else str(model)


def _quiet(_line: str) -> None:
    pass


class _LineWriter(io.TextIOBase):
    """A text stream handing each complete line to ``progress``.

    ``progress`` itself runs with the real stdout back, so it may print.
    """

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.progress, self.pending, self.stdout = progress, "", sys.stdout

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.emit(line)
        return len(text)

    def emit(self, line: str) -> None:
        with contextlib.redirect_stdout(self.stdout):
            self.progress(line)


@contextlib.contextmanager
def _lines_to(progress: Progress) -> Iterator[None]:
    """What the CLI code prints, as lines to ``progress`` (or nowhere)."""
    writer = _LineWriter(progress or _quiet)
    with contextlib.redirect_stdout(writer):
        yield
    if writer.pending:
        writer.emit(writer.pending)
