"""`bnnhw verify`: simulate the generated Verilog and check it bit for bit against the golden.

Two benches. The default, ``--bench fast``, is a compiled Verilog harness that streams
every frame inside the simulator (whole test splits in seconds on Verilator) and reruns
any bad frame in the cocotb bench to name the layer and neurons. ``--bench cocotb`` (and
``--waves``) runs the cocotb bench's protocol tests: streaming, throughput and a reset
mid-frame. The last line printed always ends ``M/N frames match`` (after the RTL and
golden accuracies with ``--dataset``), so scripts can read it; the exit status is 1 on
any mismatch or frame-count error.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bnnhw.errors import InputError
from bnnhw.passes.folding import DEFAULT_MAX_LANES

if TYPE_CHECKING:
    from bnnhw.build import Build
    from bnnhw.sim.fast import FastResult
    from bnnhw.sim.runner import SimResult
    from bnnhw.sim.vectors import Vectors


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


def _build(args: argparse.Namespace, folder: Path) -> Build:
    from bnnhw.build import compile_model, load_build

    model = Path(args.model)
    if model.is_dir():
        print(f"build folder {model}")
        if args.folding != "auto" or args.max_lanes != DEFAULT_MAX_LANES or args.output:
            print("  (--folding, --max-lanes and -o apply only when compiling an .onnx)")
        return load_build(model)
    if folder.is_dir() and any(folder.iterdir()) and not (folder / "build.json").is_file():
        raise InputError(f"{folder} is not empty and not a bnnhw build folder")
    print(f"compiling {model} into {folder}")
    return compile_model(
        model,
        folder,
        force=True,
        folding=args.folding,
        max_lanes=args.max_lanes,
        progress=lambda line: print(f"  {line}", flush=True),
    )


def _frames(args: argparse.Namespace, build: Build) -> tuple[np.ndarray, np.ndarray | None]:
    """The float frames to simulate, and their labels when they come from a data set."""
    from bnnhw import golden
    from bnnhw.cli.files import load_array
    from bnnhw.sim.vectors import random_inputs

    if args.vectors is not None and args.vectors < 1:
        raise InputError(f"--vectors {args.vectors}: give at least one frame")
    if args.dataset and args.inputs:
        raise InputError("--dataset and --inputs both name the frames; give one of them")
    if args.dataset:
        x, labels = _dataset(args, build)
        x, labels = x[: args.vectors], labels[: args.vectors]
        print(f"vectors: {len(x)} frames of the {args.dataset} test split")
        return x, labels
    if args.inputs is None:
        frames = args.vectors or 100
        print(f"vectors: {frames} random frames (seed {args.seed})")
        return random_inputs(build.net.input, frames, args.seed), None
    given = isinstance(args.inputs, np.ndarray)  # from the Python API
    name = "the inputs array" if given else str(args.inputs)
    x = args.inputs if given else load_array(args.inputs)
    x = golden.check_inputs(build.net.input, x, what=name)
    x = x[: args.vectors] if args.vectors else x
    if len(x) == 0:
        raise InputError(f"{name}: no frames")
    print(f"vectors: {len(x)} frames from {name}")
    return x, None


def _dataset(args: argparse.Namespace, build: Build) -> tuple[np.ndarray, np.ndarray]:
    from bnnhw import datasets

    x, labels = datasets.load_test_split(args.dataset, args.data_dir)
    shape = tuple(build.net.input.shape)
    if x[0].size != build.net.input.size:
        raise InputError(
            f"{args.model}: the model takes frames of shape {shape}, the {args.dataset} "
            f"test split has frames of shape {x.shape[1:]}; pass the --dataset it was trained on"
        )
    return x.reshape(len(x), *shape), labels


def describe(m: dict) -> str:
    """One mismatch record (sim/vectors.py ``_localise``) as one line."""
    where = {
        "layer": f"layer {m['layer']} ({m['layer_name']})",
        "argmax": "argmax/output stage (every layer output was right)",
        "missing": "no output",
        "output": "output word",
    }[m["stage"]]
    line = f"frame {m['frame']} [{m['test']}]: first difference at {where}"
    if m["stage"] == "layer":
        shown = ", ".join(map(str, m["neurons"][:8]))
        more = " ..." if m["neurons_differing"] > 8 else ""
        line += f", neuron(s) {shown}{more} ({m['neurons_differing']} differ)"
        if m.get("layer_output_missing"):
            line += ", the layer produced no output for it"
    expected, got = m["expected"], m["got"]
    if got is not None:
        line += f"; expected class {expected['class']}, got {got['class']}"
        if got["scores"] != expected["scores"]:
            line += f"; expected scores {expected['scores']}, got {got['scores']}"
    if m.get("time_ns") is not None:
        line += f"; output at {m['time_ns']:.0f} ns (cycle {m['cycle']} of the test)"
    if m.get("vcd"):
        line += f"; waves {m['vcd']}"
    return line


@dataclass
class VerifyRun:
    """What one verify did: the simulation's verdict, the build, the folder kept."""

    result: SimResult | FastResult
    build: Build
    folder: Path | None  # None: the temporary build folder was removed
    last_line: str
    accuracy: tuple[float, float] | None  # RTL and golden, with labelled frames


def cmd_verify(args: argparse.Namespace) -> int:
    return 0 if run(args).result.ok else 1


def run(args: argparse.Namespace) -> VerifyRun:
    """The whole verb (also ``bnnhw.verify``): prints what it does, returns what it found."""
    temp = None
    if Path(args.model).is_dir():
        folder = Path(args.model)
    elif args.output:
        folder = Path(args.output)
    else:
        folder = temp = Path(tempfile.mkdtemp(prefix="bnnhw-verify-"))
    keep = False
    try:
        result, build, accuracy = _run(args, folder)
        keep = args.waves or not result.ok
    finally:
        if temp is not None and not keep:
            shutil.rmtree(temp, ignore_errors=True)
    if temp is not None and keep:
        print(f"build folder kept: {temp}")
    last_line = result.extra.get("last_line") or f"{result.matched}/{result.frames} frames match"
    print(last_line)
    kept = None if temp is not None and not keep else folder
    return VerifyRun(result, build, kept, last_line, accuracy)


def _run(
    args: argparse.Namespace, folder: Path
) -> tuple[SimResult | FastResult, Build, tuple[float, float] | None]:
    from bnnhw.cli.verify_fast import run_fast
    from bnnhw.sim.vectors import make_vectors

    for name, p in (("in-gap", args.in_gap), ("out-gap", args.out_gap)):
        if not 0 <= p < 1:
            raise InputError(f"--{name} {p}: a probability must be >= 0 and < 1")
    bench = args.bench or ("cocotb" if args.waves else "fast")
    if bench == "fast" and args.waves:
        raise InputError("--waves needs the cocotb bench: drop --bench fast")
    build = _build(args, folder)
    x, labels = _frames(args, build)
    vectors = make_vectors(build, x)
    if bench != "fast":
        return _run_cocotb(args, build, vectors), build, None
    from bnnhw.sim.fast import classes

    result = run_fast(args, build, vectors, x, labels)
    accuracy = None
    if labels is not None:
        rtl = float(np.mean(classes(result, vectors) == labels))
        accuracy = rtl, float(np.mean(vectors.classes == labels))
    return result, build, accuracy


def _run_cocotb(args: argparse.Namespace, build: Build, vectors: Vectors) -> SimResult:
    from bnnhw.sim.runner import simulate

    result = simulate(
        build,
        vectors,
        simulator=args.sim,
        in_gap=args.in_gap,
        out_gap=args.out_gap,
        seed=args.seed,
        waves=args.waves,
        progress=lambda line: print(line, flush=True),
    )
    rate = result.frames_per_second
    speed = f" ({rate:,.0f} frames/s while streaming)" if rate else ""
    print(f"{args.sim}: simulated in {result.sim_seconds:.1f} s{speed}")
    for m in result.mismatches:
        print(f"MISMATCH {describe(m)}")
    if result.mismatches:
        print(f"mismatch report: {result.folder / 'mismatch.json'}")
    if result.vcd:
        print(f"waves: {result.vcd}")
    print_timing(result, build)
    return result


def print_timing(result: SimResult | FastResult, build: Build) -> None:
    """Measured cycles per frame and latency, beside the report's."""
    measured = result.cycles_per_frame
    text = "n/a (too few frames)" if measured is None else f"{measured:.2f}"
    note = ""
    if result.frame_words > result.ideal:
        note = f"; the host needs {result.frame_words} cycles to send a frame"
    print(f"cycles per frame: {text} (ideal {result.ideal}, the initiation interval{note})")
    if result.latency is not None:
        print(f"latency: {result.latency} cycles (report: {build.report['latency_cycles']})")
