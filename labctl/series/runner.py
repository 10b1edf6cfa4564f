"""Run a series plan step by step through the procedures, recording each state change.

Annealing is irreversible, so the runner's first duty is never to repeat one:

* a finished step (``done``) is never run again (``failed`` and ``skipped``
  steps are tried again on resume);
* an anneal found ``running`` at resume (the runner died, the furnace did not:
  the program runs on the controller) is *continued*: the Anneal procedure
  attaches to a program still running, or, when it was reset, runs only the
  dwell still owed by the programmers' own account, recorded in the catalog as
  it ran (``anneal-progress``). A film whose program reached its cooling
  segment, or whose recorded dwell reaches the plan's, is never heated again;
  where an earlier program's progress is unknown the anneal refuses to heat;
* a measurement found ``running`` is redone into a new file; the partial file
  stays on record in the catalog's ``attempts``.

One runner per series directory and one owner per instrument
(:mod:`labctl.ownership`): a second runner, or another run on the station's
instruments, is refused in one line naming the holder, before anything is
written; ``labctl series run`` claims before it opens the station
(:func:`claim_series`), so a refused runner connects to no instrument. A resume
runs on the station the series started on (recorded in the catalog) unless told
otherwise (``allow_other_station``); a damaged catalog is reported as damaged; a
step with run files is never started afresh.

A failed anneal is never retried (it stops the series, or skips to the next
film by the plan's ``on_failure``); a failed measurement is retried up to the
plan's ``retries``. Every instrument is left in its safe state by the
procedures' ``shutdown()``; the runner adds the furnace's safe state whenever
the series stops early.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.errors import LabctlError
from labctl.ownership import Busy, claim_series_directory, claim_station, owner_scope
from labctl.series.catalog import (
    CATALOG_NAME,
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    SKIPPED,
    Catalog,
    CatalogError,
)
from labctl.series.plan import Plan, Step
from labctl.series.states import SeriesState

log = logging.getLogger(__name__)

RUNS_DIR = "runs"
PUMP_NM = 400.0  # the OPTP pump wavelength (the paper: 400 nm)


class SeriesError(LabctlError):
    """A series that cannot start or continue (plan changed, catalog missing, …)."""


@dataclass
class SeriesOutcome:
    state: str  # "done", "stopped", "aborted"
    message: str
    done: int
    failed: int
    skipped: int
    #: How the stop left the furnace: "furnace safe state confirmed (read back): …",
    #: "… set (not read back)" or what is not safe ("" when the series was not stopped).
    safe_state: str = ""


def claim_series(out_dir: str | Path, station, owner: object) -> list:
    """Claim the series directory, then the station's instruments (a ``Station`` or its
    spec), for ``owner``; refused with :class:`SeriesError` naming the holder, all or
    none. Claimed on the spec before the station opens, a refused runner touches no
    instrument. The claims are returned for the caller to release."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        directory = claim_series_directory(out_dir, owner=owner)
    except Busy as exc:
        raise SeriesError(f"refusing to run a second runner: {exc}") from None
    try:
        instruments = claim_station(station, owner=owner)
    except Busy as exc:
        directory.release()
        raise SeriesError(f"refusing to start: {exc}") from None
    return [instruments, directory]


class SeriesRunner:
    """Runs ``plan`` into ``out_dir`` on ``station`` (a connected :class:`Station`)."""

    def __init__(
        self,
        plan: Plan,
        out_dir: str | Path,
        station,
        *,
        resume: bool = False,
        allow_changed_plan: bool = False,
        allow_other_station: bool = False,
        stop: threading.Event | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        owner: object | None = None,
    ) -> None:
        self.plan = plan
        #: Whose claims this runner's are (re-entrant): the caller's when it claimed the
        #: series before opening the station (:func:`claim_series`), else the runner's own.
        self.owner = owner if owner is not None else self
        self.out_dir = Path(out_dir).resolve()
        self.station = station
        self.stop = stop if stop is not None else threading.Event()
        self.on_event = on_event
        self.safe_state = ""
        self.allow_other_station = allow_other_station
        self._check_slots()
        claims = self._claim(resume)
        try:
            self.catalog = self._open_catalog(resume, allow_changed_plan)
        except BaseException:
            for c in claims:
                c.release()
            raise
        for c in claims:  # released when the catalog closes (the runner's end)
            self.catalog.hold(c)

    def close(self) -> None:
        """Close the catalog and give back the series directory and the instruments."""
        self.catalog.close()

    def _claim(self, resume: bool) -> list:
        """The series directory, then every instrument of the station, for this runner."""
        leftover = (self.out_dir / STARTUP_MARK).exists()
        self._startup_killed = resume and leftover and not (self.out_dir / CATALOG_NAME).exists()
        return claim_series(self.out_dir, self.station, self.owner)

    def _check_slots(self) -> None:
        """Every film's slot exists on this station's holder (before anything moves)."""
        from labctl.series.plan import PlanError

        if "stages" not in self.station:
            return
        holder = getattr(self.station["stages"], "sample", None)
        n_slots = getattr(holder, "n_slots", None)
        if n_slots is None:
            return
        for step in self.plan.steps:
            if not 1 <= step.slot < n_slots:
                raise PlanError(
                    f"{self.plan.slots_where}: slots: slot {step.slot} does not exist on station "
                    f"{self.station.spec.name!r} (its holder has film slots 1..{n_slots - 1}; "
                    "slot 0 is the blank): more films than slots"
                )

    # ------------------------------------------------------------------ catalog
    def _open_catalog(self, resume: bool, allow_changed_plan: bool) -> Catalog:
        existing = (self.out_dir / CATALOG_NAME).exists()
        if existing and not resume:
            raise SeriesError(
                f"{self.out_dir} already holds a series; continue it with --resume "
                "or choose another --out"
            )
        if resume and not existing and not self._startup_killed:
            raise SeriesError(
                f"{self.out_dir}: no series to resume (no {CATALOG_NAME}); nothing ran here: "
                "start it without --resume"
            )
        if not existing:
            catalog = self._create_catalog()
            if self._startup_killed:
                catalog.event(
                    "warning",
                    "the previous runner stopped before the series was "
                    "recorded (nothing ran); starting it now",
                )
            return catalog
        try:
            catalog = Catalog.in_directory(self.out_dir)
        except CatalogError as exc:
            raise SeriesError(f"{exc}; nothing was run") from None
        damage = catalog.damage()
        if damage is not None:
            catalog.close()
            raise SeriesError(
                f"{catalog.path} is damaged: {damage} (emptied, or copied without its -wal "
                "file?); refusing to resume, nothing was run: restore the catalog with its "
                f"{CATALOG_NAME}-wal, or start a new series in another --out"
            )
        recorded = catalog.series() or {}
        self._check_station(catalog, recorded)
        self._check_unrecorded_runs(catalog)
        if recorded.get("plan_digest") != self.plan.digest:
            if not allow_changed_plan:
                catalog.close()
                raise SeriesError(
                    f"{self.plan.path} differs from the plan this series started with "
                    f"(recorded in {catalog.path}); refusing to resume — pass "
                    "--allow-changed-plan to continue with the recorded steps"
                )
            self._adopt_changed_plan(catalog)
        return catalog

    def _adopt_changed_plan(self, catalog: Catalog) -> None:
        """--allow-changed-plan: parameters of steps not yet done may change, steps may be
        added at the end; a recorded step's film, kind or temperature may not."""
        recorded = catalog.steps()
        for row in recorded:
            step = self.plan.steps[row["idx"]] if row["idx"] < len(self.plan.steps) else None
            same = step is not None and (
                step.kind,
                step.temperature_c,
                step.slot,
                step.sample_id,
            ) == (row["kind"], row["temperature_c"], row["slot"], row["sample_id"])
            if not same:
                catalog.close()
                raise SeriesError(
                    f"{self.plan.path}: step {row['idx']} ({row['kind']} "
                    f"{row['temperature_c']} °C of {row['sample_id']}) is not in the changed "
                    "plan at the same place; a changed plan may alter parameters and add steps, "
                    "not reorder or remove them"
                )
        catalog.adopt_plan(self.plan, first_new=len(recorded))
        catalog.event("warning", f"resumed with a changed plan file ({self.plan.path})")

    def _check_unrecorded_runs(self, catalog: Catalog) -> None:
        """A step the catalog says never ran, with run files of its own in ``runs/``: the
        catalog is behind its data (restored from an old copy?). Never start it afresh."""
        runs = self.out_dir / RUNS_DIR
        if not runs.is_dir():
            return
        named = {a["run_file"] for a in catalog.attempts() if a["run_file"]}
        files = sorted(p for p in runs.iterdir() if p.suffix == ".csv")
        for row in catalog.steps():
            if row["attempts"] != 0:
                continue
            prefix = run_file_prefix(row["kind"], row["sample_id"] or "")
            stray = [
                p
                for p in files
                if p.name.startswith(prefix) and str(p.relative_to(self.out_dir)) not in named
            ]
            if stray:
                catalog.close()
                raise SeriesError(
                    f"{catalog.path}: step {row['idx']} ({row['kind']} of {row['sample_id']}) "
                    f"is recorded as never run, but {stray[0].relative_to(self.out_dir)} is its "
                    "data: the catalog is behind its run files (an old copy?); refusing to run "
                    "it again, nothing was run: restore the catalog with its -wal file"
                )

    def _create_catalog(self) -> Catalog:
        """A new catalog, whole or not at all: built beside, then renamed into place.

        A runner killed while it starts leaves no half-made catalog, only the
        start-up mark, and ``--resume`` then starts the series (nothing had run).
        """
        mark = self.out_dir / STARTUP_MARK
        mark.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            (self.out_dir / (STARTUP_MARK + suffix)).unlink(missing_ok=True)
        building = Catalog(mark, create=True)
        try:
            building.initialise(self.plan, self.station.spec.source, station_identity(self.station))
            building.checkpoint()
        finally:
            building.close()
        os.replace(mark, self.out_dir / CATALOG_NAME)
        return Catalog.in_directory(self.out_dir)

    def _check_station(self, catalog: Catalog, recorded: dict) -> None:
        """A resume runs on the station the series started on, unless told otherwise."""
        then = recorded.get("station_identity")
        now = station_identity(self.station)
        if then is None:  # a catalog from before identities were recorded: its source
            same = _same_source(recorded.get("station"), now["source"])
        else:
            same = then["instruments"] == now["instruments"]
        if same:
            return
        if self.allow_other_station:
            catalog.event(
                "warning",
                f"resumed on station {now['source']} although the series started on "
                f"{recorded.get('station')} (allowed explicitly)",
            )
            return
        catalog.close()
        differs = (
            _differences(then["instruments"], now["instruments"])
            if then is not None
            else f"station file {now['source']}"
        )
        raise SeriesError(
            f"{self.out_dir}: the series started on station {recorded.get('station')}; this "
            f"resume is on another ({differs}); refusing — resume without --station to use "
            "the recorded one, or pass --allow-other-station to continue on this one"
        )

    def _emit(self, what: str, **info) -> None:
        if self.on_event is not None:
            try:
                self.on_event(what, info)
            except Exception:
                log.exception("series display failed on %r", what)

    # ------------------------------------------------------------------ run
    def run(self) -> SeriesOutcome:
        with owner_scope(self.owner):  # the procedures' claims are this runner's: re-entrant
            return self._run()

    def _run(self) -> SeriesOutcome:
        catalog = self.catalog
        catalog.set_series_state(RUNNING)
        catalog.event("info", f"series {self.plan.name!r} started on {self.station.spec.name}")
        skip_sample: str | None = None
        stopped = ""
        try:
            for step in self.plan.steps:
                row = catalog.step(step.index)
                if row["state"] == DONE:  # skipped steps (their film failed) are retried
                    continue
                if skip_sample is not None and step.sample_id == skip_sample:
                    catalog.skip(step.index, f"skipped: an earlier step of {skip_sample} failed")
                    continue
                if self.stop.is_set():
                    stopped = "stopped by the user"
                    break
                ok, message = self._run_step(step, row)
                if ok:
                    continue
                if self.stop.is_set():
                    stopped = message or "stopped by the user"
                    break
                if self.plan.on_failure == "next-film" and self.plan_has_other_films(step):
                    skip_sample = step.sample_id
                    catalog.event("error", f"{step.label}: {message}; next film", step.index)
                    continue
                stopped = f"{step.label}: {message}"
                break
        except BaseException as exc:  # Ctrl-C between steps, a broken catalog: still safe
            stopped = stopped or f"the runner stopped: {type(exc).__name__}: {exc}"
            self._furnace_safe_if(stopped)
            with contextlib.suppress(Exception):
                catalog.set_series_state(SeriesState.ABORTED, stopped)
            raise
        self._furnace_safe_if(stopped)
        return self._finish(stopped)

    def plan_has_other_films(self, step: Step) -> bool:
        return any(s.sample_id != step.sample_id for s in self.plan.steps[step.index + 1 :])

    def _finish(self, stopped: str) -> SeriesOutcome:
        steps = self.catalog.steps()
        count = {s: sum(1 for r in steps if r["state"] == s) for s in (DONE, FAILED, SKIPPED)}
        if stopped:
            state = SeriesState.ABORTED if self.stop.is_set() else SeriesState.STOPPED
            self.catalog.set_series_state(state, stopped)
            self.catalog.event("error", f"series {state}: {stopped}")
        else:
            state = SeriesState.DONE if count[FAILED] == 0 else SeriesState.DONE_WITH_FAILURES
            self.catalog.set_series_state(state)
            self.catalog.event("info", "series finished")
        return SeriesOutcome(
            state, stopped, count[DONE], count[FAILED], count[SKIPPED], self.safe_state
        )

    def _furnace_safe_if(self, stopped: str) -> None:
        """The furnace's safe state when the series stops early, read back and reported."""
        if not stopped or "furnace" not in self.station:
            return
        from labctl.clock import uninterruptible

        try:
            with uninterruptible():
                report = self.station["furnace"].safe_state() or "safe state set (not read back)"
            self.safe_state = f"furnace {report}"
            self.catalog.event("info", self.safe_state)
        except Exception as exc:  # recorded loudly; the series already stopped
            self.safe_state = f"furnace safe state NOT confirmed: {exc}"
            self.catalog.event("error", self.safe_state)

    # ------------------------------------------------------------------ steps
    def _run_step(self, step: Step, row: dict) -> tuple[bool, str]:
        from labctl.procedures import procedure_class
        from labctl.runs import new_run_file, run_procedure

        catalog = self.catalog
        params = dict(step.params)
        if row["state"] == RUNNING:  # the runner died during this step
            catalog.interrupted(step.index, "the series runner stopped during this attempt")
            catalog.event(
                "warning", f"{step.label}: interrupted attempt kept, continuing", step.index
            )
            if step.kind == "anneal":
                params.update(self._anneal_continuation(step))
        elif row["state"] == FAILED and step.kind == "anneal":  # stopped by an interlock
            params.update(self._anneal_continuation(step))
        if step.kind == "optp":
            params.update(self._film_absorbance(step, params))
        attempts_left = 1 if step.kind == "anneal" else 1 + self.plan.retries
        message = ""
        while attempts_left > 0:
            attempts_left -= 1
            cls = procedure_class(step.kind)
            procedure = cls(slot=step.slot, sample_id=step.sample_id, **params)
            path = new_run_file(self.out_dir / RUNS_DIR, step.kind, step.sample_id)
            attempt = catalog.start_step(step.index, str(path.relative_to(self.out_dir)))
            self._emit("step-start", step=step, attempt=attempt, file=str(path))
            on_emit = self._listener(step, attempt)
            outcome = run_procedure(
                procedure, path, station=self.station, stop=self.stop, on_emit=on_emit
            )
            dwell_s = outcome.results.get("programmer_dwell_done_s")
            if outcome.ok:
                catalog.end_step(step.index, DONE, results=outcome.results, dwell_done_s=dwell_s)
                catalog.checkpoint()
                self._emit("step-end", step=step, outcome=outcome)
                return True, ""
            message = outcome.message
            catalog.end_step(
                step.index, FAILED, results=outcome.results, message=message, dwell_done_s=dwell_s
            )
            catalog.checkpoint()
            catalog.event("error", f"{step.label} attempt {attempt}: {message}", step.index)
            self._emit("step-end", step=step, outcome=outcome)
            if self.stop.is_set() or step.kind == "anneal" or not outcome.ending.retry_may_help:
                break
        return False, message

    def _film_absorbance(self, step: Step, params: dict) -> dict[str, Any]:
        """The film's absorbance at the pump wavelength, from its absorption step of this anneal.

        OPTP normalises its peak by the absorbed photon density N_abs (the paper's
        comparison across temperatures); the plan may give it instead.
        """
        if params.get("absorbance_400nm") is not None or params.get("absorptance_400nm"):
            return {}
        for other in self.plan.steps:
            if (
                other.kind == "absorption"
                and other.sample_id == step.sample_id
                and other.temperature_c == step.temperature_c
            ):
                row = self.catalog.step(other.index)
                if row["state"] == DONE and row["run_file"]:
                    a = absorbance_at(self.out_dir / row["run_file"], PUMP_NM)
                    if a is not None and a > 0:
                        return {"absorbance_400nm": round(a, 6)}
        return {}

    def _listener(self, step: Step, attempt: int) -> Callable[[str, Any], None]:
        """Forward a run's emits to the display; an anneal's programmer account to the catalog
        as it happens (an attempt that attached continues the program of an earlier one)."""
        earlier = self.catalog.anneal_history(step.index)["last_program_attempt"]

        def on_emit(topic: str, record: Any) -> None:
            if topic == "anneal-progress":
                self.catalog.record_anneal_progress(
                    step.index,
                    attempt,
                    program_started=record["program_started"],
                    dwell_done_s=record["dwell_done_s"],
                    cooling_reached=record["cooling_reached"],
                    program_attempt=earlier if record["attached"] else None,
                )
                return
            self._emit(topic, step=step, record=record)

        return on_emit

    def _anneal_continuation(self, step: Step) -> dict[str, Any]:
        """Parameters that continue an interrupted anneal instead of repeating it: the
        programmers' account recorded in the catalog, never a temperature window."""
        history = self.catalog.anneal_history(step.index)
        done_min = history["dwell_done_s"] / 60.0
        unknown = history["unknown_attempts"]
        said = (
            f"{step.label}: programmer's record: {done_min:.1f} min of dwell done"
            + (", cooling segment reached" if history["cooling_reached"] else "")
            + (f"; progress of attempt(s) {unknown} unknown" if unknown else "")
            + "; continuing, not repeating"
        )
        self.catalog.event("info", said, step.index)
        return {
            "dwell_done_min": round(done_min, 4),
            "cooling_reached": history["cooling_reached"],
            "progress_unknown": bool(unknown),
            "continue_program": True,
        }


STARTUP_MARK = CATALOG_NAME + ".new"  # a catalog being created (a start-up in progress)


def run_file_prefix(kind: str, sample_id: str) -> str:
    """How :func:`labctl.runs.new_run_file` names a step's run files."""
    tag = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in sample_id)
    return f"{kind}_{tag}_" if tag else f"{kind}_"


def station_identity(station) -> dict[str, Any]:
    """What a resume compares: the station file and each instrument's driver and address."""
    source = station.spec.source
    with contextlib.suppress(OSError, ValueError):
        if source and Path(source).exists():
            source = str(Path(source).resolve())
    return {
        "source": source,
        "name": station.spec.name,
        "instruments": {
            role: {"driver": inst.driver, "address": inst.address}
            for role, inst in sorted(station.spec.instruments.items())
        },
    }


def recorded_station(out_dir: str | Path) -> str | None:
    """The station a series in ``out_dir`` started on (for a resume without --station)."""
    path = Path(out_dir) / CATALOG_NAME
    if not path.exists():
        return None
    try:
        with Catalog(path) as catalog:
            series = catalog.series() or {}
    except LabctlError:
        return None  # the runner reports the damage
    identity = series.get("station_identity") or {}
    return identity.get("source") or series.get("station") or None


def _same_source(recorded: str | None, now: str) -> bool:
    if recorded is None:
        return True
    with contextlib.suppress(OSError, ValueError):
        return Path(recorded).resolve() == Path(now).resolve() or recorded == now
    return recorded == now


def _differences(then: dict, now: dict) -> str:
    roles = sorted(set(then) | set(now))
    out = [
        f"{r}: {then.get(r, {}).get('address', 'none')} → {now.get(r, {}).get('address', 'none')}"
        for r in roles
        if then.get(r) != now.get(r)
    ]
    return "; ".join(out[:3]) + ("; …" if len(out) > 3 else "")


def absorbance_at(run_file: Path, wavelength_nm: float, half_width_nm: float = 2.0):
    """Median absorbance within ±``half_width_nm`` of ``wavelength_nm`` in an absorption run."""
    import csv

    import numpy as np

    values = []
    try:
        with open(run_file, encoding="utf-8") as fh:
            for row in csv.DictReader(line for line in fh if not line.startswith("#")):
                try:
                    wl, a = float(row["wavelength_nm"]), float(row["absorbance"])
                except (KeyError, TypeError, ValueError):
                    continue
                if abs(wl - wavelength_nm) <= half_width_nm and np.isfinite(a):
                    values.append(a)
    except OSError:
        return None
    return float(np.median(values)) if values else None


__all__ = ["SeriesRunner", "SeriesError", "SeriesOutcome", "PENDING", "absorbance_at"]
