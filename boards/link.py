"""Host side of the UART link: send frames to a board, read classes (and scores) back.

    from bnnhw.boards import Link
    with Link("/dev/ttyUSB1", "build/tfc") as link:
        classes = link.classify(x)        # x as the ONNX graph takes it, (N, *shape)
        link.scores, link.frames_per_s
        link.bench(x)                     # the board's own frames/s (BenchResult)

Stop-and-wait: one request, one response, matched by the frame counter. A response with
a bad checksum or a counter that does not match, or none within ``timeout`` seconds, is
never used: the frame is re-sent (up to ``retries`` times) and, failing that, ``classify``
raises :class:`LinkStopped`, which holds the results of the frames acknowledged so far.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bnnhw import golden
from bnnhw import link_protocol as lp
from bnnhw.boards.golden_board import GoldenBoard, golden_word
from bnnhw.errors import BoardError
from bnnhw.reports import HardwareSummary

if TYPE_CHECKING:
    from bnnhw.build import Build

__all__ = ["BenchResult", "GoldenBoard", "Link", "LinkStopped", "golden_word"]
BENCH_SECONDS = 0.5  # board time a bench aims for, to average over many frames


class LinkStopped(BoardError):
    """The board stopped answering: ``done`` frames were classified (``classes``, ``scores``)."""

    def __init__(self, message: str, classes: np.ndarray, scores: np.ndarray | None) -> None:
        super().__init__(message)
        self.classes, self.scores, self.done = classes, scores, len(classes)


@dataclass(frozen=True)
class BenchResult:
    frames: int
    repeats: int
    span_cycles: int  # first result -> last result
    clock_hz: float
    results_crc: int
    expected_crc: int  # of the golden model's results

    @property
    def results(self) -> int:
        return self.frames * self.repeats

    @property
    def frames_per_s(self) -> float:
        """Steady rate: ``results - 1`` intervals in ``span_cycles``."""
        return (self.results - 1) * self.clock_hz / self.span_cycles if self.span_cycles else 0.0

    @property
    def cycles_per_frame(self) -> float:
        return self.span_cycles / (self.results - 1) if self.results > 1 else 0.0

    @property
    def checksum_ok(self) -> bool:
        return self.results_crc == self.expected_crc


class Link:
    def __init__(
        self,
        port: str,
        build: Build | str | Path,
        *,
        baud: int | None = None,
        timeout: float = 1.0,
        retries: int = 3,
        serial: Any = None,
    ) -> None:
        from bnnhw.build import Build, load_build

        self.build = build if isinstance(build, Build) else load_build(build)
        self.port_format = self.build.port_format()
        self.format = lp.LinkFormat.for_port(self.port_format)
        self.baud = baud or HardwareSummary.from_report(self.build.report).baud or 115_200
        self.timeout, self.retries = timeout, retries
        self.counter = 0
        self.scores: np.ndarray | None = None
        self.frames_per_s = 0.0
        self.errors: list[str] = []  # every refused response, for diagnosis
        if serial is None:
            try:
                import serial as pyserial
            except ImportError:
                raise BoardError("the UART link needs pyserial: pip install pyserial") from None
            try:
                serial = pyserial.serial_for_url(port, baudrate=self.baud, timeout=timeout)
            except (pyserial.SerialException, OSError) as exc:
                raise BoardError(f"cannot open serial port {port}: {exc}") from None
        self.serial, self.port = serial, port

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.serial.close()

    def _codes(self, x: np.ndarray) -> np.ndarray:
        golden.check_inputs(self.build.net.input, x)
        return golden.encode_inputs(self.build.net.input, x)

    def classify(self, x: np.ndarray, *, first: int = 0) -> np.ndarray:
        """Classes of the frames ``x``; ``self.scores`` gets the scores if the build has them.

        ``first`` numbers the frames in messages (frame ``first`` is ``x[0]``), for a batch
        resumed part way. A board that stops answering raises :class:`LinkStopped`.
        """
        frames = self.port_format.pack_frames(self._codes(x))
        classes, scores = [], []
        start = time.perf_counter()
        for i, words in enumerate(frames):
            try:
                result = self.exchange(words)
            except BoardError as exc:
                last = f"frame {first + i - 1}" if first + i else "none"
                raise LinkStopped(
                    f"{exc}: frame {first + i} got no answer; last frame acknowledged: {last}",
                    np.array(classes, dtype=np.int64),
                    self._scores(scores, len(classes)),
                ) from None
            cls, score = self.port_format.unpack_result(result)
            classes.append(cls)
            scores.append(score)
        seconds = time.perf_counter() - start
        self.frames_per_s = len(frames) / seconds if seconds > 0 else 0.0
        self.scores = self._scores(scores, len(classes))
        return np.array(classes, dtype=np.int64)

    def _scores(self, scores: list, count: int) -> np.ndarray | None:
        if not self.port_format.with_scores:
            return None
        return np.array(scores, dtype=np.int64).reshape(count, self.port_format.classes)

    def exchange(self, words: list[int]) -> int:
        """Send one frame (its input words), return the accelerator's output word."""
        payload = self.format.frame_payload(words, self.port_format.in_word)
        response = self._transact(
            lambda c: self.format.encode_request(c, payload),
            lambda data, c: self.format.decode_response(data, c),
            self.format.result_bytes,
            self.timeout,
        )
        return response.result

    def bench(self, x: np.ndarray, repeats: int | None = None) -> BenchResult:
        """Frames/s measured on the board: up to its bench capacity of ``x``'s frames, replayed.

        ``repeats`` defaults to what keeps the board busy about ``BENCH_SECONDS``.
        """
        capacity = lp.build_bench_frames(self.build.report, self.port_format)
        board = self.build.report.get("board") or {}
        if not capacity:
            raise BoardError(f"{self.build.folder}: this bitstream was built without bench mode")
        if not board.get("clock_mhz"):
            raise BoardError(
                f"{self.build.folder}: no board report (clock); build it with bnnhw build --board"
            )
        clock_hz = board["clock_mhz"] * 1e6
        codes = self._codes(x)[:capacity]
        frames = self.port_format.pack_frames(codes)
        interval = int(self.build.report.get("initiation_interval") or 1)
        if repeats is None:
            repeats = math.ceil(BENCH_SECONDS * clock_hz / (interval * len(frames)))
        repeats = max(1, min(0xFFFF, repeats, 0xFFFFFFFF // (2 * interval * len(frames))))
        payloads = [self.format.frame_payload(w, self.port_format.in_word) for w in frames]
        seconds = interval * len(frames) * repeats / clock_hz
        response = self._transact(
            lambda c: self.format.encode_bench(c, payloads, repeats),
            lambda data, c: self.format.decode_bench_response(data, c),
            lp.BENCH_BODY_BYTES,
            self.timeout + 2 * seconds,
        )
        words = [golden_word(self.build.net, row[None], self.port_format) for row in codes]
        expected = lp.results_crc(words * repeats, self.port_format.out_word)
        return BenchResult(
            len(frames),
            repeats,
            response.span,
            clock_hz,
            response.results_crc,
            expected,
        )

    def _transact(self, encode, decode, body_bytes: int, timeout: float):
        """Send a request until a valid OK answer comes (``retries`` re-sends)."""
        tries = self.retries + 1
        for _ in range(tries):
            counter = self.counter
            self.counter = (self.counter + 1) & 0xFF
            self.serial.write(encode(counter))
            try:
                response = decode(self._read_response(body_bytes, timeout), counter)
            except lp.ProtocolError as exc:
                self._resync(f"frame {counter}: {exc}")
                continue
            if response.ok:
                return response
            self._resync(f"frame {counter}: board answered {lp.STATUS_NAMES[response.status]}")
        raise BoardError(
            f"{self.port}: no valid answer after {tries} tries ({self.errors[-1]}); "
            "is the bitstream of this build loaded, and the baud rate right?"
        )

    def _read_response(self, body_bytes: int, timeout: float) -> bytes:
        old = getattr(self.serial, "timeout", None)
        if old is not None and timeout != old:
            self.serial.timeout = timeout
        try:
            head = bytes(self.serial.read(3))
            if len(head) == 3 and head[0] == lp.RESPONSE_SYNC and head[2] in lp.STATUS_NAMES:
                rest = (body_bytes if head[2] == lp.OK else 0) + 2  # body, CRC
                head += bytes(self.serial.read(rest))
        finally:
            if old is not None and timeout != old:
                self.serial.timeout = old
        if not head:
            raise lp.ProtocolError(f"no response within {timeout:g} s")
        return head

    def _resync(self, reason: str) -> None:
        """Let the board's idle timeout pass, then drop whatever is left in the buffer."""
        self.errors.append(reason)
        time.sleep(2 * lp.IDLE_BYTE_TIMES * 10 / self.baud)
        self.serial.reset_input_buffer()
