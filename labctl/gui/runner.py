"""The run queue: procedures run one after another in a worker thread.

Each run goes through :func:`labctl.runs.run_procedure` (every point flushed to
the pymeasure Results file, ``shutdown()`` → ``make_safe()`` whatever happens),
on the station the GUI shares with its instrument monitor (the per-instrument
locks serialize their I/O). Everything the procedure emits is re-emitted as a
Qt signal, which Qt queues to the GUI thread. Abort sets the run engine's stop
event; after an aborted or failed run the furnace is read back and, if it is not
in its safe state, put there and read back again (:func:`ensure_furnace_safe`) — by a
run that drives the furnace; otherwise the state is reported and left alone.

Abort and Quit take the one stop path: the stop event ends the run's current
wait within a second (the clocks watch it), the procedure's safe state runs to
its end, and :meth:`RunQueue.close` returns only when it has — the GUI never
exits with a furnace program still running.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qtpy import QtCore

from labctl.errors import LabctlError
from labctl.runs import ABORTED, FAILED, FINISHED, Ending, RunOutcome

log = logging.getLogger(__name__)

_ids = itertools.count(1)


@dataclass
class RunRequest:
    """One queued measurement: a procedure kind and its parameter values."""

    kind: str
    values: dict[str, Any]
    id: int = field(default_factory=lambda: next(_ids))
    state: str = "queued"  # queued → running → finished | aborted | failed
    data_file: str = ""
    message: str = ""

    @property
    def label(self) -> str:
        sample = self.values.get("sample_id") or ""
        slot = self.values.get("slot")
        return (
            f"#{self.id} {self.kind}"
            + (f" {sample}" if sample else "")
            + (f" (slot {slot})" if slot is not None else "")
        )


def furnace_is_safe(furnace) -> tuple[bool, dict[str, Any]]:
    """Read back the furnace: program reset, setpoint at its safe value, auto mode."""
    from labctl.drivers.eurotherm import ProgramStatus

    with furnace.lock:
        state = {
            "program_status": furnace.program_status,
            "setpoint_c": furnace.setpoint_c,
            "manual_mode": furnace.manual_mode,
        }
    safe = (
        state["program_status"] == ProgramStatus.RESET
        and math.isclose(state["setpoint_c"], furnace.safe_setpoint_c, abs_tol=0.51)
        and not state["manual_mode"]
    )
    return safe, state


def ensure_furnace_safe(station, restore: bool = True) -> tuple[bool, str]:
    """Verify (and, with ``restore``, if need be restore) the furnace's safe state.

    Returns (safe, a readable verdict). ``restore=False`` is for runs that never
    touch the furnace: a program running then belongs to someone else (a series in
    another process on a served station) and is reported, not reset.
    """
    if station is None or "furnace" not in station:
        return True, "no furnace on this station"
    furnace = station["furnace"]
    try:
        safe, state = furnace_is_safe(furnace)
        if not safe and restore:
            log.warning("furnace not in its safe state after the run (%s): applying it", state)
            furnace.safe_state()
            safe, state = furnace_is_safe(furnace)
    except LabctlError as exc:
        return False, f"furnace safe state NOT confirmed: {exc}"
    text = (
        f"program {state['program_status'].name.lower()}, setpoint {state['setpoint_c']:g} °C, "
        f"{'manual' if state['manual_mode'] else 'auto'} (read back)"
    )
    if safe:
        return True, f"furnace safe: {text}"
    return False, f"furnace NOT safe: {text}"


class RunQueue(QtCore.QObject):
    """Runs queued :class:`RunRequest` in order in one worker thread."""

    #: (request, topic, record) for every emit of the running procedure
    emitted = QtCore.Signal(object, str, object)
    #: (request, LiveFitUpdate) with arrays: Δσ(ω) and the model, from the TDS live fit
    fit_update = QtCore.Signal(object, object)
    started = QtCore.Signal(object)
    #: (request, RunOutcome)
    finished = QtCore.Signal(object, object)
    #: (safe, message) after an aborted or failed run
    safety = QtCore.Signal(bool, str)
    changed = QtCore.Signal()

    def __init__(self, station, data_dir: str | Path, parent=None) -> None:
        super().__init__(parent)
        self.station = station
        self.data_dir = Path(data_dir)
        self.pending: list[RunRequest] = []
        self.current: RunRequest | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="labctl-gui-runs", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ GUI side
    def submit(self, kind: str, values: dict[str, Any]) -> RunRequest:
        request = RunRequest(kind, dict(values))
        with self._cond:
            self.pending.append(request)
            self._cond.notify_all()
        self.changed.emit()
        return request

    def remove(self, request_id: int) -> bool:
        """Drop a queued (not yet running) request."""
        with self._cond:
            before = len(self.pending)
            self.pending = [r for r in self.pending if r.id != request_id]
            removed = len(self.pending) != before
        if removed:
            self.changed.emit()
        return removed

    def abort(self) -> bool:
        """Ask the running procedure to stop (it stops between points, then makes safe)."""
        with self._cond:
            running = self.current is not None
        if running:
            self._stop.set()
        return running

    @property
    def busy(self) -> bool:
        with self._cond:
            return self.current is not None or bool(self.pending)

    def close(self, timeout_s: float | None = None) -> bool:
        """Abort the running request, drop the queue, and wait until its safe state is done.

        ``timeout_s=None`` (Quit) waits as long as the safe state takes — bounded by the
        drivers' I/O timeouts, not by a guess — logging while it waits. True if it ended.
        """
        import time

        with self._cond:
            self._closing = True
            self.pending.clear()
            self._cond.notify_all()
        self._stop.set()
        t0 = time.monotonic()
        while self._thread.is_alive():
            left = None if timeout_s is None else timeout_s - (time.monotonic() - t0)
            if left is not None and left <= 0:
                break
            self._thread.join(5.0 if left is None else min(left, 5.0))
            if self._thread.is_alive():
                log.warning("waiting for the running measurement to reach its safe state")
        return not self._thread.is_alive()

    # ------------------------------------------------------------------ worker side
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self.pending and not self._closing:
                    self._cond.wait(0.5)
                if self._closing:
                    return
                request = self.pending.pop(0)
                self.current = request
                self._stop.clear()
            try:
                self._run(request)
            except Exception as exc:  # never let the worker die silently
                log.exception("run %s failed outside the run engine", request.label)
                request.state, request.message = FAILED, f"unexpected {type(exc).__name__}: {exc}"
                self.finished.emit(request, RunOutcome(FAILED, request.data_file, request.message))
            finally:
                with self._cond:
                    self.current = None
                self.changed.emit()

    def _run(self, request: RunRequest) -> None:
        from labctl.procedures import procedure_class
        from labctl.runs import new_run_file, run_procedure

        request.state = "running"
        try:
            cls = procedure_class(request.kind)
            procedure = cls(**request.values)
            path = new_run_file(self.data_dir, request.kind, request.values.get("sample_id") or "")
        except (LabctlError, ValueError, TypeError, OSError) as exc:
            request.state, request.message = FAILED, f"{request.kind}: {exc}"
            self.finished.emit(request, RunOutcome(FAILED, "", request.message))
            return
        request.data_file = str(path)
        self.started.emit(request)
        subscribed = []

        def on_emit(topic: str, record: Any) -> None:
            if not subscribed:
                live = getattr(procedure, "live_fit", None)  # the TDS live fit, once it exists
                if live is not None:
                    live.subscribe(lambda update: self.fit_update.emit(request, update))
                    subscribed.append(live)
            self.emitted.emit(request, topic, record)

        try:
            outcome = run_procedure(
                procedure, path, station=self.station, stop=self._stop, on_emit=on_emit
            )
        except LabctlError as exc:  # refused before anything ran (a parameter out of range)
            outcome = RunOutcome(FAILED, str(path), str(exc), ending=Ending.of(exc), error=exc)
        request.state, request.message = outcome.status, outcome.message
        if outcome.ending is Ending.IN_USE:
            # Refused before touching anything: the furnace belongs to the run that
            # holds it (a series annealing a film); checking or "restoring" its safe
            # state here would reset that run's program.
            self.safety.emit(True, f"{request.kind} refused, nothing touched: {outcome.message}")
        elif outcome.status != FINISHED:
            uses_furnace = "furnace" in getattr(cls, "ROLES", ())
            safe, message = ensure_furnace_safe(self.station, restore=uses_furnace)
            if not safe and not uses_furnace:
                message += f"; {request.kind} does not drive the furnace: left as it is"
            (log.info if safe else log.error)(
                "after %s %s: %s", request.label, outcome.status, message
            )
            self.safety.emit(safe, message)
        self.finished.emit(request, outcome)


__all__ = ["ABORTED", "FAILED", "FINISHED", "RunQueue", "RunRequest", "ensure_furnace_safe"]
