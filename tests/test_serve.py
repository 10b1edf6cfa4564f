"""`labctl sim serve` in a subprocess: the fixed interface, and unmodified clients over TCP."""

import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.tcp


@pytest.fixture
def served(tmp_path):
    out = tmp_path / "served.yaml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labctl.cli",
            "sim",
            "serve",
            "--time-scale",
            "100",
            "--write-station",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.strip() == "ready":
            break
    if lines[-1:] != ["ready"]:
        proc.kill()
        pytest.fail(f"sim serve did not get ready: {lines} {proc.stderr.read()}")
    yield proc, lines[:-1], out
    if proc.poll() is None:
        proc.kill()
        proc.wait()


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
