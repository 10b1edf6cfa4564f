"""SeriesRunner in-process on the simulated station (virtual time): failure policies,
the furnace's safe state, the catalog and the report of a series that did not go to plan."""

import json

import pytest

from labctl.drivers.eurotherm import ProgramStatus
from labctl.series.catalog import Catalog
from labctl.series.plan import load_plan
from labctl.series.report import write_report
from labctl.series.runner import SeriesError, SeriesRunner

PLAN = """\
name: policy
sample: P
slots: [1, 2]
temperatures_c: [250, 300]
anneal: {record_interval_s: 120}
measurements:
  - absorption: {averages: 2}
retries: 0
on_failure: POLICY
"""


def plan_file(tmp_path, policy):
    path = tmp_path / f"{policy}.yaml"
    path.write_text(PLAN.replace("POLICY", policy))
    return load_plan(path)


def sensor_break_in_first_dwell(station):
    """An on_event hook: the thermocouple opens in film 1's dwell, is mended after that step."""
    state = {"injected": False}

    def on_event(what, info):
        step = info.get("step")
        if step is None or step.index != 0:
            return
        if what == "results" and info["record"]["segment"] == 2 and not state["injected"]:
            station.world.faults.inject("furnace", "sensor_break")
            state["injected"] = True
        elif what == "step-end" and state["injected"]:
            station.world.faults.clear("furnace")

    return on_event, state


@pytest.mark.slow
def test_next_film_skips_the_failed_film_and_goes_on(sim_station, tmp_path):
    plan = plan_file(tmp_path, "next-film")
    on_event, state = sensor_break_in_first_dwell(sim_station)
    out = tmp_path / "series"
    runner = SeriesRunner(plan, out, sim_station, on_event=on_event)
    outcome = runner.run()
    runner.catalog.close()
    assert state["injected"]
    assert (outcome.state, outcome.done, outcome.failed, outcome.skipped) == (
        "done-with-failures",
        2,
        1,
        1,
    )
    with Catalog.in_directory(out) as catalog:
        steps = catalog.steps()
        events = catalog.events()
    assert [s["state"] for s in steps] == ["failed", "skipped", "done", "done"]
    assert "sensor break" in steps[0]["message"]
    assert "an earlier step of P-250C failed" in steps[1]["message"]
    assert any("next film" in e["message"] and e["level"] == "error" for e in events)
    # the failed anneal's rows are kept
    assert (out / steps[0]["run_file"]).read_text().count("\n") > 10
    # the report: the failed film's row is null where not measured
    write_report(out)
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert [r["temperature_c"] for r in rows] == [250.0, 300.0]
    assert rows[0]["hh_peak_nm"] is None and rows[1]["hh_peak_nm"] > 500
    assert "sensor break" in (out / "report.html").read_text()


@pytest.mark.slow
def test_stop_policy_stops_with_the_furnace_safe(sim_station, tmp_path):
    plan = plan_file(tmp_path, "stop")
    on_event, _ = sensor_break_in_first_dwell(sim_station)
    out = tmp_path / "series"
    runner = SeriesRunner(plan, out, sim_station, on_event=on_event)
    outcome = runner.run()
    runner.catalog.close()
    assert outcome.state == "stopped"
    assert "sensor break" in outcome.message
    with Catalog.in_directory(out) as catalog:
        series = catalog.series()
        assert [s["state"] for s in catalog.steps()] == ["failed", "pending", "pending", "pending"]
    assert series["state"] == "stopped" and "sensor break" in series["message"]
    furnace = sim_station["furnace"]
    assert furnace.program_status == ProgramStatus.RESET
    assert furnace.setpoint_c == pytest.approx(furnace.safe_setpoint_c)


def test_a_used_directory_needs_resume_and_resume_needs_a_series(sim_station, tmp_path):
    plan = plan_file(tmp_path, "stop")
    with pytest.raises(SeriesError, match="no series to resume"):
        SeriesRunner(plan, tmp_path / "empty", sim_station, resume=True)
    runner = SeriesRunner(plan, tmp_path / "s", sim_station)
    runner.catalog.close()
    with pytest.raises(SeriesError, match="already holds a series"):
        SeriesRunner(plan, tmp_path / "s", sim_station)
    changed = tmp_path / "changed.yaml"
    changed.write_text(PLAN.replace("POLICY", "stop").replace("[250, 300]", "[250, 310]"))
    with pytest.raises(SeriesError, match="differs from the plan this series started with"):
        SeriesRunner(load_plan(changed), tmp_path / "s", sim_station, resume=True)
    # allowed: but a recorded step may not change its temperature
    with pytest.raises(SeriesError, match="not in the changed plan at the same place"):
        SeriesRunner(
            load_plan(changed), tmp_path / "s", sim_station, resume=True, allow_changed_plan=True
        )


@pytest.mark.slow
def test_sigterm_stops_between_points_with_the_furnace_safe(tmp_path):
    """A polite kill (SIGTERM) aborts the running step within a second: exit 143 (128 +
    SIGTERM), catalog 'aborted', the rows kept, the furnace's safe state reported; the
    station file is found beside the plan."""
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "plans").mkdir()
    plan = tmp_path / "plans" / "p.yaml"
    plan.write_text(PLAN.replace("POLICY", "stop") + "station: here.yaml\n")
    from labctl.station import station_path

    (tmp_path / "plans" / "here.yaml").write_text(station_path("sim").read_text())
    out = tmp_path / "series"
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "series", "run", str(plan), "--out", str(out)]
        + ["--time-scale", "3000", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        rows = 0
        while rows < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
            runs = list((out / "runs").glob("anneal_*.csv")) if (out / "runs").exists() else []
            rows = sum(1 for line in runs[0].open() if line[:1].isdigit()) if runs else 0
        assert rows >= 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    with Catalog.in_directory(out) as catalog:
        series = catalog.series()
        steps = catalog.steps()
    assert series["state"] == "aborted"
    assert steps[0]["state"] == "failed" and "stopped" in steps[0]["message"]
    assert steps[0]["results"]["ended_by"] == "aborted"
    assert [s["state"] for s in steps[1:]] == ["pending"] * 3
    assert sum(1 for line in (out / steps[0]["run_file"]).open() if line[:1].isdigit()) >= rows
    assert "here.yaml" in series["station"]
    with Catalog.in_directory(out) as catalog:
        events = [e["message"] for e in catalog.events()]
    assert any(m.startswith("furnace safe state") and "NOT" not in m for m in events), events


def test_summary_shows_a_null_tds_as_not_significant_and_no_excitonic_gap(tmp_path):
    """Issue 16, item 8: a film whose Δσ is not significant shows that (not noise values
    like τ 918 ± 16 738 fs); a Tauc fit of an excitonic spectrum is not shown as a gap."""
    import json as _json

    from rich.console import Console

    from labctl.series.report import print_summary, summary_rows

    null_fit = {"significant": False, "tau_fs": None, "tau_fs_err": None, "model": None,
                "fit_of_noise": {"tau_fs": 918.0, "tau_fs_err": 16738.0}}  # fmt: skip
    steps = [
        {"sample_id": "NPL", "temperature_c": None, "state": "done", "kind": "tds",
         "results": {"fit": null_fit, "sweeps": 4}},
        {"sample_id": "NPL", "temperature_c": None, "state": "done", "kind": "absorption",
         "results": {"hh_nm": 512.0, "tauc_gap_ev": None, "tauc": {"gap_eV": 2.6, "is_gap": False}}},
    ]  # fmt: skip
    (row,) = summary_rows(steps)
    assert row["tds_significant"] is False and row["tau_fs"] is None
    assert row["tauc_gap_ev"] is None and row["hh_peak_nm"] == 512.0
    (tmp_path / "summary.json").write_text(
        _json.dumps({"series": "s", "state": "done", "rows": [row]})
    )
    console = Console(record=True, width=200)
    print_summary(tmp_path, console)
    text = console.export_text()
    assert "not significant" in text and "918" not in text and "2.6" not in text
