"""The series view as an operator uses it overnight: progress with an ETA learned from
the steps that ended, a changed plan shown step by step before a resume, and a series
that ended with warnings said so (not plain success)."""

from datetime import datetime, timedelta

import pytest
from series_plans import two_film_plan

from labctl.gui.series_progress import series_progress
from labctl.run_warnings import finished_text, run_warnings, series_warnings
from labctl.series.catalog import DONE, Catalog
from labctl.series.estimate import step_duration_s
from labctl.series.plan import load_plan
from labctl.series.plan_changes import plan_changes

pytest.importorskip("pytestqt")

PLAN = two_film_plan("night")


@pytest.fixture
def plan(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    return load_plan(path)


def rows(plan, states, started=None, ended=None):
    out = []
    for s, state in zip(plan.steps, states, strict=False):
        out.append({
            "idx": s.index, "kind": s.kind, "temperature_c": s.temperature_c, "slot": s.slot,
            "sample_id": s.sample_id, "params": s.params, "state": state,
            "started": (started or {}).get(s.index), "ended": (ended or {}).get(s.index),
        })  # fmt: skip
    return out


def test_eta_is_learned_from_what_the_finished_steps_took(plan):
    est = [step_duration_s(s) for s in plan.steps]
    t0 = datetime(2026, 1, 1, 20, 0, 0)
    # step 0 took twice its estimate at 100× (pace 0.02 s per estimated s); step 1 runs
    took0 = 2 * est[0] / 100
    started = {0: t0.isoformat(), 1: (t0 + timedelta(seconds=took0)).isoformat()}
    ended = {0: (t0 + timedelta(seconds=took0)).isoformat()}
    states = [DONE, "running"] + ["pending"] * (len(plan.steps) - 2)
    now = t0 + timedelta(seconds=took0 + 0.5 * est[1] * 0.02)  # half of step 1 at that pace
    p = series_progress(rows(plan, states, started, ended), "100", now=now)
    assert p.learned and p.pace == pytest.approx(0.02)
    assert p.step_fraction == pytest.approx(0.5) and p.running_idx == 1
    left = sum(est[1:]) * 0.02 - 0.5 * est[1] * 0.02
    assert p.remaining_s == pytest.approx(left)
    assert p.fraction == pytest.approx((est[0] + 0.5 * est[1]) / sum(est))
    assert "took 0.02× their real-time estimate" in p.text()
    # before any step ended: the time scale's promise, said as such
    waiting = ["running"] + ["pending"] * (len(plan.steps) - 1)
    first = series_progress(rows(plan, waiting, {0: t0.isoformat()}), "100", now=t0)
    assert not first.learned and first.remaining_s == pytest.approx(sum(est) / 100)
    assert "from the time scale" in first.text()


def test_plan_changes_are_listed_step_by_step_with_the_runners_rule(plan, tmp_path):
    recorded = rows(plan, [DONE] + ["pending"] * (len(plan.steps) - 1))
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        PLAN.replace("max_sweeps: 4", "max_sweeps: 8").replace("[250, 300]", "[250, 300, 350]")
        .replace("slots: [1, 2]", "slots: [1, 2, 3]")
    )  # fmt: skip
    changes = plan_changes(recorded, load_plan(changed))
    assert changes.refused is None
    tds = [line for line in changes.lines if "tds" in line and "max_sweeps" in line]
    assert tds and all("max_sweeps 4 → 8" in line for line in tds)
    assert any(line.endswith("added") and "350 °C" in line for line in changes.lines)
    reordered = tmp_path / "reordered.yaml"
    reordered.write_text(PLAN.replace("[250, 300]", "[300, 250]"))
    refused = plan_changes(recorded, load_plan(reordered))
    assert refused.refused and "step 0" in refused.refused


def test_warnings_make_it_finished_with_warnings():
    assert run_warnings({"fit": {"warnings": [], "converged": True}}) == []
    w = run_warnings({
        "overloads": [{"sweep": 1}, {"sweep": 2}],
        "fit": {"warnings": ["ΔE is not significant against the noise (p = 0.3)"]},
    })  # fmt: skip
    assert w[0] == "lock-in overloads in 2 sweep(s)" and "not significant" in w[1]
    assert finished_text(w).startswith("finished with warnings: lock-in overloads")
    assert finished_text([]) == "finished"
    steps = [
        {"idx": 0, "state": "done", "results": {}},
        {"idx": 1, "state": "skipped", "sample_id": "NPL-300"},
        {"idx": 2, "state": "done", "results": {"warnings": ["Tauc gap: no linear region"]}},
    ]
    sw = series_warnings({"state": "done"}, steps)
    assert sw == ["1 skipped step(s) (NPL-300)", "warnings in step(s) 2"]


@pytest.fixture
def started_series(tmp_path, plan):
    out = tmp_path / "series"
    out.mkdir()
    catalog = Catalog.in_directory(out, create=True)
    catalog.initialise(plan, "sim")
    yield plan, out, catalog
    catalog.close()


def test_the_view_shows_progress_and_finished_with_warnings(qtbot, started_series):
    from labctl.gui.series_view import SeriesView

    plan, out, catalog = started_series
    view = SeriesView("sim", "virtual")
    qtbot.addWidget(view)
    try:
        catalog.set_series_state("running")
        catalog.start_step(0, str(out / "anneal_1.csv"))
        catalog.end_step(0, DONE, results={"max_pv_c": 251.0})
        catalog.start_step(1, str(out / "optp_1.csv"))
        view.watch(out)
        qtbot.waitUntil(
            lambda: view.progress is not None and view.progress.done == 1, timeout=10_000
        )
        assert view.series_bar.value() > 0 and "1/" in view.series_bar.format()
        assert view.step_bar.format().startswith("step 1")
        assert "left" in view.eta_label.text()
        catalog.end_step(1, DONE, results={"overloads": [{"sweep": 1}]})
        for i in range(2, len(plan.steps)):
            catalog.start_step(i, str(out / f"s{i}.csv"))
            catalog.end_step(i, DONE, results={})
        catalog.set_series_state("done")
        qtbot.waitUntil(lambda: "finished with warnings" in view.state_label.text(), timeout=10_000)
        assert "warnings in step(s) 1" in view.state_label.text()
    finally:
        view.close_view()


def test_resume_with_a_changed_plan_shows_the_changes_and_asks(qtbot, started_series, tmp_path):
    from labctl.gui.series_view import SeriesView

    plan, out, catalog = started_series
    changed = tmp_path / "plan-changed.yaml"
    changed.write_text(PLAN.replace("max_sweeps: 4", "max_sweeps: 8"))
    view = SeriesView("sim", "virtual")
    qtbot.addWidget(view)
    asked = []
    launched = []
    # the QProcess launch is replaced (private): the subject is the decision and the command
    view._launch = lambda command, what: launched.append(command) or True
    try:
        view.load_plan(changed)
        view.out_edit.setText(str(out))
        view.confirm = lambda title, question, details: asked.append(question) or False
        assert not view.start(resume=True)  # declined: nothing started
        assert asked and "max_sweeps 4 → 8" in asked[0] and not launched
        view.confirm = lambda title, question, details: True
        assert view.start(resume=True)
        assert launched[-1][-2:] == ["--allow-changed-plan", "--quiet"]
        # the plan it started with: resumed without asking, without the flag
        view.load_plan(plan.path)
        asked.clear()
        assert view.start(resume=True)
        assert "--allow-changed-plan" not in launched[-1] and not asked
    finally:
        view.close_view()


def test_past_runs_list_series_with_their_steps(qtbot, started_series, tmp_path):
    """Each series with its runs: kind, sample, state and the headline result."""
    from labctl.gui.browser import RunBrowser

    plan, out, catalog = started_series
    catalog.set_series_state("running")
    catalog.start_step(0, str(out / "anneal_NPL-250.csv"))
    catalog.end_step(0, DONE, results={"max_pv_c": 251.0})
    catalog.start_step(1, str(out / "optp_NPL-250.csv"))
    browser = RunBrowser(tmp_path / "runs")
    qtbot.addWidget(browser)
    browser.add_series_dir(out)
    (series,) = browser.series_items()
    assert series.text(0).startswith("series night") and series.text(3) == "running"
    assert series.childCount() == len(plan.steps)
    first = series.child(0)
    assert first.text(0) == "anneal_NPL-250.csv" and first.text(1) == "anneal (250 °C)"
    assert first.text(2) == plan.steps[0].sample_id and first.text(3) == DONE
    assert first.text(4) == "max PV 251.0 °C"
    assert series.child(1).text(3) == "running"
    assert series.child(2).data(0, 256) is None  # not run yet: nothing to open
