"""A lock-in overload is never silent: re-range and repeat the point, record each point's
sensitivity, flag a point that stays overloaded, and say so in the run's summary."""

import pandas as pd
import pytest
from sim_furnace import annealed_station

from labctl.procedures.optp import OPTP
from labctl.procedures.ranging import RangedPair, overload_summary
from labctl.procedures.tds import TDS
from labctl.runs import FINISHED, run_procedure


@pytest.fixture(scope="module")
def station():
    station = annealed_station()
    yield station
    station.close()


def _on_thz_peak(station):
    station["stages"].pump.move_to_ps(-5.0)  # pump blocked: E alone, ~20 mV at the peak
    station["stages"].sampling.move_to_ps(0.0)


def test_an_overloaded_point_is_reranged_and_read_again(station):
    _on_thz_peak(station)
    ref, pump = station["lockin_ref"], station["lockin_pump"]
    ref.sensitivity = 5e-3  # the THz peak (~20 mV) overloads it
    ranged = RangedPair(ref, pump, settle_tau=5.0)
    ranged.forget()
    reading = ranged.read()
    assert reading.reranged and all(r.startswith("lockin_ref → ") for r in reading.reranged)
    assert not reading.overloaded
    assert reading.sens_ref_v == ref.sensitivity >= 0.02  # above the signal now
    assert abs(reading.x_ref_v) < reading.sens_ref_v
    assert reading.x_ref_v == pytest.approx(0.02, rel=0.1)  # not the clipped 5.4 mV


def test_a_point_that_stays_overloaded_is_flagged(station):
    _on_thz_peak(station)
    ref, pump = station["lockin_ref"], station["lockin_pump"]
    ref.sensitivity = 1e-3
    ranged = RangedPair(ref, pump, settle_tau=5.0, max_reranges=1)  # 1 → 2 mV: still over
    ranged.forget()
    reading = ranged.read()
    assert reading.overloaded and reading.overloads[0].startswith("lockin_ref: ")
    columns = reading.columns()
    assert columns["sens_ref_V"] == 2e-3 and columns["overloaded"] == 1
    results = {"overloaded_points": 3}
    overload_summary(results)
    assert "3 points stayed overloaded" in results["warnings"][0]


def test_tds_reranges_mid_scan_and_records_each_points_sensitivity(station, tmp_path):
    """The THz peak given (no search, so no ranging of the reference lock-in) with the
    reference lock-in left on a range the peak overloads: before, every sweep clipped the
    peak and the run ended with a normal summary line."""
    station["lockin_ref"].sensitivity = 10e-3
    path = tmp_path / "tds.csv"
    outcome = run_procedure(
        TDS(
            thz_peak_ps=0.0,
            optp_peak_ps=station.world.optp_peak_delay_ps(),
            t_start_ps=-1.0,
            t_stop_ps=3.0,
            step_ps=0.1,
            max_sweeps=2,
            min_sweeps=1,
        ),
        path,
        station=station,
    )
    assert outcome.status == FINISHED, outcome.message
    r = outcome.results
    frame = pd.read_csv(path, comment="#")
    assert {"sens_ref_V", "sens_pump_V", "overloaded"} <= set(frame.columns)
    # the first overload (parked on the peak) re-ranged from the 10 mV it was left on
    assert r["overloads"][0]["reranged"][0] == "lockin_ref → 0.02 V"
    assert r["reranges"] >= 1 and (frame.sens_ref_V >= 20e-3).all()
    assert frame.overloaded.sum() == 0 == r["overloaded_points"]
    assert (frame.E_ref.abs() < frame.sens_ref_V).all()
    assert frame.E_ref.max() == pytest.approx(0.02, rel=0.1)
    assert "overloaded" not in TDS.summary_line(r)


def test_points_left_overloaded_are_said_in_the_summary_line(station, tmp_path, monkeypatch):
    from labctl.procedures import ranging

    monkeypatch.setattr(ranging, "MAX_RERANGES", 0)  # never re-range: every clip stays
    station["lockin_ref"].sensitivity = 10e-3  # the gate sits on the 20 mV THz peak
    path = tmp_path / "optp.csv"
    outcome = run_procedure(
        OPTP(thz_peak_ps=0.0, start_ps=-0.5, stop_ps=1.0, step_near_ps=0.25, sweeps=1),
        path,
        station=station,
    )
    assert outcome.status == FINISHED, outcome.message
    r = outcome.results
    frame = pd.read_csv(path, comment="#")
    assert frame.overloaded.sum() == len(frame) == r["overloaded_points"] == 7
    assert (frame.sens_ref_V == 10e-3).all()
    assert any("7 points stayed overloaded" in w for w in r["warnings"])
    assert OPTP.summary_line(r).endswith("— 7 points overloaded!")


def test_analyze_and_the_series_row_say_a_run_kept_overloaded_points(tmp_path):
    from labctl.analysis.io import overload_warning
    from labctl.series.report import print_summary, summary_rows

    path = tmp_path / "run.csv"
    path.write_text("sweep,time_ps,E_ref,dE,overloaded\n1,0,1,0,0\n1,0.05,1,0,1\n1,0.1,1,0,1\n")
    assert "2 points of" in overload_warning(path)
    clean = tmp_path / "clean.csv"
    clean.write_text("sweep,time_ps,E_ref,dE,overloaded\n1,0,1,0,0\n")
    assert overload_warning(clean) is None
    step = {"sample_id": "A", "temperature_c": 300.0, "state": "done", "kind": "tds"}
    rows = summary_rows([dict(step, results={"fit": {"tau_fs": 44.0}, "overloaded_points": 5})])
    assert rows[0]["tds_overloaded_points"] == 5
    doc = {"series": "s", "state": "done", "rows": rows}
    (tmp_path / "summary.json").write_text(__import__("json").dumps(doc))
    from rich.console import Console

    console = Console(record=True, width=160)
    print_summary(tmp_path, console=console)
    assert "(5 overloaded!)" in console.export_text()
