"""`labctl sim serve` in a subprocess: the fixed interface, and unmodified clients over TCP."""

import signal

import pytest

pytestmark = pytest.mark.tcp


@pytest.fixture
def served(serve):
    server = serve(100)
    lines = [f"{role} {resource}" for role, resource in server.resources.items()]
    return server.proc, lines, server.station


def test_serve_prints_resources_then_ready_and_stops_on_sigterm(served):
    proc, lines, out = served
    resources = dict(line.split(" ", 1) for line in lines)
    assert set(resources) == {
        "furnace",
        "lockin_ref",
        "lockin_pump",
        "stages",
        "spectrometer",
        "power_meter",
    }
    assert resources["furnace"].startswith("socket://127.0.0.1:")
    assert resources["spectrometer"].startswith("socket://127.0.0.1:")  # USB frames over TCP
    for role in ("lockin_ref", "lockin_pump", "stages", "power_meter"):
        assert resources[role].startswith("TCPIP0::127.0.0.1::")
        assert resources[role].endswith("::SOCKET")
    assert out.exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_written_station_drives_served_simulators_and_world_outlives_client(served):
    from labctl.station import Station

    proc, lines, out = served
    first = Station.from_file(out)
    try:
        assert first.spec.time_scale == 100
        assert "SR830" in first["lockin_ref"].ask("*IDN?")
        first["furnace"].setpoint_c = 123.0
    finally:
        first.close()  # the client "crashes"; the simulated instruments stay as they are
    second = Station.from_file(out)
    try:
        assert second["furnace"].setpoint_c == pytest.approx(123.0)
    finally:
        second.close()


def test_unmodified_third_party_clients_against_sim_serve(served):
    """pymeasure's own drivers, plain pyvisa and minimalmodbus, untouched, over TCP."""
    import minimalmodbus
    import pyvisa
    import serial
    from pymeasure.instruments.newport import ESP300
    from pymeasure.instruments.srs import SR830
    from pymeasure.instruments.thorlabs import ThorlabsPM100USB

    from labctl.transport import visa_options

    _proc, lines, _out = served
    res = dict(line.split(" ", 1) for line in lines)

    lockin = SR830(res["lockin_ref"], **visa_options(res["lockin_ref"]))
    lockin.sensitivity = 0.1
    assert lockin.sensitivity == pytest.approx(0.1)
    assert isinstance(lockin.x, float)
    lockin.adapter.close()

    esp = ESP300(res["stages"], **visa_options(res["stages"]))
    esp.x.position = 51.0
    esp.x.wait_for_stop(interval=0.01)
    assert esp.x.position == pytest.approx(51.0)
    assert esp.error == 0
    esp.adapter.close()

    meter = ThorlabsPM100USB(res["power_meter"], **visa_options(res["power_meter"]))
    meter.wavelength = 400
    assert meter.power > 0
    meter.adapter.close()

    rm = pyvisa.ResourceManager("@py")
    raw = rm.open_resource(res["lockin_pump"], read_termination="\n", write_termination="\r\n")
    assert raw.query("*IDN?").startswith("Stanford_Research_Systems,SR830")
    raw.close()
    rm.close()

    port = serial.serial_for_url(res["furnace"], baudrate=19200, timeout=1.0)
    furnace = minimalmodbus.Instrument(port, 1)
    pv = furnace.read_register(1, 1, signed=True)  # PV, one decimal place
    assert 0.0 < pv < 100.0  # a cold furnace
    port.close()
