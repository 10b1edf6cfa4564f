"""The headless run engine: every point on disk as it is measured, shutdown always, outcome beside."""

import json
import threading

import pandas as pd
import pytest
from pymeasure.experiment import FloatParameter, Results

from labctl.errors import CommunicationError, LabctlError
from labctl.procedures.base import StationProcedure
from labctl.runs import ABORTED, FAILED, FINISHED, new_run_file, run_procedure, summary_path
from labctl.station import Station


class Count(StationProcedure):
    """Reads the reference lock-in ``points`` times; can fail or be stopped at ``fail_at``."""

    KIND = "count"
    ROLES = ("lockin_ref",)
    points = FloatParameter("Points", default=5)
    fail_at = FloatParameter("Fail at", default=-1)
    DATA_COLUMNS = ["index", "x_V"]
    made_safe = 0

    def execute(self):
        lockin = self.station["lockin_ref"]
        for i in range(int(self.points)):
            self.check_stop()
            if i == int(self.fail_at):
                raise CommunicationError("lockin_ref", "no reply to 'SNAP?1,2'")
            self.emit("results", {"index": i, "x_V": lockin.read_xy()[0]})
            self.progress((i + 1) / self.points)
        self.run_results["points_read"] = int(self.points)

    def make_safe(self):
        type(self).made_safe += 1


@pytest.fixture
def station():
    with Station.from_file("sim", time_scale="virtual") as st:
        yield st


def test_points_are_on_disk_with_header_and_summary(station, tmp_path):
    path = new_run_file(tmp_path, "count", "NPL 7")
    outcome = run_procedure(Count(points=4), path, station=station)
    assert outcome.status == FINISHED and outcome.points == 4
    assert path.name.startswith("count_NPL-7_")
    frame = pd.read_csv(path, comment="#")
    assert list(frame["index"]) == [0, 1, 2, 3]
    loaded = Results.load(str(path), procedure_class=Count)
    assert len(loaded.data) == 4
    header = path.read_text()
    assert "Instrument settings:" in header and "SR830" in header and "Software version" in header
    summary = json.loads(summary_path(path).read_text())
    assert summary["status"] == "finished" and summary["results"]["points_read"] == 4
    assert summary["parameters"]["points"] == 4


def test_failure_keeps_points_runs_shutdown_and_names_the_instrument(station, tmp_path):
    Count.made_safe = 0
    path = tmp_path / "run.csv"
    outcome = run_procedure(Count(points=6, fail_at=3), path, station=station)
    assert outcome.status == FAILED
    assert outcome.message.startswith("lockin_ref: no reply")
    assert Count.made_safe == 1
    assert len(pd.read_csv(path, comment="#")) == 3


def test_stop_request_aborts_between_points(station, tmp_path):
    stop = threading.Event()
    seen = []

    def on_emit(topic, record):
        if topic == "results":
            seen.append(record["index"])
            if len(seen) == 2:
                stop.set()

    outcome = run_procedure(
        Count(points=10), tmp_path / "r.csv", station=station, stop=stop, on_emit=on_emit
    )
    assert outcome.status == ABORTED and outcome.points == 2


def test_never_overwrites_and_needs_its_instruments(station, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("precious\n")
    with pytest.raises(LabctlError, match="never overwrites"):
        run_procedure(Count(), path, station=station)
    assert path.read_text() == "precious\n"

    class NeedsLaser(Count):
        ROLES = ("laser",)

    outcome = run_procedure(NeedsLaser(), tmp_path / "b.csv", station=station)
    assert outcome.status == FAILED and "lacks instruments ['laser']" in outcome.message
