"""`bnnhw build | flash | run`: bitstreams for a board, programming it, classifying on it."""

from __future__ import annotations

import argparse
from pathlib import Path

from bnnhw.errors import InputError


def cmd_build(args: argparse.Namespace) -> int:
    from bnnhw import api
    from bnnhw.sweep.select import folding_for_cli

    chosen = folding_for_cli(
        args.model, args.board, args.target_fps, args.max_luts, args.folding, args.max_lanes
    )
    api.build(
        args.model,
        args.output,
        board=args.board,
        folding=chosen or args.folding,
        max_lanes=args.max_lanes,
        clock=args.clock,
        baud=args.baud,
        bench_frames=args.bench_frames,
        scores=not args.no_scores,
        force=args.force,
        progress=lambda line: print(line, flush=True),
    )
    return 0


def cmd_flash(args: argparse.Namespace) -> int:
    from bnnhw.boards import flash, get_board

    flash(args.folder, get_board(args.board))
    print("programmed")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bnnhw.boards import Link
    from bnnhw.boards.link import LinkStopped
    from bnnhw.files import save_array

    if args.timeout <= 0:
        raise InputError(f"--timeout {args.timeout}: give a positive number of seconds")
    if args.baud is not None and args.baud <= 0:
        raise InputError(f"--baud {args.baud}: give a positive baud rate")
    out, done = _run_output(args)
    with Link(args.port, args.folder, baud=args.baud, timeout=args.timeout) as link:
        x = load_inputs(args.inputs, link.build.net.input.shape, invert=args.invert)
        if args.bench:
            return _bench(link, x, args.repeats)
        if done is not None and len(done) > len(x):
            raise InputError(f"{out} holds {len(done)} results, the inputs only {len(x)} frames")
        first = 0 if done is None else len(done)
        if first == len(x):
            print(f"{out} already holds the results of all {len(x)} frames")
            return 0
        try:
            classes = link.classify(x[first:], first=first)
            scores = link.scores
        except LinkStopped as exc:
            classes, scores = exc.classes, exc.scores
            _print_results(classes, scores, first, args.scores)
            if out is None:
                raise LinkStopped(
                    f"{exc}; pass -o FILE to keep the results and --resume to continue",
                    classes,
                    scores,
                ) from None
            total = _save_results(out, done, classes, scores, args.scores, save_array)
            raise LinkStopped(
                f"{exc}; wrote {total} results to {out}: rerun with --resume to continue",
                classes,
                scores,
            ) from None
        _print_results(classes, scores, first, args.scores)
        if out is not None:
            total = _save_results(out, done, classes, scores, args.scores, save_array)
            print(f"wrote {total} results to {out}")
        retries = f", {len(link.errors)} frames re-sent" if link.errors else ""
        print(
            f"{len(classes)} frames, {link.frames_per_s:,.1f} frames/s measured on the host"
            + retries
        )
    return 0


def _run_output(args: argparse.Namespace):
    """The results file and, with --resume, the results it already holds."""
    from bnnhw.files import load_array, writable

    if args.output is None:
        if args.resume:
            raise InputError("--resume continues the results file given with -o")
        return None, None
    if args.bench:
        raise InputError("--bench prints the board's frames/s; it writes no results (-o)")
    if args.resume:
        if not Path(args.output).is_file():
            raise InputError(f"{args.output}: no results to resume; run without --resume first")
        done = load_array(args.output)
        if done.ndim != (2 if args.scores else 1):
            what = "scores (N, classes)" if args.scores else "classes (N,)"
            raise InputError(f"{args.output} does not hold {what}; resume with the same --scores")
        return Path(args.output), done
    return writable(args.output, args.force), None


def _save_results(out, done, classes, scores, with_scores: bool, save_array) -> int:
    import numpy as np

    if with_scores and scores is None:
        raise InputError("this build returns classes only (built with --no-scores)")
    new = scores if with_scores else classes
    result = new if done is None else np.concatenate([done.astype(np.int64), new])
    save_array(out, result)
    return len(result)


def _print_results(classes, scores, first: int, with_scores: bool) -> None:
    for i, cls in enumerate(classes.tolist()):
        extra = f"  scores {scores[i].tolist()}" if with_scores and scores is not None else ""
        print(f"frame {first + i}: class {cls}{extra}")


def _bench(link, x, repeats: int | None) -> int:
    from bnnhw.errors import BoardError

    if repeats is not None and not 1 <= repeats <= 0xFFFF:
        raise InputError(f"--repeats {repeats}: give 1 to 65535")
    result = link.bench(x, repeats)
    board = link.build.report.get("board") or {}
    print(
        f"bench: {result.frames} frames x {result.repeats} repeats replayed from block RAM: "
        f"{result.frames_per_s:,.0f} frames/s measured on the board "
        f"({result.cycles_per_frame:,.1f} cycles per frame at {result.clock_hz / 1e6:g} MHz; "
        f"report: {board.get('accelerator_frames_per_s', 0):,} frames/s)"
    )
    if not result.checksum_ok:
        raise BoardError(
            f"{link.port}: bench results checksum {result.results_crc:#06x}, the golden model's "
            f"{result.expected_crc:#06x}: the board computes different results; is the "
            "bitstream of this build loaded?"
        )
    print(f"results checksum {result.results_crc:#06x} matches the golden model")
    return 0


def load_inputs(paths: list[str], shape, *, invert: bool = False):
    """Frames (N, *shape) from one .npy file or from PNG files (one frame each)."""
    from bnnhw.boards.images import png_frames
    from bnnhw.files import load_array

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
    p.add_argument(
        "--max-lanes", type=int, help="auto folding budget (default: the most the board fits)"
    )
    p.add_argument("--folding", default="auto", help='"auto" or a JSON folding file')
    from bnnhw.cli.sweep import add_selection_args

    add_selection_args(p)
    p.add_argument(
        "--baud",
        type=int,
        help="UART baud rate (default: the board's, the fastest its USB bridge runs reliably)",
    )
    p.add_argument(
        "--bench-frames",
        type=int,
        metavar="N",
        help="frames the board's bench mode holds in block RAM (bnnhw run --bench); "
        "default: what one block RAM holds; 0: no bench mode",
    )
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
    p.add_argument("--scores", action="store_true", help="print (and write) the scores too")
    p.add_argument("-o", "--output", help=".npy file for the classes (the scores with --scores)")
    p.add_argument("--force", action="store_true", help="overwrite the -o file")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run: the -o file holds the first results",
    )
    p.add_argument(
        "--bench",
        action="store_true",
        help="the board replays up to its bench capacity of the frames from block RAM and "
        "reports frames/s and a checksum of the results (checked against the golden model)",
    )
    p.add_argument(
        "--repeats", type=int, help="--bench: replays of the frames (default: about 0.5 s)"
    )
    p.set_defaults(func=cmd_run)
