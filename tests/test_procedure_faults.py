"""Each injected fault (world.faults) ends the procedure it hits cleanly.

For every fault kind × the procedure it hits mid-run: the run ends FAILED with one
line naming the instrument (no traceback, no "unexpected ..."), the instruments are
left safe (furnace program reset and setpoint safe, read back through the driver once
the fault is cleared; stages stopped; lamp shutter open), and every row emitted
before the fault is in the run file, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from labctl.drivers.eurotherm import ProgramStatus
from labctl.procedures.absorption import Absorption
from labctl.procedures.anneal import SAFE_STATE_RETRY_S, Anneal
from labctl.procedures.optp import OPTP
from labctl.procedures.tds import TDS
from labctl.runs import FAILED, run_procedure

ANNEAL_ROW_S = 120.0
#: A link fault on the furnace lasts until a few seconds into the safe-state retries
#: (the controller answers again): the next row fails, the safe state is then confirmed.
FURNACE_OUTAGE_S = ANNEAL_ROW_S + 0.5 * SAFE_STATE_RETRY_S


def anneal():
    return Anneal(anneal_c=300.0, record_interval_s=ANNEAL_ROW_S)


def optp():
    return OPTP(
        thz_peak_ps=0.0, start_ps=-1.0, stop_ps=3.0, step_near_ps=0.1, near_until_ps=1.0,
        step_far_ps=0.25, sweeps=2,
    )  # fmt: skip


def tds():
    return TDS(thz_peak_ps=0.0, optp_peak_ps=0.23, step_ps=0.2, max_sweeps=2)


def absorption():
    return Absorption(integration_time_ms=20.0, averages=2)


@dataclass
class Case:
    make: object  # () -> Procedure
    role: str
    kind: str
    after_rows: int = 0  # inject after this many rows, ...
    at_phase: str = ""  # ... or when a phase starting with this begins
    options: dict = field(default_factory=dict)
    outage_s: float | None = None  # cleared this long after injection (None: at the end)
    message: str = ""  # the one-line message starts with this


CASES = {
    "anneal-sensor-break": Case(anneal, "furnace", "sensor_break", after_rows=12,
                                message="furnace: sensor break"),
    "anneal-furnace-garbled": Case(anneal, "furnace", "garbled", after_rows=12,
                                   outage_s=FURNACE_OUTAGE_S),
    "anneal-furnace-silent": Case(anneal, "furnace", "silent", after_rows=12,
                                  outage_s=FURNACE_OUTAGE_S),
    "anneal-furnace-disconnect": Case(anneal, "furnace", "disconnect", after_rows=12,
                                      outage_s=FURNACE_OUTAGE_S),
    **{
        f"{name}-{role}-{kind}": Case(make, role, kind, after_rows=rows)
        for name, make, rows in (("optp", optp, 37), ("tds", tds, 111))
        for role in ("lockin_ref", "lockin_pump")
        for kind in ("silent", "garbled", "disconnect")
    },
    "optp-pump-stage-stall": Case(optp, "stages", "stage_stall", after_rows=23,
                                  options={"axis": 2}, message="stages: "),
    "tds-gate-stage-stall": Case(tds, "stages", "stage_stall", after_rows=95,
                                 options={"axis": 1}, message="stages: "),
    **{
        f"absorption-spectrometer-{kind}": Case(absorption, "spectrometer", kind,
                                                at_phase=phase)
        for kind, phase in (("silent", "reference"), ("disconnect", "sample"),
                            ("garbled", "sample"))
    },
}  # fmt: skip


class _Schedule:
    """Calls due actions as the station's virtual clock passes their time."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.sleep = clock.sleep
        self.due: list[tuple[float, object]] = []
        clock.sleep = self._sleep

    def at(self, t: float, action) -> None:
        self.due.append((t, action))

    def _sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        now = self.clock.now()
        for item in [d for d in self.due if d[0] <= now]:
            self.due.remove(item)
            item[1]()


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_fault_ends_the_run_cleanly(request, tmp_path, case: Case):
    # a furnace fault: its link tries once (every retry only waits out the reply horizon)
    station = request.getfixturevalue(
        "one_try_station" if case.role == "furnace" else "sim_station"
    )
    faults = station.world.faults
    schedule = _Schedule(station.clock)
    stages = station["stages"]
    stops: list[bool] = []
    controller = stages.controller
    real_stop_all, real_stop = controller.stop_all, controller.stop
    controller.stop_all = lambda: (stops.append("all"), real_stop_all())[1]
    controller.stop = lambda axis: (stops.append(axis), real_stop(axis))[1]
    emitted: list[dict] = []
    injected: list[int] = []

    def inject() -> None:
        injected.append(len(emitted))
        faults.inject(case.role, case.kind, **case.options)
        if case.outage_s is not None:
            schedule.at(station.clock.now() + case.outage_s, lambda: faults.clear(case.role))

    def on_emit(topic, record):
        if topic == "results":
            emitted.append(dict(record))
            if case.after_rows and len(emitted) == case.after_rows:
                inject()
        elif topic == "batch results":
            n = len(next(iter(record.values())))
            emitted.extend({k: v[i] for k, v in record.items()} for i in range(n))
        elif topic == "phase" and case.at_phase and record.startswith(case.at_phase):
            if not injected:
                inject()

    procedure = case.make()
    path = tmp_path / "run.csv"
    outcome = run_procedure(procedure, path, station=station, on_emit=on_emit)
    faults.clear()

    assert injected, "the fault was never injected: the case does not reach it"
    assert outcome.status == FAILED, outcome
    message = outcome.message
    assert "\n" not in message and "Traceback" not in message, message
    assert "unexpected" not in message, message
    assert message.startswith(case.message or f"{case.role}: "), message
    assert "safe state NOT confirmed" not in message, message
    # every row emitted before the fault is on disk, as emitted (none after it)
    assert outcome.points == len(emitted) >= injected[0]
    data = pd.read_csv(path, comment="#")
    assert len(data) == len(emitted)
    if emitted:
        expected = pd.DataFrame(emitted)[list(data.columns)]
        for column in data.columns:
            got, want = data[column].to_numpy(), expected[column].to_numpy()
            if want.dtype.kind in "fi":
                assert np.allclose(got, want, rtol=1e-9, atol=0, equal_nan=True), column
            else:
                assert list(got) == list(want), column
    # safe: stages stopped (make_safe ran) and at rest; furnace reset if this run wrote to it
    assert stops, "make_safe did not stop the stages"
    for axis in ("sampling", "pump", "sample"):
        assert not stages[axis].is_moving
    furnace = station["furnace"]
    if isinstance(procedure, Anneal):
        assert furnace.program_status == ProgramStatus.RESET
        assert furnace.setpoint_c == pytest.approx(furnace.safe_setpoint_c)
        assert furnace.manual_mode is False
    else:
        assert furnace.program_status != ProgramStatus.RUN  # never touched
    if isinstance(procedure, Absorption):
        assert station["spectrometer"].shutter_open is not False


def test_a_furnace_that_stays_silent_is_reported_not_confirmed_safe(one_try_station, tmp_path):
    """The controller never answers again: the run says the safe state is NOT confirmed
    (its own program goes on, ending in the cooling ramp), in one line, rows kept."""
    sim_station = one_try_station
    faults = sim_station.world.faults
    emitted = []

    def on_emit(topic, record):
        if topic == "results":
            emitted.append(record)
            if len(emitted) == 12:
                faults.inject("furnace", "silent")

    outcome = run_procedure(anneal(), tmp_path / "run.csv", station=sim_station, on_emit=on_emit)
    assert outcome.status == FAILED
    assert outcome.message.startswith("furnace: ") and "\n" not in outcome.message
    assert "safe state NOT confirmed" in outcome.message
    assert "unexpected" not in outcome.message
    assert len(pd.read_csv(tmp_path / "run.csv", comment="#")) == len(emitted) == 12
    faults.clear()
    assert sim_station["furnace"].program_status == ProgramStatus.RUN
