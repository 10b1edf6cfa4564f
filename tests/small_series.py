"""One small finished series (one film: anneal, absorption, OPTP, THz-TDS) on the simulated
station at virtual time — the directory the watch page, notification and report tests read."""

from __future__ import annotations

from pathlib import Path

PLAN = """\
name: night-test
sample: W
slots: [1]
temperatures_c: [300]
anneal: {ramp_c_per_min: 20, dwell_min: 10, cool_min: 30, record_interval_s: 120}
measurements:
  - absorption: {averages: 2}
  - optp: {sweeps: 1, step_near_ps: 0.2, step_far_ps: 1.0, stop_ps: 6.0}
  - tds: {step_ps: 0.1, t_start_ps: -2.0, t_stop_ps: 8.0, min_sweeps: 2, max_sweeps: 2}
retries: 0
on_failure: stop
# the analysis-test table (tests/quiet_table.py): the report and watch tests read a fitted
# τ, c, N, which a real table's floor does not give in 2 sweeps
simulation: {noise_floor_v_per_rthz: 2.5e-9}
"""


def write_plan(directory: Path) -> Path:
    path = directory / "night-test.yaml"
    path.write_text(PLAN)
    return path


def run_small_series(out: Path) -> Path:
    """Run the plan into ``out`` (with its report) and return ``out``."""
    from labctl.series.plan import load_plan
    from labctl.series.report import write_report
    from labctl.series.runner import SeriesRunner
    from labctl.series.station_fit import plan_station_spec
    from labctl.station import Station

    out.mkdir(parents=True, exist_ok=True)
    plan = load_plan(write_plan(out.parent))
    with Station(plan_station_spec(plan, "sim"), time_scale="virtual") as station:
        runner = SeriesRunner(plan, out, station)
        outcome = runner.run()
        runner.catalog.close()
    assert outcome.state == "done", outcome
    write_report(out)
    return out
