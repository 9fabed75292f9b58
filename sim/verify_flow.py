"""The verify verb (``bnnhw.verify``, ``bnnhw verify``): simulate the Verilog, check every bit.

Two benches. The default, ``fast``, is a compiled Verilog harness that streams every frame
inside the simulator (whole test splits in seconds on Verilator) and reruns the first bad
frames in the cocotb bench, whose layer taps name the layer and neurons. ``cocotb`` (and
``waves``) runs the cocotb bench's protocol tests: streaming, throughput and a reset
mid-frame. What a run does is told line by line to ``say``; the last line always ends
``M/N frames match`` (after the RTL and golden accuracies with a data set), so scripts can
read it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bnnhw.errors import InputError
from bnnhw.ir import Network
from bnnhw.passes.folding import DEFAULT_MAX_LANES

if TYPE_CHECKING:
    from bnnhw.build import Build
    from bnnhw.sim.fast import FastResult
    from bnnhw.sim.runner import SimResult
    from bnnhw.sim.vectors import Vectors

Say = Callable[[str], None]
LOCATE_FRAMES = 3  # bad frames of the fast run rerun in the cocotb bench


@dataclass(frozen=True)
class VerifyOptions:
    """What to simulate and how: the CLI's flags, by their names."""

    sim: str = "verilator"
    vectors: int | None = None  # random frames (default 100), or the first N of the others
    inputs: str | Path | np.ndarray | None = None
    dataset: str | None = None
    data_dir: str | Path | None = None
    bench: str | None = None  # "fast" (default) or "cocotb" (default with waves)
    waves: bool = False
    seed: int = 0
    in_gap: float = 0.1
    out_gap: float = 0.1
    folding: str = "auto"  # when compiling
    max_lanes: int = DEFAULT_MAX_LANES  # when compiling
    output: str | Path | None = None  # build folder for a model (default: a temporary one)

    @property
    def bench_used(self) -> str:
        return self.bench or ("cocotb" if self.waves else "fast")


@dataclass
class VerifyRun:
    """What one verify did: the simulation's verdict, the build, the folder kept."""

    result: SimResult | FastResult
    build: Build
    folder: Path | None  # None: the temporary build folder was removed
    last_line: str
    accuracy: tuple[float, float] | None  # RTL and golden, with labelled frames


def run(model: str | Path | Network, options: VerifyOptions, say: Say) -> VerifyRun:
    """The whole verb: compile ``model`` if it is not a build folder, simulate, compare."""
    for name, p in (("in-gap", options.in_gap), ("out-gap", options.out_gap)):
        if not 0 <= p < 1:
            raise InputError(f"--{name} {p}: a probability must be >= 0 and < 1")
    if options.bench == "fast" and options.waves:
        raise InputError("--waves needs the cocotb bench: drop --bench fast")
    temp = None
    if _is_build_folder(model):
        folder = Path(model)
    elif options.output:
        folder = Path(options.output)
    else:
        folder = temp = Path(tempfile.mkdtemp(prefix="bnnhw-verify-"))
    keep = False
    try:
        result, build, accuracy = _run(model, options, folder, say)
        keep = options.waves or not result.ok
    finally:
        if temp is not None and not keep:
            shutil.rmtree(temp, ignore_errors=True)
    if temp is not None and keep:
        say(f"build folder kept: {temp}")
    last_line = result.extra.get("last_line") or f"{result.matched}/{result.frames} frames match"
    say(last_line)
    kept = None if temp is not None and not keep else folder
    return VerifyRun(result, build, kept, last_line, accuracy)


def _is_build_folder(model: str | Path | Network) -> bool:
    return not isinstance(model, Network) and Path(model).is_dir()


def _run(
    model: str | Path | Network, options: VerifyOptions, folder: Path, say: Say
) -> tuple[SimResult | FastResult, Build, tuple[float, float] | None]:
    from bnnhw.sim.fast import classes
    from bnnhw.sim.vectors import make_vectors

    build = _build(model, options, folder, say)
    x, labels = _frames(model, options, build, say)
    vectors = make_vectors(build, x)
    if options.bench_used != "fast":
        return _run_cocotb(options, build, vectors, say), build, None
    result = _run_fast(options, build, vectors, x, labels, say)
    accuracy = None
    if labels is not None:
        rtl = float(np.mean(classes(result, vectors) == labels))
        accuracy = rtl, float(np.mean(vectors.classes == labels))
    return result, build, accuracy


def _build(model: str | Path | Network, options: VerifyOptions, folder: Path, say: Say) -> Build:
    from bnnhw.build import compile_model, load_build
    from bnnhw.files import checked_path

    if _is_build_folder(model):
        say(f"build folder {model}")
        changed = options.folding != "auto" or options.max_lanes != DEFAULT_MAX_LANES
        if changed or options.output:
            say("  (--folding, --max-lanes and -o apply only when compiling an .onnx)")
        return load_build(model)
    if folder.is_dir() and any(folder.iterdir()) and not (folder / "build.json").is_file():
        raise InputError(f"{folder} is not empty and not a bnnhw build folder")
    name = model.name if isinstance(model, Network) else model
    say(f"compiling {name} into {folder}")
    return compile_model(
        model if isinstance(model, Network) else checked_path(model),
        folder,
        force=True,
        folding=str(options.folding),
        max_lanes=options.max_lanes,
        progress=lambda line: say(f"  {line}"),
    )


def _frames(
    model: str | Path | Network, options: VerifyOptions, build: Build, say: Say
) -> tuple[np.ndarray, np.ndarray | None]:
    """The float frames to simulate, and their labels when they come from a data set."""
    from bnnhw import datasets, golden
    from bnnhw.files import load_array
    from bnnhw.sim.vectors import random_inputs

    if options.vectors is not None and options.vectors < 1:
        raise InputError(f"--vectors {options.vectors}: give at least one frame")
    given = options.inputs is not None
    if options.dataset and given:
        raise InputError("--dataset and --inputs both name the frames; give one of them")
    if options.dataset:
        x, labels = datasets.load_test_split(options.dataset, options.data_dir)
        shape = tuple(build.net.input.shape)
        if x[0].size != build.net.input.size:
            name = model.name if isinstance(model, Network) else model
            raise InputError(
                f"{name}: the model takes frames of shape {shape}, the {options.dataset} "
                f"test split has frames of shape {x.shape[1:]}; pass the --dataset it was "
                "trained on"
            )
        x = x.reshape(len(x), *shape)[: options.vectors]
        say(f"vectors: {len(x)} frames of the {options.dataset} test split")
        return x, labels[: options.vectors]
    if not given:
        frames = options.vectors or 100
        say(f"vectors: {frames} random frames (seed {options.seed})")
        return random_inputs(build.net.input, frames, options.seed), None
    array = isinstance(options.inputs, np.ndarray)  # from the Python API
    name = "the inputs array" if array else str(options.inputs)
    x = options.inputs if array else load_array(options.inputs)
    x = golden.check_inputs(build.net.input, x, what=name)
    x = x[: options.vectors] if options.vectors else x
    if len(x) == 0:
        raise InputError(f"{name}: no frames")
    say(f"vectors: {len(x)} frames from {name}")
    return x, None


def _run_fast(
    options: VerifyOptions,
    build: Build,
    vectors: Vectors,
    x: np.ndarray,
    labels: np.ndarray | None,
    say: Say,
) -> FastResult:
    """The compiled harness; the first bad frames located in the cocotb bench."""
    from bnnhw.sim.fast import classes, verify_fast

    sim = options.sim
    say(f"{sim}: fast harness (compiled once per Verilog, reused)")
    result = verify_fast(
        build,
        vectors,
        simulator=sim,
        in_gap=options.in_gap,
        out_gap=options.out_gap,
        seed=options.seed,
    )
    built = "reused" if result.build_seconds is None else f"{result.build_seconds:.1f} s"
    processes = result.extra.get("jobs", 1)
    jobs = f" in {processes} processes" if processes > 1 else ""
    say(f"{sim}: harness build {built} ({result.folder})")
    say(
        f"{sim}: {result.frames} frames, {result.cycles:,} cycles simulated in "
        f"{result.sim_seconds:.2f} s ({result.frames_per_second:,.0f} frames/s, "
        f"{result.cycles_per_second:,.0f} cycles/s; {result.cpu_seconds:.2f} s of CPU"
        f"{jobs})"
    )
    for error in result.count_errors:
        say(f"FRAME COUNT: {error}")
    if result.bad_frames:
        shown = ", ".join(map(str, result.bad_frames[:10]))
        more = " ..." if len(result.bad_frames) > 10 else ""
        say(f"{len(result.bad_frames)} frame(s) differ: {shown}{more}")
        _locate(options, build, x, result.bad_frames[:LOCATE_FRAMES], say)
    _say_timing(result, build, say)
    match = f"{result.matched}/{result.frames} frames match"
    if labels is not None:
        rtl = float(np.mean(classes(result, vectors) == labels))
        gold = float(np.mean(vectors.classes == labels))
        match = f"RTL accuracy {100 * rtl:.2f} % (golden {100 * gold:.2f} %), {match}"
    result.extra["last_line"] = match
    return result


def _locate(options: VerifyOptions, build: Build, x: np.ndarray, bad: list[int], say: Say) -> None:
    """Rerun the frames ``bad`` in the cocotb bench, which names the layer and neurons."""
    from bnnhw.sim.runner import simulate
    from bnnhw.sim.vectors import make_vectors

    say(f"locating frame(s) {', '.join(map(str, bad))} in the cocotb bench")
    again = simulate(
        build,
        make_vectors(build, x[bad]),
        simulator=options.sim,
        in_gap=options.in_gap,
        out_gap=options.out_gap,
        seed=options.seed,
        tests=("stream",),
    )
    for m in again.mismatches:
        say(f"MISMATCH {describe(m | {'frame': bad[m['frame']]})}")
    if again.mismatches:
        say(f"mismatch report: {again.folder / 'mismatch.json'} (frames renumbered from 0)")
    else:
        say("the cocotb bench saw no difference on these frames alone: compare the runs")


def _run_cocotb(options: VerifyOptions, build: Build, vectors: Vectors, say: Say) -> SimResult:
    from bnnhw.sim.runner import simulate

    result = simulate(
        build,
        vectors,
        simulator=options.sim,
        in_gap=options.in_gap,
        out_gap=options.out_gap,
        seed=options.seed,
        waves=options.waves,
        progress=say,
    )
    rate = result.frames_per_second
    speed = f" ({rate:,.0f} frames/s while streaming)" if rate else ""
    say(f"{options.sim}: simulated in {result.sim_seconds:.1f} s{speed}")
    for m in result.mismatches:
        say(f"MISMATCH {describe(m)}")
    if result.mismatches:
        say(f"mismatch report: {result.folder / 'mismatch.json'}")
    if result.vcd:
        say(f"waves: {result.vcd}")
    _say_timing(result, build, say)
    return result


def _say_timing(result: SimResult | FastResult, build: Build, say: Say) -> None:
    """Measured cycles per frame and latency, beside the report's."""
    measured = result.cycles_per_frame
    text = "n/a (too few frames)" if measured is None else f"{measured:.2f}"
    note = ""
    if result.frame_words > result.ideal:
        note = f"; the host needs {result.frame_words} cycles to send a frame"
    say(f"cycles per frame: {text} (ideal {result.ideal}, the initiation interval{note})")
    if result.latency is not None:
        say(f"latency: {result.latency} cycles (report: {build.report['latency_cycles']})")


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
