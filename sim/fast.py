"""Run the compiled streaming harness and check every output bit against the golden model.

The host writes the input words of every frame to one hex file, the simulator streams
them with seeded random gaps and stalls and writes each output beat with its cycle, and
this module joins the beats into results and compares them with the vectors' expected
words. Frames are counted three ways: the host's own count, the harness's trailer (words
sent, beats received) and the lines in the results file. Any disagreement fails the run
(``count_errors``), so a harness or a DUT that drops or repeats a frame never reports a
match. A second short run without gaps measures cycles per frame and latency, as the
cocotb bench's throughput test does.
"""

from __future__ import annotations

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
    seconds: float
    cpu_seconds: float  # the simulator process's own CPU time: a figure load cannot inflate


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


def write_stimulus(vectors: Vectors, path: Path, frames: int | None = None) -> int:
    """The input words of the first ``frames`` frames, one hex word a line; the word count."""
    words = vectors.words[: frames if frames is not None else vectors.frames]
    rows = words.reshape(-1, words.shape[-1])[:, ::-1]  # big-endian: the hex digit order
    text = rows.tobytes().hex()
    k = 2 * rows.shape[1]
    path.write_text("\n".join(text[i : i + k] for i in range(0, len(text), k)) + "\n")
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


def stream(
    vectors: Vectors,
    folder: Path,
    *,
    simulator: str,
    frames: int | None = None,
    in_gap: float = 0.0,
    out_gap: float = 0.0,
    seed: int = 0,
    faults: dict[str, int] | None = None,
    tag: str = "run",
) -> Stream:
    """One harness run over the first ``frames`` frames (all by default)."""
    fmt, header = vectors.port_format, vectors.header
    n = vectors.frames if frames is None else min(frames, vectors.frames)
    stim, out = folder / f"{tag}_in.hex", folder / f"{tag}_out.txt"
    words = write_stimulus(vectors, stim, n)
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
    start, cpu = time.perf_counter(), _child_cpu()
    with simulator_env(simulator), log.open("w") as sink:
        done = subprocess.run(
            [*executable(folder, simulator), *args], stdout=sink, stderr=subprocess.STDOUT
        )
    seconds, cpu = time.perf_counter() - start, _child_cpu() - cpu
    if done.returncode != 0 or not out.is_file():
        raise BnnhwError(
            f"the {simulator} fast harness failed (status {done.returncode}); see {log}"
        )
    results, cycles, trailer = _parse(out, fmt.out_beats, fmt.out_beat_bits)
    if len(trailer) != 6:
        raise BnnhwError(f"the {simulator} fast harness stopped before its trailer; see {log}")
    in_file, sent, got, total, first_in, timed_out = map(int, trailer)
    return Stream(
        results, cycles, in_file, sent, got, total, first_in, bool(timed_out), seconds, cpu
    )


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
) -> FastResult:
    """Stream every frame of ``vectors`` through the harness and compare every bit.

    ``faults`` are harness plusargs (``drop_word=K``, ``dup_beat=K``): they exist so the
    tests can prove that a harness dropping or repeating a frame fails the run.
    """
    if simulator not in SIMULATORS:
        raise BnnhwError(f"unknown simulator {simulator!r}; choose {' or '.join(SIMULATORS)}")
    for name, p in (("in-gap", in_gap), ("out-gap", out_gap)):
        if not 0 <= p < 1:
            raise BnnhwError(f"--{name} {p}: a probability must be >= 0 and < 1")
    folder, build_seconds = build_harness(build, simulator)
    fmt = vectors.port_format
    n = vectors.frames
    s = stream(
        vectors,
        folder,
        simulator=simulator,
        in_gap=in_gap,
        out_gap=out_gap,
        seed=seed,
        faults=faults,
    )
    errors = count_errors(s, n, n * fmt.frame_words, fmt.out_beats)
    expected = [from_bytes(row) for row in vectors.expected]
    bad = [i for i in range(vectors.frames) if i >= len(s.results) or s.results[i] != expected[i]]
    cycles_per_frame = latency = None
    if measure:
        t = stream(vectors, folder, simulator=simulator, frames=THROUGHPUT_FRAMES, tag="rate")
        cycles_per_frame, latency = _rate(t)
        n_rate = min(THROUGHPUT_FRAMES, n)
        rate_errors = count_errors(t, n_rate, n_rate * fmt.frame_words, fmt.out_beats)
        errors += [f"throughput run: {e}" for e in rate_errors]
    return FastResult(
        simulator=simulator,
        frames=vectors.frames,
        matched=vectors.frames - len(bad),
        bad_frames=bad,
        results=s.results,
        count_errors=errors,
        cycles=s.cycles,
        sim_seconds=round(s.seconds, 3),
        cpu_seconds=round(s.cpu_seconds, 3),
        cycles_per_frame=cycles_per_frame,
        latency=latency,
        ideal=vectors.header.initiation_interval,
        frame_words=fmt.frame_words,
        build_seconds=build_seconds,
        folder=folder,
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
