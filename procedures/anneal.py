"""Anneal a film the paper's way on the furnace controller's own programmer.

Chen et al., Small 2023: ramp to the anneal temperature, dwell (30 min),
cool under control to room temperature in 120 min. The program runs on the
Eurotherm, so a dead PC leaves a furnace that finishes its cooling ramp; this
procedure loads it, records PV/SP/OP/segment every ``record_interval_s`` of the
station clock while it runs and the furnace then cools naturally below
``ready_below_c``, and watches the interlocks at every row:

* sensor break and over-temperature (the driver's ``check_interlocks``);
* PV departing from the working setpoint by more than ``max_deviation_c`` for
  longer than ``deviation_grace_s``: below it (the furnace cannot heat: heater
  fault, manual mode), or above it while still rising (heating it should not
  be). Above it while falling is the furnace cooling as fast as it can (it has
  no cooling), which the tail of the 120 min ramp and natural cooling are;
* a lost or silent controller (``CommunicationError`` from the driver).

A trip ends the run (FAILED, one-line message) and ``make_safe`` resets the
program and puts the setpoint at the driver's safe value — only if this run
wrote a program or attached to one: a run refused before it touched the
furnace undoes nothing (it would reset another run's program).

Exactly once: every row also records the programmer's own account
(:meth:`~labctl.drivers.eurotherm.Eurotherm2408.program_progress`: dwell done
on the controller's clock, cooling segment reached), emitted as
``anneal-progress`` so the series catalog keeps it as it happens. A
continuation (``continue_program``) never heats a film whose recorded dwell
reaches ``dwell_min`` or whose program reached its cooling segment, and
refuses, saying what it knows, when an earlier program's progress is unknown. A recipe the driver
refuses (setpoint or ramp beyond the station's limits) is refused before
anything is written to the controller. ``docs/procedures/anneal.md`` is the
reference.
"""

from __future__ import annotations

import math
from typing import Any

from pymeasure.experiment import BooleanParameter, FloatParameter

from labctl.checking import Rule
from labctl.drivers.eurotherm import (
    Dwell,
    End,
    FurnaceInterlock,
    ProgramProgress,
    ProgramStatus,
    Ramp,
    Segment,
)
from labctl.errors import Aborted, InstrumentError, LabctlError, SafeStateError

from .base import SAFE_NOT_READ_BACK, StationProcedure

NATURAL_COOLING: list = []  # a continuation that loads no program: natural cooling only
COOL_MINUTES = 120.0  # the paper: cooled to room temperature in 120 min
READY_BELOW_C = 30.0
WITHIN_C = 2.0  # "minutes within ±2 °C of T" in the results
NATURAL_COOLING_LIMIT_S = 24 * 3600.0  # the furnace cannot cool faster than it does
NATURAL_COOLING_MIN = 30.0  # below the ready temperature after the programmed cooling (estimate)
SAFE_STATE_ATTEMPTS = 3  # a link that dropped frames gets two more chances, ...
SAFE_STATE_RETRY_S = 5.0  # ... this far apart (station clock)


def anneal_program(
    target_c: float,
    dwell_minutes: float,
    ramp_c_per_min: float,
    cool_c_per_min: float | None = None,
    final_c: float = 25.0,
) -> list[Segment]:
    """Ramp → dwell → controlled-cooling ramp → end (holding ``final_c``)."""
    return [
        Ramp(ramp_c_per_min, target_c),
        Dwell(dwell_minutes),
        Ramp(cool_c_per_min if cool_c_per_min is not None else ramp_c_per_min, final_c),
        End(),
    ]


class Anneal(StationProcedure):
    """Ramp, dwell and controlled cooling on the controller; natural cooling to ready."""

    KIND = "anneal"
    ROLES = ("furnace", "stages")

    anneal_c = FloatParameter(
        "Anneal temperature", units="degC", minimum=0, maximum=1200, default=300
    )
    dwell_min = FloatParameter("Dwell", units="min", minimum=0, maximum=1440, default=30)
    ramp_c_per_min = FloatParameter(
        "Heating ramp", units="degC/min", minimum=0.01, maximum=100, default=10
    )
    cool_min = FloatParameter(
        "Controlled cooling to ambient", units="min", minimum=1, maximum=1440, default=COOL_MINUTES
    )
    ambient_c = FloatParameter(
        "Ambient (end of the cooling ramp)", units="degC", minimum=0, maximum=60, default=25
    )
    ready_below_c = FloatParameter(
        "Ready below", units="degC", minimum=0, maximum=200, default=READY_BELOW_C
    )
    record_interval_s = FloatParameter(
        "Record interval", units="s", minimum=0.1, maximum=3600, default=60
    )
    max_deviation_c = FloatParameter(
        "Max PV deviation from SP", units="degC", minimum=0.1, maximum=500, default=15
    )
    deviation_grace_s = FloatParameter(
        "Deviation grace time", units="s", minimum=0, maximum=7200, default=300
    )

    continue_program = BooleanParameter(
        "Continue an interrupted anneal (attach to its program, or run only the dwell owed)",
        default=False,
    )
    dwell_done_min = FloatParameter(
        "Dwell already done (continuation)", units="min", minimum=0, maximum=1440, default=0
    )
    cooling_reached = BooleanParameter(
        "An earlier program reached its cooling segment (continuation)", default=False
    )
    progress_unknown = BooleanParameter(
        "Progress of an earlier program unknown (continuation refuses to heat)",
        default=False,
    )

    #: Set only by the series runner's continuation of an interrupted anneal.
    INTERNAL_PARAMETERS = ("continue_program", "dwell_done_min")
    RULES = (
        Rule(("slot",), lambda v: v["slot"] >= 1, "slot 0 is the blank reference, not a film"),
    )

    DATA_COLUMNS = [
        "elapsed_s",
        "temperature_c",
        "setpoint_c",
        "working_setpoint_c",
        "output_percent",
        "segment",
        "program_status",
        "dwell_done_s",
    ]

    def __init__(self, station=None, **kwargs) -> None:
        self._furnace_written: Any = None  # the furnace once a program was written to it
        self._stage_moved: Any = None
        self._attached = False  # continuing a program an earlier attempt started
        super().__init__(station, **kwargs)

    # ------------------------------------------------------------------ run
    def execute(self) -> None:
        self.anneal(self.station["furnace"], self.station["stages"].sample, self.clock)

    def check_recipe(self, furnace) -> list[Segment]:
        """The controller program, or a refusal (nothing is written either way)."""
        if not self.dwell_min >= 0 or not math.isfinite(self.dwell_min):
            raise LabctlError(f"anneal: dwell {self.dwell_min!r} min must be ≥ 0")
        if not self.cool_min > 0:
            raise LabctlError(f"anneal: controlled cooling {self.cool_min!r} min must be > 0")
        if self.ambient_c >= self.anneal_c:
            raise LabctlError(
                f"anneal: ambient {self.ambient_c:g} °C is not below the anneal "
                f"temperature {self.anneal_c:g} °C"
            )
        furnace.check_setpoint(self.anneal_c, "anneal temperature")
        furnace.check_setpoint(self.ambient_c, "ambient (end of cooling)")
        furnace.check_ramp_rate(self.ramp_c_per_min, "heating ramp")
        cool_rate = (self.anneal_c - self.ambient_c) / self.cool_min
        furnace.check_ramp_rate(
            cool_rate,
            f"cooling ramp ({self.anneal_c:g} → {self.ambient_c:g} °C in {self.cool_min:g} min)",
        )
        return anneal_program(
            self.anneal_c, self.dwell_min, self.ramp_c_per_min, cool_rate, self.ambient_c
        )

    def anneal(self, furnace, sample_stage, clock) -> None:
        """The recipe on these instruments (``execute`` passes the station's).

        Fills ``run_results``; raises on an interlock, a refusal or a stop.
        """
        r = self.run_results
        r.update(anneal_c=self.anneal_c, slot=self.slot, ended_by="running")
        if self.anneal_c <= self.ready_below_c:  # "as made": nothing to anneal
            sample_stage.move_to_slot(self.slot)
            r.update(anneal_c=None, ended_by="as made (not annealed)")
            return
        watch = None
        try:
            program = self.check_recipe(furnace)
            dwell_segment: int | None = 2
            if self.continue_program:
                program, dwell_segment = self._continuation(furnace)
                if program is None and dwell_segment is None:  # nothing left to do
                    _Watch(self, furnace, clock, None).record()  # the state found, on record
                    r["ended_by"] = "ready"
                    return
            else:
                self.check_programmer_idle(furnace)
            if program is not NATURAL_COOLING:  # else the film stays where it cools
                self.phase(f"moving slot {self.slot} into the hot zone")
                self._stage_moved = sample_stage
                sample_stage.move_to_slot(self.slot)
            self.check_stop()
            self._furnace_written = furnace
            if program:
                furnace.load_program(program)
                # on record before it runs: a kill from here on leaves a known "started"
                self.emit_progress(program_started=True, dwell_done_s=0.0, cooling_reached=False)
                furnace.run_program()
            watch = _Watch(self, furnace, clock, dwell_segment)
            if program is NATURAL_COOLING:
                watch.program_done_at = 0.0
            watch.run()
        except BaseException as exc:  # Ctrl-C included: the run summary says what ended it
            r["ended_by"] = _ended_by(exc)
            raise
        finally:
            if watch is not None:
                r.update(watch.results())
                if self.continue_program:
                    r["dwell_total_min"] = self.dwell_done_min + r["minutes_within_2c"]
        r["ended_by"] = "ready"

    def _continuation(self, furnace) -> tuple[list[Segment] | None, int | None]:
        """What continuing an interrupted anneal needs: (program to load, its dwell segment).

        ``(None, 2)``: the original program still runs on the controller: attach to it.
        ``(None, None)``: nothing is owed (program finished while nobody watched, or the
        dwell is done and the film is cool). Else a program for the dwell still owed.
        Never the whole anneal again: re-heating adds thermal history, which is recorded.
        """
        r = self.run_results
        status = furnace.program_status
        pv = furnace.temperature_c
        r["continued_from_status"] = status.name.lower()
        r["continued_at_pv_c"] = pv
        r["dwell_done_before_min"] = self.dwell_done_min
        if status in (ProgramStatus.RUN, ProgramStatus.HOLDBACK, ProgramStatus.HOLD):
            self._attached = True
            self.emit_progress(program_started=True, dwell_done_s=None, cooling_reached=False)
            if status == ProgramStatus.HOLD:
                furnace.run_program()
            r["continued"] = "attached to the program still running on the controller"
            self._furnace_written = furnace
            return None, 2
        if status == ProgramStatus.COMPLETE:
            self._attached = True
            self.emit_progress(program_started=True, dwell_done_s=None, cooling_reached=True)
            r["continued"] = (
                "the program completed on the controller while the runner was down; "
                "watching natural cooling only"
            )
            self._furnace_written = furnace
            return None, None if pv <= self.ready_below_c else 2
        owed = max(self.dwell_min - self.dwell_done_min, 0.0)
        if self.cooling_reached:
            owed = 0.0  # the programmer went past the dwell: it was done, whatever was recorded
        r["dwell_owed_min"] = owed
        cool_rate = (self.anneal_c - self.ambient_c) / self.cool_min
        if owed > 0 and self.progress_unknown:
            raise LabctlError(
                f"anneal of slot {self.slot} at {self.anneal_c:g} °C: refusing to heat: an "
                "earlier attempt started a program whose progress was not recorded, and the "
                f"controller has since been reset (it is {status.name.lower()}, PV {pv:g} °C); "
                f"recorded dwell {self.dwell_done_min:.1f} of {self.dwell_min:g} min, cooling "
                "segment not recorded. Read the earlier attempts' run files (temperature_c, "
                "segment) to decide whether the film needs more heat; nothing was moved or written"
            )
        if owed > 0:
            r["continued"] = (
                f"program was reset: re-heating for the {owed:.1f} min of dwell still owed "
                "(the re-heating adds thermal history)"
            )
            return anneal_program(
                self.anneal_c, owed, self.ramp_c_per_min, cool_rate, self.ambient_c
            ), 2
        if pv <= self.ready_below_c:
            r["continued"] = "dwell already done and the film is cool: nothing to anneal"
            r.update(minutes_within_2c=0.0, dwell_total_min=self.dwell_done_min)
            return None, None
        # No program: a ramp-down starts from the PV the controller reads as it starts,
        # which after a mended sensor can be the stale hot value (it heated, measured).
        # The furnace has no cooling, so the safe setpoint cools as fast as any ramp.
        r["continued"] = "dwell already done: natural cooling only, furnace in its safe state"
        self._furnace_written = furnace
        furnace.safe_state()
        return NATURAL_COOLING, None

    def check_programmer_idle(self, furnace) -> None:
        """A program this run did not start (the front panel, another client) is never
        touched: refuse before moving or writing anything, so make_safe resets nothing."""
        status = furnace.program_status
        if status in (ProgramStatus.RUN, ProgramStatus.HOLD, ProgramStatus.HOLDBACK):
            raise InstrumentError(
                furnace.name,
                f"program {furnace.program_number} is {status.name.lower()} on the controller, "
                "not started by this run; refusing to anneal (nothing moved or written): "
                "let it finish, or reset it at the controller",
            )

    def emit_progress(
        self, *, program_started: bool, dwell_done_s: float | None, cooling_reached: bool
    ) -> None:
        """The programmer's account, for the series catalog (topic ``anneal-progress``)."""
        if dwell_done_s is not None:
            self.run_results["programmer_dwell_done_s"] = dwell_done_s
        self.emit(
            "anneal-progress",
            {
                "program_started": program_started,
                "attached": self._attached,
                "dwell_done_s": dwell_done_s,
                "cooling_reached": cooling_reached,
            },
        )

    def record_final_progress(self, furnace) -> None:
        """Before a reset erases it: the programmer's last account, on record (best effort)."""
        try:
            progress = furnace.program_progress()
        except LabctlError:
            return
        if progress.known:
            self.emit_progress(
                program_started=True,
                dwell_done_s=progress.dwell_done_s,
                cooling_reached=progress.past_dwell,
            )

    def make_safe(self) -> None:
        """Program reset and setpoint safe (only if this run wrote to the furnace); stage stopped."""
        problems: list[str] = []
        furnace = self._furnace_written
        if furnace is None:
            self.safe_state_report = "furnace not written by this run (left as it was)"
        else:
            self.record_final_progress(furnace)
            for attempt in range(SAFE_STATE_ATTEMPTS):
                try:
                    # the driver's safe_state() reads back and says so (None: not read back)
                    self.safe_state_report = furnace.safe_state() or SAFE_NOT_READ_BACK
                    break
                except LabctlError as exc:
                    if attempt == SAFE_STATE_ATTEMPTS - 1:
                        problems.append(str(exc))
                    else:
                        furnace.clock.sleep(SAFE_STATE_RETRY_S)
        stage = self._stage_moved
        if stage is not None:
            try:
                stage.stop()
            except LabctlError as exc:
                problems.append(str(exc))
        if problems:
            raise SafeStateError("anneal", "; ".join(problems))

    # ------------------------------------------------------------------ estimate
    @classmethod
    def estimated_duration_s(cls, values: dict) -> float:
        """Heating ramp + dwell + controlled cooling + ~30 min natural cooling, at real time."""
        v = {name: p.default for name, p in vars(cls).items() if hasattr(p, "default")}
        v.update({k: x for k, x in values.items() if x is not None})
        heat_min = max(v["anneal_c"] - v["ambient_c"], 0.0) / max(v["ramp_c_per_min"], 1e-3)
        return 60.0 * (heat_min + v["dwell_min"] + v["cool_min"] + NATURAL_COOLING_MIN)

    # ------------------------------------------------------------------ results
    @classmethod
    def summary_line(cls, run_results: dict) -> str:
        t = run_results.get("anneal_c")
        if t is None:
            return f"anneal: slot {run_results.get('slot', '?')} as made, nothing annealed"
        line = f"anneal {t:g} °C"
        if run_results.get("max_pv_c") is not None:
            line += (
                f": max PV {run_results['max_pv_c']:.1f} °C, "
                f"{run_results.get('minutes_within_2c', 0.0):.1f} min within ±{WITHIN_C:g} °C"
            )
        if run_results.get("ended_by") == "ready":
            line += f", ready after {run_results.get('anneal_hours', math.nan):.2f} h"
        elif run_results.get("ended_by"):
            line += f" (ended by {run_results['ended_by']})"
        return line


class _Watch:
    """Record rows and check interlocks until the program is done and the furnace is cool."""

    def __init__(self, proc: Anneal, furnace, clock, dwell_segment: int | None = 2) -> None:
        self.proc, self.furnace, self.clock = proc, furnace, clock
        self.dwell_segment = dwell_segment
        self.t0 = self.next_row_t = clock.now()
        self.max_pv = -math.inf
        self.within_s = 0.0
        self.dwell_s = 0.0
        self.program_done_at: float | None = None
        self.last: tuple[float, float, int] | None = None  # (t, pv, segment)
        self.departed_since: float | None = None
        ramp_min = max(proc.anneal_c - proc.ambient_c, 0.0) / proc.ramp_c_per_min
        self.program_s = 60.0 * (ramp_min + proc.dwell_min + proc.cool_min)

    def run(self) -> None:
        p = self.proc
        p.phase(f"heating to {p.anneal_c:g} °C at {p.ramp_c_per_min:g} °C/min")
        while True:
            p.check_stop()
            row = self.record()
            if self.program_done_at is None:
                status = row["program_status"]
                if status == ProgramStatus.COMPLETE.name.lower():
                    self.program_done_at = row["elapsed_s"]
                    p.phase(f"natural cooling below {p.ready_below_c:g} °C")
                elif status == ProgramStatus.RESET.name.lower():
                    raise InstrumentError(
                        self.furnace.name,
                        "the program was reset at the controller before it completed",
                    )
            elif row["temperature_c"] <= p.ready_below_c:
                p.progress(1.0)
                return
            elif row["elapsed_s"] - self.program_done_at > NATURAL_COOLING_LIMIT_S:
                raise InstrumentError(
                    self.furnace.name,
                    f"did not cool below {p.ready_below_c:g} °C within "
                    f"{NATURAL_COOLING_LIMIT_S / 3600:g} h of the program's end",
                )
            p.progress(min(row["elapsed_s"] / (self.program_s * 1.3), 0.99))
            self.wait_for_next_row()

    def wait_for_next_row(self) -> None:
        """Rows on a fixed grid of the station clock (the reading time does not add up)."""
        self.next_row_t += self.proc.record_interval_s
        wait = self.next_row_t - self.clock.now()
        if wait > 0:
            self.clock.sleep(wait)
        else:  # behind (a slow link): start the grid afresh
            self.next_row_t = self.clock.now()

    def record(self) -> dict:
        furnace, p = self.furnace, self.proc
        with furnace.lock:
            furnace.check_interlocks()  # sensor break, over-temperature
            now = self.clock.now()
            pv = furnace.temperature_c
            wsp = furnace.working_setpoint_c
            setpoint, output = furnace.setpoint_c, furnace.output_percent
            progress: ProgramProgress = furnace.program_progress()  # status, segment, dwell
        row = {
            "elapsed_s": round(now - self.t0, 3),
            "temperature_c": pv,
            "setpoint_c": setpoint,
            "working_setpoint_c": wsp,
            "output_percent": output,
            "segment": progress.segment,
            "program_status": progress.status.name.lower(),
        }
        row["dwell_done_s"] = progress.dwell_done_s if progress.known else math.nan
        if progress.known:
            p.emit_progress(
                program_started=True,
                dwell_done_s=progress.dwell_done_s,
                cooling_reached=progress.past_dwell,
            )
        p.emit("results", row)
        self.max_pv = max(self.max_pv, pv)
        if self.last is not None:
            t_prev, pv_prev, seg_prev = self.last
            if abs(pv_prev - p.anneal_c) <= WITHIN_C:
                self.within_s += now - t_prev
            if seg_prev == self.dwell_segment:
                self.dwell_s += now - t_prev
        self.check_deviation(now, pv, wsp)
        self.last = (now, pv, row["segment"])
        return row

    def check_deviation(self, now: float, pv: float, wsp: float) -> None:
        p = self.proc
        rising = self.last is not None and pv > self.last[1]
        departed = pv < wsp - p.max_deviation_c or (pv > wsp + p.max_deviation_c and rising)
        if not departed:
            self.departed_since = None
            return
        if self.departed_since is None:
            self.departed_since = now
        if now - self.departed_since > p.deviation_grace_s:
            raise FurnaceInterlock(
                self.furnace.name,
                f"deviation: PV {pv:g} °C is {pv - wsp:+.1f} °C from the working setpoint "
                f"{wsp:g} °C for {now - self.departed_since:.0f} s "
                f"(allowed ±{p.max_deviation_c:g} °C for {p.deviation_grace_s:g} s)",
            )

    def results(self) -> dict:
        elapsed = (self.last[0] - self.t0) if self.last else 0.0
        return {
            "max_pv_c": self.max_pv if self.last else None,
            "minutes_within_2c": self.within_s / 60.0,
            "dwell_achieved_min": self.dwell_s / 60.0,
            "anneal_hours": elapsed / 3600.0,
            "program_completed_after_h": (
                self.program_done_at / 3600.0 if self.program_done_at is not None else None
            ),
        }


def dwell_done_min(run_file, params: dict) -> float:
    """Minutes an (interrupted) anneal attempt held PV within ±2 °C of the anneal temperature.

    Read from the attempt's recorded rows (the same count as ``minutes_within_2c``);
    0 for a file without rows. ``params`` are the step's Anneal parameters. A
    measure of the thermal history for reports and tests, never what resume
    decides from: a complete 30 min dwell scores only 26–28 min here (overshoot,
    approach); resume uses the programmer's own account (``anneal-progress``).
    """
    import csv

    target = float(params.get("anneal_c", Anneal.anneal_c.default))
    within_s = 0.0
    previous: tuple[float, float] | None = None
    try:
        with open(run_file, encoding="utf-8") as fh:
            lines = (line for line in fh if not line.startswith("#"))
            for row in csv.DictReader(lines):
                try:
                    t, pv = float(row["elapsed_s"]), float(row["temperature_c"])
                except (KeyError, TypeError, ValueError):
                    continue  # a line cut short by the crash
                if previous is not None and abs(previous[1] - target) <= WITHIN_C:
                    within_s += max(t - previous[0], 0.0)
                previous = (t, pv)
    except FileNotFoundError:
        return 0.0
    return within_s / 60.0


def _ended_by(exc: BaseException) -> str:
    if isinstance(exc, Aborted | KeyboardInterrupt):
        return "aborted"
    if isinstance(exc, FurnaceInterlock):
        return f"interlock: {exc}"
    return f"error: {exc}"
