"""The spectrometer's USB-over-TCP tunnel: late and garbage frames after a timeout give a
CommunicationError and the next acquisition works; abandoned bulk-IN requests end with
their client; drivers reach the tunnel without importing simulators."""

from __future__ import annotations

import socket
import struct
import threading
import time

import numpy as np
import pytest

from labctl.clock import ScaledClock, VirtualClock
from labctl.errors import CommunicationError, InstrumentError
from labctl.simulators.spectrometer import SpectrometerSimulator
from labctl.simulators.transport import SimServer
from labctl.simulators.world import World
from labctl.usb_tunnel import OP_IN, REQUEST, TUNNEL_MAGIC

pytestmark = pytest.mark.tcp

TUNNEL_TIMEOUT_S = 0.3


class FaultyLink:
    """A loopback TCP relay to ``port`` that can hold back or corrupt the server's replies."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.hold = threading.Event()  # set: replies are kept back (the link stalls)
        self.inject = b""  # bytes put in front of the next reply
        self.held: list[tuple[socket.socket, bytes]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._socks: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            self._socks += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        try:
            while data := src.recv(65536):
                if replies and self.hold.is_set():
                    self.held.append((dst, data))
                    continue
                if replies and self.inject:
                    data, self.inject = self.inject + data, b""
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def release(self) -> None:
        """Deliver the held-back replies, late."""
        self.hold.clear()
        for dst, data in self.held:
            try:
                dst.sendall(data)
            except OSError:
                pass
        self.held.clear()

    def close(self) -> None:
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture
def tunnelled(quiet_world):
    """(driver, link): a spectrometer driver reaching a served simulator through FaultyLink."""
    from labctl.drivers.spectrometer import open_instrument

    sim = SpectrometerSimulator(quiet_world, name="spectrometer")
    server = SimServer(sim).start()
    link = FaultyLink(server.port)
    driver = open_instrument(
        f"socket://127.0.0.1:{link.port}",
        name="spectrometer",
        clock=quiet_world.clock,
        tunnel_timeout_s=TUNNEL_TIMEOUT_S,
    )
    yield driver, link
    driver.close()
    link.close()
    server.stop()
    sim.unplug()


def test_late_replies_after_a_timeout_never_reach_the_next_acquisition(tunnelled):
    driver, link = tunnelled
    before = driver.acquire(0.01)
    for _ in range(3):
        link.hold.set()
        with pytest.raises(CommunicationError, match="spectrometer: acquire"):
            driver.acquire(0.01)
        link.release()  # the late frames arrive
        after = driver.acquire(0.01)
        np.testing.assert_allclose(after, before, rtol=1e-9)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x13garbage that is no frame",
        b"LU\x00\x82" + struct.pack("<I", 1 << 30),  # a frame header announcing 1 GiB
        b"LU\x00\x81" + struct.pack("<I", 3) + b"abc",  # a frame for another endpoint
    ],
)
def test_garbage_frames_are_a_communication_error_and_the_next_acquisition_works(
    tunnelled, garbage
):
    driver, link = tunnelled
    before = driver.acquire(0.01)
    link.inject = garbage
    with pytest.raises(CommunicationError, match="spectrometer: acquire"):
        driver.acquire(0.01)
    np.testing.assert_allclose(driver.acquire(0.01), before, rtol=1e-9)


def test_garbled_data_from_seabreeze_is_a_communication_error(tunnelled, monkeypatch):
    """Data pyseabreeze cannot parse (struct.error/ValueError) never reaches the user raw."""
    driver, _link = tunnelled
    before = driver.acquire(0.01)
    spec = driver._spec  # private: no bytes on the wire make pyseabreeze raise struct.error

    def short_spectrum():
        raise struct.error("unpack requires a buffer of 4097 bytes")

    monkeypatch.setattr(spec, "intensities", short_spectrum)
    with pytest.raises(CommunicationError, match="garbled data"):
        driver.acquire(0.01)
    monkeypatch.undo()
    np.testing.assert_allclose(driver.acquire(0.01), before, rtol=1e-9)


def test_abandoned_bulk_in_requests_end_with_their_client():
    world = World(ScaledClock(1.0), seed=0, noise=False)
    sim = SpectrometerSimulator(world, name="spectrometer")
    server = SimServer(sim).start()
    try:
        baseline = threading.active_count()
        clients = []
        for _ in range(10):  # each asks for a query reply that never comes, for 49.7 days
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(REQUEST.pack(TUNNEL_MAGIC, OP_IN, 0x81, 2**32 - 1, 64))
            clients.append(sock)
        deadline = time.monotonic() + 5
        while threading.active_count() < baseline + 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert threading.active_count() >= baseline + 10  # each waits in its own thread
        for sock in clients:
            sock.close()
        deadline = time.monotonic() + 5
        while threading.active_count() > baseline and time.monotonic() < deadline:
            time.sleep(0.02)
        assert threading.active_count() <= baseline
    finally:
        server.stop()
        sim.unplug()


def test_a_tunnel_to_another_model_is_refused_at_connect(quiet_world):
    from labctl.drivers.spectrometer import open_instrument

    sim = SpectrometerSimulator(quiet_world, name="spectrometer", model="USB2000PLUS")
    try:
        with SimServer(sim) as server:
            with pytest.raises(InstrumentError) as err:
                open_instrument(
                    server.resource, name="spectrometer", clock=VirtualClock(), model="FLAMES"
                )
    finally:
        sim.unplug()
    text = str(err.value)
    assert text.startswith("spectrometer: expected an Ocean FLAMES")
    assert "USB2000PLUS" in text and sim.serial_number in text


def test_a_tunnel_address_that_is_no_tunnel_fails_at_connect(quiet_world):
    """A station wired to a text instrument's port: a clear error, not a hang or a traceback."""
    from labctl.drivers.spectrometer import open_instrument
    from labctl.simulators.sr830 import SR830Simulator

    with SimServer(SR830Simulator(quiet_world, name="lockin_ref")) as server:
        t0 = time.monotonic()
        with pytest.raises(CommunicationError, match="spectrometer: cannot reach served"):
            open_instrument(
                f"socket://127.0.0.1:{server.port}",
                name="spectrometer",
                clock=VirtualClock(),
                tunnel_timeout_s=TUNNEL_TIMEOUT_S,
            )
        assert time.monotonic() - t0 < 5


def test_drivers_never_import_simulators():
    import ast
    from pathlib import Path

    import labctl.drivers

    for path in Path(labctl.drivers.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                assert "simulators" not in name, f"{path.name} imports {name}"
