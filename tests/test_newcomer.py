"""No traps for a newcomer: the simulated station at real pace is announced with its
estimate and the way to virtual time; a driver doing its job is not a warning."""

import logging

import pytest

from labctl.pace import pace_notice, wall_duration
from labctl.station import Station


@pytest.fixture(scope="module")
def sim_real():
    station = Station.from_file("sim", time_scale="real")
    yield station
    station.close()


def test_a_simulated_station_at_real_pace_says_how_long_and_how_to_speed_up(sim_real):
    notice = pace_notice(sim_real, 3 * 3600 + 5 * 60, "this anneal run")
    assert "runs at real time: this anneal run takes about 3 h 05 min" in notice
    assert "--time-scale virtual" in notice


def test_nothing_is_said_at_virtual_time_or_for_a_short_run(sim_real):
    assert pace_notice(sim_real, 60.0, "this absorption run") is None
    with Station.from_file("sim", time_scale="virtual") as virtual:
        assert pace_notice(virtual, 10 * 3600, "this series") is None
    with Station.from_file("sim", time_scale=600) as fast:
        assert pace_notice(fast, 10 * 3600, "this series") is None  # 1 min of wall time
    with Station.from_file("sim", time_scale=60) as faster:
        notice = pace_notice(faster, 10 * 3600, "this series")
        assert "runs at 60× real time: this series takes about 10 min" in notice


def test_labctl_run_says_it_at_start(sim_real, capsys):
    # the private start-up notice itself: `labctl run` at real time would run for hours
    from labctl.cli.run import _say_pace, procedure_parameters
    from labctl.procedures.anneal import Anneal

    _say_pace(sim_real, "anneal", procedure_parameters(Anneal), {"dwell_min": 30.0})
    err = capsys.readouterr().err
    # 25 → 300 °C at 10 °C/min (27.5 min), 30 min dwell, 120 min cooling, 30 min natural
    assert "this anneal run takes about 3 h 28 min" in err
    assert "--time-scale virtual" in err


def test_wall_duration():
    assert [wall_duration(s) for s in (40, 420, 7500)] == ["40 s", "7 min", "2 h 05 min"]


def test_the_furnace_driver_setting_its_rate_limit_is_no_warning(caplog):
    """A fresh controller has no setpoint rate limit; the driver sets one before the
    setpoint (its job): shown with -v, never as a WARNING on a newcomer's screen."""
    with Station.from_file("sim", time_scale="virtual") as station:
        furnace = station["furnace"]
        assert furnace.setpoint_rate_c_per_min == 0  # off, as a controller comes
        with caplog.at_level(logging.INFO, logger="labctl.drivers.eurotherm"):
            furnace.setpoint_c = 50.0
        assert furnace.setpoint_rate_c_per_min == pytest.approx(furnace.max_ramp_c_per_min)
    records = [r for r in caplog.records if "rate limit" in r.getMessage()]
    assert records and all(r.levelno < logging.WARNING for r in records)
    assert "was off; set to 20 °C/min" in records[0].getMessage()


def test_gui_inputs_write_celsius_and_stop_where_the_station_does(qtbot):
    pytest.importorskip("pytestqt")
    from labctl.gui.inputs import ParameterInputs
    from labctl.parameter_limits import station_limits
    from labctl.procedures.anneal import Anneal

    inputs = ParameterInputs(Anneal)
    qtbot.addWidget(inputs)
    inputs.limit_to(station_limits("sim"))
    assert inputs.anneal_c.lineEdit().text() == "300 °C"  # whole: not '3 °C'
    assert inputs.ramp_c_per_min.lineEdit().text() == "10 °C/min"
    inputs.set_value("anneal_c", 250.0)
    assert inputs.values()["anneal_c"] == 250.0
    assert Anneal.anneal_c.units == "degC"  # the procedure (and its run files) keep theirs
    assert inputs.anneal_c.maximum() == 400.0  # the furnace's max_setpoint_c, not 1200
    assert inputs.slot.maximum() == 8  # 9 slots: 0 … 8


def test_labctl_series_run_says_it_at_start(sim_real, capsys):
    # the private start-up notice itself: `labctl series run` at real time runs for hours
    from labctl.cli.demo import demo_plan_path
    from labctl.cli.series_session import _say_pace
    from labctl.series.plan import load_plan

    plan = load_plan(demo_plan_path())
    _say_pace(plan, sim_real)
    err = capsys.readouterr().err
    assert f"this series of {len(plan.steps)} steps takes about" in err and " h " in err
    assert "--time-scale virtual" in err
