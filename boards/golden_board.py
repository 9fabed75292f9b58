"""Fake boards that answer like the bitstream, from the golden model (tests and demos).

``GoldenBoard`` is a serial-port object: each ``write`` is one request, ``read`` returns
the answer. ``PtyBoard`` plays the board on a pseudo-terminal in a thread, parsing the
byte stream as the board's state machine does (sync hunt, idle timeout) and, if asked,
dropping, corrupting and delaying bytes in both directions, or going silent after a
number of answers: a real serial port for ``bnnhw run --port``.
"""

from __future__ import annotations

import os
import random
import select
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from bnnhw import golden
from bnnhw import link_protocol as lp

if TYPE_CHECKING:
    from bnnhw.build import Build
    from bnnhw.ir import Network
    from bnnhw.port_format import PortFormat


def golden_word(net: Network, codes: np.ndarray, fmt: PortFormat) -> int:
    """The accelerator's result word for one frame of input codes (1, size), from the golden."""
    scores = golden.code_scores(net, codes)[0]
    return fmt.pack_result(int(np.argmax(scores)), scores.tolist())


class BoardModel:
    """What the board answers to one request, given as whole bytes."""

    def __init__(self, build: Build) -> None:
        self.build, self.port_format = build, build.port_format()
        self.format = lp.LinkFormat.for_port(self.port_format)
        self.capacity = lp.build_bench_frames(build.report, self.port_format)
        self.benches: list[tuple[int, int]] = []  # (frames, repeats) of every bench run

    def result(self, payload: bytes) -> int:
        fmt, net = self.port_format, self.build.net
        frame = int.from_bytes(payload, "little")
        codes = np.array([fmt.frame_codes(frame, signed=net.input.signed)])
        return golden_word(net, codes, fmt)

    def answer(self, data: bytes) -> bytes:
        if data[:1] == bytes([lp.BENCH_SYNC]) and self.capacity:
            counter, status, payloads, repeats = self.format.decode_bench(data, self.capacity)
            if status != lp.OK:
                return self.format.encode_bench_response(counter, status)
            self.benches.append((len(payloads), repeats))
            results = [self.result(p) for p in payloads] * repeats
            interval = int(self.build.report.get("initiation_interval", 1))
            crc = lp.results_crc(results, self.port_format.out_word)
            span = interval * (len(results) - 1)  # one result per initiation interval
            return self.format.encode_bench_response(counter, lp.OK, span, crc)
        counter, status, payload = self.format.decode_request(data)
        return self.format.encode_response(
            counter, status, self.result(payload) if status == lp.OK else None
        )

    def expected_bytes(self, head: bytes) -> int | None:
        """Request length once its first bytes are known (None: need more bytes)."""
        if head[0] == lp.REQUEST_SYNC:
            if len(head) < 4:
                return None
            length = int.from_bytes(head[2:4], "little")
            return 4 + length + 2 if length == self.format.frame_bytes else -1
        if len(head) < 3:
            return None
        return 5 + head[2] * self.format.frame_bytes + 2 if 1 <= head[2] <= self.capacity else -1


class GoldenBoard(BoardModel):
    """A fake serial port: every ``write`` is one whole request (corrupted every n-th)."""

    def __init__(self, build: Build, corrupt_every: int = 0) -> None:
        super().__init__(build)
        self.corrupt_every, self.requests, self.pending = corrupt_every, 0, b""

    def write(self, data: bytes) -> None:
        self.requests += 1
        data = bytearray(data)
        if self.corrupt_every and self.requests % self.corrupt_every == 0:
            data[5] ^= 0x20  # a payload byte corrupted on the wire
        self.pending += self.answer(bytes(data))

    def read(self, count: int) -> bytes:
        out, self.pending = self.pending[:count], self.pending[count:]
        return out

    def reset_input_buffer(self) -> None:
        self.pending = b""

    def close(self) -> None:
        pass


class PtyBoard(BoardModel):
    """The board on a pseudo-terminal: open ``port`` with pyserial, ``stop()`` at the end.

    ``drop``, ``corrupt`` and ``delay`` are per-byte probabilities of a fault (a delay is
    up to ``max_delay`` s) in both directions; after ``answers`` answers the board goes
    silent; ``idle`` is its line-idle timeout in seconds (the real one is 64 byte times).
    """

    def __init__(
        self,
        build: Build,
        *,
        seed: int = 0,
        drop: float = 0.0,
        corrupt: float = 0.0,
        delay: float = 0.0,
        max_delay: float = 0.02,
        answers: int | None = None,
        idle: float = 0.01,
    ) -> None:
        import tty

        super().__init__(build)
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave
        self.rng = random.Random(seed)
        self.drop, self.corrupt, self.delay, self.max_delay = drop, corrupt, delay, max_delay
        self.answers, self.idle = answers, idle
        self.replies: list[bytes] = []  # every answer, sent or (gone silent) not
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        os.close(self.master)
        os.close(self._slave)

    def _faulty(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            if self.rng.random() < self.drop:
                continue
            if self.rng.random() < self.corrupt:
                byte ^= 1 << self.rng.randrange(8)
            if self.rng.random() < self.delay:
                time.sleep(self.rng.uniform(0, self.max_delay))
            out.append(byte)
        return bytes(out)

    def _read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.master], [], [], timeout)
        return self._faulty(os.read(self.master, 4096)) if ready else b""

    def _run(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            data = self._read(self.idle)
            if not data and buffer:  # the line went idle mid-request
                self._reply(self._answer_partial(buffer))
                buffer = b""
            buffer += data
            while buffer:
                syncs = (lp.REQUEST_SYNC, lp.BENCH_SYNC)
                start = next((i for i, b in enumerate(buffer) if b in syncs), len(buffer))
                buffer = buffer[start:]  # the board hunts for a sync byte
                need = self.expected_bytes(buffer) if buffer else None
                if need is None or need < 0 or len(buffer) < need:
                    break  # wait for more bytes, or for the idle timeout (need -1: drain)
                self._reply(self.answer(buffer[:need]))
                buffer = buffer[need:]

    def _answer_partial(self, data: bytes) -> bytes:
        """A request cut short by the idle timeout, or a bad length after draining."""
        counter = data[1] if len(data) > 1 else 0
        need = self.expected_bytes(data) if len(data) > 1 else None
        status = lp.BAD_LENGTH if need == -1 else lp.TRUNCATED
        return self.format.encode_response(counter, status)

    def _reply(self, response: bytes) -> None:
        self.replies.append(response)
        if self.answers is not None and len(self.replies) > self.answers:
            return  # gone silent
        os.write(self.master, self._faulty(response))
