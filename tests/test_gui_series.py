"""The GUI's series view follows a series catalog written by another process."""

import sys

import pytest
from series_plans import two_film_plan

from labctl.series.catalog import DONE, FAILED, Catalog
from labctl.series.plan import load_plan

pytest.importorskip("pytestqt")

PLAN = two_film_plan("gui-test")


@pytest.fixture
def series_dir(tmp_path):
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(PLAN)
    out = tmp_path / "series"
    out.mkdir()
    plan = load_plan(plan_path)
    catalog = Catalog.in_directory(out, create=True)
    catalog.initialise(plan, "sim")
    yield plan_path, out, plan, catalog
    catalog.close()


@pytest.fixture
def series_view(qtbot):
    """``series_view(station, time_scale)``: a SeriesView and the list its messages
    (text, is_error) go to; every view made is closed at teardown (closing is idempotent)."""
    from labctl.gui.series_view import SeriesView

    made = []

    def make(station: str = "sim", time_scale: str = "virtual"):
        view = SeriesView(station, time_scale)
        qtbot.addWidget(view)
        messages: list[tuple[str, bool]] = []
        view.message.connect(lambda text, error: messages.append((text, error)))
        made.append(view)
        return view, messages

    yield make
    for view in made:
        view.close_view()


def test_series_view_shows_each_steps_state_as_the_catalog_changes(qtbot, series_dir):
    from labctl.gui.series_view import SeriesView

    plan_path, out, plan, catalog = series_dir
    view = SeriesView("sim", "virtual")
    qtbot.addWidget(view)
    try:
        assert view.load_plan(plan_path)
        assert view.step_states() == ["planned"] * len(plan.steps)
        assert view.table.item(0, 1).text() == plan.steps[0].kind

        catalog.set_series_state("running")
        catalog.start_step(0, str(out / "anneal_1.csv"))
        catalog.end_step(0, DONE, results={"max_pv_c": 301.2})
        catalog.start_step(1, str(out / "optp_1.csv"))
        catalog.event("info", "step 1 started", step=1)
        view.watch(out)
        expected = [DONE, "running"] + ["pending"] * (len(plan.steps) - 2)
        qtbot.waitUntil(lambda: view.step_states() == expected, timeout=10_000)
        assert view.table.item(0, 9).text() == "max PV 301.2 °C"
        assert "series gui-test: running" in view.state_label.text()
        assert "step 1 started" in view.events.toPlainText()

        # the running series moves on (another process writes; the view polls)
        catalog.end_step(1, FAILED, message="lockin_pump: no reply")
        qtbot.waitUntil(lambda: view.step_states()[1] == FAILED, timeout=10_000)
        assert view.table.item(1, 9).text() == "lockin_pump: no reply"
        assert view.table.item(1, 6).text() == "1"  # attempts
    finally:
        view.close_view()


def test_series_view_starts_the_series_command_line_and_reports_problems(
    series_view, series_dir, tmp_path
):
    plan_path, out, _plan, _catalog = series_dir
    view, messages = series_view("stations/served.yaml", "50")
    try:
        view.load_plan(plan_path)
        view.watch(out)
        command = view.command(resume=True)
        assert command[:4] == [sys.executable, "-m", "labctl.cli", "series"]
        assert command[4:] == [
            "run",
            str(plan_path),
            "--out",
            str(out),
            "--station",
            "stations/served.yaml",
            "--time-scale",
            "50",
            "--resume",
            "--quiet",
        ]
        assert not view.open_report()  # none written yet: said, not crashed
        assert messages[-1][1] and "no report" in messages[-1][0]
        (out / "report.html").write_text("<html></html>")
        assert view.report_path() == out / "report.html"
        bad = tmp_path / "bad.yaml"
        bad.write_text("name: x\ntemperatures_c: [hot]\n")
        assert not view.load_plan(bad)
        assert messages[-1][1] and str(bad) in messages[-1][0]
    finally:
        view.close_view()


SHORT_PLAN = """\
name: gui-short
station: sim
sample: NPL
films: per-temperature
slots: [1]
temperatures_c: [300]
anneal: {ramp_c_per_min: 10, dwell_min: 30, cool_min: 120, record_interval_s: 120}
measurements:
  - absorption: {averages: 2}
  - optp: {sweeps: 1, step_near_ps: 0.1, step_far_ps: 1.0, stop_ps: 8.0}
"""


def series_cli_available() -> bool:
    from labctl.cli import SUBCOMMANDS

    return "labctl.cli.series" in SUBCOMMANDS


@pytest.mark.skipif(not series_cli_available(), reason="labctl series is not on this branch")
def test_series_view_runs_a_plan_through_the_command_line_and_makes_its_report(
    qtbot, series_view, tmp_path
):
    plan_path = tmp_path / "short.yaml"
    plan_path.write_text(SHORT_PLAN)
    out = tmp_path / "series"
    view, messages = series_view("sim", "virtual")
    try:
        assert view.load_plan(plan_path)
        view.watch(out)
        assert view.start()
        qtbot.waitUntil(lambda: not view.running, timeout=90_000)
        assert messages[-1] == ("series run ended (exit 0)", False), view.events.toPlainText()
        qtbot.waitUntil(lambda: view.step_states() == ["done"] * 3, timeout=10_000)
        assert "series gui-short: " in view.state_label.text()
        assert view.make_report()
        qtbot.waitUntil(lambda: not view.running, timeout=60_000)
        assert messages[-1] == ("report ended (exit 0)", False), view.events.toPlainText()
        assert view.report_path().exists()
    finally:
        view.close_view()


SLOW_PLAN = SHORT_PLAN.replace("record_interval_s: 120", "record_interval_s: 3600")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["stop", "quit"])
def test_series_stop_and_quit_wait_for_the_safe_state_never_kill(qtbot, series_view, tmp_path, how):
    """Issue 15: the series view killed the runner after 5 s (the furnace program ran on).
    Real time, an hour between rows: Stop (SIGTERM) and Quit wait for the runner's own
    stop path — exit 143, catalog 'aborted', the furnace's safe state reported."""

    plan_path = tmp_path / "slow.yaml"
    plan_path.write_text(SLOW_PLAN)
    out = tmp_path / "series"
    view, messages = series_view("sim", "real")
    try:
        assert view.load_plan(plan_path)
        view.watch(out)
        assert view.start()

        def first_row() -> bool:
            runs = list((out / "runs").glob("anneal_*.csv")) if (out / "runs").exists() else []
            return bool(runs) and any(ln[:1].isdigit() for ln in runs[0].open())

        qtbot.waitUntil(first_row, timeout=90_000)
        if how == "stop":
            view.stop()
            qtbot.waitUntil(lambda: not view.running, timeout=90_000)
        else:
            view.close_view()
            assert not view.running
        assert view.process.exitCode() == 143, view.events.toPlainText()
        assert view.process.exitStatus() == view.process.ExitStatus.NormalExit  # not killed
    finally:
        view.close_view()
    with Catalog.in_directory(out) as catalog:
        assert catalog.series()["state"] == "aborted"
        events = [e["message"] for e in catalog.events()]
    assert any(m.startswith("furnace safe state") and "NOT" not in m for m in events), events
