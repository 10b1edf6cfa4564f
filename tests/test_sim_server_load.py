"""Simulator servers under load (issue 11, item 8): a backlog that holds a lab's
worth of clients, and a client's thread that ends when its client goes away."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

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


def listen_drops() -> int | None:
    """The kernel's count of connection requests dropped at a full accept queue
    (TcpExt ListenDrops, which includes ListenOverflows); None where not on Linux.
    A drop, not the wall time, is what a too-small backlog causes: the client's SYN is
    retransmitted a second later. Counting drops keeps the test indifferent to load."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(table["ListenDrops"])
    return None


def _connection_threads() -> int:
    return sum(1 for t in threading.enumerate() if "process_request_thread" in t.name)


def test_300_clients_connecting_at_once_are_all_answered_none_dropped(quiet_world):
    drops_before = listen_drops()
    if drops_before is None:
        pytest.skip("no /proc/net/netstat: the kernel's listen-drop counter is Linux's")
    server = SimServer(PM100Simulator(quiet_world, name="pm")).start()
    socks: list[socket.socket] = []
    answered: list[bytes] = []
    errors: list[str] = []
    lock = threading.Lock()
    go = threading.Event()

    def client() -> None:
        go.wait(10)
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
            answered.append(reply)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(N_CLIENTS)]
    try:
        for t in threads:
            t.start()
        go.set()  # all at once: the accept queue must hold them
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
        assert not errors, errors[:3]
        assert len(answered) == N_CLIENTS
        # the accept queue held them all: no SYN was dropped (each would cost the
        # client a 1 s retransmission)
        assert listen_drops() == drops_before
    finally:
        for s in socks:
            s.close()
        server.stop()


def test_sequential_connects_never_wait_for_a_syn_retransmission(quiet_world):
    drops_before = listen_drops()
    if drops_before is None:
        pytest.skip("no /proc/net/netstat: the kernel's listen-drop counter is Linux's")
    server = SimServer(PM100Simulator(quiet_world, name="pm")).start()
    socks = []
    try:
        for _ in range(200):
            socks.append(socket.create_connection((server.host, server.port), timeout=10))
        assert listen_drops() == drops_before
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
        assert server.client_count == 50
        for i, s in enumerate(socks):
            if i % 2:  # an abrupt reset (RST) for half of them, a clean close for the rest
                s.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
            s.close()
        deadline = time.monotonic() + 5
        while (server.client_count or _connection_threads() > baseline) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.02)
        assert server.client_count == 0
        assert _connection_threads() <= baseline
    finally:
        server.stop()


def test_stop_ends_every_client_thread(quiet_world):
    server = SimServer(PM100Simulator(quiet_world, name="pm")).start()
    baseline = _connection_threads()
    socks = [socket.create_connection((server.host, server.port), timeout=10) for _ in range(20)]
    try:
        deadline = time.monotonic() + 5
        while server.client_count < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.stop()
        deadline = time.monotonic() + 5
        while _connection_threads() > baseline and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _connection_threads() <= baseline
    finally:
        for s in socks:
            s.close()
