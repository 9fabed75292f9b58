"""`bnnhw asic`: the OSU 0.18 um netlist is still bit-exact, and its figures add up.

A tiny generated QONNX MLP (16-8-4) is compiled folded (ROMs of 8 and 16 words) and
fully unrolled (weights hard-wired), mapped to the library's cells, and the gate-level
netlist runs in Icarus with the library's own cell models against the golden model,
under random input gaps and output backpressure. The area is recounted from the
netlist's instances and the .lib's cell areas; the timing from OpenSTA's path.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from bnnhw.asic import run_asic
from bnnhw.asic.gatesim import simulate_netlist, simulate_timed
from bnnhw.asic.liberty import default_library, read_library
from bnnhw.build import compile_model, load_build
from bnnhw.cli.main import main

from qonnx_graphs import BatchNormSpec, LayerSpec, MLPSpec, build_model, save_model

FOLDINGS = {  # ROMs of 16 and 8 words, or none
    "folded": {"0": {"pe": 2, "simd": 4}, "1": {"pe": 1, "simd": 4}},
    "unrolled": {"0": {"pe": 8, "simd": 16}, "1": {"pe": 4, "simd": 8}},
}


def _tiny_mlp(path: Path) -> None:
    rng = np.random.default_rng(14)

    def layer(out: int, inp: int, bn: bool) -> LayerSpec:
        norm = BatchNormSpec(
            gamma=rng.uniform(0.5, 2, out).astype(np.float32),
            beta=rng.normal(size=out).astype(np.float32),
            mean=rng.normal(0, 2, out).astype(np.float32),
            var=rng.uniform(0.5, 2, out).astype(np.float32),
        )
        weight = rng.normal(size=(out, inp)).astype(np.float32)
        return LayerSpec(weight, np.float32(1.0), bn=norm if bn else None)

    spec = MLPSpec([layer(8, 16, True), layer(4, 8, False)])
    save_model(build_model(spec), path)


@pytest.fixture(scope="module")
def library():
    try:
        return default_library()
    except Exception as exc:  # the suite states the reason instead of passing silently
        pytest.fail(f"OSU 0.18 um library missing ({exc}); run `make asic-lib`")


@pytest.fixture(scope="module", params=list(FOLDINGS))
def asic_build(request, tmp_path_factory, library):
    folder = tmp_path_factory.mktemp(request.param)
    _tiny_mlp(folder / "tiny.onnx")
    (folder / "folding.json").write_text(json.dumps(FOLDINGS[request.param]))
    build = compile_model(
        folder / "tiny.onnx", folder / "build", folding=str(folder / "folding.json")
    )
    result = run_asic(build, clock_ns=10.0, activity_frames=4, timed_frames=8)
    return request.param, build, result


def test_gate_level_netlist_is_bit_exact_under_backpressure(asic_build, library):
    _, build, _ = asic_build
    netlist = Path(build.folder) / "asic" / "netlist.v"
    sim = simulate_netlist(
        build, netlist, library[1], Path(build.folder) / "gate", frames=24, in_gap=0.3,
        out_gap=0.4, seed=5,
    )  # fmt: skip
    assert sim.mismatches == [] and (sim.matched, sim.frames) == (24, 24), sim.mismatches
    assert sim.tests["stream"]["received"] == 24


def test_area_and_cells_recounted_from_the_netlist(asic_build, library):
    name, build, r = asic_build
    lib = read_library(library[0])
    text = (Path(build.folder) / "asic" / "netlist.v").read_text()
    instances = re.findall(r"^\s*(\w+)\s+\S+\s*\(", text, re.MULTILINE)
    counts = {c: instances.count(c) for c in set(instances) if c in lib.areas}
    assert counts == r["cells_by_type"] and sum(counts.values()) == r["cells"]
    area = sum(n * lib.areas[c] for c, n in counts.items())
    assert r["area_um2"] == pytest.approx(area)
    assert r["area_ge"] == pytest.approx(area / 24.0)  # OSU's NAND2X1 is 24 um^2
    assert r["sequential_cells"] == counts.get("DFFPOSX1", 0) + counts.get("DFFSR", 0) > 0
    flops = sum(n * lib.areas[c] for c, n in counts.items() if c.startswith("DFF"))
    assert r["sequential_share"] == pytest.approx(flops / area)
    loads = {}  # every cell input pin, by net: no driver but the clock has more than 8
    for cell, pins in re.findall(r"^\s*(\w+)\s+\S+\s*\(\n(.*?)\n\s*\);", text, re.M | re.S):
        for pin, net in re.findall(r"\.(\w+)\((.*)\)", pins):
            if pin in lib.inputs[cell]:
                loads[net] = loads.get(net, 0) + 1
    assert loads.pop("clk") == r["sequential_cells"] and max(loads.values()) <= 8
    assert r["fanout_buffers"] == text.count(" bnnhw_buf_i") > 0
    if name == "unrolled":  # one-word ROMs are constants inside the XNOR logic
        assert r["unrolled"] and r["roms"] == {} and r["rom_share"] == 0
        assert r["cycles_per_frame"] == 1
    else:
        assert sorted(r["roms"]) == ["rom_layer0", "rom_layer1"]
        rom_area = sum(
            lib.areas[c] * n for rom in r["roms"].values() for c, n in rom["by_type"].items()
        )
        assert r["rom_share"] == pytest.approx(rom_area / area)
        assert 0 < r["rom_share"] < 1 and r["cycles_per_frame"] == 16


def test_timing_figures_follow_opensta_path(asic_build):
    _, build, r = asic_build
    t = r["timing"]
    assert t["period"] == 10.0
    assert t["fmax_mhz"] == pytest.approx(1e3 / (10.0 - t["worst_slack"]))
    delays = [p["delay"] for p in t["path"]]
    assert len(delays) >= 2 and sum(delays) == pytest.approx(t["arrival"], abs=0.01)
    assert t["critical_delay"] > t["arrival"]  # plus the flip-flop's setup time
    assert r["frames_per_s"] == pytest.approx(t["fmax_mhz"] * 1e6 / r["cycles_per_frame"])
    assert r["latency_us"] == pytest.approx(build.report["latency_cycles"] / t["fmax_mhz"])


def test_opensta_fmax_holds_in_a_timed_gate_level_simulation(asic_build, library):
    """At 1/Fmax with OpenSTA's delays every frame is right; at half that period, not.

    The second half shows the simulation does see the delays, so the first means something.
    """
    _, build, r = asic_build
    check = r["timing"]["gate_level_check"]
    period = 1e3 / r["timing"]["fmax_mhz"]
    assert check["period_ns"] == pytest.approx(period) and check["matched"] == check["frames"] == 8
    asic = Path(build.folder) / "asic"
    # every SDF cell found in its group (partition.py), none left with the models' delays
    assert "(INSTANCE bnnhw_grp_1/" in (asic / "timed_sim" / "timed.sdf").read_text()
    assert "Unable to find" not in (asic / "timed_sim" / "sim.log").read_text()
    fast = simulate_timed(
        build, asic / "netlist.v", library[1], asic / "netlist.sdf", asic / "too_fast", period / 2,
        frames=8,
    )  # fmt: skip
    assert fast["mismatch_count"] > 0 or fast["received"] < 8


def test_energy_from_measured_toggle_rate(asic_build):
    _, _, r = asic_build
    e = r["energy"]
    assert 0 < e["activity"] < 1 and e["cycles_simulated"] > 4 * r["cycles_per_frame"]
    total = e["power_w"]["total"]
    parts = total["internal"] + total["switching"] + total["leakage"]
    assert total["total"] == pytest.approx(parts, rel=1e-3)
    per_frame = total["total"] * r["cycles_per_frame"] / r["timing"]["fmax_mhz"] * 1e3
    assert e["energy_per_frame_nj"] == pytest.approx(per_frame)


def test_cli_missing_tools_and_library_exit_2(asic_build, tmp_path, monkeypatch, capsys):
    name, build, _ = asic_build
    if name != "folded":
        return
    folder = tmp_path / "b"
    shutil.copytree(build.folder, folder, ignore=shutil.ignore_patterns("asic", "gate"))
    args = ["asic", str(folder), "-o", str(folder), "--activity-frames", "0", "--timed-frames", "0"]

    def run(env: dict[str, str], *extra: str) -> str:
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            assert main(args + list(extra)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("bnnhw: error: ")
        return err[0]

    assert "apt-get install opensta" in run({"PATH": str(tmp_path / "nothing")})
    assert "YOSYS=" in run({"YOSYS": str(tmp_path / "no-yosys")})
    assert "--liberty" in run({}, "--liberty", str(tmp_path / "none.lib"))
    message = run({"BNNHW_OSU018": str(tmp_path / "no-lib")})
    assert "make asic-lib" in message and "qflow-tech-osu018" in message
    generic = json.loads((folder / "report.json").read_text())["asic"]
    assert generic["library"] is None and generic["cells"] > generic["rom_cells"] > 0
    assert "technology-independent" in (folder / "report.md").read_text()
    assert load_build(folder).top == build.top


def test_cli_unrolled_with_a_given_liberty_file(tmp_path, library, capsys):
    """``--folding unrolled`` hard-wires the tiny MLP (PE 8/4 = neurons, SIMD 16/8 = fan-in,
    no ROM); ``--liberty`` takes any .lib: a copy without cell models beside it still gets
    area and timing, and says why the gate-level steps are left out."""
    lib = tmp_path / "lib" / "copy.lib"
    lib.parent.mkdir()
    shutil.copy(library[0], lib)
    _tiny_mlp(tmp_path / "tiny.onnx")
    out = tmp_path / "b"
    args = ["asic", str(tmp_path / "tiny.onnx"), "-o", str(out), "--folding", "unrolled"]
    assert main([*args, "--liberty", str(lib), "--clock-ns", "5"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    r = report["asic"]
    assert [(la["pe"], la["simd"], la["nf"], la["sf"]) for la in report["layers"]] == [
        (8, 16, 1, 1),
        (4, 8, 1, 1),
    ]
    assert r["unrolled"] and r["roms"] == {} and r["cycles_per_frame"] == 1
    assert r["liberty"] == str(lib) and r["timing"]["period"] == 5.0
    for part in (r["energy"], r["timing"]["gate_level_check"]):
        assert "no cell models (Verilog) beside copy.lib" in part["omitted"]
    text = (out / "report.md").read_text()
    assert "## ASIC: osu018_stdcells" in text and "| pin | cell | delay ns | time ns |" in text
    assert f"{r['area_ge']:,.0f} GE" in text and f"{r['area_ge']:,.0f} GE" in printed
    assert (out / "asic" / "netlist.v").is_file()


def test_toggle_rate_counts_bits_per_cycle_in_the_top_scope(tmp_path):
    """Hand-counted VCD: 4 clock cycles; a toggles twice, the 2-bit bus 00 -> 11 -> 10 (3
    bit flips), the cell-internal net is not the netlist's and does not count."""
    from bnnhw.asic.gatesim import toggle_rate

    vcd = tmp_path / "w.vcd"
    vcd.write_text(
        "$timescale 1ps $end\n$scope module cocotb_iverilog_dump $end\n$upscope $end\n"
        '$scope module tiny $end\n$var wire 1 ! clk $end\n$var wire 1 " a $end\n'
        "$var wire 2 # bus [1:0] $end\n$scope module _01_ $end\n$var wire 1 $ I0 $end\n"
        "$upscope $end\n$upscope $end\n$enddefinitions $end\n"
        '#0\n0!\n0"\nb0 #\n0$\n#5\n1!\n1"\n1$\n#10\n0!\nb11 #\n0$\n#15\n1!\n#20\n0!\n'
        '0"\nb10 #\n1$\n#25\n1!\n#30\n0!\n#35\n1!\n#40\n0!\n'
    )
    rate = toggle_rate(vcd)
    assert (rate["cycles"], rate["nets"]) == (4, 3)
    assert rate["activity"] == pytest.approx((2 + 3) / (3 * 4))
