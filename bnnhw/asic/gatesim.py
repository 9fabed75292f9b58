"""The mapped netlist in Icarus with the library's cell models, on the RTL's own bench.

The netlist and the cell models go into one Verilog file, which a copy of the build
points at; ``bnnhw.sim.runner`` then runs the same cocotb bench (``sim/bench_top.py``)
and the same golden vectors as ``bnnhw verify``. The simulation has no delays (Icarus
ignores the cells' specify blocks without ``-gspecify``): it proves the netlist's logic,
while OpenSTA gives its timing.

The same run, with a VCD, measures toggle rates for the power estimate.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING

from bnnhw.errors import BnnhwError

if TYPE_CHECKING:
    from bnnhw.build import Build
    from bnnhw.sim.runner import SimResult


def gate_level_build(build: Build, netlist: Path, models: Path, folder: Path) -> Build:
    """A copy of ``build`` whose Verilog is the netlist plus the cell models."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "gate_level.v"
    source.write_text(Path(netlist).read_text() + "\n" + Path(models).read_text())
    return dataclasses.replace(build, folder=folder, verilog=source)


def simulate_netlist(
    build: Build,
    netlist: Path,
    models: Path,
    folder: Path,
    *,
    frames: int = 40,
    in_gap: float = 0.2,
    out_gap: float = 0.3,
    seed: int = 0,
    tests: tuple[str, ...] = ("stream",),
    waves: bool = False,
) -> SimResult:
    """Random frames through the gate-level netlist, every output bit against the golden."""
    from bnnhw.sim import runner
    from bnnhw.sim.vectors import make_vectors

    gate = gate_level_build(build, netlist, models, folder)
    vectors = make_vectors(build, frames=frames, seed=seed)
    return runner.simulate(
        gate,
        vectors,
        simulator="icarus",
        in_gap=in_gap,
        out_gap=out_gap,
        seed=seed,
        tests=tests,
        waves=waves,
    )


def toggle_rate(vcd: Path, clock: str = "clk") -> dict:
    """Mean transitions per clock cycle over the top module's nets (clock excluded).

    Only the top scope counts: the netlist's nets, not the signals inside the cell models.
    A vector port counts as one net per bit.
    """
    ids: dict[str, int] = {}  # VCD id -> width, top-scope nets only
    clock_id, depth, top_depth = None, 0, None
    with open(vcd) as f:
        for line in f:
            if line.startswith("$scope"):
                depth += 1
                if top_depth is None and "module" in line and not _is_wrapper(line):
                    top_depth = depth
            elif line.startswith("$upscope"):
                depth -= 1
            elif line.startswith("$var") and depth == top_depth:
                parts = line.split()
                width, code, name = int(parts[2]), parts[3], parts[4]
                if name == clock:
                    clock_id = code
                else:
                    ids[code] = width
            elif line.startswith("$enddefinitions"):
                break
        if clock_id is None or not ids:
            raise BnnhwError(f"{vcd}: no clock {clock!r} or no nets in the top scope")
        last: dict[str, int] = {}
        toggles = clock_edges = 0
        for line in f:
            change = _change(line)
            if change is None:
                continue
            code, value = change
            if code == clock_id:
                clock_edges += 1
            elif code in ids:
                if code in last:
                    toggles += (last[code] ^ value).bit_count()
                last[code] = value
    cycles = clock_edges // 2
    nets = sum(ids.values())
    return {"cycles": cycles, "nets": nets, "activity": toggles / max(1, nets * cycles)}


def _is_wrapper(line: str) -> bool:
    """cocotb's Icarus dump module may show as a scope of its own: not the design."""
    return "cocotb_iverilog_dump" in line


def _change(line: str) -> tuple[str, int] | None:
    """(id, value) of a value change; x and z read as 0."""
    line = line.strip()
    if not line or line[0] in "#$":
        return None
    if line[0] in "bB":
        parts = line.split()
        if len(parts) != 2:
            return None
        bits = parts[0][1:].lower().replace("x", "0").replace("z", "0")
        return parts[1], int(bits, 2)
    if line[0] in "01xzXZ":
        return line[1:], 1 if line[0] == "1" else 0
    return None


BENCH_PERIOD_NS = 10.0  # the clock of sim/bench_top.py
_DELAY = re.compile(r"\((-?[\d.]+)?:(-?[\d.]+)?:(-?[\d.]+)?\)")


def scaled_sdf(sdf: Path, factor: float, out: Path) -> Path:
    """``sdf`` with every delay times ``factor``, without the (zero, unplaced) wire delays.

    The bench's clock is fixed at 10 ns: scaling every cell delay by 10 / P simulates the
    netlist at a clock period of P. Each delay is the larger of min and max (one corner).
    """

    def scale(m: re.Match) -> str:
        # OpenSTA writes (min::max); Icarus reads the empty typ as no delay: fill all three
        given = [float(v) for v in m.groups() if v is not None]
        value = f"{max(given, default=0.0) * factor:.4f}"
        return f"({value}:{value}:{value})"

    head, *cells = Path(sdf).read_text().split("\n (CELL\n")
    kept = [c for c in cells if "INTERCONNECT" not in c]  # the design's own wire block
    if cells and cells[-1] not in kept:
        kept.append(")")  # the DELAYFILE's closing parenthesis ended the dropped block
    out.write_text(_DELAY.sub(scale, "\n (CELL\n".join([head, *kept])))
    return out


def simulate_timed(
    build: Build,
    netlist: Path,
    models: Path,
    sdf: Path,
    folder: Path,
    period_ns: float,
    *,
    frames: int = 24,
    seed: int = 0,
) -> dict:
    """The netlist with OpenSTA's cell delays (SDF) at clock period ``period_ns``.

    Icarus applies the SDF's IOPATH delays to the cell models' specify paths
    (``-gspecify``); it checks no setup or hold times, so a path too slow for the clock
    shows as a wrong bit captured, which the bench reports against the golden model.
    Returns the bench's result for the stream test (no gaps: every path is exercised
    back to back).
    """
    import json

    from cocotb_tools.runner import get_runner

    from bnnhw.asic.partition import model_outputs, partition, regroup_sdf
    from bnnhw.sim.runner import BENCH, TIMESCALE, simulator_env
    from bnnhw.sim.vectors import make_vectors

    folder.mkdir(parents=True, exist_ok=True)
    grouped = folder / "netlist_grouped.v"  # Icarus' SDF lookup is quadratic in a flat scope
    where = partition(netlist, grouped, model_outputs(models))
    timed = scaled_sdf(sdf, BENCH_PERIOD_NS / period_ns, folder / "timed.sdf")
    regroup_sdf(timed, where, timed)
    text = grouped.read_text()
    at = text.index("endmodule")
    annotate = f'  initial $sdf_annotate("{timed.resolve()}");\n'
    source = folder / "gate_level_timed.v"
    source.write_text(text[:at] + annotate + text[at:] + "\n" + Path(models).read_text())
    vectors = make_vectors(build, frames=frames, seed=seed).save(folder / "vectors.npz")
    result = folder / "result.json"
    env = {"BNNHW_VECTORS": str(vectors), "BNNHW_RESULT": str(result), "BNNHW_SEED": str(seed)}
    sim_dir = folder / "sim"
    with simulator_env("icarus", env):
        runner = get_runner("icarus")
        runner.build(
            sources=[source.resolve()],
            hdl_toplevel=build.top,
            build_dir=sim_dir,
            build_args=["-gspecify"],
            timescale=TIMESCALE,
            log_file=folder / "build.log",
            always=True,
        )
        # a failing bench test exits; its result file says why
        with contextlib.suppress(SystemExit):
            runner.test(
                test_module=BENCH,
                hdl_toplevel=build.top,
                hdl_toplevel_lang="verilog",
                build_dir=sim_dir,
                test_dir=folder,
                testcase=["test_stream"],
                results_xml=str(folder / "results.xml"),
                timescale=TIMESCALE,
                log_file=folder / "sim.log",
            )
    if not result.is_file():
        raise BnnhwError(f"timed gate-level run produced no result; see {folder / 'sim.log'}")
    return json.loads(result.read_text())["tests"]["stream"]
