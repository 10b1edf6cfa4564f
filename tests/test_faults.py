"""Injected faults (world.faults), observed through the real drivers: in-process and through
`labctl sim serve` + `labctl sim fault`. Clearing a fault restores normal operation."""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest
import yaml
from served import served_world, station_with_options  # tests/ is on sys.path

from labctl.drivers.esp301 import ESPControllerError
from labctl.drivers.eurotherm import FurnaceInterlock
from labctl.errors import CommunicationError, LabctlError
from labctl.simulators.faults import FaultError
from labctl.station import Station, station_path

#: One query per instrument role, through its driver.
QUERIES = {
    "lockin_pump": lambda inst: inst.read_xy(),
    "lockin_ref": lambda inst: inst.read_xy(),
    "furnace": lambda inst: inst.temperature_c,
    "power_meter": lambda inst: inst.power_w,
    "stages": lambda inst: inst.sampling.delay_ps,
    "spectrometer": lambda inst: float(np.mean(inst.acquire())),
}


def _works(station, role) -> None:
    value = QUERIES[role](station[role])
    assert np.all(np.isfinite(value))


# --- the board ------------------------------------------------------------------------------


def test_board_knows_the_station_roles_and_tracks_active_faults(sim_station):
    faults = sim_station.world.faults
    assert faults.roles == sorted(sim_station.instruments)
    assert faults.active("furnace") == frozenset()
    faults.inject("furnace", "silent")
    faults.inject("furnace", "sensor_break")
    faults.inject("lockin_pump", "garbled")
    assert faults.active("furnace") == frozenset({"silent", "sensor_break"})
    assert isinstance(faults.active("furnace"), frozenset)
    faults.clear("furnace", "silent")
    assert faults.active("furnace") == frozenset({"sensor_break"})
    faults.clear("furnace")
    assert faults.active("furnace") == frozenset()
    assert faults.active("lockin_pump") == frozenset({"garbled"})
    faults.clear()
    assert faults.summary() == {}


@pytest.mark.parametrize(
    ("role", "kind", "options", "message"),
    [
        ("furnace", "melted", {}, "unknown fault kind 'melted'"),
        ("laser", "silent", {}, "no simulated instrument 'laser'"),
        ("lockin_ref", "sensor_break", {}, "lockin_ref: cannot inject 'sensor_break'"),
        ("furnace", "stage_stall", {}, "furnace: cannot inject 'stage_stall'"),
        ("stages", "stage_stall", {"axis": 4}, "axis must be 1..3, got 4"),
        ("stages", "silent", {"axis": 1}, "takes no options"),
        ("lockin_ref", "late", {"delay_s": 0.3}, "lockin_ref: cannot inject 'late'"),
        ("furnace", "late", {}, "late takes delay_s=SECONDS only"),
        ("furnace", "late", {"delay_s": float("nan")}, r"delay_s must be in \(0, 10\] s"),
        ("furnace", "late", {"delay_s": 0.0}, r"delay_s must be in \(0, 10\] s"),
    ],
)
def test_board_refuses_what_it_cannot_do(sim_station, role, kind, options, message):
    faults = sim_station.world.faults
    with pytest.raises(FaultError, match=message):
        faults.inject(role, kind, **options)
    assert faults.summary() == {}
    assert isinstance(FaultError("x"), LabctlError)  # the CLI prints it as one line


def test_late_fault_over_the_control_socket_protocol(sim_station):
    from labctl.servesim import fault_request

    faults = sim_station.world.faults
    assert fault_request(faults, "inject furnace late delay_s=0.25") == "ok furnace: late injected"
    assert faults.reply_delay_s("furnace") == 0.25
    assert fault_request(faults, "inject furnace late delay_s=x").startswith("error bad option")
    assert fault_request(faults, "clear furnace late") == "ok cleared 1 fault(s)"
    assert faults.reply_delay_s("furnace") == 0.0


# --- in-process ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["silent", "garbled", "disconnect"])
@pytest.mark.parametrize("role", sorted(QUERIES))
def test_link_fault_is_a_communication_error_naming_the_instrument(request, role, kind):
    # the furnace's link tries once: each retry only waits out the reply horizon
    sim_station = request.getfixturevalue("one_try_station" if role == "furnace" else "sim_station")
    faults = sim_station.world.faults
    _works(sim_station, role)
    faults.inject(role, kind)
    with pytest.raises(CommunicationError) as err:
        QUERIES[role](sim_station[role])
    assert err.value.instrument == role
    assert str(err.value).startswith(f"{role}: ")
    assert "\n" not in str(err.value)
    other = "lockin_ref" if role != "lockin_ref" else "power_meter"
    _works(sim_station, other)  # a fault is on one instrument only
    faults.clear(role)
    _works(sim_station, role)


def test_garbled_reply_is_corrupted_not_dropped(sim_station):
    """Garbled text replies keep their terminator (framing survives) but not their bytes."""
    handler = sim_station.simulators["lockin_ref"]
    clean = handler.respond(b"*IDN?\n")
    sim_station.world.faults.inject("lockin_ref", "garbled")
    noisy = handler.respond(b"*IDN?\n")
    assert noisy.endswith(b"\n") and len(noisy) == len(clean)
    assert noisy != clean
    assert any(b & 0x80 for b in noisy)


def test_silent_instrument_does_not_act_on_commands(sim_station):
    lockin = sim_station["lockin_ref"]
    lockin.sensitivity = 0.1
    sim_station.world.faults.inject("lockin_ref", "silent")
    lockin.sensitivity = 0.2  # a write expects no reply: nothing to notice yet
    with pytest.raises(CommunicationError):
        lockin.sensitivity  # noqa: B018
    sim_station.world.faults.clear()
    assert lockin.sensitivity == pytest.approx(0.1)


def test_sensor_break_trips_the_furnace_interlock(sim_station):
    furnace = sim_station["furnace"]
    world = sim_station.world
    furnace.check_interlocks()
    world.faults.inject("furnace", "sensor_break")
    assert world.furnace.sensor_broken
    assert furnace.sensor_broken
    with pytest.raises(FurnaceInterlock, match="furnace: sensor break"):
        furnace.check_interlocks()
    world.faults.clear("furnace")
    assert not world.furnace.sensor_broken
    sim_station.clock.sleep(10.0)  # the input filter settles on the real temperature again
    reading = furnace.check_interlocks()
    assert reading["temperature_c"] == pytest.approx(world.furnace.ambient_c, abs=2.0)


def test_sensor_break_survives_reconfiguring_the_world(sim_station):
    world = sim_station.world
    world.faults.inject("furnace", "sensor_break")
    world.configure(ambient_c=22.0)  # rebuilds the furnace plant
    assert world.furnace.sensor_broken
    world.faults.clear()
    assert not world.furnace.sensor_broken


def test_stage_stall_is_a_controller_error_and_the_stage_stops_short(sim_station):
    stages = sim_station["stages"]
    sim_station.world.faults.inject("stages", "stage_stall", axis=2)
    start = stages.pump.position_mm
    with pytest.raises(ESPControllerError) as err:
        stages.pump.move_to_ps(2.0)
    assert err.value.codes == [203]  # axis 2, FOLLOWING ERROR THRESHOLD EXCEEDED
    assert "FOLLOWING ERROR" in str(err.value) and str(err.value).startswith("stages: ")
    target = stages.pump.mm_for_delay(2.0)
    assert stages.pump.position_mm == pytest.approx((start + target) / 2, abs=1e-4)
    stages.sampling.move_to_ps(1.0)  # the other axes still move
    assert stages.sampling.delay_ps == pytest.approx(1.0, abs=1e-3)
    sim_station.world.faults.clear("stages")
    stages.pump.move_to_ps(2.0)
    assert stages.pump.delay_ps == pytest.approx(2.0, abs=1e-3)
    assert stages.controller.read_errors() == []


def test_stage_stall_is_caught_on_a_tds_step(sim_station):
    """A 0.05 ps step (7.5 µm) that stalls half-way is still reported."""
    sampling = sim_station["stages"].sampling
    sampling.move_to_ps(1.0)
    sim_station.world.faults.inject("stages", "stage_stall", axis=1)
    with pytest.raises(ESPControllerError, match="axis 1 error 103"):
        sampling.move_to_ps(1.05)


def test_stage_stall_without_axis_stalls_every_axis(sim_station):
    stages = sim_station["stages"]
    sim_station.world.faults.inject("stages", "stage_stall")
    for stage in (stages.sampling, stages.pump):
        with pytest.raises(ESPControllerError, match="FOLLOWING ERROR"):
            stage.move_to_ps(1.5)


# --- through `labctl sim serve` and `labctl sim fault` --------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One ``labctl sim serve`` for this module; yields its station file."""
    with served_world(tmp_path_factory.mktemp("served"), 100) as server:
        yield server.station


def fault_cli(station_file, *args) -> str:
    """`labctl sim fault --station FILE ARGS…` in this process; returns its one output line."""
    import contextlib
    import io

    from labctl.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["sim", "fault", "--station", str(station_file), *args])
    text = (stdout.getvalue() + stderr.getvalue()).strip()
    assert code == 0, text
    assert len(text.splitlines()) == 1, text
    return text


@pytest.fixture
def served_station(served):
    fault_cli(served, "--clear")
    station = Station.from_file(served)
    yield station
    station.close()
    fault_cli(served, "--clear")


@pytest.mark.tcp
def test_written_station_names_the_control_socket(served):
    data = yaml.safe_load(served.read_text())
    host, port = data["sim_control"].split(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert fault_cli(served, "--status") == "{}"


@pytest.mark.tcp
@pytest.mark.parametrize(
    ("role", "kind"),
    [
        ("lockin_pump", "silent"),
        ("lockin_ref", "garbled"),
        ("power_meter", "garbled"),
        ("furnace", "garbled"),
        ("furnace", "silent"),
        ("stages", "disconnect"),
        ("furnace", "disconnect"),
        ("spectrometer", "garbled"),
        ("spectrometer", "silent"),
        ("spectrometer", "disconnect"),
    ],
)
def test_served_link_fault_is_a_communication_error(
    served, served_station, request, tmp_path, role, kind
):
    station = served_station
    if role == "furnace":  # a link that tries once: each retry only waits out the 1 s horizon
        station = Station.from_file(
            station_with_options(served, tmp_path / "one-try.yaml", role, retries=0)
        )
        request.addfinalizer(station.close)
    inst = station[role]
    if role.startswith("lockin") or role == "power_meter":
        inst.adapter.connection.timeout = 300  # ms: a silent instrument fails fast
    elif role == "stages":  # and a closed socket: pyvisa-py reads it until the timeout
        inst.controller.adapter.connection.timeout = 300
    _works(station, role)
    assert fault_cli(served, role, kind) == f"{role}: {kind} injected"
    assert fault_cli(served, "--status") == f'{{"{role}": ["{kind}"]}}'
    with pytest.raises(CommunicationError) as err:
        QUERIES[role](inst)
    assert err.value.instrument == role
    assert fault_cli(served, "--clear", role) == "cleared 1 fault(s)"
    if kind == "disconnect":  # the old link is gone for good; a new one works
        fresh = Station.from_file(served)
        try:
            _works(fresh, role)
        finally:
            fresh.close()
    else:
        _works(station, role)


@pytest.mark.tcp
def test_served_disconnect_refuses_new_clients_until_cleared(served, served_station):
    data = yaml.safe_load(served.read_text())
    address = data["instruments"]["lockin_ref"]["address"]  # TCPIP0::127.0.0.1::PORT::SOCKET
    port = int(address.split("::")[2])
    fault_cli(served, "lockin_ref", "disconnect")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.settimeout(5)
        sock.sendall(b"*IDN?\n")
        assert sock.recv(100) == b""  # closed by the instrument: no reply, ever
    fault_cli(served, "--clear")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.settimeout(5)
        sock.sendall(b"*IDN?\n")
        assert sock.recv(100).startswith(b"Stanford_Research_Systems,SR830")


@pytest.mark.tcp
def test_served_sensor_break_and_stage_stall(served, served_station):
    furnace, stages = served_station["furnace"], served_station["stages"]
    furnace.check_interlocks()
    assert fault_cli(served, "furnace", "sensor_break") == "furnace: sensor_break injected"
    assert furnace.sensor_broken
    with pytest.raises(FurnaceInterlock, match="sensor break"):
        furnace.check_interlocks()
    assert fault_cli(served, "stages", "stage_stall", "--axis", "2") == (
        "stages: stage_stall injected"
    )
    with pytest.raises(ESPControllerError) as err:
        stages.pump.move_to_ps(1.0)
    assert err.value.codes == [203]
    assert fault_cli(served, "--clear") == "cleared 2 fault(s)"
    assert not furnace.sensor_broken
    stages.pump.move_to_ps(1.0)
    assert stages.pump.delay_ps == pytest.approx(1.0, abs=1e-3)


@pytest.mark.tcp
def test_sim_fault_errors_are_one_line(served, tmp_path):
    def run(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "labctl.cli", "sim", "fault", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return proc.returncode, proc.stderr.strip()

    code, err = run("--station", str(served), "laser", "silent")
    assert code == 1
    assert err.startswith("labctl sim: error: no simulated instrument 'laser' (roles: furnace,")
    assert len(err.splitlines()) == 1
    code, err = run("--station", str(served), "furnace", "melted")
    assert code == 1 and "unknown fault kind 'melted'" in err and len(err.splitlines()) == 1
    plain = tmp_path / "plain.yaml"  # a valid station that no 'sim serve' wrote
    plain.write_text(station_path("sim").read_text())
    code, err = run("--station", str(plain), "furnace", "silent")
    assert code == 2 and "no sim_control address" in err and len(err.splitlines()) == 1
    data = yaml.safe_load(served.read_text())
    gone = tmp_path / "gone.yaml"
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    data["sim_control"] = f"127.0.0.1:{free_port}"
    gone.write_text(yaml.safe_dump(data))
    code, err = run("--station", str(gone), "--clear")
    assert code == 1 and "is `labctl sim serve` still running?" in err


@pytest.mark.tcp
def test_remote_fault_board_has_the_boards_api(served, served_station):
    from labctl.servesim import RemoteFaultBoard

    faults = RemoteFaultBoard.from_station_file(served)
    faults.inject("power_meter", "silent")
    faults.inject("stages", "stage_stall", axis=1)
    assert faults.active("power_meter") == frozenset({"silent"})
    assert faults.active("furnace") == frozenset()
    meter = served_station["power_meter"]
    meter.adapter.connection.timeout = 300
    with pytest.raises(CommunicationError, match="power_meter"):
        meter.power_w  # noqa: B018
    with pytest.raises(FaultError, match="unknown fault kind 'melted'"):
        faults.inject("furnace", "melted")
    faults.clear("power_meter")
    assert meter.power_w > 0
    assert faults.summary() == {"stages": ["stage_stall"]}
    faults.clear()
    assert faults.summary() == {}
