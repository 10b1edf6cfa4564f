"""Modbus RTU slave framing for simulators: CRC-16, request reassembly, replies.

Over RS-485 an RTU frame ends with 3.5 character times of silence. A TCP
stream (``socket://`` serving) carries no such gaps, and requests may arrive
split over several reads or glued to line noise. :class:`RtuRequestFramer`
therefore finds frames by content: the function code gives the length
(3, 4, 6: 8 bytes; 16: 9 + byte count), the CRC confirms the frame. Bytes that
cannot start a valid frame are discarded, so the framer resynchronises after
garbage instead of stalling.

Only the slave side lives here (the simulator). Drivers use a kept Modbus
library (minimalmodbus) for the master side.
"""

from __future__ import annotations

import re
import struct
import threading
from dataclasses import dataclass

READ_HOLDING_REGISTERS = 3
READ_INPUT_REGISTERS = 4
WRITE_SINGLE_REGISTER = 6
WRITE_MULTIPLE_REGISTERS = 16
SUPPORTED_FUNCTIONS = (
    READ_HOLDING_REGISTERS,
    READ_INPUT_REGISTERS,
    WRITE_SINGLE_REGISTER,
    WRITE_MULTIPLE_REGISTERS,
)

ILLEGAL_FUNCTION = 0x01
ILLEGAL_DATA_ADDRESS = 0x02
ILLEGAL_DATA_VALUE = 0x03
SLAVE_DEVICE_FAILURE = 0x04

BROADCAST_ADDRESS = 0
MAX_READ_REGISTERS = 125
MAX_WRITE_REGISTERS = 123
MAX_WRITE_BYTES = 2 * MAX_WRITE_REGISTERS
MAX_FRAME = 9 + MAX_WRITE_BYTES  # the longest request we accept (with CRC)
FIXED_LENGTH_FUNCTIONS = (READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS, WRITE_SINGLE_REGISTER)


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """Modbus CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc


def with_crc(body: bytes) -> bytes:
    """Append the CRC, low byte first as RTU sends it."""
    return body + struct.pack("<H", crc16(body))


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16(frame[:-2]) == struct.unpack("<H", frame[-2:])[0]


@dataclass(frozen=True)
class Request:
    """One CRC-checked request frame (CRC stripped)."""

    address: int
    function: int
    pdu: bytes  # everything after the function code, CRC excluded

    @property
    def raw(self) -> bytes:
        return with_crc(bytes([self.address, self.function]) + self.pdu)


def expected_length(buf: bytes, start: int) -> int | None:
    """Frame length if a request could start at ``buf[start]``.

    Returns the length in bytes, ``0`` if more bytes are needed to know it, or
    ``None`` if no supported request starts here (unknown function code or an
    impossible byte count).
    """
    if len(buf) - start < 2:
        return 0
    function = buf[start + 1]
    if function in FIXED_LENGTH_FUNCTIONS:
        return 8
    if function == WRITE_MULTIPLE_REGISTERS:
        if len(buf) - start < 7:
            return 0
        count = buf[start + 6]
        if count == 0 or count % 2 or count > MAX_WRITE_BYTES:
            return None
        return 9 + count
    return None


class RtuRequestFramer:
    """Accumulates a byte stream and yields complete, CRC-valid requests.

    Over RS-485 a slave delimits frames by silence; a TCP stream has none, so
    frames are found by content, in time linear in the input:

    * only a byte pair ``(our address or broadcast, supported function)`` can
      start a frame; candidates are found with a compiled regular expression,
      so bytes for other slaves or line noise cost no Python work;
    * a complete candidate whose CRC fails is discarded whole (as a slave
      discards its receive buffer), so every byte is CRC-checked at most once;
    * a candidate still arriving is kept, but a complete valid frame glued
      after it wins (a fake header then cannot stall the link);
    * what is kept between reads is at most one frame (``MAX_FRAME`` bytes):
      the small receive buffer of a real controller; older input is dropped.

    Thread-safe (one lock per framer, not the simulator's).
    """

    def __init__(self, address: int | None = None) -> None:
        self._buf = b""
        self._lock = threading.Lock()
        if address is None:  # every slave's frames
            first = b"."
        else:
            first = b"[" + re.escape(bytes([BROADCAST_ADDRESS, address])) + b"]"
        fixed = b"[" + re.escape(bytes(FIXED_LENGTH_FUNCTIONS)) + b"]"
        many = re.escape(bytes([WRITE_MULTIPLE_REGISTERS]))
        even = (
            b"[" + b"".join(re.escape(bytes([n])) for n in range(2, MAX_WRITE_BYTES + 1, 2)) + b"]"
        )
        # a frame start (function 16 with a possible byte count), or one still arriving at the end
        self._start = re.compile(
            first + b"(?:" + fixed + b"|" + many + b"(?:.{4}" + even + b"|.{0,4}\\Z)|\\Z)",
            re.DOTALL,
        )

    def reset(self) -> None:
        with self._lock:
            self._buf = b""

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Request]:
        with self._lock:
            buf = self._buf + bytes(data)
            out: list[Request] = []
            pos = 0
            waiting: int | None = None  # the earliest frame still arriving
            while (match := self._start.search(buf, pos)) is not None:
                start = match.start()
                length = expected_length(buf, start)
                if length is None:  # impossible header
                    pos = start + 1
                elif length == 0 or start + length > len(buf):
                    if waiting is None:
                        waiting = start
                    pos = start + 1  # a complete frame may still follow a fake header
                elif crc_ok(buf[start : start + length]):
                    frame = buf[start : start + length]
                    out.append(Request(frame[0], frame[1], frame[2:-2]))
                    pos = start + length
                    waiting = None  # whatever was waiting before this frame was noise
                else:
                    pos = start + length  # a bad frame is discarded whole
            kept = b"" if waiting is None else buf[waiting:]
            self._buf = kept[-MAX_FRAME:]
            return out


def exception_reply(address: int, function: int, code: int) -> bytes:
    return with_crc(bytes([address, function | 0x80, code]))


def read_reply(address: int, function: int, words: list[int]) -> bytes:
    data = b"".join(struct.pack(">H", w & 0xFFFF) for w in words)
    return with_crc(bytes([address, function, len(data)]) + data)


def to_signed(word: int) -> int:
    """16-bit two's complement → Python int."""
    word &= 0xFFFF
    return word - 0x10000 if word & 0x8000 else word


def to_word(value: int) -> int:
    """Python int (−32768..65535) → 16-bit register word."""
    return value & 0xFFFF
