"""`bnnhw asic`: the flags of ``bnnhw.asic`` (standard-cell netlist, area, timing, energy)."""

from __future__ import annotations

import argparse
import sys

from bnnhw.passes.folding import DEFAULT_MAX_LANES


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


def cmd_asic(args: argparse.Namespace) -> int:
    """``bnnhw.asic`` with the flags; exit status 1 when the netlist disagrees with golden."""
    from bnnhw import api

    result = api.asic(
        args.model,
        args.output,
        liberty=args.liberty,
        clock_ns=args.clock_ns,
        folding=args.folding,
        max_lanes=args.max_lanes,
        activity_frames=args.activity_frames,
        timed_frames=args.timed_frames,
        force=args.force,
        progress=lambda line: print(line, flush=True),
    )
    if not result.ok:
        print("MISMATCH: the gate-level netlist disagrees with the golden model", file=sys.stderr)
        return 1
    return 0
