"""`bnnhw VERB ...`: argument parsing, dispatch, and the one place errors become messages.

A BnnhwError is the user's to fix: one line on stderr, exit status 2. Anything else is a
bug in bnnhw: one line saying so, exit status 1, the traceback only with BNNHW_DEBUG=1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Sequence

import numpy as np

from bnnhw.boards.targets import BOARDS
from bnnhw.cli import asic, board, sweep, verify
from bnnhw.errors import BnnhwError, InputError
from bnnhw.files import refuse_empty
from bnnhw.passes.folding import DEFAULT_MAX_LANES

EXIT_USER_ERROR = 2
EXIT_BUG = 1


def _load(model: str):
    import bnnhw
    from bnnhw.files import checked_path

    path = checked_path(model)
    # float arithmetic replayed on the graph's constants may overflow to inf on purpose
    # (it is checked after); numpy's warnings about it are not the user's business
    try:
        with np.errstate(all="ignore"):
            return bnnhw.load(path)
    except BnnhwError as exc:  # the passes name the layer: say which file it is in
        if path.name and path.name not in str(exc):
            raise type(exc)(f"{path}: {exc}") from None
        raise


def cmd_inspect(args: argparse.Namespace) -> int:
    from bnnhw.reports import summary

    print(summary(_load(args.model)))
    if not os.path.isdir(args.model):  # an ONNX file: say how it was read
        from bnnhw.frontend import describe

        found = describe(args.model)
        print(f"dialect: {found.dialect}")
        for rewrite in found.rewrites:
            print(f"  rewrite: {rewrite}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from bnnhw import golden
    from bnnhw.files import load_array, save_array, writable

    out = writable(args.output, args.force)
    net = _load(args.model)
    x = load_array(args.inputs)
    golden.check_inputs(net.input, x, what=str(args.inputs))
    result = golden.scores(net, x) if args.scores else golden.predict(net, x)
    save_array(out, result)
    what = "integer scores" if args.scores else "class indices"
    print(f"wrote {len(result)} {what} to {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from bnnhw import datasets, golden

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit {args.limit}: give a positive number of frames")
    net = _load(args.model)
    name = args.dataset or {784: "mnist", 64: "digits"}.get(net.input.size)
    if name is None:
        raise InputError(
            f"{args.model}: input of {net.input.size} values matches no bundled data set; "
            "pass --dataset mnist|digits"
        )
    x, labels = datasets.load_test_split(name, args.data_dir)
    if args.limit is not None:
        x, labels = x[: args.limit], labels[: args.limit]
    if x[0].size != net.input.size:
        raise InputError(
            f"{args.model}: the model takes frames of shape {tuple(net.input.shape)}, the "
            f"{name} test split has frames of shape {x.shape[1:]}; pass the --dataset the "
            "model was trained on"
        )
    x = x.reshape(len(x), *net.input.shape)
    start = time.perf_counter()
    classes = golden.predict(net, x)
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(classes == labels))
    print(f"{name} test split: {len(x)} frames")
    print(f"golden model: accuracy {accuracy:.2%}, {len(x) / seconds:,.0f} frames/s")
    if args.reference:
        from bnnhw.frontend.reference import ReferenceExecutor

        start = time.perf_counter()
        outputs = ReferenceExecutor(args.model)(x)
        seconds = time.perf_counter() - start
        if outputs.ndim == 2 and outputs.shape[1] == 1:  # a graph ending in TopK/ArgMax
            same, error_text = int(np.sum(outputs[:, 0] == classes)), "class output"
        else:
            same = int(np.sum(np.argmax(outputs, axis=1) == classes))
            error = float(np.max(np.abs(golden.float_outputs(net, x) - outputs), initial=0))
            error_text = f"max |float output - golden| = {error:.3g}"
        print(
            f"reference (qonnx execute_onnx): {same}/{len(x)} same class, {error_text}, "
            f"{len(x) / seconds:,.0f} frames/s"
        )
        if same != len(x):
            print("MISMATCH: the golden model disagrees with the ONNX graph", file=sys.stderr)
            return 1
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from bnnhw import api
    from bnnhw.sweep.select import folding_for_cli

    chosen = folding_for_cli(
        args.model, args.board, args.target_fps, args.max_luts, args.folding, args.max_lanes
    )
    result = api.compile(
        args.model,
        args.output,
        board=args.board,
        folding=chosen or args.folding,
        max_lanes=args.max_lanes,
        in_word=args.in_word,
        out_word=args.out_word,
        scores=not args.no_scores,
        force=args.force,
        progress=lambda line: print(line, flush=True),
    )
    print(
        f"wrote {result.verilog} ({len(result.layers)} layers, initiation interval "
        f"{result.initiation_interval} cycles/frame, latency {result.latency_cycles} "
        f"cycles) and {result.folder / 'report.md'}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bnnhw",
        description="Binary neural networks from ONNX/QONNX to bit-exact hardware.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    model_help = "an .onnx/QONNX file or a folder holding a saved bnnhw IR"

    p = verbs.add_parser("inspect", help="print what the importer understood")
    p.add_argument("model", help=model_help)
    p.set_defaults(func=cmd_inspect)

    p = verbs.add_parser("predict", help="classify frames with the golden model (no hardware)")
    p.add_argument("model", help=model_help)
    p.add_argument("inputs", help=".npy array (N, *input shape), float32, as the graph takes it")
    p.add_argument("-o", "--output", required=True, help=".npy file to write (exactly this name)")
    p.add_argument("--scores", action="store_true", help="write integer scores, not classes")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.set_defaults(func=cmd_predict)

    p = verbs.add_parser("compile", help="ONNX -> integer IR -> Verilog + report")
    p.add_argument("model", help="an .onnx/QONNX file")
    p.add_argument("-o", "--output", required=True, help="build folder to write")
    p.add_argument(
        "--folding",
        default="auto",
        help='"auto" or a JSON file {"layer name or index": {"pe": P, "simd": S}}',
    )
    p.add_argument(
        "--max-lanes",
        type=int,
        help="auto folding: XNOR lanes (PE x SIMD) of the largest layer "
        f"(default: the most that fit --board, else {DEFAULT_MAX_LANES})",
    )
    p.add_argument(
        "--board",
        choices=sorted(BOARDS),
        help="fold for this board's logic and block RAM (as `bnnhw build` does), no synthesis",
    )
    p.add_argument(
        "--in-word",
        type=int,
        help="host input word width in bits (default: the first layer's input word)",
    )
    p.add_argument(
        "--out-word",
        type=int,
        help="send each result in words of this many bits (default: one word per result)",
    )
    p.add_argument("--no-scores", action="store_true", help="output the class only")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty output folder")
    sweep.add_selection_args(p)
    p.set_defaults(func=cmd_compile)
    verify.add_parser(verbs)
    board.add_parsers(verbs)
    asic.add_parser(verbs)
    sweep.add_parser(verbs)

    p = verbs.add_parser(
        "evaluate", help="accuracy on a bundled data set; --reference checks against ONNX"
    )
    p.add_argument("model", help=model_help)
    p.add_argument("--dataset", choices=["mnist", "digits"], help="default: from input size")
    p.add_argument("--data-dir", help="MNIST folder (IDX files, gzip or not)")
    p.add_argument("--limit", type=int, help="only the first N test frames")
    p.add_argument(
        "--reference",
        action="store_true",
        help="also run qonnx execute_onnx on the graph and compare every frame",
    )
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        refuse_empty(args.verb, vars(args))
        return args.func(args)
    except BnnhwError as exc:
        print(f"bnnhw: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("bnnhw: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`bnnhw inspect M | head`): not a bug
        # the interpreter's exit flush would fail again on the closed pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a process ended by SIGPIPE
    except Exception as exc:
        if os.environ.get("BNNHW_DEBUG"):
            traceback.print_exc()
        reason = " ".join(str(exc).split())[:200]
        print(
            f"bnnhw: internal error: {type(exc).__name__}: {reason} (a bug in bnnhw; rerun "
            "with BNNHW_DEBUG=1 for the traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_BUG
