"""The Python API: every CLI verb that makes hardware, as a function with a typed result.

``compile``, ``verify``, ``build``, ``asic`` and ``sweep`` take what their ``bnnhw VERB``
takes (an ONNX file, a folder written by a compile, or here also an IR ``Network``) and
return the report as a typed object (:mod:`bnnhw.results`). A problem the user can fix
raises a :class:`bnnhw.BnnhwError` whose message is the one line the CLI prints after
``bnnhw: error:``; each CLI verb is these functions with ``progress=print``. Lines the CLI
prints go to ``progress`` (one string per line) when it is given, and nowhere otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bnnhw.errors import InputError
from bnnhw.ir import Network
from bnnhw.passes.folding import DEFAULT_MAX_LANES
from bnnhw.results import (
    AsicResult,
    BoardResult,
    CompileResult,
    SweepPoint,
    SweepResult,
    VerifyResult,
)

if TYPE_CHECKING:
    from bnnhw.build import Build

Progress = Callable[[str], None] | None
UNROLLED_LANES = 2**40  # more lanes than any layer has: PE = neurons, SIMD = fan-in
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
    (default 256 without a board) or a ``folding`` JSON file choose the folding instead.
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
    from bnnhw.sim import verify_flow

    names = {"model": model, "output": out_dir, "inputs": inputs, "data_dir": data_dir}
    _refuse_empty("verify", folding=folding, **names)
    options = verify_flow.VerifyOptions(
        sim=sim,
        vectors=vectors,
        inputs=inputs,
        dataset=dataset,
        data_dir=data_dir,
        bench=bench,
        waves=waves,
        seed=seed,
        in_gap=in_gap,
        out_gap=out_gap,
        folding=str(folding),
        max_lanes=max_lanes,
        output=out_dir,
    )
    run = verify_flow.run(model, options, progress or _quiet)
    result, bad = run.result, getattr(run.result, "bad_frames", None)
    if bad is None:
        bad = sorted({m["frame"] for m in result.mismatches})
    rtl, gold = run.accuracy or (None, None)
    return VerifyResult(
        ok=result.ok,
        simulator=sim,
        bench=options.bench_used,
        frames=result.frames,
        matched=result.matched,
        bad_frames=tuple(bad),
        cycles_per_frame=result.cycles_per_frame,
        latency=result.latency,
        initiation_interval=result.ideal,
        summary=run.last_line,
        rtl_accuracy=rtl,
        golden_accuracy=gold,
        build=None if run.folder is None else CompileResult.from_build(run.build),
        folder=run.folder,
    )


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
    from bnnhw.passes.folding import check_max_lanes
    from bnnhw.reports import board_markdown, board_summary, build_markdown

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
    bench = lp.build_bench_frames(build.report, build.port_format(), board_spec.family)
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
    _say_lines(say, board_summary(result))
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
    from bnnhw.asic import run_asic
    from bnnhw.asic.flow import check_tools
    from bnnhw.asic.liberty import LibraryMissing
    from bnnhw.asic.report import summary
    from bnnhw.build import load_build

    say = progress or _quiet
    if out_dir is None and _is_dir(model):
        out_dir = model
    if out_dir is None:
        raise InputError("asic: give the build folder to write (-o)")
    _refuse_empty("asic", model=model, output=out_dir, liberty=liberty, folding=folding)
    for flag, value in (("activity", activity_frames), ("timed", timed_frames)):
        if value < 0:
            raise InputError(f"--{flag}-frames {value}: give 0 or more frames")
    check_tools(None if liberty is None else str(liberty), clock_ns)
    if _is_dir(model):
        if Path(out_dir).resolve() != Path(model).resolve():
            raise InputError("with a build folder as MODEL, -o must be that same folder")
        build = load_build(model)
    else:
        lanes = max_lanes or DEFAULT_MAX_LANES
        unrolled = folding == "unrolled"
        if unrolled:
            lanes = UNROLLED_LANES
        say(f"compiling {_name(model)} (folding {folding}, max lanes {lanes})")
        build = _compile(
            model,
            out_dir,
            new_folder=True,
            force=force,
            folding="auto" if unrolled else str(folding),
            max_lanes=lanes,
            progress=lambda line: say("  " + line),
        )
    try:
        result = run_asic(
            build,
            liberty=None if liberty is None else str(liberty),
            clock_ns=clock_ns,
            activity_frames=activity_frames,
            timed_frames=timed_frames,
            progress=say,
        )
    except LibraryMissing as exc:
        if getattr(exc, "report", None):
            _write_asic_report(build, exc.report)
            _say_lines(say, summary(exc.report))
        raise
    _write_asic_report(build, result)
    _say_lines(say, summary(result))
    say(f"wrote {Path(build.folder) / 'asic' / 'netlist.v'}, {Path(build.folder) / 'report.md'}")
    check = result["timing"]["gate_level_check"]
    agreed = check.get("matched", check.get("frames")) == check.get("frames")
    ok = agreed and not result["energy"].get("mismatch")
    return AsicResult.from_report(result, CompileResult.from_build(build), ok=ok)


def sweep(
    model: str | Path,
    out_dir: str | Path,
    *,
    board: str,
    points: int = 12,
    scheduler: str | None = None,
    workers: int | None = None,
    max_cells: int | None = None,
    estimate_only: bool = False,
    fit: bool = False,
    progress: Progress = None,
) -> SweepResult:
    """``bnnhw sweep``: ``points`` foldings around the board's pick, built on Dask.

    Without ``scheduler`` a LocalCluster of ``workers`` processes (default one per core)
    runs them; with it (``tcp://HOST:PORT``), that cluster. ``out_dir`` keeps a cache, so
    a rerun builds only new points. A point that fails is in the result, not an error.
    ``estimate_only`` puts the analytic estimate in place of each synthesis (a dry run).
    """
    from bnnhw.sweep.model_sweep import sweep_model

    _refuse_empty("sweep", model=model, output=out_dir, scheduler=scheduler)
    run = sweep_model(
        model,
        board,
        out_dir,
        points=points,
        scheduler=scheduler,
        workers=workers,
        max_cells=max_cells,
        estimate_only=estimate_only,
        fit=fit,
        say=progress or _quiet,
        progress_bar=progress is not None,
    )
    return SweepResult(
        folder=run.folder,
        board=board,
        points=tuple(SweepPoint.from_record(r) for r in run.records),
        wall_seconds=run.meta["wall_seconds"],
        fit_table=run.fit_table,
        meta=run.meta,
    )


def _write_asic_report(build: Build, result: dict) -> None:
    """The ``asic`` section into report.json and report.md (a board section is kept)."""
    import json

    from bnnhw.asic.report import markdown
    from bnnhw.reports import board_markdown, build_markdown

    build.report["asic"] = result
    folder = Path(build.folder)
    (folder / "report.json").write_text(json.dumps(build.report, indent=1) + "\n")
    text = build_markdown(build.report)
    if "board" in build.report:  # a board build in the same folder keeps its section
        text += board_markdown(build.report["board"])
    (folder / "report.md").write_text(text + markdown(result))


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
    from bnnhw.files import build_folder, checked_path
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


def _refuse_empty(verb: str, **values) -> None:
    """The CLI's refusal of an empty name, with the same message."""
    from bnnhw.files import refuse_empty

    # only names can be empty; an array of frames or an IR is not compared with ""
    refuse_empty(verb, {k: v for k, v in values.items() if isinstance(v, str)})


def _is_dir(model: Model) -> bool:
    return not isinstance(model, Network) and Path(model).is_dir()


def _name(model: Model) -> str:
    return model.name if isinstance(model, Network) else str(model)


def _quiet(_line: str) -> None:
    pass


def _say_lines(say: Callable[[str], None], text: str) -> None:
    """``progress`` takes one line per call."""
    for line in text.splitlines():
        say(line)
