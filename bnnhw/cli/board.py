"""`bnnhw build | flash | run`: bitstreams for a board, programming it, classifying on it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bnnhw.errors import InputError


def cmd_build(args: argparse.Namespace) -> int:
    from bnnhw.boards import get_board, synthesize
    from bnnhw.boards.clock_search import synthesize_fastest
    from bnnhw.boards.synth import check_report
    from bnnhw.build import compile_model, load_build

    board = get_board(args.board)
    if Path(args.model).is_dir():
        build = load_build(args.model)
        if Path(args.output).resolve() != Path(args.model).resolve():
            raise InputError("with a build folder as MODEL, -o must be that same folder")
    else:
        max_lanes = args.max_lanes or board.max_lanes
        print(f"compiling {args.model} (folding {args.folding}, max lanes {max_lanes})")
        build = compile_model(
            args.model,
            args.output,
            force=args.force,
            folding=args.folding,
            max_lanes=max_lanes,
            with_scores=not args.no_scores,
            progress=lambda line: print("  " + line, flush=True),
        )
    print(f"building the {board.title} bitstream with YoWASP (the first run takes minutes)")

    def progress(line: str) -> None:
        print(line, flush=True)

    if args.clock:
        result = synthesize(build, board, baud=args.baud, clock_mhz=args.clock, progress=progress)
    else:
        result = synthesize_fastest(build, board, baud=args.baud, progress=progress)
    build.report["board"] = result
    folder = Path(build.folder)
    (folder / "report.json").write_text(json.dumps(build.report, indent=1) + "\n")
    from bnnhw.reports import build_markdown

    (folder / "report.md").write_text(build_markdown(build.report) + board_markdown(result))
    print(board_summary(result))
    check_report(result, board)
    print(f"wrote {result['bitstream']}, {folder / 'report.md'}")
    return 0


def board_summary(r: dict) -> str:
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
            "UART link",
            f"{r['baud']} baud, {r['uart_bytes_per_frame']} bytes per frame, "
            f"at most {r['uart_frames_per_s']} frames/s",
        ),
    ]
    lines = ["", "## Board", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows if v is not None]
    return "\n".join(lines) + "\n"


def cmd_flash(args: argparse.Namespace) -> int:
    from bnnhw.boards import flash, get_board

    flash(args.folder, get_board(args.board))
    print("programmed")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bnnhw.boards import Link

    with Link(args.port, args.folder, baud=args.baud, timeout=args.timeout) as link:
        x = load_inputs(args.inputs, link.build.net.input.shape, invert=args.invert)
        classes = link.classify(x)
        for i, cls in enumerate(classes.tolist()):
            extra = (
                f"  scores {link.scores[i].tolist()}"
                if args.scores and link.scores is not None
                else ""
            )
            print(f"frame {i}: class {cls}{extra}")
        retries = f", {len(link.errors)} frames re-sent" if link.errors else ""
        print(
            f"{len(classes)} frames, {link.frames_per_s:,.1f} frames/s measured on the host"
            + retries
        )
    return 0


def load_inputs(paths: list[str], shape, *, invert: bool = False):
    """Frames (N, *shape) from one .npy file or from PNG files (one frame each)."""
    from bnnhw.boards.images import png_frames
    from bnnhw.cli.files import load_array

    pngs = [p for p in paths if p.lower().endswith(".png")]
    if pngs and len(pngs) == len(paths):
        return png_frames(pngs, tuple(shape), invert=invert)
    if len(paths) != 1 or pngs:
        raise InputError(f"give one .npy array or one or more .png images, not {', '.join(paths)}")
    if invert:
        raise InputError("--invert applies to PNG images only")
    x = load_array(paths[0])
    return x[None] if x.shape == tuple(shape) else x


def add_parsers(verbs) -> None:
    """Register the board verbs on the CLI's subparsers."""
    from bnnhw.boards.targets import BOARDS

    boards = sorted(BOARDS)
    p = verbs.add_parser("build", help="bitstream + report for a board (Yosys + nextpnr, YoWASP)")
    p.add_argument("model", help="an .onnx/QONNX file, or a folder written by bnnhw compile")
    p.add_argument("--board", required=True, choices=boards)
    p.add_argument("-o", "--output", required=True, help="build folder to write")
    p.add_argument("--max-lanes", type=int, help="auto folding budget (default: the board's)")
    p.add_argument("--folding", default="auto", help='"auto" or a JSON folding file')
    p.add_argument("--baud", type=int, help="UART baud rate (default 115200)")
    p.add_argument(
        "--clock",
        type=float,
        metavar="MHZ",
        help="run the design at MHZ from the board's PLL (default: the fastest clock that "
        "meets timing with a 5 %% margin, found by building again; the oscillator's clock "
        "when the PLL gains nothing)",
    )
    p.add_argument("--no-scores", action="store_true", help="the board returns the class only")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty output folder")
    p.set_defaults(func=cmd_build)

    p = verbs.add_parser("flash", help="program a board with a build folder's bitstream")
    p.add_argument("folder", help="folder written by bnnhw build")
    p.add_argument("--board", required=True, choices=boards)
    p.set_defaults(func=cmd_flash)

    p = verbs.add_parser("run", help="classify frames on a flashed board over its UART")
    p.add_argument("folder", help="folder written by bnnhw build")
    p.add_argument(
        "inputs",
        nargs="+",
        help=".npy array (N, *input shape) as the graph takes it, or PNG images: grayscale, "
        "resized to the input's H x W, pixels / 255",
    )
    p.add_argument("--invert", action="store_true", help="PNG: dark digits on a light background")
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1")
    p.add_argument("--baud", type=int, help="default: the baud rate the build used")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for an answer")
    p.add_argument("--scores", action="store_true", help="print the scores too")
    p.set_defaults(func=cmd_run)
