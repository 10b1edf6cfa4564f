"""A world served on its clients' virtual time (labctl/served_clock.py).

The served world's clock moves only when the program driving it waits; a test can hold
it at a virtual time. Checked here: waits advance the served world (its furnace heats in
virtual minutes that take no wall time), a hold stops a client's wait at the hold and
nothing else, a stop request still ends a held wait, a served station refuses a clock
that would never move its world, and the served furnace link keeps no RTU silence.
"""

from __future__ import annotations

import math
import threading

import minimalmodbus
import pytest
from served import served_world

from labctl.cli.sim import positive_time_scale
from labctl.clock import ScaledClock, VirtualClock, stop_on
from labctl.errors import Aborted, StationError
from labctl.served_clock import ServedClock, WorldClock, clock_request
from labctl.servesim import RemoteWorldClock
from labctl.station import Station

pytestmark = [pytest.mark.tcp]

JOIN_S = 30.0  # a hung thread fails the test instead of hanging it (not a speed bound)


# --------------------------------------------------------------- the world's clock
def test_a_clients_wait_stops_at_the_hold_and_goes_on_when_released():
    clock = WorldClock()
    assert clock.client_sleep(10.0) == 10.0
    clock.hold(25.0)
    ended: list[float] = []
    waiter = threading.Thread(target=lambda: ended.append(clock.client_sleep(100.0)))
    waiter.start()
    assert clock.wait_held(timeout_s=JOIN_S)
    assert clock.now() == 25.0 and not ended  # waits at the hold, time stays there
    clock.sleep(0.5)  # the world's own short waits (an integration time) are not held
    assert clock.now() == 25.5
    clock.hold(60.0)  # a later hold: the wait goes on to it, and waits again
    assert clock.wait_held(timeout_s=JOIN_S)
    assert clock.now() == 60.0 and not ended
    clock.release()
    waiter.join(JOIN_S)
    assert ended == [pytest.approx(110.5)]  # the whole 100 s wait, once released


def test_a_moved_hold_is_not_reported_held_before_a_client_reaches_it():
    clock = WorldClock()
    clock.hold(5.0)
    waiter = threading.Thread(target=clock.client_sleep, args=(20.0,))
    waiter.start()
    assert clock.wait_held(timeout_s=JOIN_S)
    clock.hold(5.0 + 100.0)  # the waiter goes on (20 s in all) and ends short of the hold
    waiter.join(JOIN_S)
    assert not waiter.is_alive()
    assert clock.wait_held(timeout_s=0.05) is False
    assert clock.now() == 20.0


def test_clock_requests_answer_in_one_line_and_refuse_a_scaled_world():
    clock = WorldClock()
    assert clock_request(clock, ["sleep", "12.5"]) == "ok 12.5"
    assert clock_request(clock, ["now"]) == "ok 12.5"
    assert clock_request(clock, ["hold", "nan"]).startswith("error clock:")
    assert clock_request(clock, ["sleep", "-1"]) == "ok 12.5"  # nothing to wait
    assert "unknown request 'tick'" in clock_request(clock, ["tick"])
    scaled = clock_request(ScaledClock(100.0), ["now"])
    assert scaled.startswith("error clock:") and "--time-scale virtual" in scaled


def test_sim_serve_takes_virtual_for_its_time_scale():
    assert positive_time_scale("virtual") == math.inf
    assert positive_time_scale("600") == 600.0


# --------------------------------------------------------------- a served world
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with served_world(tmp_path_factory.mktemp("virtual"), "virtual") as world:
        yield world


def test_a_station_on_the_served_world_drives_its_clock_and_heats_its_furnace(served):
    with Station.from_file(served.station) as station:
        assert isinstance(station.clock, ServedClock)
        world_clock = RemoteWorldClock.from_station_file(served.station)
        furnace = station["furnace"]
        start_c = furnace.temperature_c
        t0 = station.clock.now()
        assert world_clock.now() == t0
        furnace.setpoint_c = 150.0
        try:
            station.clock.sleep(1800.0)  # half an hour of virtual time
            assert world_clock.now() == pytest.approx(t0 + 1800.0)
            assert furnace.temperature_c > start_c + 50.0  # the served world heated
        finally:
            furnace.setpoint_c = 25.0


def test_a_stop_request_ends_a_held_wait_and_time_stays_at_the_hold(served):
    clock = ServedClock(RemoteWorldClock.from_station_file(served.station).address)
    world_clock = RemoteWorldClock.from_station_file(served.station)
    at_s = world_clock.now() + 10.0
    world_clock.hold(at_s)
    stop = threading.Event()
    outcome: list[BaseException] = []

    def wait_an_hour():
        with stop_on(stop):
            try:
                clock.sleep(3600.0)
            except BaseException as exc:  # noqa: BLE001 -- the outcome is the test
                outcome.append(exc)

    waiter = threading.Thread(target=wait_an_hour)
    waiter.start()
    try:
        assert world_clock.wait_held(timeout_s=JOIN_S)
        stop.set()
        waiter.join(JOIN_S)
        assert not waiter.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], Aborted), outcome
        assert world_clock.now() == at_s  # ended by the stop, not by a release
    finally:
        world_clock.release()
    assert clock.now() >= at_s  # the client's link is usable after the abandoned wait


def test_a_served_virtual_world_refuses_a_clock_that_would_never_move_it(served):
    with pytest.raises(StationError, match="clients' virtual time"):
        Station.from_file(served.station, time_scale=100.0)


def test_the_served_furnace_link_keeps_no_rtu_silence(served, monkeypatch):
    """The served furnace finds frames by length (framing: packet, written into the
    station file): its reads never wait the 3.5-character silence a serial line needs."""
    import yaml

    data = yaml.safe_load(served.station.read_text())
    assert data["instruments"]["furnace"]["options"]["framing"] == "packet"
    assert data["time_scale"] == "virtual"
    with Station.from_file(served.station) as station:
        sleeps: list[float] = []
        monkeypatch.setattr(minimalmodbus.time, "sleep", sleeps.append)
        for _ in range(5):
            assert math.isfinite(station["furnace"].temperature_c)
        assert sleeps == []


def test_a_serial_line_keeps_the_rtu_silence(served, tmp_path, monkeypatch):
    """The same served furnace declared ``framing: silence`` (a serial line): the reads
    wait the inter-frame silence, as on hardware."""
    from served import station_with_options

    silent = station_with_options(
        served.station, tmp_path / "line.yaml", "furnace", framing="silence"
    )
    with Station.from_file(silent) as station:
        sleeps: list[float] = []
        monkeypatch.setattr(minimalmodbus.time, "sleep", sleeps.append)
        for _ in range(5):
            station["furnace"].temperature_c  # noqa: B018 -- a read is the point
        assert len(sleeps) >= 4 and all(s > 0 for s in sleeps)


def test_an_in_process_virtual_station_keeps_its_own_clock():
    with Station.from_file("sim", time_scale="virtual") as station:
        assert isinstance(station.clock, VirtualClock)


def test_a_connection_the_server_closed_is_opened_again():
    """The control server closes a connection idle for 30 s; the client's next request
    finds it closed, opens another and gets its answer (here a server that answers one
    request per connection: every request after the first finds its connection closed)."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(JOIN_S)
    answered: list[str] = []

    def serve_one_per_connection():
        for _ in range(3):
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(JOIN_S)
                request = conn.makefile("rb").readline().decode().strip()
                answered.append(request)
                conn.sendall(f"ok {float(len(answered))!r}\n".encode())

    server = threading.Thread(target=serve_one_per_connection, daemon=True)
    server.start()
    clock = ServedClock(f"127.0.0.1:{listener.getsockname()[1]}")
    try:
        assert [clock.now(), clock.now(), clock.now()] == [1.0, 2.0, 3.0]
    finally:
        server.join(JOIN_S)
        listener.close()
    assert answered == ["clock now"] * 3


def one_reply_server(reply: bytes):
    """A loopback server that answers one request with ``reply`` and closes: (address,
    thread)."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(JOIN_S)

    def answer():
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(JOIN_S)
                conn.makefile("rb").readline()
                conn.sendall(reply)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return f"127.0.0.1:{listener.getsockname()[1]}", thread


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (b"error clock: this world runs on ScaledClock(scale=100)\n", "runs on ScaledClock"),
        (b"ok 12.", "the reply was cut short"),
    ],
)
def test_a_refused_or_cut_reply_is_one_clear_error(reply, said):
    from labctl.errors import LabctlError

    address, server = one_reply_server(reply)
    try:
        with pytest.raises(LabctlError, match=said) as caught:
            ServedClock(address).now()
    finally:
        server.join(JOIN_S)
    assert address in str(caught.value)


def test_a_clock_with_no_server_or_a_remote_address_is_refused():
    import socket

    from labctl.errors import LabctlError

    with pytest.raises(LabctlError, match="expected '127.0.0.1:PORT'"):
        ServedClock("example.org:4000")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    with pytest.raises(LabctlError, match="is `labctl sim serve` still running"):
        ServedClock(f"127.0.0.1:{port}").now()  # nobody listens there any more


def test_the_control_socket_holds_releases_and_says_when_a_client_waits(world):
    """The requests a test sends (``RemoteWorldClock``), carried out on a served world's
    control socket, and what a world without a served clock answers."""
    from labctl.servesim import fault_request

    clock = WorldClock()
    assert clock_request(clock, ["hold", "5"]) == "ok holding at 5.0"
    assert clock_request(clock, ["held", "0"]) == "ok running 0.0"  # nobody waits yet
    waiter = threading.Thread(target=clock.client_sleep, args=(10.0,))
    waiter.start()
    assert clock_request(clock, ["held", str(JOIN_S)]) == "ok held 5.0"
    assert clock_request(clock, ["release"]) == "ok released"
    waiter.join(JOIN_S)
    assert clock.now() == 10.0
    assert fault_request(world.faults, "clock now", world=None) == "error no world here"
    assert "runs on VirtualClock" in fault_request(world.faults, "clock now", world=world)
    assert fault_request(world.faults, "tick").startswith("error unknown request 'tick'")
