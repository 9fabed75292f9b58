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
- ``TRUNCATED``: the line went idle (the board's timeout, about 64 byte times) before the
  frame was complete.

Before a request's sync byte the board discards anything that is not 0xA5, and after any
error it waits for an idle line, so one bad frame never desynchronises the next ones.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bnnhw.port_format import pack_fields

if TYPE_CHECKING:
    from bnnhw.port_format import PortFormat

REQUEST_SYNC = 0xA5
RESPONSE_SYNC = 0x5A
OK, BAD_CHECKSUM, BAD_LENGTH, TRUNCATED = 0, 1, 2, 3
STATUS_NAMES = {
    OK: "ok",
    BAD_CHECKSUM: "bad checksum",
    BAD_LENGTH: "bad length",
    TRUNCATED: "truncated",
}
IDLE_BYTE_TIMES = 64  # the board's idle timeout, in byte times (10 bits each)


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (the standard library's XMODEM CRC, seeded 0xFFFF)."""
    return binascii.crc_hqx(data, 0xFFFF)


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
class LinkFormat:
    """Byte sizes of one build's frames and results."""

    frame_bits: int
    out_word: int

    @classmethod
    def for_port(cls, port_format: PortFormat) -> LinkFormat:
        return cls(port_format.frame_words * port_format.in_word, port_format.out_word)

    @property
    def frame_bytes(self) -> int:
        return (self.frame_bits + 7) // 8

    @property
    def result_bytes(self) -> int:
        return (self.out_word + 7) // 8

    @property
    def request_bytes(self) -> int:
        return 4 + self.frame_bytes + 2

    def response_bytes(self, status: int = OK) -> int:
        return 3 + (self.result_bytes if status == OK else 0) + 2

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

    def encode_response(self, counter: int, status: int, result: int | None = None) -> bytes:
        body = bytes([counter & 0xFF, status])
        if status == OK:
            body += int(result).to_bytes(self.result_bytes, "little")
        return _with_crc(RESPONSE_SYNC, body)

    def decode_response(self, data: bytes, counter: int | None = None) -> Response:
        """Response bytes -> Response; ProtocolError if anything is off."""
        if len(data) < 5 or data[0] != RESPONSE_SYNC:
            raise ProtocolError(f"no response sync byte (got {bytes(data[:8]).hex() or 'nothing'})")
        status = data[2]
        if status not in STATUS_NAMES:
            raise ProtocolError(f"unknown status {status}")
        size = self.response_bytes(status)
        if len(data) != size:
            raise ProtocolError(f"response of {len(data)} bytes, expected {size}")
        if crc16(data[1:-2]) != int.from_bytes(data[-2:], "little"):
            raise ProtocolError("response checksum mismatch")
        if counter is not None and data[1] != counter & 0xFF:
            raise ProtocolError(
                f"response for frame counter {data[1]}, expected {counter & 0xFF} "
                "(a frame was dropped or duplicated)"
            )
        result = int.from_bytes(data[3:-2], "little") if status == OK else None
        return Response(data[1], status, result)


def _with_crc(sync: int, body: bytes) -> bytes:
    return bytes([sync]) + body + crc16(body).to_bytes(2, "little")
