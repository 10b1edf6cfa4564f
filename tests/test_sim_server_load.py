"""Simulator servers under load (issue 11, item 8): a backlog that holds a lab's
worth of clients, and a client's thread that ends when its client goes away."""

from __future__ import annotations

import socket
import threading
import time

from labctl.simulators.pm100 import PM100Simulator
from labctl.simulators.transport import SimServer

N_CLIENTS = 300


def _read_line(sock: socket.socket) -> bytes:
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed by the server")
        reply += chunk
    return reply


def _connection_threads() -> int:
    return sum(1 for t in threading.enumerate() if "process_request_thread" in t.name)


def test_300_clients_connecting_at_once_are_all_answered_within_seconds(quiet_world):
    server = SimServer(PM100Simulator(quiet_world, name="pm")).start()
    socks: list[socket.socket] = []
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    go = threading.Event()

    def client() -> None:
        go.wait(10)
        t0 = time.perf_counter()
        try:
            s = socket.create_connection((server.host, server.port), timeout=10)
            with lock:
                socks.append(s)  # held open until the end, as a lab's clients are
            s.settimeout(10)
            s.sendall(b"*IDN?\n")
            reply = _read_line(s)
            assert reply.startswith(b"THORLABS,PM100USB"), reply
        except (OSError, AssertionError) as exc:
            with lock:
                errors.append(repr(exc))
            return
        with lock:
            latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(N_CLIENTS)]
    try:
        for t in threads:
            t.start()
        go.set()  # all at once: the accept queue must hold them
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
        assert not errors, errors[:3]
        assert len(latencies) == N_CLIENTS
        worst = max(latencies)
        # a dropped SYN costs ≥ 1 s (the first retransmission); none may happen
        assert worst < 0.9, f"slowest of {N_CLIENTS}: {worst:.2f} s"
    finally:
        for s in socks:
            s.close()
        server.stop()


def test_sequential_connects_never_wait_for_a_syn_retransmission(quiet_world):
    server = SimServer(PM100Simulator(quiet_world, name="pm")).start()
    socks = []
    try:
        worst = 0.0
        for _ in range(200):
            t0 = time.perf_counter()
            s = socket.create_connection((server.host, server.port), timeout=10)
            socks.append(s)
            worst = max(worst, time.perf_counter() - t0)
        assert worst < 0.9, f"slowest connect {worst:.2f} s"
    finally:
        for s in socks:
            s.close()
        server.stop()


def test_client_threads_end_when_their_clients_go_away(quiet_world):
    server = SimServer(PM100Simulator(quiet_world, name="pm")).start()
    try:
        baseline = _connection_threads()
        socks = []
        for _ in range(50):
            s = socket.create_connection((server.host, server.port), timeout=10)
            s.settimeout(10)
            s.sendall(b"SYST:ERR?\n")
            assert _read_line(s).startswith(b"0,")
            socks.append(s)
        assert len(server._server.clients) == 50
        for i, s in enumerate(socks):
            if i % 2:  # an abrupt reset (RST) for half of them, a clean close for the rest
                s.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
            s.close()
        deadline = time.monotonic() + 5
        while (server._server.clients or _connection_threads() > baseline) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.02)
        assert not server._server.clients
        assert _connection_threads() <= baseline
    finally:
        server.stop()


def test_stop_ends_every_client_thread(quiet_world):
    server = SimServer(PM100Simulator(quiet_world, name="pm")).start()
    baseline = _connection_threads()
    socks = [socket.create_connection((server.host, server.port), timeout=10) for _ in range(20)]
    try:
        deadline = time.monotonic() + 5
        while len(server._server.clients) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.stop()
        deadline = time.monotonic() + 5
        while _connection_threads() > baseline and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _connection_threads() <= baseline
    finally:
        for s in socks:
            s.close()
