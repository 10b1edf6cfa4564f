"""Stop means safe within a second: interruptible waits, typed endings, one path for every stop.

Bounds come from the clocks, not the wall: a stopped wait returns before its
virtual deadline (for a real-time 3 600 s wait that is a stop within a second's
slice, not when the wait is over); a process stopped by SIGTERM mid-wait exits
long before the wait would have ended.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import pytest
from pymeasure.experiment import FloatParameter

from labctl.clock import (
    STOP_SLICE_S,
    RealClock,
    ScaledClock,
    VirtualClock,
    stop_on,
    uninterruptible,
)
from labctl.errors import (
    Aborted,
    CommunicationError,
    InstrumentError,
    InterlockError,
    InvalidInputError,
    SafeStateError,
    SafetyLimitError,
)
from labctl.procedures.base import StationProcedure
from labctl.runs import ABORTED, Ending, new_run_file, run_procedure, summary_path
from labctl.station import Station


def _sleep_in_thread(clock, seconds, stop):
    """Start ``clock.sleep(seconds)`` in a thread armed with ``stop``; its result box."""
    box: dict = {"started": threading.Event()}

    def target():
        with stop_on(stop):
            box["t0"] = clock.now()
            box["started"].set()
            try:
                clock.sleep(seconds)
                box["result"] = "slept"
            except Aborted as exc:
                box["result"] = exc
            box["t1"] = clock.now()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert box["started"].wait(timeout=30)
    return thread, box


@pytest.mark.parametrize("clock", [RealClock(), ScaledClock(10.0)], ids=["real", "scaled"])
def test_a_stop_ends_an_hour_long_wait_before_its_deadline(clock):
    stop = threading.Event()
    thread, box = _sleep_in_thread(clock, 3600.0, stop)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert isinstance(box["result"], Aborted)
    # seen by the next slice: the wait ended a slice (plus scheduling) after the stop,
    # nowhere near its 3 600 s deadline
    assert box["t1"] - box["t0"] < 3600.0
    assert STOP_SLICE_S <= 1.0


def test_a_stop_on_the_virtual_clock_does_not_move_time():
    clock = VirtualClock()
    stop = threading.Event()
    stop.set()
    with stop_on(stop), pytest.raises(Aborted):
        clock.sleep(3600.0)
    assert clock.now() == 0.0


def test_the_safe_state_waits_run_to_their_end_whatever_the_stop():
    clock = VirtualClock()
    stop = threading.Event()
    stop.set()
    with stop_on(stop), uninterruptible():
        clock.sleep(5.0)
    assert clock.now() == 5.0


def test_a_stop_is_per_thread_so_a_monitor_on_the_same_clock_goes_on():
    clock = ScaledClock(1000.0)
    stop = threading.Event()
    stop.set()
    with stop_on(stop), pytest.raises(Aborted):
        clock.sleep(1.0)
    done = threading.Event()

    def monitor():  # not armed: the run's stop is none of its business
        clock.sleep(0.5)
        done.set()

    thread = threading.Thread(target=monitor, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert done.is_set()


@pytest.mark.parametrize("seconds", [float("nan"), float("inf")])
def test_a_wait_of_nan_or_infinity_is_refused(seconds):
    for clock in (RealClock(), ScaledClock(10.0), VirtualClock()):
        with pytest.raises(ValueError, match="cannot wait"):
            clock.sleep(seconds)


# ---------------------------------------------------------------- typed endings
@pytest.mark.parametrize(
    ("exc", "ending"),
    [
        (None, Ending.DONE),
        (Aborted("x"), Ending.ABORTED),
        (KeyboardInterrupt(), Ending.ABORTED),
        (InterlockError("furnace", "PV 40 °C below SP"), Ending.INTERLOCK),
        (
            CommunicationError("lockin_ref", "an interlock word in a comms error"),
            Ending.INSTRUMENT_FAULT,
        ),  # fmt: skip
        (SafeStateError("furnace", "setpoint reads 300 °C"), Ending.INSTRUMENT_FAULT),
        (InvalidInputError("record_interval_s = nan"), Ending.INVALID_INPUT),
        (SafetyLimitError("furnace", "450 °C exceeds max_setpoint_c"), Ending.INVALID_INPUT),
        (KeyError("missing"), Ending.FAILED),
    ],
)
def test_an_ending_comes_from_the_exception_type_not_its_text(exc, ending):
    assert Ending.of(exc) is ending


def test_the_furnace_interlock_is_an_interlock():
    from labctl.drivers.eurotherm import FurnaceInterlock

    assert Ending.of(FurnaceInterlock("furnace", "sensor break")) is Ending.INTERLOCK
    assert not Ending.INTERLOCK.retry_may_help and Ending.INSTRUMENT_FAULT.retry_may_help


def test_old_import_path_of_aborted_still_works():
    from labctl.procedures.base import Aborted as OldAborted

    assert OldAborted is Aborted


# ---------------------------------------------------------------- the run engine
class LongWaits(StationProcedure):
    """One row, then an hour's wait per row; its safe state waits too (5 s) and must finish."""

    KIND = "longwaits"
    ROLES = ("lockin_ref",)
    wait_s = FloatParameter("Wait", units="s", default=3600)
    DATA_COLUMNS = ["index"]

    def execute(self):
        for i in range(3):
            self.emit("results", {"index": i})
            self.sleep(self.wait_s)

    def make_safe(self):
        self.sleep(5.0)  # a safe-state sequence that takes time: never cut short
        self.safe_state_report = "safe state confirmed (read back): test"


def test_a_stop_during_a_long_wait_ends_the_run_safe_with_its_summary(tmp_path):
    # 100×: the hour between rows is 36 s of wall time, the safe state's wait 50 ms
    with Station.from_file("sim", time_scale=100.0) as station:
        stop = threading.Event()

        def on_emit(topic, record):
            if topic == "results":
                stop.set()  # Abort pressed while the run waits for its next row

        path = new_run_file(tmp_path, "longwaits")
        t0 = station.clock.now()
        outcome = run_procedure(LongWaits(), path, station=station, stop=stop, on_emit=on_emit)
        elapsed = station.clock.now() - t0
    assert outcome.status == ABORTED and outcome.ending is Ending.ABORTED
    assert isinstance(outcome.error, Aborted)
    assert outcome.points == 1
    assert elapsed >= 5.0  # the safe state's wait ran to its end…
    assert elapsed < 3600.0  # …the hour's wait did not
    doc = json.loads(summary_path(path).read_text())
    assert doc["status"] == "aborted" and doc["ending"] == "aborted"
    assert doc["safe_state"] == "safe state confirmed (read back): test"


def test_a_run_whose_make_safe_reads_nothing_back_says_so(tmp_path):
    class Quick(LongWaits):
        def make_safe(self):
            pass

    with Station.from_file("sim", time_scale="virtual") as station:
        path = new_run_file(tmp_path, "quick")
        outcome = run_procedure(Quick(wait_s=1), path, station=station)
    assert outcome.ok and outcome.ending is Ending.DONE
    assert outcome.safe_state == "safe state set (not read back)"
    assert json.loads(summary_path(path).read_text())["safe_state"] == outcome.safe_state


def test_an_interlock_run_is_typed_interlock(tmp_path):
    class Trips(LongWaits):
        def execute(self):
            raise InterlockError("furnace", "PV 222 °C, 28 °C below SP")

    with Station.from_file("sim", time_scale="virtual") as station:
        outcome = run_procedure(Trips(), new_run_file(tmp_path, "trips"), station=station)
    assert outcome.status == "failed" and outcome.ending is Ending.INTERLOCK


# ---------------------------------------------------------------- the command line
def _data_files(directory):
    return sorted(p for p in directory.glob("*.csv"))


def _wait_for(predicate, proc, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, f"not ready within {timeout_s} s"
        time.sleep(0.05)


def _rows(path):
    return sum(1 for ln in path.read_text().splitlines() if ln and ln[0].isdigit())


@pytest.mark.parametrize(
    ("sig", "code", "times"),
    [(signal.SIGTERM, 143, 1), (signal.SIGINT, 130, 1), (signal.SIGINT, 130, 2)],
    ids=["sigterm", "ctrl-c", "ctrl-c-twice"],
)
def test_labctl_run_stopped_by_a_signal_mid_wait_is_safe_and_keeps_its_summary(
    tmp_path, sig, code, times
):
    """An hour between rows: the signal ends the wait, the furnace is made safe.

    At 100× (the hour is 36 s of wall time; at real time the stage's move to the slot
    alone took 4.6 s): a run that went on waiting would write a second row."""
    cmd = [
        sys.executable, "-m", "labctl.cli", "run", "anneal", "--time-scale", "100",
        "--slot", "1", "--anneal-c", "300", "--record-interval-s", "3600", "--quiet",
        "--out", str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: bool(_data_files(tmp_path)) and _rows(_data_files(tmp_path)[0]) >= 1,
                  proc)  # fmt: skip
        for _ in range(times):  # a second Ctrl-C must not interrupt the safe state
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)  # an hour's wait would outlast this
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == code, err.decode()
    (path,) = _data_files(tmp_path)
    assert _rows(path) == 1  # the wait for the second row was ended, not waited out
    doc = json.loads(summary_path(path).read_text())
    assert doc["status"] == "aborted" and doc["ending"] == "aborted"
    assert doc["safe_state"].startswith("safe state")
    assert "NOT" not in doc["safe_state"]
    assert "safe state" in out.decode().splitlines()[-1]
    assert "Traceback" not in err.decode()


def test_instrument_fault_is_not_a_safe_state_error():
    assert issubclass(SafeStateError, InstrumentError)


# ---------------------------------------------------------------- the series runner
SERIES = """\
name: retries
sample: R
slots: [1]
temperatures_c: [250]
anneal: {record_interval_s: 300}
measurements:
  - absorption: {averages: 1}
retries: 2
on_failure: stop
"""


@pytest.mark.parametrize(
    ("error", "attempts"),
    [
        # the word "interlock" in a comms fault's text must not stop the retries…
        (CommunicationError("spectrometer", "no reply after the interlock check"), 3),
        # …and an interlock whose text never says so must
        (InterlockError("spectrometer", "lamp shutter open with the lid up"), 1),
    ],
)
def test_the_series_retries_from_the_ending_type_never_the_message(
    sim_station, tmp_path, monkeypatch, error, attempts
):
    import labctl.procedures as procedures
    from labctl.series.plan import load_plan
    from labctl.series.runner import SeriesRunner

    real = procedures.procedure_class
    tries = []

    class Faulty(LongWaits):
        KIND = "absorption"

        def __init__(self, station=None, **kwargs):
            super().__init__(station)

        def execute(self):
            tries.append(1)
            raise error

    plan_path = tmp_path / "p.yaml"
    plan_path.write_text(SERIES)
    plan = load_plan(plan_path)
    monkeypatch.setattr(
        procedures, "procedure_class", lambda kind: Faulty if kind == "absorption" else real(kind)
    )
    runner = SeriesRunner(plan, tmp_path / "s", sim_station)
    outcome = runner.run()
    runner.catalog.close()
    assert len(tries) == attempts
    assert outcome.state == "stopped"
    assert outcome.safe_state.startswith("furnace safe state")


# ---------------------------------------------------------------- one clear line
def test_disk_full_is_called_disk_full_in_one_line_and_the_catalog_is_not_left_running(
    sim_station, tmp_path, monkeypatch, capsys
):
    import errno

    import labctl.runs as runs
    from labctl.cli import main
    from labctl.series.catalog import Catalog
    from labctl.series.plan import load_plan
    from labctl.series.runner import SeriesRunner

    # the disk fills mid-run: injected at the one private place rows are written
    real_write = runs._Recorder._write

    def write(self, record):
        if self.points >= 2:
            raise OSError(errno.ENOSPC, "No space left on device", self.results.data_filename)
        real_write(self, record)

    monkeypatch.setattr(runs._Recorder, "_write", write)
    rc = main(
        ["run", "absorption", "--time-scale", "virtual", "--quiet", "--out", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert len(err) == 1 and len(err[0]) <= 200, err
    assert "disk full" in err[0] and "unexpected" not in err[0]

    plan_path = tmp_path / "p.yaml"
    plan_path.write_text(SERIES.replace("retries: 2", "retries: 0"))
    runner = SeriesRunner(load_plan(plan_path), tmp_path / "s", sim_station)
    outcome = runner.run()
    runner.catalog.close()
    assert outcome.state == "stopped" and "disk full" in outcome.message
    with Catalog.in_directory(tmp_path / "s") as catalog:
        states = [s["state"] for s in catalog.steps()]
    assert "running" not in states and states[0] == "failed", states
