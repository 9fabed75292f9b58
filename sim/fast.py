"""Run the compiled streaming harness and check every output bit against the golden model.

The host writes the input words of every frame to one hex file, the simulator streams
them with seeded random gaps and stalls and writes each output beat with its cycle, and
this module joins the beats into results and compares them with the vectors' expected
words. Frames are counted three ways: the host's own count, the harness's trailer (words
sent, beats received) and the lines in the results file. Any disagreement fails the run
(``count_errors``), so a harness or a DUT that drops or repeats a frame never reports a
match. A second short run without gaps measures cycles per frame and latency, as the
cocotb bench's throughput test does.

A long run is cut into ``jobs`` chunks of consecutive frames, each streamed from reset by
its own simulator process (seed + chunk index), all at once with the throughput run: on
two cores a CNV's test split takes half the wall time, and a loaded machine gives each
process its own share. Every chunk is counted on its own, so a fault in one fails the run.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bnnhw.errors import BnnhwError
from bnnhw.sim.fast_build import build_harness, executable
from bnnhw.sim.runner import SIMULATORS, simulator_env
from bnnhw.sim.vectors import Vectors, from_bytes

if TYPE_CHECKING:
    from bnnhw.build import Build

THROUGHPUT_FRAMES = 48  # as the cocotb bench's throughput test
GAP_ONE = 1 << 16  # the harness compares 16 random bits with P * 2^16
#: A run shorter than this many cycles stays one process: a chunk's start-up (process,
#: reset, pipeline fill) is then a large share of it. Both are a few seconds of one core:
#: Verilator runs ~1 M cycles of a TFC a second, Icarus ~3,000-6,000 (docs/verify.md).
CHUNK_CYCLES = {"verilator": 1_000_000, "icarus": 20_000}
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


@dataclass
class Stream:
    """What one harness run saw: result words in order, their cycles, its own counts."""

    results: list[int]  # joined result words, -1 where a beat held X/Z
    out_cycles: list[int]  # cycle of each result's last beat
    beats_in_file: int
    words_sent: int
    beats_counted: int
    cycles: int
    first_in: int
    timed_out: bool


@dataclass
class FastResult:
    """The fast harness's verdict on a set of vectors."""

    simulator: str
    frames: int
    matched: int
    bad_frames: list[int]  # vector indices whose result differs (or never came)
    results: list[int]
    count_errors: list[str]  # frames dropped or repeated: the run cannot be trusted
    cycles: int  # simulated cycles of the checked run
    sim_seconds: float
    cpu_seconds: float
    cycles_per_frame: float | None
    latency: int | None
    ideal: int
    frame_words: int
    build_seconds: float | None
    folder: Path
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.matched == self.frames and not self.count_errors

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.sim_seconds if self.sim_seconds else float("inf")

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.sim_seconds if self.sim_seconds else float("inf")


def write_stimulus(vectors: Vectors, path: Path, frames: int | None = None, first: int = 0) -> int:
    """The input words of frames ``first`` to ``frames`` (exclusive), one hex word a line.

    Returns the word count.
    """
    words = vectors.words[first : frames if frames is not None else vectors.frames]
    rows = words.reshape(-1, words.shape[-1])[:, ::-1]  # big-endian: the hex digit order
    lines = np.empty((len(rows), 2 * rows.shape[1] + 1), np.uint8)
    lines[:, 0:-1:2], lines[:, 1:-1:2] = _HEX[rows >> 4], _HEX[rows & 15]
    lines[:, -1] = ord("\n")
    lines.tofile(path)
    return len(rows)


def _parse(path: Path, out_beats: int, beat_bits: int) -> tuple[list[int], list[int], list[str]]:
    """Result words, their cycles, and the trailer's fields from a results file."""
    beats, cycles, trailer = [], [], []
    for line in path.read_text().splitlines():
        head, *rest = line.split()
        if head == "end":
            trailer = rest
            continue
        try:
            beats.append(int(head, 16))
        except ValueError:  # X or Z digits from Icarus
            beats.append(-1)
        cycles.append(int(rest[0]))
    words, ends = [], []
    for k in range(0, len(beats) - out_beats + 1, out_beats):
        group = beats[k : k + out_beats]
        word = -1 if min(group) < 0 else sum(b << (i * beat_bits) for i, b in enumerate(group))
        words.append(word)
        ends.append(cycles[k + out_beats - 1])
    return words, ends, [str(len(beats)), *trailer]


@dataclass
class _Job:
    """A harness process under way and what its results are checked against."""

    process: subprocess.Popen
    simulator: str
    out: Path
    log: Path
    out_beats: int
    beat_bits: int


def start(
    vectors: Vectors,
    folder: Path,
    *,
    simulator: str,
    first: int = 0,
    frames: int | None = None,
    in_gap: float = 0.0,
    out_gap: float = 0.0,
    seed: int = 0,
    faults: dict[str, int] | None = None,
    tag: str = "run",
) -> _Job:
    """Start one harness process over ``frames`` frames from frame ``first`` (all by default)."""
    fmt, header = vectors.port_format, vectors.header
    last = vectors.frames if frames is None else min(first + frames, vectors.frames)
    n = last - first
    stim, out = folder / f"{tag}_in.hex", folder / f"{tag}_out.txt"
    words = write_stimulus(vectors, stim, last, first)
    per_frame = header.initiation_interval + fmt.frame_words
    slow = (1 - min(in_gap, 0.99)) * (1 - min(out_gap, 0.99))
    limit = int((4 * header.latency_cycles + 200 + 2 * n * per_frame) / slow)
    drain = header.latency_cycles + 2 * per_frame + 100  # time for an extra frame to show
    args = [f"+in={stim}", f"+out={out}", f"+words={words}", f"+beats={n * fmt.out_beats}"]
    args += [f"+in_gap={round(in_gap * GAP_ONE)}", f"+out_gap={round(out_gap * GAP_ONE)}"]
    args += [f"+seed={seed}", f"+drain={drain}", f"+limit={limit}"]
    args += [f"+{name}={value}" for name, value in (faults or {}).items()]
    out.unlink(missing_ok=True)
    log = folder / f"{tag}.log"
    with simulator_env(simulator), log.open("w") as sink:
        process = subprocess.Popen(
            [*executable(folder, simulator), *args], stdout=sink, stderr=subprocess.STDOUT
        )
    return _Job(process, simulator, out, log, fmt.out_beats, fmt.out_beat_bits)


def collect(job: _Job) -> Stream:
    """Wait for a harness process and read its results."""
    status = job.process.wait()
    if status != 0 or not job.out.is_file():
        raise BnnhwError(
            f"the {job.simulator} fast harness failed (status {status}); see {job.log}"
        )
    results, cycles, trailer = _parse(job.out, job.out_beats, job.beat_bits)
    if len(trailer) != 6:
        raise BnnhwError(
            f"the {job.simulator} fast harness stopped before its trailer; see {job.log}"
        )
    in_file, sent, got, total, first_in, timed_out = map(int, trailer)
    return Stream(results, cycles, in_file, sent, got, total, first_in, bool(timed_out))


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def count_errors(s: Stream, frames: int, words: int, out_beats: int) -> list[str]:
    """Every way the counts disagree, each as one sentence."""
    errors = []
    if s.words_sent != words:
        errors.append(f"the harness sent {s.words_sent} of {words} input words")
    if s.beats_in_file != s.beats_counted:
        errors.append(
            f"the results file holds {s.beats_in_file} output beats, the harness counted "
            f"{s.beats_counted}"
        )
    if s.beats_in_file % out_beats:
        errors.append(f"{s.beats_in_file} output beats is not a whole number of results")
    if len(s.results) != frames:
        what = "fewer" if len(s.results) < frames else "more"
        errors.append(f"{len(s.results)} results for {frames} frames ({what} than sent)")
    if s.timed_out:
        errors.append(f"timed out after {s.cycles} cycles")
    return errors


def default_jobs(vectors: Vectors, simulator: str = "verilator") -> int:
    """Processes for a run: one per core for a long run, one for a short one.

    ``BNNHW_FAST_JOBS`` overrides it.
    """
    if os.environ.get("BNNHW_FAST_JOBS"):
        return max(1, int(os.environ["BNNHW_FAST_JOBS"]))
    per_frame = max(vectors.header.initiation_interval, vectors.port_format.frame_words)
    if vectors.frames * per_frame < CHUNK_CYCLES[simulator]:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def chunks(frames: int, jobs: int) -> list[tuple[int, int]]:
    """``jobs`` runs of consecutive frames, (first, count) each, sizes within one."""
    jobs = max(1, min(jobs, frames))
    bounds = [frames * k // jobs for k in range(jobs + 1)]
    return [(bounds[k], bounds[k + 1] - bounds[k]) for k in range(jobs)]


def _chunk_faults(faults: dict[str, int], first: int, count: int, fmt) -> dict[str, int]:
    """The faults (global word/beat indices) that fall in one chunk, made local to it."""
    per = {"drop_word": fmt.frame_words, "dup_beat": fmt.out_beats}
    local = {}
    for name, index in faults.items():
        lo = first * per.get(name, 0)
        if name not in per or lo <= index < lo + count * per[name]:
            local[name] = index - lo
    return local


def verify_fast(
    build: Build,
    vectors: Vectors,
    *,
    simulator: str = "verilator",
    in_gap: float = 0.1,
    out_gap: float = 0.1,
    seed: int = 0,
    measure: bool = True,
    faults: dict[str, int] | None = None,
    jobs: int | None = None,
    rate_frames: int = THROUGHPUT_FRAMES,
) -> FastResult:
    """Stream every frame of ``vectors`` through the harness and compare every bit.

    ``jobs`` (default ``default_jobs``) harness processes each stream one chunk of
    consecutive frames from reset, chunk k with seed ``seed + k``. ``faults`` are harness
    plusargs (``drop_word=K``, ``dup_beat=K``, indices over the whole run): they exist so
    the tests can prove that a harness dropping or repeating a frame fails the run.
    ``rate_frames`` sizes the gap-free run (fewer for a CNV on Icarus, in bench/sim.py).
    """
    if simulator not in SIMULATORS:
        raise BnnhwError(f"unknown simulator {simulator!r}; choose {' or '.join(SIMULATORS)}")
    for name, p in (("in-gap", in_gap), ("out-gap", out_gap)):
        if not 0 <= p < 1:
            raise BnnhwError(f"--{name} {p}: a probability must be >= 0 and < 1")
    folder, build_seconds = build_harness(build, simulator)
    fmt = vectors.port_format
    parts = chunks(vectors.frames, jobs or default_jobs(vectors, simulator))
    begin, cpu = time.perf_counter(), _child_cpu()
    running = [
        start(
            vectors,
            folder,
            simulator=simulator,
            first=first,
            frames=count,
            in_gap=in_gap,
            out_gap=out_gap,
            seed=seed + k,
            faults=_chunk_faults(faults or {}, first, count, fmt),
            tag="run" if len(parts) == 1 else f"run{k}",
        )
        for k, (first, count) in enumerate(parts)
    ]
    if measure:  # no gaps: cycles per frame and latency, alongside the chunks
        running.append(start(vectors, folder, simulator=simulator, frames=rate_frames, tag="rate"))
    try:
        streams = [collect(job) for job in running[: len(parts)]]
        seconds, cpu = time.perf_counter() - begin, _child_cpu() - cpu
        rate = collect(running[-1]) if measure else None
    finally:  # a failed chunk leaves no simulator running
        for job in running:
            if job.process.poll() is None:
                job.process.kill()
                job.process.wait()
    results, errors, cycles = [], [], 0
    for k, ((_, count), s) in enumerate(zip(parts, streams, strict=True)):
        where = "" if len(parts) == 1 else f"chunk {k}: "
        errors += [
            where + e for e in count_errors(s, count, count * fmt.frame_words, fmt.out_beats)
        ]
        results += s.results[:count] + [-1] * (count - len(s.results))
        cycles += s.cycles
    expected = [from_bytes(row) for row in vectors.expected]
    bad = [i for i in range(vectors.frames) if results[i] != expected[i]]
    cycles_per_frame = latency = None
    if rate is not None:
        cycles_per_frame, latency = _rate(rate)
        n_rate = min(rate_frames, vectors.frames)
        rate_errors = count_errors(rate, n_rate, n_rate * fmt.frame_words, fmt.out_beats)
        errors += [f"throughput run: {e}" for e in rate_errors]
    return FastResult(
        simulator=simulator,
        frames=vectors.frames,
        matched=vectors.frames - len(bad),
        bad_frames=bad,
        results=results,
        count_errors=errors,
        cycles=cycles,
        sim_seconds=round(seconds, 3),
        cpu_seconds=round(cpu, 3),
        cycles_per_frame=cycles_per_frame,
        latency=latency,
        ideal=vectors.header.initiation_interval,
        frame_words=fmt.frame_words,
        build_seconds=build_seconds,
        folder=folder,
        extra={"jobs": len(parts)},
    )


def _rate(s: Stream) -> tuple[float | None, int | None]:
    """Cycles per frame over the middle half of a gap-free run, and the first latency."""
    t, frames = s.out_cycles, len(s.out_cycles)
    a, b = frames // 4, 3 * frames // 4
    measured = (t[b] - t[a]) / (b - a) if b > a else None
    latency = t[0] - s.first_in if t and s.first_in > 0 else None
    return measured, latency


def classes(result: FastResult, vectors: Vectors) -> np.ndarray:
    """The class of each result word (-1 where it is missing or X/Z)."""
    fmt = vectors.port_format
    out = [fmt.unpack_result(w)[0] if w >= 0 else -1 for w in result.results[: vectors.frames]]
    return np.array(out + [-1] * (vectors.frames - len(out)), dtype=np.int64)
