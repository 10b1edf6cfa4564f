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

import struct
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
MAX_FRAME = 9 + 2 * MAX_WRITE_REGISTERS + 2  # the longest request we accept


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
    if function in (READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS, WRITE_SINGLE_REGISTER):
        return 8
    if function == WRITE_MULTIPLE_REGISTERS:
        if len(buf) - start < 7:
            return 0
        count = buf[start + 6]
        if count == 0 or count % 2 or count > 2 * MAX_WRITE_REGISTERS:
            return None
        return 9 + count
    return None


class RtuRequestFramer:
    """Accumulates a byte stream and yields complete, CRC-valid requests."""

    def __init__(self) -> None:
        self._buf = b""

    def reset(self) -> None:
        self._buf = b""

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Request]:
        self._buf += data
        out: list[Request] = []
        while self._buf:
            found, keep_from = self._scan()
            if found is None:
                # No complete valid frame: keep the earliest possible start
                # (a fragment still arriving), drop what cannot be a frame.
                self._buf = b"" if keep_from is None else self._buf[keep_from:]
                if len(self._buf) > MAX_FRAME:  # a fake header promised too much
                    self._buf = self._buf[1:]
                    continue
                break
            start, length = found
            frame = self._buf[start : start + length]
            self._buf = self._buf[start + length :]
            out.append(Request(frame[0], frame[1], frame[2:-2]))
        return out

    def _scan(self) -> tuple[tuple[int, int] | None, int | None]:
        """First offset holding a complete CRC-valid frame; else the first incomplete start."""
        buf = self._buf
        first_incomplete: int | None = None
        for start in range(len(buf)):
            length = expected_length(buf, start)
            if length is None:
                continue
            if length == 0 or start + length > len(buf):
                if first_incomplete is None:
                    first_incomplete = start
                continue
            if crc_ok(buf[start : start + length]):
                return (start, length), None
        return None, first_incomplete


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
