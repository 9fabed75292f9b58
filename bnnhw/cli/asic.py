"""`bnnhw asic`: the generated accelerator as a standard-cell netlist, area, timing, energy."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bnnhw.errors import InputError
from bnnhw.passes.folding import DEFAULT_MAX_LANES

UNROLLED_LANES = 2**40  # more lanes than any layer has: PE = neurons, SIMD = fan-in


def add_parser(verbs) -> None:
    p = verbs.add_parser(
        "asic",
        help="standard-cell netlist (Yosys), area, OpenSTA timing, energy per frame",
    )
    p.add_argument("model", help="an .onnx/QONNX file (compiled first) or a bnnhw build folder")
    p.add_argument("-o", "--output", required=True, help="build folder to write")
    p.add_argument(
        "--liberty",
        help="Liberty (.lib) file of the cell library (default: OSU 0.18 um, `make asic-lib`)",
    )
    p.add_argument(
        "--clock-ns", type=float, default=10.0, help="clock period for timing (default 10 ns)"
    )
    fold = p.add_mutually_exclusive_group()
    fold.add_argument(
        "--folding",
        default="auto",
        help='"auto", "unrolled" (PE = neurons, SIMD = fan-in, weights hard-wired) or a '
        "JSON file as for compile",
    )
    fold.add_argument(
        "--max-lanes", type=int, help=f"auto folding budget (default {DEFAULT_MAX_LANES})"
    )
    p.add_argument(
        "--activity-frames",
        type=int,
        default=8,
        help="frames of gate-level simulation for the toggle rates (0: no energy figure)",
    )
    p.add_argument(
        "--timed-frames",
        type=int,
        default=8,
        help="frames of gate-level simulation with OpenSTA's delays at 1/Fmax (0: none)",
    )
    p.add_argument("--force", action="store_true", help="overwrite a non-empty output folder")
    p.set_defaults(func=cmd_asic)


def _build(args: argparse.Namespace):
    from bnnhw.build import compile_model, load_build
    from bnnhw.cli.files import build_folder, checked_path
    from bnnhw.passes.folding import check_max_lanes

    if Path(args.model).is_dir():
        if Path(args.output).resolve() != Path(args.model).resolve():
            raise InputError("with a build folder as MODEL, -o must be that same folder")
        return load_build(args.model)
    folding, max_lanes = args.folding, args.max_lanes or DEFAULT_MAX_LANES
    if folding == "unrolled":
        folding, max_lanes = "auto", UNROLLED_LANES
    check_max_lanes(max_lanes)
    print(f"compiling {args.model} (folding {args.folding}, max lanes {max_lanes})")
    return compile_model(
        checked_path(args.model),
        build_folder(args.output),
        force=args.force,
        folding=folding,
        max_lanes=max_lanes,
        progress=lambda line: print("  " + line, flush=True),
    )


def cmd_asic(args: argparse.Namespace) -> int:
    from bnnhw.asic import run_asic
    from bnnhw.asic.flow import check_tools
    from bnnhw.asic.liberty import LibraryMissing
    from bnnhw.asic.report import markdown, summary
    from bnnhw.reports import build_markdown

    for flag, value in (("activity", args.activity_frames), ("timed", args.timed_frames)):
        if value < 0:
            raise InputError(f"--{flag}-frames {value}: give 0 or more frames")
    check_tools(args.liberty, args.clock_ns)
    build = _build(args)
    folder = Path(build.folder)

    def write(result: dict) -> None:
        build.report["asic"] = result
        (folder / "report.json").write_text(json.dumps(build.report, indent=1) + "\n")
        text = build_markdown(build.report)
        if "board" in build.report:  # a board build in the same folder keeps its section
            from bnnhw.cli.board import board_markdown

            text += board_markdown(build.report["board"])
        (folder / "report.md").write_text(text + markdown(result))
        print(summary(result))

    try:
        result = run_asic(
            build,
            liberty=args.liberty,
            clock_ns=args.clock_ns,
            activity_frames=args.activity_frames,
            timed_frames=args.timed_frames,
            progress=lambda line: print(line, flush=True),
        )
    except LibraryMissing as exc:
        if getattr(exc, "report", None):
            write(exc.report)
        raise
    write(result)
    print(f"wrote {folder / 'asic' / 'netlist.v'}, {folder / 'report.md'}")
    check = result["timing"]["gate_level_check"]
    if result["energy"].get("mismatch") or check.get("matched", check.get("frames")) != check.get(
        "frames"
    ):
        print("MISMATCH: the gate-level netlist disagrees with the golden model", file=sys.stderr)
        return 1
    return 0
