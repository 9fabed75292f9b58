"""`bnnhw verify`: the flags of ``bnnhw.verify`` (sim/verify_flow.py does the work).

The last line printed always ends ``M/N frames match`` (after the RTL and golden
accuracies with ``--dataset``), so scripts can read it; the exit status is 1 on any
mismatch or frame-count error.
"""

from __future__ import annotations

import argparse

from bnnhw.passes.folding import DEFAULT_MAX_LANES


def add_parser(verbs) -> None:
    p = verbs.add_parser(
        "verify", help="simulate the Verilog (Verilator or Icarus) against the golden model"
    )
    p.add_argument("model", help="an .onnx/QONNX file (compiled first) or a bnnhw build folder")
    p.add_argument("--sim", choices=["verilator", "icarus"], default="verilator")
    p.add_argument(
        "--vectors",
        type=int,
        help="frames: random ones (default 100), or the first N of --inputs/--dataset",
    )
    p.add_argument("--inputs", help=".npy frames (N, *input shape), float32, as for predict")
    p.add_argument(
        "--dataset",
        choices=["mnist", "digits"],
        help="the data set's whole test split (the first N with --vectors), with accuracy",
    )
    p.add_argument("--data-dir", help="MNIST folder (IDX files, gzip or not)")
    p.add_argument(
        "--bench",
        choices=["fast", "cocotb"],
        help="fast: compiled harness (default); cocotb: protocol tests (default with --waves)",
    )
    p.add_argument("--waves", action="store_true", help="dump a VCD of the whole run")
    p.add_argument("--seed", type=int, default=0, help="random frames, gaps and reset point")
    p.add_argument("--in-gap", type=float, default=0.1, help="P(idle input cycle), default 0.1")
    p.add_argument("--out-gap", type=float, default=0.1, help="P(o__ready low), default 0.1")
    p.add_argument("--folding", default="auto", help="when compiling: as for bnnhw compile")
    p.add_argument(
        "--max-lanes", type=int, default=DEFAULT_MAX_LANES, help="when compiling: as for compile"
    )
    p.add_argument("-o", "--output", help="build folder for an .onnx (default: a temporary one)")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    """``bnnhw.verify`` with the flags; exit status 1 on any mismatch or frame-count error."""
    from bnnhw import api

    result = api.verify(
        args.model,
        sim=args.sim,
        out_dir=args.output,
        vectors=args.vectors,
        inputs=args.inputs,
        dataset=args.dataset,
        data_dir=args.data_dir,
        bench=args.bench,
        waves=args.waves,
        seed=args.seed,
        in_gap=args.in_gap,
        out_gap=args.out_gap,
        folding=args.folding,
        max_lanes=args.max_lanes,
        progress=lambda line: print(line, flush=True),
    )
    return 0 if result.ok else 1
