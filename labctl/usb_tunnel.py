"""USB over TCP: the wire format and the client end.

A simulated spectrometer served by ``labctl sim serve`` is reached through
this tunnel: each bulk transfer travels as one frame, like a minimal USB/IP.
The client, :class:`RemoteUSBDevice`, plugs into this process's virtual USB
bus (:mod:`labctl.virtual_usb`) so pyseabreeze's own protocol code drives it.
The server end is :mod:`labctl.simulators.seabreeze_usb`.

::

    request  b"LU" op:u8 endpoint:u8 timeout_ms:u32 length:u32 [payload]
             op 1 = bulk OUT (payload = data), 2 = bulk IN (length = size),
             op 3 = describe (vendor, product, endpoints)
    reply    b"LU" status:u8 endpoint:u8 length:u32 payload
             status 0 ok, 1 timeout, 2 USB error (payload = message), 3 bad request

The server skips bytes that are not a frame up to the next ``b"LU"``. The
client checks every reply against its request (magic, endpoint, length);
after a timeout or a reply that does not fit, the frame boundaries are lost
(a late reply may still be on its way), so it drops the connection and opens
a fresh one for the next transfer. A late reply can never be taken for the
answer to a later request.
"""

from __future__ import annotations

import errno
import socket
import struct
import threading
from dataclasses import dataclass

import usb.core

from labctl.virtual_usb import (
    LIBUSB_ERROR_IO,
    LIBUSB_ERROR_NO_DEVICE,
    get_backend,
    usb_error,
    usb_timeout,
)

TUNNEL_MAGIC = b"LU"
REQUEST = struct.Struct("<2sBBII")
REPLY = struct.Struct("<2sBBI")
OP_OUT, OP_IN, OP_DESCRIBE = 1, 2, 3
ST_OK, ST_TIMEOUT, ST_USB_ERROR, ST_BAD_REQUEST = 0, 1, 2, 3
MAX_TRANSFER = 1 << 20


@dataclass
class TunnelRequest:
    op: int
    endpoint: int
    timeout_ms: int
    length: int
    payload: bytes = b""


def parse_request(buf: bytes) -> tuple[TunnelRequest | None, bytes]:
    """One complete request from the front of ``buf`` (skipping garbage), and the rest."""
    while True:
        i = buf.find(TUNNEL_MAGIC)
        if i < 0:
            return None, buf[-1:] if buf.endswith(TUNNEL_MAGIC[:1]) else b""
        buf = buf[i:]
        if len(buf) < REQUEST.size:
            return None, buf
        _, op, endpoint, timeout_ms, length = REQUEST.unpack_from(buf)
        if op not in (OP_OUT, OP_IN, OP_DESCRIBE) or length > MAX_TRANSFER:
            return TunnelRequest(0, endpoint, 0, 0), buf[REQUEST.size :]
        need = REQUEST.size + (length if op == OP_OUT else 0)
        if len(buf) < need:
            return None, buf
        return TunnelRequest(op, endpoint, timeout_ms, length, buf[REQUEST.size : need]), buf[need:]


def encode_reply(status: int, endpoint: int, payload: bytes = b"") -> bytes:
    return REPLY.pack(TUNNEL_MAGIC, status, endpoint, len(payload)) + payload


class _OutOfStep(Exception):
    """A reply that cannot be the answer to the request just sent."""


class RemoteUSBDevice:
    """Client end of the tunnel: a served device, plugged into this process's virtual bus.

    ``timeout_s`` bounds every exchange beyond the USB timeout the request
    itself carries (the server waits that long for an IN transfer).
    """

    def __init__(self, host: str, port: int, timeout_s: float = 5.0) -> None:
        if not timeout_s > 0:
            raise ValueError(f"tunnel timeout must be positive, got {timeout_s!r}")
        self.address = (host, int(port))
        self.timeout_s = float(timeout_s)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.reopened = 0  # connections opened after a broken exchange
        self._connect()
        body = self._transfer(OP_DESCRIBE, 0, 0, 0)
        try:
            self.usb_vendor_id, self.usb_product_id, n = struct.unpack_from("<HHB", body)
            self.usb_endpoints = dict(struct.unpack_from("<BH", body, 5 + 3 * i) for i in range(n))
        except struct.error as exc:
            self.close()
            raise usb_error(
                f"tunnel {self._where}: malformed device description ({exc})",
                LIBUSB_ERROR_IO,
                errno.EIO,
            ) from exc
        self.usb_id = get_backend().plug(self)

    @property
    def _where(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def _connect(self) -> None:
        try:
            sock = socket.create_connection(self.address, timeout=self.timeout_s)
        except OSError as exc:
            raise usb_error(
                f"tunnel {self._where}: {exc}", LIBUSB_ERROR_NO_DEVICE, errno.ENODEV
            ) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock

    def _drop(self) -> None:
        """Forget a connection whose frame boundaries are lost."""
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def _recv_exact(self, n: int) -> bytes:
        assert self._sock is not None
        out = bytearray()
        while len(out) < n:
            chunk = self._sock.recv(n - len(out))
            if not chunk:
                raise ConnectionResetError("connection closed by the server")
            out += chunk
        return bytes(out)

    def _exchange(
        self, op: int, endpoint: int, timeout_ms: int, length: int, payload: bytes
    ) -> tuple[int, bytes]:
        if self._sock is None:
            self._connect()
            self.reopened += 1
        assert self._sock is not None
        # an IN transfer waits on the server for up to its USB timeout (on the server's clock)
        wait = self.timeout_s + (timeout_ms / 1000.0 if op == OP_IN else 0.0)
        self._sock.settimeout(wait)
        self._sock.sendall(REQUEST.pack(TUNNEL_MAGIC, op, endpoint, timeout_ms, length) + payload)
        magic, status, reply_endpoint, size = REPLY.unpack(self._recv_exact(REPLY.size))
        if magic != TUNNEL_MAGIC:
            raise _OutOfStep(f"reply starts with {magic!r}, not a frame")
        if reply_endpoint != endpoint:
            raise _OutOfStep(f"reply for endpoint 0x{reply_endpoint:02X}, asked 0x{endpoint:02X}")
        limit = length if (op == OP_IN and status == ST_OK) else MAX_TRANSFER
        if size > limit:
            raise _OutOfStep(f"reply of {size} bytes to a request for at most {limit}")
        body = self._recv_exact(size)
        if op == OP_OUT and status == ST_OK and size != 4:
            raise _OutOfStep(f"OUT acknowledgement of {size} bytes, not 4")
        return status, body

    def _transfer(
        self, op: int, endpoint: int, timeout_ms: int, length: int, payload: bytes = b""
    ) -> bytes:
        with self._lock:
            try:
                status, body = self._exchange(op, endpoint, timeout_ms, length, payload)
            except (OSError, _OutOfStep) as exc:
                self._drop()  # a late or stray reply must never answer the next request
                raise usb_error(
                    f"tunnel {self._where}: {exc or type(exc).__name__} "
                    "(the tunnel is reopened for the next transfer)",
                    LIBUSB_ERROR_IO,
                    errno.EIO,
                ) from exc
        if status == ST_TIMEOUT:
            raise usb_timeout(f"tunnel {self._where} EP 0x{endpoint:02X}")
        if status != ST_OK:
            raise usb_error(
                f"tunnel {self._where}: {body.decode('utf-8', 'replace') or 'bad request'}",
                LIBUSB_ERROR_IO,
                errno.EIO,
            )
        return body

    # --- SimulatedUSBDevice interface (what the virtual bus calls) -------------------
    def usb_bulk_write(self, endpoint: int, data: bytes, timeout_ms: int) -> int:
        return struct.unpack("<I", self._transfer(OP_OUT, endpoint, timeout_ms, len(data), data))[0]

    def usb_bulk_read(self, endpoint: int, size: int, timeout_ms: int) -> bytes:
        return self._transfer(OP_IN, endpoint, timeout_ms, size)

    def usb_reset(self) -> None:
        pass

    def pyusb_device(self) -> usb.core.Device:
        return get_backend().pyusb_device(self.usb_id)

    def close(self) -> None:
        if hasattr(self, "usb_id"):
            get_backend().unplug(self)
        with self._lock:
            self._drop()
