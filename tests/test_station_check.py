"""``labctl station check FILE``: every instrument connected on its own, identified,
its settings and limits printed; each failure named on one line, non-zero exit."""

from __future__ import annotations

import socket

from labctl.cli import main
from labctl.station import station_path


def test_the_simulated_station_checks_out_with_its_limits(capsys):
    assert main(["station", "check", "sim"]) == 0
    out = capsys.readouterr().out
    for role in ("furnace", "lockin_ref", "lockin_pump", "stages", "spectrometer", "power_meter"):
        assert f"\n{role}: ok (" in out
    assert "    max_setpoint_c: 400" in out and "    max_ramp_c_per_min: 20" in out
    assert "    idn: Stanford_Research_Systems,SR830" in out
    assert "all 6 instruments answered" in out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the block ends: nobody listens


def test_an_unreachable_instrument_is_named_and_the_others_still_checked(tmp_path, capsys):
    text = station_path("sim").read_text()
    port = _closed_port()
    text = text.replace("address: sim://lockin_pump", f"address: TCPIP0::127.0.0.1::{port}::SOCKET")
    station = tmp_path / "wired.yaml"
    station.write_text(text)
    assert main(["station", "check", str(station)]) == 1
    captured = capsys.readouterr()
    failed = [ln for ln in captured.out.splitlines() if ln.startswith("lockin_pump: FAILED")]
    assert len(failed) == 1 and len(failed[0]) <= 200, captured.out
    assert "furnace: ok" in captured.out and "power_meter: ok" in captured.out
    assert "1 of 6 instruments failed: lockin_pump" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_a_missing_station_file_is_one_line_exit_2(tmp_path, capsys):
    assert main(["station", "check", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.yaml" in err[0]
