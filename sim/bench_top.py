"""cocotb 2 bench for a generated accelerator top: streams the vectors, checks every bit.

The runner (sim/runner.py) sets these environment variables:

    BNNHW_VECTORS   vectors .npz written by sim/vectors.py          (required)
    BNNHW_RESULT    result JSON to write          (default: <vectors>.result.json)
    BNNHW_IN_GAP    probability that the host leaves a cycle idle     (default 0)
    BNNHW_OUT_GAP   probability that o__ready is low in a cycle       (default 0)
    BNNHW_SEED      seed of the gaps and of the reset point           (default 0)
    BNNHW_VCD       the wave file, only named in reports

Results go to BNNHW_RESULT; the first bad frame of each failing test, localised to a layer
and its neurons, also to ``mismatch.json`` beside it.

Every cycle the bench drives at the falling edge and samples in the ReadOnly phase that
follows, when drivers and registers have settled: a handshake seen there is the transfer
of the next rising edge, whatever the simulator's scheduling order.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import FallingEdge, ReadOnly

from bnnhw.sim.vectors import Vectors, compare, load_vectors

THROUGHPUT_FRAMES = 48  # enough for the middle half to be past the pipeline fill
RESET_FRAMES = 24


def _env_float(name: str) -> float:
    return float(os.environ.get(name, "0") or 0)


def _bit(handle) -> bool:
    return str(handle.value) == "1"


def _int(handle) -> int:
    """A payload as an unsigned int; -1 when it holds X or Z bits."""
    try:
        return int(handle.value)
    except ValueError:
        return -1


def _child(dut, name: str):
    try:
        return getattr(dut, name)
    except AttributeError:
        return None


def _taps(dut, layers: int) -> list[tuple]:
    """(valid, ready, payload) of each layer's output stream, [] if not visible.

    Read at the consumer's input ports (the next converter, layer or the argmax): Yosys
    may rename a layer's own ``o__*`` ports (a FIFO's ``r_en``, or a ``$n`` suffix where a
    convolution's inner stage has a port of the same name), never the consumer's inputs.
    """
    taps = []
    for k in range(layers):
        after = [f"convert{k + 1}", f"layer{k + 1}"] if k < layers - 1 else ["argmax"]
        down = next((c for c in (_child(dut, n) for n in after) if c is not None), None)
        if _child(dut, f"layer{k}") is None or down is None:
            return []
        taps.append((down.i__valid, down.i__ready, down.i__payload))
    return taps


@dataclass
class Run:
    """One streaming session: the frames of ``order`` in, their results out."""

    order: list[int]
    words: list[int]
    outputs: list[int] = field(default_factory=list)
    out_cycles: list[int] = field(default_factory=list)
    out_times: list[float] = field(default_factory=list)  # ns, where to look in the VCD
    layer_outputs: list[list[int]] = field(default_factory=list)
    sent: int = 0
    cycles: int = 0
    first_in: int | None = None  # cycle of the first input transfer
    timed_out: bool = False


class Bench:
    """The DUT, the vectors and the result file, shared by the three tests below."""

    def __init__(self, dut) -> None:
        self.dut = dut
        self.vectors: Vectors = load_vectors(os.environ["BNNHW_VECTORS"])
        self.header = self.vectors.header
        self.taps = _taps(dut, len(self.header.layers))
        self.seed = int(os.environ.get("BNNHW_SEED", "0") or 0)
        default = Path(os.environ["BNNHW_VECTORS"]).with_suffix(".result.json")
        self.result_path = Path(os.environ.get("BNNHW_RESULT") or default)

    def new_run(self, order: list[int]) -> Run:
        words = [w for n in order for w in self.vectors.frame_words(n)]
        return Run(order, words, layer_outputs=[[] for _ in self.taps])

    def cycle_limit(self, frames: int, in_gap: float, out_gap: float) -> int:
        h = self.header
        per_frame = h.initiation_interval + h.port_format.frame_words
        slow = (1 - min(in_gap, 0.99)) * (1 - min(out_gap, 0.99))
        return int((4 * h.latency_cycles + 200 + 2 * frames * per_frame) / slow)

    async def start(self) -> None:
        """Clock, idle stream ports, and a synchronous reset held over 3 rising edges."""
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start(start_high=False))
        dut.i__valid.value, dut.o__ready.value, dut.rst.value = 0, 0, 1
        await self.reset(3)

    async def reset(self, cycles: int) -> None:
        dut = self.dut
        await FallingEdge(dut.clk)
        dut.i__valid.value, dut.rst.value = 0, 1
        for _ in range(cycles):
            await FallingEdge(dut.clk)
        dut.rst.value = 0

    async def stream(self, run: Run, in_gap: float, out_gap: float, rng, stop_after=None):
        """Drive ``run.words`` (stopping after ``stop_after`` of them) and collect results."""
        dut, taps = self.dut, self.taps
        limit = self.cycle_limit(len(run.order), in_gap, out_gap)
        holding, valid_now = False, 0
        fmt = self.vectors.port_format
        beats: list[int] = []
        while len(run.outputs) < len(run.order):
            await FallingEdge(dut.clk)
            if stop_after is not None and run.sent >= stop_after:
                break
            if not holding and run.sent < len(run.words) and rng.random() >= in_gap:
                dut.i__payload.value = run.words[run.sent]
                holding = True
            if valid_now != holding:
                dut.i__valid.value = valid_now = int(holding)
            ready = rng.random() >= out_gap
            dut.o__ready.value = ready
            await ReadOnly()
            run.cycles += 1
            if holding and _bit(dut.i__ready):
                run.sent, holding = run.sent + 1, False
                run.first_in = run.first_in or run.cycles
            if ready and _bit(dut.o__valid):
                beats.append(_int(dut.o__payload))
                if len(beats) == fmt.out_beats:  # a result may leave in several beats
                    # -1 (X/Z) if any beat held X or Z bits, as one-beat results always were
                    run.outputs.append(-1 if min(beats) < 0 else fmt.join_beats(beats))
                    run.out_cycles.append(run.cycles)
                    run.out_times.append(float(get_sim_time("ns")))
                    beats = []
            for k, (valid, taken, payload) in enumerate(taps):
                if _bit(valid) and _bit(taken):
                    run.layer_outputs[k].append(_int(payload))
            if run.cycles > limit:
                run.timed_out = True
                break
        await FallingEdge(dut.clk)
        dut.i__valid.value = dut.o__ready.value = 0

    def finish(self, name: str, run: Run, extra: dict | None = None) -> dict:
        """Compare ``run`` with the golden values, record it, fail the test on a mismatch."""
        vcd = os.environ.get("BNNHW_VCD") or None
        result = compare(self.vectors, run, visible_layers=bool(self.taps), vcd=vcd)
        result |= {"test": name, "cycles": run.cycles, "timed_out": run.timed_out}
        result |= extra or {}
        everything = {}
        if self.result_path.is_file():
            everything = json.loads(self.result_path.read_text())
        everything.setdefault("tests", {})[name] = result
        self.result_path.write_text(json.dumps(everything, indent=1) + "\n")
        first = result.get("first_mismatch")
        if first is not None:
            report = self.result_path.with_name("mismatch.json")
            bad = json.loads(report.read_text()) if report.is_file() else {}
            report.write_text(json.dumps(bad | {name: first}, indent=1) + "\n")
        assert first is None, f"{name}: {result['mismatch_count']} bad frames; first: {first}"
        return result


def _middle_rate(run: Run) -> dict:
    """Cycles per frame between the outputs of the middle half of the frames."""
    frames, t = len(run.order), run.out_cycles
    a, b = frames // 4, 3 * frames // 4
    measured = (t[b] - t[a]) / (b - a) if b > a and len(t) > b else None
    latency = t[0] - run.first_in if t and run.first_in else None  # first word to result
    return {"cycles_per_frame": measured, "from_frame": a, "to_frame": b, "latency": latency}


@cocotb.test()
async def test_stream(dut) -> None:
    """Every frame of the vectors, with random input gaps and output backpressure."""
    bench = Bench(dut)
    in_gap, out_gap = _env_float("BNNHW_IN_GAP"), _env_float("BNNHW_OUT_GAP")
    await bench.start()
    run = bench.new_run(list(range(bench.vectors.frames)))
    await bench.stream(run, in_gap, out_gap, random.Random(bench.seed))
    rate = _middle_rate(run)  # the steady-state rate only when both gaps are 0
    bench.finish("stream", run, {"in_gap": in_gap, "out_gap": out_gap} | rate)


@cocotb.test()
async def test_throughput(dut) -> None:
    """Cycles per frame at full speed (no gaps, always ready), over the middle frames."""
    bench = Bench(dut)
    await bench.start()
    frames = min(bench.vectors.frames, THROUGHPUT_FRAMES)
    run = bench.new_run(list(range(frames)))
    await bench.stream(run, 0.0, 0.0, random.Random(bench.seed))
    bench.finish("throughput", run, _middle_rate(run))


@cocotb.test()
async def test_reset_mid_frame(dut) -> None:
    """Reset after a random number of input words, then fresh frames must all be right."""
    bench = Bench(dut)
    rng = random.Random(bench.seed + 1)
    in_gap, out_gap = _env_float("BNNHW_IN_GAP"), _env_float("BNNHW_OUT_GAP")
    await bench.start()
    n, words = bench.vectors.frames, bench.vectors.port_format.frame_words
    before = list(range(min(n, 6)))
    choices = [k for k in range(1, len(before) * words) if words == 1 or k % words]
    stop = rng.choice(choices or [1])
    await bench.stream(bench.new_run(before), in_gap, out_gap, rng, stop_after=stop)
    hold = rng.randint(1, 3)
    await bench.reset(hold)
    start = len(before) % n
    run = bench.new_run([(start + i) % n for i in range(min(n, RESET_FRAMES))])
    await bench.stream(run, in_gap, out_gap, rng)
    bench.finish("reset", run, {"words_before_reset": stop, "reset_cycles": hold})
