"""Sweeps on real Dask clusters this test starts: a LocalCluster, and a scheduler with two
workers as separate processes (the ``dask scheduler`` / ``dask worker`` commands) on TCP
on 127.0.0.1, one of them killed in the middle of the sweep.

Where the point is the scheduling, the build is ``task.model_point`` (the analytic
estimate, with a delay standing in for the tools); one test synthesises a real point.
"""

from __future__ import annotations

import functools
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bnnhw
from bnnhw.boards import get_board
from bnnhw.cli.main import main
from bnnhw.sweep import task
from bnnhw.sweep.run import run_serial, run_sweep
from bnnhw.sweep.space import enumerate_points

from mlp_specs import make_spec
from qonnx_graphs import build_model, save_model

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "models" / "digits_w1a1_in1_classic.onnx"
DASK = Path(sys.executable).parent / "dask"
VOLATILE = ("worker", "cached", "seconds")


def _same(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in records]


@pytest.fixture(scope="module")
def digits_points():
    net = bnnhw.load(DIGITS)
    return enumerate_points(str(DIGITS), net, get_board("icebreaker"), 8, None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes (no nanny: a killed worker
    stays dead), on a free TCP port of 127.0.0.1; shut down and reaped after the tests.
    The kill test runs last: it leaves one worker."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask_logs")
    procs = []

    def start(name, *argv):
        log = (logs / f"{name}.log").open("w")
        procs.append(subprocess.Popen([str(DASK), *argv], stdout=log, stderr=log))
        return procs[-1]

    start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
    workers = [
        start(
            f"worker{i}",
            "worker",
            address,
            "--nthreads",
            "1",
            "--no-nanny",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
            "--name",
            f"w{i}",
        )
        for i in range(2)
    ]
    try:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        try:  # the scheduler stops its workers, then itself
            with Client(address, timeout="10s") as client:
                client.shutdown()
        except OSError:
            pass
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_local_cluster_sweep_equals_a_serial_run(tmp_path, digits_points):
    build = functools.partial(task.model_point, delay=0.2)
    serial = run_serial(digits_points, tmp_path / "serial", build)
    on_dask = run_sweep(digits_points, tmp_path / "dask", workers=2, build=build, progress=False)
    assert _same(on_dask) == _same(serial)
    assert len(on_dask) == 8 and all(r["status"] == "ok" for r in on_dask)
    # the sweep ran on two worker processes, neither of them this one
    assert len({r["worker"] for r in on_dask}) >= 1
    assert all(not r["worker"].endswith(f":{__import__('os').getpid()}") for r in on_dask)
    # a rerun takes every point from the cache and builds nothing
    again = run_sweep(digits_points, tmp_path / "dask", workers=1, build=build, progress=False)
    assert all(r["cached"] for r in again) and _same(again) == _same(serial)


def test_sweep_through_a_scheduler_and_two_worker_processes(tmp_path, cluster, capsys):
    address, _ = cluster
    out = tmp_path / "sweep"
    argv = ["sweep", str(DIGITS), "--board", "icebreaker", "--points", "8", "--estimate-only"]
    assert main([*argv, "--scheduler", address, "-o", str(out), "--fit"]) == 0
    data = json.loads((out / "sweep.json").read_text())
    points = data["points"]
    assert len(points) == 8 and all(p["status"] == "ok" for p in points)
    assert len({p["worker"] for p in points}) == 2  # both worker processes built points
    assert sum(p["picked"] for p in points) == 1
    assert (out / "pareto.png").is_file() and "digits" in (out / "pareto.md").read_text()
    assert "8 built, 0 failed, 0 from the cache" in capsys.readouterr().out
    # --fit: the resource model fitted to these points (here the analytic estimate, which
    # is linear in the same lane and accumulator counts) predicts each point held out
    fit = (out / "fit.md").read_text()
    assert fit.count("| digits_w1a1_in1_classic | icebreaker |") == 8
    assert "luts" in json.loads((out / "coefficients.json").read_text())["families"]["ice40"]
    worst = float(fit.split("- luts: max |error| ")[1].split("%")[0])
    assert worst < 3.0
    serial = run_serial(
        [
            p
            for p in enumerate_points(
                str(DIGITS), bnnhw.load(DIGITS), get_board("icebreaker"), 8, _picked(points)
            )
        ],
        tmp_path / "serial",
        task.model_point,
    )
    assert _same(serial) == _same([{k: v for k, v in p.items() if k != "pareto"} for p in points])


def _picked(points: list[dict]):
    pick = next(p for p in points if p["picked"])
    return tuple(tuple(int(v) for v in f.split("x")) for f in pick["folding"].split())


def test_a_worker_killed_mid_sweep_loses_nothing(tmp_path, cluster, digits_points):
    address, workers = cluster
    out = tmp_path / "sweep"
    build = functools.partial(task.model_point, delay=1.5)
    victim = workers[0]
    import threading

    def kill_when_busy():
        attempts = out / "attempts"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # both workers have started a point
            if attempts.is_dir() and len(list(attempts.iterdir())) >= 3:
                victim.kill()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    records = run_sweep(digits_points, out, scheduler=address, build=build, progress=False)
    killer.join()
    assert victim.poll() is not None  # the worker really died mid-sweep
    serial = run_serial(digits_points, tmp_path / "serial", task.model_point)
    assert _same(records) == _same(serial)  # complete and correct, in order
    assert [r["key"] for r in records] == [p.key for p in digits_points]  # once each
    # the point the dead worker was building was started again: more attempts than points
    attempts = list((out / "attempts").iterdir())
    assert len(attempts) > len(digits_points)
    assert len(list((out / "cache").glob("*.json"))) == len(digits_points)


@pytest.mark.slow
def test_one_real_synthesis_point_on_a_local_cluster(tmp_path):
    """Yosys + nextpnr for a 16-8-4 MLP on the iCEBreaker, then the same point cached."""
    model = tmp_path / "tiny.onnx"
    save_model(build_model(make_spec([16, 8, 4], seed=5)), model)
    net = bnnhw.load(model)
    board = get_board("icebreaker")
    points = enumerate_points(str(model), net, board, 1, ((8, 16), (4, 8)))
    assert [p.folding for p in points] == [((8, 16), (4, 8))] and points[0].picked
    first = run_sweep(points, tmp_path / "s", workers=1, progress=False)[0]
    assert first["status"] == "ok", first.get("reason")
    assert 800 < first["logic_cells"] < 3000  # the board link (~800) and 160 lanes
    assert first["luts"] > 0 and first["ffs"] > 0 and first["fmax_mhz"] > 12
    assert first["clock_mhz"] == 12.0 and not first["cached"]
    assert first["frames_per_s"] == round(first["fmax_mhz"] * 1e6 / first["interval"])
    gateware = tmp_path / "s" / "points" / points[0].key / "build" / "gateware"
    assert (gateware / "top.bin").stat().st_size > 10_000
    again = run_serial(points, tmp_path / "s")[0]  # compiled again, not synthesised
    assert again["cached"] and _same([again]) == _same([first])
