"""Modbus RTU frames and a recording serial port, for the Eurotherm tests."""

from __future__ import annotations

import struct

from labctl.simulators.modbus_rtu import with_crc
from labctl.simulators.transport import SimSerial


def write_req(address: int, value: int, slave: int = 1) -> bytes:
    return with_crc(struct.pack(">BBHH", slave, 6, address, value & 0xFFFF))


def read_reply(values: list[int], slave: int = 1, fn: int = 3) -> bytes:
    data = b"".join(struct.pack(">H", v & 0xFFFF) for v in values)
    return with_crc(bytes([slave, fn, len(data)]) + data)


def exception(fn: int, code: int, slave: int = 1) -> bytes:
    return with_crc(bytes([slave, fn | 0x80, code]))


class RecordingSerial(SimSerial):
    """SimSerial that keeps every request frame the driver sent."""

    def __init__(self, handler):
        super().__init__(handler)
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.sent.append(bytes(data))
        return super().write(data)

    def writes(self) -> list[bytes]:
        """The write requests (function 6 and 16)."""
        return [f for f in self.sent if f[1] in (6, 16)]
