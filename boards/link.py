"""Host side of the UART link: send frames to a board, read classes (and scores) back.

    from bnnhw.boards import Link
    with Link("/dev/ttyUSB1", "build/tfc") as link:
        classes = link.classify(x)        # x as the ONNX graph takes it, (N, *shape)
        link.scores, link.frames_per_s

Stop-and-wait: one request, one response, matched by the frame counter. A response with
a bad checksum or a counter that does not match is never used: the frame is re-sent (up
to ``retries`` times) and, failing that, ``classify`` raises a BoardError.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bnnhw import golden
from bnnhw import link_protocol as lp
from bnnhw.errors import BoardError
from bnnhw.port_format import PortFormat
from bnnhw.reports import HardwareSummary

if TYPE_CHECKING:
    from bnnhw.build import Build
    from bnnhw.ir import Network


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

    def classify(self, x: np.ndarray) -> np.ndarray:
        """Classes of the frames ``x``; ``self.scores`` gets the scores if the build has them."""
        net = self.build.net
        golden.check_inputs(net.input, x)
        frames = self.port_format.pack_frames(golden.encode_inputs(net.input, x))
        classes, scores = [], []
        start = time.perf_counter()
        for words in frames:
            cls, score = self.port_format.unpack_result(self.exchange(words))
            classes.append(cls)
            scores.append(score)
        seconds = time.perf_counter() - start
        self.frames_per_s = len(frames) / seconds if seconds > 0 else 0.0
        self.scores = np.array(scores, dtype=np.int64) if self.port_format.with_scores else None
        return np.array(classes, dtype=np.int64)

    def exchange(self, words: list[int]) -> int:
        """Send one frame (its input words), return the accelerator's output word."""
        payload = self.format.frame_payload(words, self.port_format.in_word)
        for _ in range(self.retries + 1):
            counter = self.counter
            self.counter = (self.counter + 1) & 0xFF
            self.serial.write(self.format.encode_request(counter, payload))
            try:
                response = self.format.decode_response(self._read_response(), counter)
            except lp.ProtocolError as exc:
                self._resync(f"frame {counter}: {exc}")
                continue
            if response.ok:
                return response.result
            self._resync(f"frame {counter}: board answered {lp.STATUS_NAMES[response.status]}")
        raise BoardError(
            f"{self.port}: no valid answer after {self.retries + 1} tries ({self.errors[-1]}); "
            "is the bitstream of this build loaded, and the baud rate right?"
        )

    def _read_response(self) -> bytes:
        head = self._read(3)
        if len(head) == 3 and head[0] == lp.RESPONSE_SYNC and head[2] in lp.STATUS_NAMES:
            return head + self._read(self.format.response_bytes(head[2]) - 3)
        return head

    def _read(self, count: int) -> bytes:
        data = bytes(self.serial.read(count))
        if not data and count:
            raise_timeout = lp.ProtocolError(f"no response within {self.timeout} s")
            raise BoardError(f"{self.port}: {raise_timeout}; is the board flashed and connected?")
        return data

    def _resync(self, reason: str) -> None:
        """Let the board's idle timeout pass, then drop whatever is left in the buffer."""
        self.errors.append(reason)
        time.sleep(2 * lp.IDLE_BYTE_TIMES * 10 / self.baud)
        self.serial.reset_input_buffer()


class GoldenBoard:
    """A fake serial port answering like the board, from the golden model (tests, demos)."""

    def __init__(self, build: Build, corrupt_every: int = 0) -> None:
        self.build, self.port_format = build, build.port_format()
        self.format = lp.LinkFormat.for_port(self.port_format)
        self.corrupt_every, self.requests, self.pending = corrupt_every, 0, b""

    def write(self, data: bytes) -> None:
        self.requests += 1
        data = bytearray(data)
        if self.corrupt_every and self.requests % self.corrupt_every == 0:
            data[5] ^= 0x20  # a payload byte corrupted on the wire
        counter, status, payload = self.format.decode_request(bytes(data))
        result = None
        if status == lp.OK:
            fmt, net = self.port_format, self.build.net
            frame = int.from_bytes(payload, "little")
            codes = np.array([fmt.frame_codes(frame, signed=net.input.signed)])
            result = golden_word(net, codes, fmt)
        self.pending += self.format.encode_response(counter, status, result)

    def read(self, count: int) -> bytes:
        out, self.pending = self.pending[:count], self.pending[count:]
        return out

    def reset_input_buffer(self) -> None:
        self.pending = b""

    def close(self) -> None:
        pass


def golden_word(net: Network, codes: np.ndarray, fmt: PortFormat) -> int:
    """The accelerator's result word for one frame of input codes (1, size), from the golden."""
    scores = golden.code_scores(net, codes)[0]
    return fmt.pack_result(int(np.argmax(scores)), scores.tolist())
