"""Transports that carry bytes between driver code and simulators.

* :class:`SimAdapter` — a pymeasure :class:`~pymeasure.adapters.Adapter` that
  hands bytes straight to a protocol handler (in-process, fast, deterministic).
  A read with nothing to read raises pyvisa's timeout error, exactly as a VISA
  session to a silent instrument would.
* :class:`SimSerial` — a ``serial.Serial``-like object for byte-oriented
  instruments (Modbus RTU), usable by minimalmodbus unchanged.
* :class:`SimServer` — serves a handler on 127.0.0.1 over TCP; text
  instruments are reached as ``TCPIP0::127.0.0.1::PORT::SOCKET`` VISA
  resources, serial ones as ``socket://127.0.0.1:PORT`` pyserial URLs.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading

import pyvisa
from pymeasure.adapters import Adapter
from pyvisa import constants

from labctl.simulators.base import ProtocolHandler

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def _visa_timeout(where: str) -> pyvisa.errors.VisaIOError:
    err = pyvisa.errors.VisaIOError(constants.StatusCode.error_timeout)
    err.args = (f"{where}: {err.description}",)
    return err


class SimAdapter(Adapter):
    """In-process pymeasure adapter onto a simulator's protocol handler."""

    def __init__(
        self,
        handler: ProtocolHandler,
        write_termination: str = "\n",
        read_termination: str = "\n",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.handler = handler
        self.write_termination = write_termination
        self.read_termination = read_termination
        self.connection = self  # pymeasure expects a connection with close()
        self._rx = b""
        self._lock = threading.Lock()

    def _send(self, data: bytes) -> None:
        reply = self.handler.handle(data)
        with self._lock:
            self._rx += reply

    def _write(self, command: str, **kwargs) -> None:
        self._send((command + self.write_termination).encode("ascii"))

    def _write_bytes(self, content: bytes, **kwargs) -> None:
        self._send(bytes(content))

    def _read(self, **kwargs) -> str:
        term = self.read_termination.encode("ascii") or b"\n"
        with self._lock:
            i = self._rx.find(term)
            if i < 0:
                self._rx = b""  # a partial reply is discarded, as after a VISA timeout
                raise _visa_timeout(f"{self.handler.name} (in-process simulator)")
            line, self._rx = self._rx[:i], self._rx[i + len(term) :]
        return line.decode("ascii", errors="replace").rstrip("\r")

    def _read_bytes(self, count: int, break_on_termchar: bool, **kwargs) -> bytes:
        with self._lock:
            if not self._rx:
                raise _visa_timeout(f"{self.handler.name} (in-process simulator)")
            if count is None or count < 0:
                count = len(self._rx)
            if break_on_termchar:
                i = self._rx.find(self.read_termination.encode("ascii"))
                if 0 <= i < count:
                    count = i + len(self.read_termination)
            out, self._rx = self._rx[:count], self._rx[count:]
        return out

    def flush_read_buffer(self) -> None:
        with self._lock:
            self._rx = b""

    def discard_input(self, quiet_s: float = 0.0) -> bytes:
        """Drop and return whatever is waiting (in process, nothing arrives later)."""
        with self._lock:
            dropped, self._rx = self._rx, b""
        return dropped

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<SimAdapter {self.handler.name}>"


class SimSerial:
    """A pyserial-like port wired to a byte-oriented protocol handler.

    Enough of ``serial.Serial`` for minimalmodbus and our drivers: ``write``,
    ``read(n)`` (returns what is there, possibly fewer bytes, like a timeout),
    ``reset_input_buffer``, ``is_open``, ``in_waiting``.
    """

    def __init__(self, handler: ProtocolHandler, baudrate: int = 19200, timeout: float = 0.05):
        self.handler = handler
        self.port = f"sim://{handler.name}"
        self.baudrate = baudrate
        self.timeout = timeout
        self.write_timeout = 2.0
        self.is_open = True
        self._rx = b""
        self._lock = threading.Lock()

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False
        self.handler.reset_input()

    def write(self, data: bytes) -> int:
        if not self.is_open:
            raise OSError(f"{self.port}: port is closed")
        reply = self.handler.handle(bytes(data))
        with self._lock:
            self._rx += reply
        return len(data)

    def read(self, size: int = 1) -> bytes:
        with self._lock:
            out, self._rx = self._rx[:size], self._rx[size:]
        return out

    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def reset_input_buffer(self) -> None:
        with self._lock:
            self._rx = b""

    def reset_output_buffer(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<SimSerial {self.port}>"


class _Connection(socketserver.BaseRequestHandler):
    """One TCP client of a simulator: bytes in → handler → one write per reply."""

    def handle(self) -> None:
        sim: ProtocolHandler = self.server.protocol_handler  # type: ignore[attr-defined]
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.clients.add(sock)  # type: ignore[attr-defined]
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                reply = sim.handle(data, source=sock)
                if reply:
                    sock.sendall(reply)
        except OSError:
            pass  # client went away; the simulated instrument stays as it is
        finally:  # a client that left mid-message leaves no half command behind
            self.server.clients.discard(sock)  # type: ignore[attr-defined]
            sim.reset_input(sock)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args, **kwargs) -> None:
        self.clients: set[socket.socket] = set()
        super().__init__(*args, **kwargs)


class SimServer:
    """Serve one protocol handler on loopback TCP in a background thread."""

    def __init__(self, handler: ProtocolHandler, port: int = 0, host: str = LOOPBACK) -> None:
        if host not in (LOOPBACK, "localhost", "::1"):
            raise ValueError("simulators are served on loopback only")
        self.handler = handler
        self._server = _Server((host, port), _Connection)
        self._server.protocol_handler = handler  # type: ignore[attr-defined]
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"sim-{handler.name}", daemon=True
        )

    @property
    def resource(self) -> str:
        """The address a client uses: a VISA SOCKET resource or a pyserial URL."""
        if self.handler.kind == "visa":
            return f"TCPIP0::{self.host}::{self.port}::SOCKET"
        return f"socket://{self.host}:{self.port}"

    def start(self) -> SimServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every client, as a powered-off instrument would."""
        self._server.shutdown()
        self._server.server_close()
        for sock in list(self._server.clients):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def visa_options(address: str) -> dict:
    """VISA session options for an address: SOCKET resources need explicit terminations."""
    if address.upper().endswith("::SOCKET"):
        return {"read_termination": "\n", "write_termination": "\n", "timeout": 2000}
    return {}


def open_serial(address: str, baudrate: int = 19200, timeout: float = 0.2):
    """A pyserial port for a device path or URL (``socket://…``, ``loop://``)."""
    import serial

    return serial.serial_for_url(address, baudrate=baudrate, timeout=timeout)
