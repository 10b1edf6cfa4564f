"""Transports that carry bytes between driver code and simulators (the simulator side).

They live beside the simulators, not in the core: drivers never import them;
a station (``labctl.station``) or ``labctl sim serve`` (``labctl.servesim``)
puts one between a driver and a simulator, so the layers stay one-way
(core <- drivers; simulators beside the drivers, reached through stations).

* :class:`SimAdapter` — a pymeasure :class:`~pymeasure.adapters.Adapter` that
  hands bytes straight to a protocol handler (in-process, fast, deterministic).
  A read with nothing to read raises pyvisa's timeout error, exactly as a VISA
  session to a silent instrument would.
* :class:`SimSerial` — a ``serial.Serial``-like object for byte-oriented
  instruments (Modbus RTU), usable by minimalmodbus unchanged.
* :class:`SimServer` — serves a handler on 127.0.0.1 over TCP; text
  instruments are reached as ``TCPIP0::127.0.0.1::PORT::SOCKET`` VISA
  resources, serial ones as ``socket://127.0.0.1:PORT`` pyserial URLs.

Every transport passes bytes through ``handler.respond`` (injected silent and
garbled faults) and honours an injected ``disconnect`` (see
:mod:`labctl.simulators.faults`) the way its real counterpart fails.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import struct
import threading
import time

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


def _disconnected(handler: ProtocolHandler) -> bool:
    """An injected ``disconnect`` is active on this simulator."""
    faults = getattr(handler.world, "faults", None)
    return faults is not None and "disconnect" in faults.active(handler.name)


def _reply_delay_s(handler: ProtocolHandler) -> float:
    """Wall seconds the handler's replies are held back (an injected ``late`` fault)."""
    faults = getattr(handler.world, "faults", None)
    return faults.reply_delay_s(handler.name) if faults is not None else 0.0


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

    def _check_link(self) -> None:
        if _disconnected(self.handler):
            with self._lock:
                self._rx = b""
            err = pyvisa.errors.VisaIOError(constants.StatusCode.error_connection_lost)
            err.args = (f"{self.handler.name} (in-process simulator): {err.description}",)
            raise err

    def _send(self, data: bytes) -> None:
        self._check_link()
        reply = self.handler.respond(data)
        with self._lock:
            self._rx += reply

    def _write(self, command: str, **kwargs) -> None:
        self._send((command + self.write_termination).encode("ascii"))

    def _write_bytes(self, content: bytes, **kwargs) -> None:
        self._send(bytes(content))

    def _read(self, **kwargs) -> str:
        self._check_link()
        term = self.read_termination.encode("ascii") or b"\n"
        with self._lock:
            i = self._rx.find(term)
            if i < 0:
                self._rx = b""  # a partial reply is discarded, as after a VISA timeout
                raise _visa_timeout(f"{self.handler.name} (in-process simulator)")
            line, self._rx = self._rx[:i], self._rx[i + len(term) :]
        return line.decode("ascii", errors="replace").rstrip("\r")

    def _read_bytes(self, count: int, break_on_termchar: bool, **kwargs) -> bytes:
        self._check_link()
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

    Each ``write`` hands one whole frame to the handler: there is no line whose
    silence delimits frames, so ``frames_delimited_by_silence`` is False and a
    Modbus link sends without the 3.5-character pause (``labctl/modbus.py``).
    """

    frames_delimited_by_silence = False

    def __init__(self, handler: ProtocolHandler, baudrate: int = 19200, timeout: float = 0.05):
        self.handler = handler
        self.port = f"sim://{handler.name}"
        self.baudrate = baudrate
        self.timeout = timeout
        self.write_timeout = 2.0
        self.is_open = True
        self._rx = b""
        self._in_flight: list[tuple[float, bytes]] = []  # (due, reply): a ``late`` fault
        self._lock = threading.Lock()

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False
        self.handler.reset_input()

    def _check_link(self) -> None:
        if _disconnected(self.handler):
            import serial

            with self._lock:
                self._rx = b""
                self._in_flight.clear()  # a lost link loses what was on the way
            raise serial.SerialException(f"{self.port}: connection lost (device disconnected)")

    def write(self, data: bytes) -> int:
        if not self.is_open:
            raise OSError(f"{self.port}: port is closed")
        self._check_link()
        reply = self.handler.respond(bytes(data))
        delay_s = _reply_delay_s(self.handler)
        with self._lock:
            if delay_s or self._in_flight:  # late replies keep their order on the line
                due = time.monotonic() + delay_s
                if self._in_flight:
                    due = max(due, self._in_flight[-1][0])
                self._in_flight.append((due, reply))
            else:
                self._rx += reply
        return len(data)

    def _arrived(self) -> None:
        """Move replies whose time has come from in flight to the input buffer."""
        now = time.monotonic()
        while self._in_flight and self._in_flight[0][0] <= now:
            self._rx += self._in_flight.pop(0)[1]

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` bytes; waits up to ``timeout`` (wall) only for replies in flight."""
        self._check_link()
        deadline = time.monotonic() + (self.timeout or 0.0)
        with self._lock:
            self._arrived()
            while len(self._rx) < size and self._in_flight and time.monotonic() < deadline:
                wait_s = min(self._in_flight[0][0], deadline) - time.monotonic()
                self._lock.release()
                try:
                    time.sleep(max(wait_s, 0.0))
                finally:
                    self._lock.acquire()
                self._arrived()
            out, self._rx = self._rx[:size], self._rx[size:]
        return out

    @property
    def in_waiting(self) -> int:
        with self._lock:
            self._arrived()
            return len(self._rx)

    def reset_input_buffer(self) -> None:
        """Drop what has arrived; replies still in flight arrive later, as on a real line."""
        with self._lock:
            self._arrived()
            self._rx = b""

    def reset_output_buffer(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<SimSerial {self.port}>"


#: Connections the listening socket queues before accept(): hundreds of clients
#: connecting at once while the accept loop starts their threads (socketserver's
#: default of 5 made the kernel drop SYNs, and clients waited out 1 s, 3 s, …
#: retransmissions; 128 still overflowed with 300 at once). The kernel caps it at
#: net.core.somaxconn.
LISTEN_BACKLOG = 1024
#: A client that stops reading for this long is dropped (its thread would block on send).
SEND_TIMEOUT_S = 30.0
#: TCP keepalive: a client that vanished without closing (cable pulled, host crashed) is
#: detected after about IDLE + COUNT × INTERVAL seconds and its thread ends.
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 60, 10, 3
#: How often a serving loop looks for a stop request (``serve_forever``'s poll interval).
#: socketserver's 0.5 s default made stopping a served station (six instruments and the
#: fault control, stopped one after another) take ~2.7 s: every ``sim serve`` teardown
#: and every GUI quit waited it out.
STOP_POLL_S = 0.05


def _ack_now(sock: socket.socket) -> None:
    """Acknowledge at once (Linux TCP_QUICKACK, cleared by the kernel after each use).

    A driver that writes a command and then a query (ESP301 ``1PA10`` then ``TB?``)
    leaves its second write in Nagle's buffer until the first is acknowledged, and a
    delayed ACK costs ~40 ms per move; a real instrument acknowledges at once.
    """
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        except OSError:
            pass


def _client_socket_options(sock: socket.socket) -> None:
    """No Nagle delay, a bounded send, keepalive probes: a client's thread ends with it."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    seconds = int(SEND_TIMEOUT_S)
    timeval = struct.pack("ll", seconds, int((SEND_TIMEOUT_S - seconds) * 1e6))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    except OSError:  # not on every platform; then a stuck client only costs its thread
        pass
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
    ):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


class _Connection(socketserver.BaseRequestHandler):
    """One TCP client of a simulator: bytes in → handler → one write per reply.

    The thread ends when the client closes, resets, vanishes (keepalive) or stops
    reading for :data:`SEND_TIMEOUT_S`, and when the server stops.
    """

    def handle(self) -> None:
        sim: ProtocolHandler = self.server.protocol_handler  # type: ignore[attr-defined]
        sock: socket.socket = self.request
        if _disconnected(sim):  # an injected lost link: refuse (close at once)
            return
        self.server.clients.add(sock)  # type: ignore[attr-defined]
        try:
            _client_socket_options(sock)
            while True:
                data = sock.recv(65536)
                if not data or _disconnected(sim):
                    break
                _ack_now(sock)
                delay_s = _reply_delay_s(sim)
                if delay_s:  # a paused instrument: acts and answers late, in order
                    time.sleep(delay_s)
                reply = sim.respond(data, source=sock)
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
    request_queue_size = LISTEN_BACKLOG

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
            target=self._server.serve_forever,
            args=(STOP_POLL_S,),
            name=f"sim-{handler.name}",
            daemon=True,
        )
        self._faults = getattr(handler.world, "faults", None)
        if self._faults is not None:
            self._faults.subscribe(self._on_fault)

    def _on_fault(self, role: str, kind: str, active: bool) -> None:
        if active and kind == "disconnect" and role == self.handler.name:
            self.drop_clients()  # new clients are refused by _Connection until cleared

    def drop_clients(self) -> None:
        """Close every client's connection, as a pulled cable or a rebooted instrument would."""
        for sock in list(self._server.clients):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def client_count(self) -> int:
        """Clients connected now (a dropped or closed one is gone once its thread has ended)."""
        return len(self._server.clients)

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
        if self._faults is not None:
            self._faults.unsubscribe(self._on_fault)
        self._server.shutdown()
        self._server.server_close()
        self.drop_clients()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
