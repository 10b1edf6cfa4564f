"""``labctl run KIND``: options generated from Parameters, exit codes, summary, data on disk."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from killing import sigkill_when
from pymeasure.experiment import (
    BooleanParameter,
    FloatParameter,
    IntegerParameter,
    ListParameter,
    Parameter,
    Results,
)

from labctl.cli import main
from labctl.procedures import PROCEDURES
from labctl.procedures.anneal import Anneal
from labctl.procedures.base import StationProcedure


class Toy(StationProcedure):
    """A procedure with one Parameter of each kind (for the generic option code)."""

    KIND = "toy"
    flag = BooleanParameter("A flag", default=False)
    mode = ListParameter("Mode", choices=["fast", "slow"], default="fast")
    count = IntegerParameter("Rows", minimum=1, maximum=5, default=2)
    gain = FloatParameter("Gain", units="V", minimum=0, maximum=10, default=1.5)
    label = Parameter("Label", default="x")
    interrupt_at = IntegerParameter("Ctrl-C before row", minimum=-1, maximum=5, default=-1)
    crash = BooleanParameter("Fail with a bug after the rows", default=False)
    DATA_COLUMNS = ["index", "gain", "mode"]

    def execute(self):
        for i in range(self.count):
            if i == self.interrupt_at:
                raise KeyboardInterrupt
            self.emit("results", {"index": i, "gain": self.gain, "mode": self.mode})
            self.progress((i + 1) / self.count)
        if self.crash:
            {}["missing"]  # a bug, not a LabctlError


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(PROCEDURES, "toy", f"{__name__}:Toy")


def run(*argv):
    return main(["run", *argv])


def data_files(directory):
    return sorted(directory.glob("*.csv"))


def test_anneal_in_process(tmp_path, capsys):
    out = tmp_path / "runs"
    rc = run(
        "anneal", "--time-scale", "virtual", "--slot", "1", "--anneal-c", "300",
        "--record-interval-s", "300", "--sample-id", "NPL 4", "--quiet", "--out", str(out),
    )  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    lines = captured.out.splitlines()
    assert lines[0].startswith("anneal 300 °C: max PV 30") and "min within ±2 °C" in lines[0]
    (path,) = data_files(out)
    assert path.name.startswith("anneal_NPL-4_") and str(path) in lines[1]
    data = pd.read_csv(path, comment="#")
    assert len(data) > 40 and data["temperature_c"].max() > 299.0
    loaded = Results.load(str(path), procedure_class=Anneal)
    assert len(loaded.data) == len(data)
    assert loaded.procedure.anneal_c == 300.0 and loaded.procedure.sample_id == "NPL 4"
    summary = json.loads(path.with_suffix(".json").read_text())
    assert summary["status"] == "finished" and summary["results"]["ended_by"] == "ready"
    assert summary["parameters"]["station_file"] == "sim"


def test_absorption_in_process(tmp_path, capsys):
    rc = run("absorption", "--time-scale", "virtual", "--slot", "1", "--averages", "2",
             "--quiet", "--out", str(tmp_path))  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith("absorption slot 1: HH exciton 51")
    (path,) = data_files(tmp_path)
    assert len(pd.read_csv(path, comment="#")) > 1000


def test_help_is_generated_from_the_parameters(capsys):
    assert run("anneal", "--help") == 0
    text = capsys.readouterr().out
    for option in ("--anneal-c", "--dwell-min", "--record-interval-s", "--max-deviation-c",
                   "--slot", "--sample-id", "--station", "--time-scale", "--out"):  # fmt: skip
        assert option in text
    # the range this station's furnace allows (max_setpoint_c 400), not the procedure's
    assert "Anneal temperature, °C; 0…400 (this station) (default 300)" in " ".join(text.split())
    assert "degC" not in text and "1200" not in text


def test_help_shows_the_ranges_of_the_station_given(capsys, tmp_path):
    """--station before --help: that station's limits (here a furnace that stops at 250)."""
    from labctl.station import station_path

    text = station_path("sim").read_text()
    assert "max_setpoint_c: 400.0" in text and "n_slots: 9" in text
    station = tmp_path / "cool.yaml"
    station.write_text(text.replace("max_setpoint_c: 400.0", "max_setpoint_c: 250.0")
                       .replace("n_slots: 9", "n_slots: 4"))  # fmt: skip
    assert run("anneal", "--station", str(station), "--help") == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "Anneal temperature, °C; 0…250 (this station)" in help_text
    assert "Sample slot; 0…3 (this station)" in help_text


def test_help_shows_the_target_syntax_and_no_sentinel_bounds(capsys):
    assert run("tds", "--help") == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "NAME_err=VALUE[,NAME_err=VALUE…], e.g. tau_fs_err=0.5,c_err=0.01" in text
    assert "1e+09" not in text and "1e+06" in text  # one-sided: '≥ 0.001', not '0.001…1e+09'
    assert "Gate step, ps; ≥ 0.001" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dwell-min", "-3"], "--dwell-min -3.0: must be a finite number in 0…1440 min"),
        (["--anneal-c", "hot"], "invalid float value: 'hot'"),
        (["--time-scale", "fast"], "'virtual', 'real' or a speed-up factor"),
        # issue 15 item 3: NaN, infinity, internal knobs, cross-field rules, the blank slot
        (["--max-deviation-c", "nan"], "--max-deviation-c nan: must be a finite number"),
        (["--record-interval-s", "inf"], "--record-interval-s inf: must be a finite number"),
        (["--time-scale", "1e300"], "'virtual', 'real' or a speed-up factor in (0, 1e+07]"),
        (["--slot", "0"], "--slot 0: slot 0 is the blank reference"),
        (["--continue-program"], "unrecognized arguments: --continue-program"),
        (["--dwell-done-min", "nan"], "unrecognized arguments: --dwell-done-min"),
        (["--bogus", "1"], "unrecognized arguments: --bogus"),
        ([], "the following arguments are required: --out"),
    ],
)
def test_bad_options_exit_2(tmp_path, capsys, argv, message):
    """Refused before anything moves or is written, one line naming the option."""
    out = [] if not argv else ["--out", str(tmp_path)]
    assert run("anneal", *argv, *out) == 2
    assert message in capsys.readouterr().err
    assert data_files(tmp_path) == []


def test_unknown_kind_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        run("xrd", "--out", "x")
    assert exc.value.code == 2
    assert "invalid choice: 'xrd'" in capsys.readouterr().err


def test_refused_recipe_exits_1_with_one_line(tmp_path, capsys):
    rc = run("anneal", "--time-scale", "virtual", "--anneal-c", "450", "--quiet",
             "--out", str(tmp_path))  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 1
    (line,) = [ln for ln in captured.err.splitlines() if ln.startswith("labctl run")]
    assert line == (
        "labctl run anneal: failed: furnace: anneal temperature 450 °C exceeds "
        "max_setpoint_c = 400 °C; nothing was written"
    )
    assert "Traceback" not in captured.err
    assert "data kept:" in captured.out


def test_every_kind_of_parameter_becomes_an_option(tmp_path, capsys, toy):
    rc = run("toy", "--time-scale", "virtual", "--flag", "--mode", "slow", "--count", "4",
             "--gain", "2.5", "--label", "hello", "--quiet", "--out", str(tmp_path))  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    (path,) = data_files(tmp_path)
    data = pd.read_csv(path, comment="#")
    assert list(data["index"]) == [0, 1, 2, 3] and set(data["mode"]) == {"slow"}
    params = json.loads(path.with_suffix(".json").read_text())["parameters"]
    assert params["flag"] is True and params["label"] == "hello" and params["gain"] == 2.5
    assert capsys.readouterr().out.startswith("toy: ")  # the generic summary line
    assert run("toy", "--mode", "medium", "--out", str(tmp_path)) == 2
    assert "invalid choice: 'medium'" in capsys.readouterr().err
    assert run("toy", "--count", "9", "--out", str(tmp_path)) == 2
    assert "--count 9" in capsys.readouterr().err


def test_ctrl_c_aborts_with_130_and_keeps_the_rows(tmp_path, capsys, toy):
    rc = run("toy", "--time-scale", "virtual", "--count", "5", "--interrupt-at", "3",
             "--quiet", "--out", str(tmp_path))  # fmt: skip
    assert rc == 130
    assert "labctl run toy: aborted: interrupted (Ctrl-C)" in capsys.readouterr().err
    (path,) = data_files(tmp_path)
    assert len(pd.read_csv(path, comment="#")) == 3


@pytest.mark.slow
def test_sigkill_mid_anneal_leaves_every_flushed_row(tmp_path):
    cmd = [
        sys.executable, "-m", "labctl.cli", "run", "anneal", "--time-scale", "2000",
        "--slot", "1", "--anneal-c", "300", "--record-interval-s", "30", "--quiet",
        "--out", str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = 0

    def fifteen_rows() -> bool:
        nonlocal seen
        files = data_files(tmp_path)
        if files:
            seen = sum(1 for ln in files[0].read_text().splitlines() if ln and ln[0].isdigit())
        return seen >= 15

    sigkill_when(proc, fifteen_rows, timeout_s=60)
    (path,) = data_files(tmp_path)
    data = pd.read_csv(path, comment="#")
    assert len(data) >= seen
    assert not data.isna().any().any()  # no torn row
    assert len(Results.load(str(path), procedure_class=Anneal).data) == len(data)
    assert not path.with_suffix(".json").exists()  # the run never finished


def test_a_bug_in_a_procedure_is_one_line_and_keeps_the_rows(tmp_path, capsys, toy):
    rc = run("toy", "--time-scale", "virtual", "--count", "2", "--crash", "--quiet",
             "--out", str(tmp_path))  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 1
    assert "labctl run toy: failed: unexpected KeyError: 'missing'" in captured.err
    assert "Traceback" not in captured.err
    (path,) = data_files(tmp_path)
    assert len(pd.read_csv(path, comment="#")) == 2
    assert json.loads(path.with_suffix(".json").read_text())["status"] == "failed"


@pytest.mark.parametrize(
    ("kind", "argv", "message"),
    [
        ("tds", ["--min-sweeps", "10", "--max-sweeps", "2"], "min_sweeps must not exceed max"),
        ("tds", ["--settle-tau", "nan"], "--settle-tau nan: must be a finite number"),
        ("tds", ["--effective-mass", "nan"], "--effective-mass nan: must be a finite number"),
        ("tds", ["--target", "tau_err=3"], "expected NAME_err=VALUE"),
        ("optp", ["--spot-diameter-mm", "0"], "--spot-diameter-mm 0.0: must be a finite number"),
        ("optp", ["--start-ps", "5", "--stop-ps", "1"], "needs stop > start"),
    ],
)
def test_measurements_refuse_nan_and_crossed_limits(tmp_path, capsys, kind, argv, message):
    assert run(kind, *argv, "--out", str(tmp_path)) == 2
    assert message in capsys.readouterr().err
    assert data_files(tmp_path) == []
