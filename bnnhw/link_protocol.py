"""The UART host link's framed protocol: pure Python, shared by the host and the test benches.

Every multi-byte field is little-endian. The checksum is CRC-16/CCITT-FALSE (polynomial
0x1021, initial value 0xFFFF, no reflection, no final xor; ``CRC16_CCITT_FALSE`` in
``amaranth.lib.crc.catalog``, which the board uses) over every byte after the sync byte; it
catches every error burst up to 16 bits long, so any single corrupted byte. It lives
outside ``bnnhw.rtl_gen`` so the host imports it without Amaranth.

Request (host -> board), ``5 + frame_bytes + 2`` bytes::

    0xA5  counter  len_lo len_hi  payload[len]  crc_lo crc_hi

``payload`` is the frame as :class:`PortFormat` packs it: the frame's words concatenated
(word 0 in the low bits), written as ``ceil(frame_bits / 8)`` little-endian bytes.

Response (board -> host)::

    0x5A  counter  status  [result[result_bytes] if status == OK]  crc_lo crc_hi

``result`` is the accelerator's output word (class in the low bits, then the scores if
the build has them) as ``ceil(out_word / 8)`` little-endian bytes. ``counter`` echoes the
request's counter, so the host detects a dropped, duplicated or out-of-order frame.

Status codes and what the board does:

- ``OK``: the checksum matched; the frame was classified and the result follows.
- ``BAD_CHECKSUM``: the frame arrived whole but its CRC did not match. The accelerator
  never sees the frame: the board buffers the payload and only releases it once the CRC
  is good.
- ``BAD_LENGTH``: ``len`` is not the frame size of this bitstream. The board ignores every
  byte until the line has been idle for its timeout, then answers.
- ``TRUNCATED``: the line went idle (the board's timeout, 32 to 64 byte times) before the
  frame was complete.

Before a request's sync byte the board discards anything that is not a sync byte, and
after any error it waits for an idle line, so one bad frame never desynchronises the next.

Bench request (host -> board), the board's own frames/s (``bnnhw run --bench``)::

    0xB6  counter  frames  repeats_lo repeats_hi  payload[frames * frame_bytes]  crc_lo crc_hi

The board stores the ``frames`` frames (1 to its ``bench_frames``, see
:func:`bench_capacity`) in block RAM, then feeds them ``repeats`` times back to back through
the accelerator and answers::

    0x5A  counter  status  [span[4] results_crc[2] if OK]  crc_lo crc_hi

``span``: cycles from the first result to the last, so ``frames * repeats - 1`` results in
``span`` cycles is the accelerator's steady rate (the latency is the build report's).
``results_crc`` is :func:`results_crc` of every result in order. A count of frames the
board cannot hold, or 0 repeats, is ``BAD_LENGTH``.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bnnhw.port_format import pack_fields

if TYPE_CHECKING:
    from bnnhw.port_format import PortFormat

REQUEST_SYNC = 0xA5
BENCH_SYNC = 0xB6
RESPONSE_SYNC = 0x5A
BENCH_BODY_BYTES = 6  # span (4 bytes), results_crc (2)
OK, BAD_CHECKSUM, BAD_LENGTH, TRUNCATED = 0, 1, 2, 3
STATUS_NAMES = {
    OK: "ok",
    BAD_CHECKSUM: "bad checksum",
    BAD_LENGTH: "bad length",
    TRUNCATED: "truncated",
}
IDLE_BYTE_TIMES = 64  # the board's idle timeout, at most, in byte times (10 bits each)


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (the standard library's XMODEM CRC, seeded 0xFFFF)."""
    return binascii.crc_hqx(data, 0xFFFF)


def results_crc(results: list[int], out_word: int) -> int:
    """CRC-16/CCITT-FALSE of result words as the board hashes them in bench mode: each as
    the ``ceil(out_word / 8)`` little-endian bytes a classification's response carries."""
    size = (out_word + 7) // 8
    return crc16(b"".join(int(r).to_bytes(size, "little") for r in results))


def bench_word_bits(in_word: int, family: str = "ice40") -> int:
    """Width of the board's frame buffer: the widest divisor of the input word within a
    block RAM's widest port (iCE40 16 bits), or two side by side on a family whose build
    moves a read's register into the block (ECP5, 72 bits: data 1.0 ns after the clock),
    read ``in_word / width`` times into a fabric register that gathers a word.

    Read whole without the block's register, TFC's 66-bit ECP5 buffer was its 12-cycle
    build's worst path (5.8 ns to data and 3.6 ns of route: 95.6 MHz); gathered from
    33-bit reads instead, the bench fed the 12-cycle accelerator 36 cycles a frame. Two
    blocks read TFC's and SFC's words whole (66 and 49 bits); a wider word is gathered
    rather than spread over more blocks than a classification needs.
    """
    from bnnhw.boards.outreg import FAMILIES

    port = _widest_port(family) * (2 if family in FAMILIES else 1)
    return max(d for d in range(1, min(in_word, port) + 1) if in_word % d == 0)


def _widest_port(family: str) -> int:
    from bnnhw.boards.memories import GEOMETRY

    return max(width for width, _ in GEOMETRY[family][0])


def bench_capacity(frame_bits: int, in_word: int, family: str = "ice40") -> int:
    """Frames the buffer holds at the depth of one block RAM at its width (blocks side by
    side for a wider word), 1 to 255 (iCE40: 4 kbit at 256x16, 512x8 ... 2048x2; ECP5:
    512 words of up to 36 bits, 1024 of 18 ...).

    The buffer that holds a frame for classification is the bench's replay buffer: at
    this depth the bench costs no block RAM beyond what the link needs anyway.
    """
    from bnnhw.boards.memories import GEOMETRY

    width = bench_word_bits(in_word, family)
    share = min(width, _widest_port(family))  # one block's part of a word read side by side
    depth = max(d for w, d in GEOMETRY[family][0] if w >= share)  # the deepest that fits
    return max(1, min(255, depth // (frame_bits // width)))


def build_bench_frames(report: dict | None, port_format: PortFormat, family: str = "ice40") -> int:
    """A build's bench capacity: its report's ``link.bench_frames``, else the default."""
    asked = ((report or {}).get("link") or {}).get("bench_frames")
    if asked is not None:
        return int(asked)
    return bench_capacity(port_format.sent_bits, port_format.in_word, family)


class ProtocolError(Exception):
    """A response that cannot be trusted (bad sync, checksum, counter or length)."""


@dataclass(frozen=True)
class Response:
    counter: int
    status: int
    result: int | None  # the output word, None unless status == OK

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass(frozen=True)
class BenchResponse:
    counter: int
    status: int
    span: int  # cycles, first result -> last result
    results_crc: int

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass(frozen=True)
class LinkFormat:
    """Byte sizes of one build's frames and results."""

    frame_bits: int
    out_word: int

    @classmethod
    def for_port(cls, port_format: PortFormat) -> LinkFormat:
        return cls(port_format.sent_bits, port_format.out_word)

    @property
    def frame_bytes(self) -> int:
        return (self.frame_bits + 7) // 8

    @property
    def result_bytes(self) -> int:
        return (self.out_word + 7) // 8

    @property
    def request_bytes(self) -> int:
        return 4 + self.frame_bytes + 2

    def response_bytes(self, status: int = OK, *, bench: bool = False) -> int:
        body = BENCH_BODY_BYTES if bench else self.result_bytes
        return 3 + (body if status == OK else 0) + 2

    def frame_payload(self, words: list[int], in_word: int) -> bytes:
        """A frame's input words (from ``PortFormat.pack_frames``) -> payload bytes."""
        return pack_fields(words, in_word).to_bytes(self.frame_bytes, "little")

    def encode_request(self, counter: int, payload: bytes) -> bytes:
        if len(payload) != self.frame_bytes:
            raise ValueError(f"payload of {len(payload)} bytes, the frame has {self.frame_bytes}")
        return _with_crc(
            REQUEST_SYNC, bytes([counter & 0xFF, *len(payload).to_bytes(2, "little")]) + payload
        )

    def decode_request(self, data: bytes) -> tuple[int, int, bytes | None]:
        """Request bytes -> (counter, status, payload or None): what the board does."""
        if len(data) < 6 or data[0] != REQUEST_SYNC:
            return (data[1] if len(data) > 1 else 0), TRUNCATED, None
        counter, length = data[1], int.from_bytes(data[2:4], "little")
        if length != self.frame_bytes:
            return counter, BAD_LENGTH, None
        if len(data) < self.request_bytes:
            return counter, TRUNCATED, None
        body, crc = data[1 : 4 + length], int.from_bytes(data[4 + length : 6 + length], "little")
        if crc16(body) != crc:
            return counter, BAD_CHECKSUM, None
        return counter, OK, bytes(body[3:])

    def encode_bench(self, counter: int, payloads: list[bytes], repeats: int) -> bytes:
        if not 1 <= len(payloads) <= 255 or not 1 <= repeats <= 0xFFFF:
            raise ValueError(f"{len(payloads)} frames x {repeats} repeats: 1-255 x 1-65535")
        if any(len(p) != self.frame_bytes for p in payloads):
            raise ValueError(f"every payload must have {self.frame_bytes} bytes")
        head = bytes([counter & 0xFF, len(payloads), *repeats.to_bytes(2, "little")])
        return _with_crc(BENCH_SYNC, head + b"".join(payloads))

    def decode_bench(self, data: bytes, capacity: int) -> tuple[int, int, list[bytes], int]:
        """Bench request bytes -> (counter, status, payloads, repeats): what the board does."""
        if len(data) < 7 or data[0] != BENCH_SYNC:
            return (data[1] if len(data) > 1 else 0), TRUNCATED, [], 0
        counter, frames, repeats = data[1], data[2], int.from_bytes(data[3:5], "little")
        if not 1 <= frames <= capacity or repeats == 0:
            return counter, BAD_LENGTH, [], 0
        end = 5 + frames * self.frame_bytes
        if len(data) < end + 2:
            return counter, TRUNCATED, [], 0
        if crc16(data[1:end]) != int.from_bytes(data[end : end + 2], "little"):
            return counter, BAD_CHECKSUM, [], 0
        fb = self.frame_bytes
        return (
            counter,
            OK,
            [bytes(data[5 + i * fb : 5 + (i + 1) * fb]) for i in range(frames)],
            repeats,
        )

    def encode_bench_response(
        self, counter: int, status: int, span: int = 0, crc: int = 0
    ) -> bytes:
        body = bytes([counter & 0xFF, status])
        if status == OK:
            body += span.to_bytes(4, "little") + crc.to_bytes(2, "little")
        return _with_crc(RESPONSE_SYNC, body)

    def decode_bench_response(self, data: bytes, counter: int | None = None) -> BenchResponse:
        """Bench response bytes -> BenchResponse; ProtocolError if anything is off."""
        head = self._check_response(data, counter, bench=True)
        if head.status != OK:
            return BenchResponse(head.counter, head.status, 0, 0)
        body = data[3:-2]
        span, crc = int.from_bytes(body[0:4], "little"), int.from_bytes(body[4:6], "little")
        return BenchResponse(head.counter, OK, span, crc)

    def encode_response(self, counter: int, status: int, result: int | None = None) -> bytes:
        body = bytes([counter & 0xFF, status])
        if status == OK:
            body += int(result).to_bytes(self.result_bytes, "little")
        return _with_crc(RESPONSE_SYNC, body)

    def decode_response(self, data: bytes, counter: int | None = None) -> Response:
        """Response bytes -> Response; ProtocolError if anything is off."""
        head = self._check_response(data, counter, bench=False)
        result = int.from_bytes(data[3:-2], "little") if head.status == OK else None
        return Response(head.counter, head.status, result)

    def _check_response(self, data: bytes, counter: int | None, *, bench: bool) -> Response:
        if len(data) < 5 or data[0] != RESPONSE_SYNC:
            raise ProtocolError(f"no response sync byte (got {bytes(data[:8]).hex() or 'nothing'})")
        status = data[2]
        if status not in STATUS_NAMES:
            raise ProtocolError(f"unknown status {status}")
        size = self.response_bytes(status, bench=bench)
        if len(data) != size:
            raise ProtocolError(f"response of {len(data)} bytes, expected {size}")
        if crc16(data[1:-2]) != int.from_bytes(data[-2:], "little"):
            raise ProtocolError("response checksum mismatch")
        if counter is not None and data[1] != counter & 0xFF:
            raise ProtocolError(
                f"response for frame counter {data[1]}, expected {counter & 0xFF} "
                "(a frame was dropped or duplicated)"
            )
        return Response(data[1], status, None)


def _with_crc(sync: int, body: bytes) -> bytes:
    return bytes([sync]) + body + crc16(body).to_bytes(2, "little")
