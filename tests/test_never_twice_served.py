"""Never twice, against a served world (`labctl sim serve`, a subprocess, like hardware):
"heated once" is read from the served films' thermal history (heating episodes), not
from the catalog. A short recipe, with the plan's real interlock, in a world served on
its clients' virtual time: the fault and the refusals land at held points of the first
runner's own timeline (tests/served.py ``hold_when``), whatever the machine's load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from served import hold_when, served_world
from test_series_resume import data_rows, steps_of

from labctl.series.catalog import Catalog
from labctl.served_clock import ServedClock
from labctl.servesim import RemoteFaultBoard, RemoteWorldClock

pytestmark = [pytest.mark.slow, pytest.mark.tcp]

SCALE = "virtual"
HOLD_STEP_S = 30.0  # virtual seconds between the holds the test looks in at
PLAN = """\
name: never-twice
sample: F
slots: [1]
temperatures_c: [250]
anneal: {ramp_c_per_min: 20, dwell_min: 5, cool_min: 30, record_interval_s: 30,
         ready_below_c: 120}
measurements: []
retries: 0
on_failure: stop
"""
LABCTL = [sys.executable, "-m", "labctl.cli"]


def start(out: Path, plan: Path, *extra: str) -> subprocess.Popen:
    log = (out.parent / f"{out.name}-runner.log").open("a")
    return subprocess.Popen(
        [*LABCTL, "series", "run", str(plan), "--out", str(out), "--quiet", *extra],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def hold_at(station: Path, proc: subprocess.Popen, ready) -> None:
    """The first runner held at the first point of its timeline where ``ready()``."""
    hold_when(station, proc, ready, lambda: HOLD_STEP_S)


def in_segment(out: Path, segment: str):
    return lambda: any(r["segment"] == segment for r in anneal_rows(out))


def anneal_rows(out: Path) -> list[dict]:
    steps = steps_of(out)
    if not steps or not steps[0]["run_file"]:
        return []
    return data_rows(out / steps[0]["run_file"])


def film1(board: RemoteFaultBoard) -> dict:
    return next(f for f in board.films() if f["slot"] == 1)


def finish(proc: subprocess.Popen, timeout_s: float = 120.0) -> int:
    try:
        return proc.wait(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("LABCTL_LOCK_DIR", str(tmp_path / "locks"))
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)  # the plan's station: the bundled in-process one
    with served_world(tmp_path, SCALE) as served:
        yield plan, served.station, RemoteFaultBoard.from_station_file(served.station)


def test_failed_in_cooling_resumes_on_its_station_and_is_never_heated_again(world, tmp_path):
    plan, station, board = world
    out = tmp_path / "series"
    proc = start(out, plan, "--station", str(station))
    clock = RemoteWorldClock.from_station_file(station)
    try:
        hold_at(station, proc, in_segment(out, "3"))
        board.inject("furnace", "sensor_break")  # the thermocouple opens in the cooling
        clock.release()
    finally:
        code = finish(proc)
    assert code == 1
    assert steps_of(out)[0]["state"] == "failed"
    # the repair takes a while: the film cools well below the anneal temperature
    repair = ServedClock(clock.address)
    for _ in range(240):  # at most 4 h of virtual time
        if film1(board)["temperature_c"] < 200.0:
            break
        repair.sleep(60.0)
    assert film1(board)["temperature_c"] < 200.0
    board.clear("furnace")
    assert film1(board)["heating_episodes"] == 1
    # --resume without --station: the station the series started on, not the plan's default
    done = start(out, plan, "--resume")
    assert finish(done) == 0, (tmp_path / "series-runner.log").read_text()[-2000:]
    assert film1(board)["heating_episodes"] == 1  # the physics: annealed once
    with Catalog.in_directory(out) as catalog:
        step = catalog.step(0)
        events = " ".join(e["message"] for e in catalog.events())
    assert step["state"] == "done" and "dwell already done" in step["results"]["continued"]
    assert "cooling segment reached" in events
    served_name = yaml.safe_load(Path(station).read_text())["name"]
    assert events.count(f"started on {served_name}") == 2  # the resume too: as recorded


def test_a_second_run_or_runner_is_refused_and_the_first_anneal_goes_on(world, tmp_path):
    plan, station, board = world
    out = tmp_path / "series"
    proc = start(out, plan, "--station", str(station))
    try:
        hold_at(station, proc, in_segment(out, "2"))
        # stopped mid-anneal however long two start-ups take on a loaded machine (instead
        # of a dwell long enough for them): a stopped process keeps its claims, as a busy
        # one does; the world's clock is free again for the two refused programs' waits
        os.kill(proc.pid, signal.SIGSTOP)
        RemoteWorldClock.from_station_file(station).release()
        second = subprocess.Popen(
            [*LABCTL, "run", "anneal", "--station", str(station), "--slot", "2"]
            + ["--anneal-c", "250", "--out", str(tmp_path / "second"), "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        runner = subprocess.Popen(
            [*LABCTL, "series", "run", str(plan), "--out", str(out), "--resume", "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        second_out, _ = second.communicate(timeout=120)
        _, runner_err = runner.communicate(timeout=120)
        assert proc.poll() is None  # the first was still running when both were refused
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        code = finish(proc, timeout_s=180)
    assert second.returncode == 1
    assert f"pid {proc.pid}" in second_out
    assert runner.returncode == 2
    refusal = runner_err.strip().splitlines()
    assert len(refusal) == 1 and "second runner" in refusal[0] and f"pid {proc.pid}" in refusal[0]
    assert code == 0  # the first anneal was not disturbed (nor reset by the refused one)
    films = {f["slot"]: f for f in board.films()}
    assert films[1]["heating_episodes"] == 1
    assert films[2]["heating_episodes"] == 0  # never moved into the hot zone
    with Catalog.in_directory(out) as catalog:
        assert [a["state"] for a in catalog.attempts(0)] == ["done"]
