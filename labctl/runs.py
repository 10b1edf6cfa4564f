"""Run one Procedure headless, recording every point as it is measured.

pymeasure's ``Worker`` runs a procedure in a thread and hands each point to a
recorder thread through a queue; a crash can lose what sits in the queue. The
CLI and the series run procedures in the calling thread instead: each emitted
point is appended to the pymeasure Results CSV and flushed before the next
instrument command, so a killed process loses at most the point in flight, and
the file reads back with ``Results.load`` and with pandas (``comment='#'``).
The call order is the Worker's: header, ``startup()``, metadata, ``execute()``,
and ``shutdown()`` in a ``finally`` (the safe state, whatever happened).

The outcome (status, the error if any, and the procedure's ``run_results``:
fits, peaks, why it stopped) is written beside the data as ``RUN.json``.

How a run ended is typed (:class:`Ending`: done, aborted, interlock,
instrument fault, invalid input, failed), decided from the exception's class,
never from its message, and carries the exception; the series runner decides
retries from it. The stop request is armed on the clocks for the run's thread
(:func:`labctl.clock.stop_on`), so a stop ends any wait within a second; the
safe state runs with it disarmed, so it always completes, and its report —
"safe state confirmed (read back): …" or what is not safe — is in the outcome.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from pymeasure.experiment import Procedure, Results

from labctl.clock import stop_on, uninterruptible
from labctl.errors import (
    Aborted,
    InstrumentError,
    InterlockError,
    InvalidInputError,
    LabctlError,
    SafetyLimitError,
    describe_os_error,
)
from labctl.ownership import Busy

log = logging.getLogger(__name__)

FINISHED, ABORTED, FAILED = "finished", "aborted", "failed"

#: What a run reports when its safe state was set but nothing read it back.
SAFE_NOT_READ_BACK = "safe state set (not read back)"  # = procedures.base.SAFE_NOT_READ_BACK


class Ending(Enum):
    """How a run ended, from the type of what ended it (never from message text)."""

    DONE = "done"
    ABORTED = "aborted"
    INTERLOCK = "interlock"
    INSTRUMENT_FAULT = "instrument fault"
    INVALID_INPUT = "invalid input"
    #: refused before touching anything: an instrument is owned by another run
    IN_USE = "in use"
    FAILED = "failed"

    @classmethod
    def of(cls, exc: BaseException | None) -> Ending:
        """The ending an exception stands for (None: the run finished)."""
        if exc is None:
            return cls.DONE
        for types, ending in _ENDINGS:
            if isinstance(exc, types):
                return ending
        return cls.FAILED

    @property
    def status(self) -> str:
        """The coarse status of RUN.json and the catalog: finished, aborted or failed."""
        return {Ending.DONE: FINISHED, Ending.ABORTED: ABORTED}.get(self, FAILED)

    @property
    def retry_may_help(self) -> bool:
        """An instrument fault or an unforeseen error may pass; a stop, an interlock or
        input that was refused will not."""
        return self in (Ending.INSTRUMENT_FAULT, Ending.FAILED)


#: Exception class → ending, first match wins (subclasses before their bases).
_ENDINGS: tuple[tuple[Any, Ending], ...] = (
    ((Aborted, KeyboardInterrupt), Ending.ABORTED),
    (InterlockError, Ending.INTERLOCK),
    (Busy, Ending.IN_USE),
    (InvalidInputError, Ending.INVALID_INPUT),
    (SafetyLimitError, Ending.INVALID_INPUT),  # refused before anything was written
    (InstrumentError, Ending.INSTRUMENT_FAULT),
)


@dataclass
class RunOutcome:
    """How a run ended; ``results`` is the procedure's ``run_results``."""

    status: str
    data_file: str
    message: str = ""
    points: int = 0
    results: dict[str, Any] = field(default_factory=dict)
    #: Typed ending (see :class:`Ending`); ``error`` is the exception that ended the run.
    ending: Ending = Ending.DONE
    error: BaseException | None = field(default=None, repr=False, compare=False)
    #: "safe state confirmed (read back): …", SAFE_NOT_READ_BACK, or what is not safe.
    safe_state: str = ""

    @property
    def ok(self) -> bool:
        return self.status == FINISHED

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "ending": self.ending.value,
            "data_file": self.data_file,
            "message": self.message,
            "safe_state": self.safe_state,
            "points": self.points,
            "results": self.results,
        }


def summary_path(data_file: str | Path) -> Path:
    """The JSON beside a run file: ``tds_….csv`` → ``tds_….json``."""
    return Path(data_file).with_suffix(".json")


def new_run_file(directory: str | Path, kind: str, sample_id: str = "") -> Path:
    """A fresh, never-overwriting data file name in ``directory``."""
    from pymeasure.experiment import unique_filename

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tag = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in sample_id)
    prefix = f"{kind}_{tag}_" if tag else f"{kind}_"
    return Path(unique_filename(str(directory), prefix=prefix, datetimeformat="%Y%m%d-%H%M%S"))


class _Recorder:
    """Append + flush each emitted point; forward the other topics."""

    def __init__(self, results: Results, on_emit: Callable[[str, Any], None] | None) -> None:
        self.results = results
        self.on_emit = on_emit
        self.points = 0
        self._fh = None

    def open(self) -> None:
        self._fh = open(self.results.data_filename, "a", encoding=Results.ENCODING)  # noqa: SIM115

    def emit(self, topic: str, record: Any) -> None:
        if topic == "results":
            self._write(record)
        elif topic == "batch results":
            for row in _rows(record):
                self._write(row)
        if self.on_emit is not None:
            try:
                self.on_emit(topic, record)
            except Exception:  # a broken display must never stop a measurement
                log.exception("run listener failed on %r", topic)

    def _write(self, record: dict) -> None:
        if self._fh is None:
            raise LabctlError("a procedure emitted results before its file was opened")
        self._fh.write(self.results.format(record) + Results.LINE_BREAK)
        self._fh.flush()
        self.points += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _rows(batch: dict) -> list[dict]:
    keys = list(batch)
    n = len(batch[keys[0]]) if keys else 0
    return [{k: batch[k][i] for k in keys} for i in range(n)]


def run_procedure(
    procedure: Procedure,
    data_file: str | Path,
    *,
    station=None,
    stop: threading.Event | None = None,
    on_emit: Callable[[str, Any], None] | None = None,
) -> RunOutcome:
    """Run ``procedure`` to its end in this thread, recording into ``data_file``.

    ``station`` is handed to the procedure (else it opens its ``station_file``);
    ``stop`` is the abort request, checked by the procedure between points;
    ``on_emit(topic, record)`` sees every emit (progress bars, live plots).
    Ctrl-C aborts like ``stop``. Never raises for a failed measurement: the
    outcome says how it ended, and ``RUN.json`` records it beside the data.
    """
    data_file = Path(data_file)
    if data_file.exists():
        raise LabctlError(f"{data_file}: exists; a run never overwrites recorded data")
    check_parameters(procedure)
    if station is not None:
        procedure.station = station
    stop = stop if stop is not None else threading.Event()
    procedure.should_stop = stop.is_set
    results = Results(procedure, str(data_file))  # writes the parameter header
    recorder = _Recorder(results, on_emit)
    procedure.emit = recorder.emit
    procedure.status = Procedure.RUNNING
    status, message, error = FINISHED, "", None
    try:
        with stop_on(stop):
            procedure.startup()
            procedure.evaluate_metadata()
            results.store_metadata()
            recorder.open()
            if not stop.is_set():
                procedure.execute()
        if stop.is_set():
            status, message = ABORTED, "stopped by the user"
            error = Aborted(message)
    except KeyboardInterrupt as exc:
        stop.set()
        status, message, error = ABORTED, "interrupted (Ctrl-C)", exc
    except Exception as exc:
        status, message = _failure(procedure, exc, stop)
        error = exc
    finally:
        safe_state = ""
        try:
            with uninterruptible():
                procedure.shutdown()
            safe_state = _safe_state_report(procedure)
        except Exception as exc:  # the safe state failed: say so, loudly, beside the first error
            log.exception("%s: shutdown failed", type(procedure).__name__)
            note = f"safe state NOT confirmed: {_describe(exc)}"
            safe_state = note
            status = FAILED
            message = f"{message}; {note}" if message else note
            error = error if error is not None else exc
        recorder.close()
    procedure.status = {
        FINISHED: Procedure.FINISHED,
        ABORTED: Procedure.ABORTED,
        FAILED: Procedure.FAILED,
    }[status]
    ending = {FINISHED: Ending.DONE, ABORTED: Ending.ABORTED}.get(status) or Ending.of(error)
    if ending in (Ending.DONE, Ending.ABORTED) and status == FAILED:  # the safe state failed
        ending = Ending.FAILED
    outcome = RunOutcome(
        status=status,
        data_file=str(data_file),
        message=message,
        points=recorder.points,
        results=dict(getattr(procedure, "run_results", {}) or {}),
        ending=ending,
        error=error,
        safe_state=safe_state,
    )
    try:
        write_summary(outcome, procedure)
    except OSError as exc:  # disk full: the outcome still says how the run ended
        note = f"run summary not written: {describe_os_error(exc)}"
        log.error("%s: %s", data_file, note)
        outcome.message = f"{outcome.message}; {note}" if outcome.message else note
        if outcome.status == FINISHED:
            outcome.status, outcome.ending = FAILED, Ending.FAILED
    return outcome


def check_parameters(procedure: Procedure) -> None:
    """Every Parameter value finite, typed, within its limits and every cross-field rule
    holding (:func:`labctl.checking.check_values`, what :func:`labctl.procedures.validate`
    runs), else InvalidInputError (nothing written)."""
    from labctl.checking import check_values

    values = {  # what differs from the defaults was given
        name: getattr(procedure, name, None)
        for name, parameter in procedure._parameters.items()
        if getattr(procedure, name, None) not in (None, parameter.default)
    }
    check_values(type(procedure), values, internal=True)


def _safe_state_report(procedure: Procedure) -> str:
    """What the procedure's ``make_safe`` confirmed (its ``safe_state_report``)."""
    return getattr(procedure, "safe_state_report", "") or SAFE_NOT_READ_BACK


def _describe(exc: BaseException) -> str:
    if isinstance(exc, LabctlError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        return describe_os_error(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def _failure(procedure, exc: Exception, stop: threading.Event) -> tuple[str, str]:
    if isinstance(exc, Aborted):
        return ABORTED, str(exc)
    if not isinstance(exc, LabctlError | OSError):
        log.error("%s failed", type(procedure).__name__, exc_info=exc)
    return FAILED, _describe(exc)


def write_summary(outcome: RunOutcome, procedure: Procedure | None = None) -> Path:
    """``RUN.json`` beside the data: outcome, parameters and what the run concluded."""
    doc = outcome.to_dict()
    if procedure is not None:
        doc["procedure"] = type(procedure).__name__
        doc["parameters"] = procedure.parameter_values()
    path = summary_path(outcome.data_file)
    path.write_text(json.dumps(_finite(doc), indent=2, default=str) + "\n")
    return path


def _finite(value):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
