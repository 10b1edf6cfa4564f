"""The command line: fast help, clear errors, never a bare traceback."""

import subprocess
import sys

import pytest

from labctl.cli import main


def test_help_is_fast_and_lists_commands():
    import resource

    def child_cpu_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    t0 = child_cpu_s()  # CPU time of the child: the bound holds however busy the machine is
    out = subprocess.run(
        [sys.executable, "-m", "labctl.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert child_cpu_s() - t0 < 5.0  # generous: lazy imports keep it ~0.1 s
    for command in ("sim", "analyze", "demo"):
        assert command in out


def test_bad_station_is_one_clear_line(tmp_path, capsys):
    station = tmp_path / "broken.yaml"
    station.write_text("instruments:\n  furnace: {driver: eurotherm2408}\n")
    code = main(["sim", "serve", "--station", str(station)])
    err = capsys.readouterr().err
    assert code == 2
    assert "broken.yaml:2: instruments.furnace: missing required key 'address'" in err
    assert "Traceback" not in err


def test_unexpected_failure_is_reported_not_dumped(monkeypatch, capsys):
    import labctl.cli.demo as demo

    def boom(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(demo, "run", boom)
    assert main(["demo", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "unexpected ZeroDivisionError: division by zero" in err
    assert "-v" in err
    with pytest.raises(ZeroDivisionError):
        main(["-v", "demo", "--quiet"])


@pytest.mark.parametrize("scale", ["inf", "0", "-1", "nan", "fast"])
def test_sim_serve_refuses_impossible_time_scales(scale, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sim", "serve", "--time-scale", scale])
    assert exc.value.code == 2
    assert "--time-scale" in capsys.readouterr().err


def test_sim_serve_refuses_unwritable_station_output_before_serving(tmp_path, capsys):
    code = main(["sim", "serve", "--write-station", str(tmp_path / "missing" / "x.yaml")])
    captured = capsys.readouterr()
    assert code == 2
    assert "not a writable file path" in captured.err
    assert captured.out == ""  # no resource lines: nothing was served
