"""Series, step and attempt states: one name per state, and the transitions allowed.

The catalog checks every state change against :data:`TRANSITIONS` and raises
:class:`ForbiddenTransition` for any other, so a bug cannot, for instance, run a
``done`` step again: annealing is irreversible, and "done is final" is enforced
where the record is kept, not only where the runner decides. The GUI's colours
and the CLI's exit codes use these names (they are ``str`` enums: ``"done"`` and
``StepState.DONE`` compare equal, so the catalog's text columns stay readable).
"""

from __future__ import annotations

from enum import StrEnum

from labctl.errors import LabctlError


class SeriesState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DONE_WITH_FAILURES = "done-with-failures"
    STOPPED = "stopped"  # by a fault (an interlock, a failed step)
    ABORTED = "aborted"  # by the operator (Ctrl-C, SIGTERM, Abort)


class StepState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class AttemptState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # found running at resume: the runner died during it


_S, _T, _A = SeriesState, StepState, AttemptState

#: state → the states it may change to. A resume may start any unfinished series again.
TRANSITIONS: dict[type[StrEnum], dict[StrEnum, frozenset[StrEnum]]] = {
    SeriesState: {
        _S.PENDING: frozenset({_S.RUNNING, _S.ABORTED}),
        _S.RUNNING: frozenset({_S.RUNNING, _S.DONE, _S.DONE_WITH_FAILURES, _S.STOPPED, _S.ABORTED}),
        _S.DONE: frozenset({_S.RUNNING}),  # a resume of a finished series runs nothing
        _S.DONE_WITH_FAILURES: frozenset({_S.RUNNING}),
        _S.STOPPED: frozenset({_S.RUNNING}),
        _S.ABORTED: frozenset({_S.RUNNING, _S.ABORTED}),
    },
    StepState: {
        _T.PENDING: frozenset({_T.RUNNING, _T.SKIPPED}),
        # running → running: a new attempt after one the runner died in
        _T.RUNNING: frozenset({_T.RUNNING, _T.DONE, _T.FAILED}),
        _T.DONE: frozenset(),  # final: never run twice
        _T.FAILED: frozenset({_T.RUNNING, _T.SKIPPED}),
        _T.SKIPPED: frozenset({_T.RUNNING, _T.SKIPPED}),
    },
    AttemptState: {
        _A.RUNNING: frozenset({_A.DONE, _A.FAILED, _A.INTERRUPTED}),
        _A.DONE: frozenset(),
        _A.FAILED: frozenset(),
        _A.INTERRUPTED: frozenset(),
    },
}


#: ``labctl series run``'s exit code for how a series ended (2 is a refusal before anything ran).
SERIES_EXIT_CODES: dict[SeriesState, int] = {
    SeriesState.DONE: 0,
    SeriesState.DONE_WITH_FAILURES: 1,
    SeriesState.STOPPED: 1,
    SeriesState.ABORTED: 130,
}


class ForbiddenTransition(LabctlError):
    """A state change the transition table does not allow (a bug, never bad input)."""


def check_transition(kind: type[StrEnum], old: str, new: str, where: str) -> StrEnum:
    """``new`` as a ``kind`` member if ``old → new`` is allowed; else ForbiddenTransition."""
    try:
        old_state, new_state = kind(old), kind(new)
    except ValueError as exc:
        raise ForbiddenTransition(f"{where}: {exc}") from None
    if new_state not in TRANSITIONS[kind][old_state]:
        raise ForbiddenTransition(
            f"{where}: {kind.__name__} {old_state.value!r} → {new_state.value!r} is not allowed"
            + (
                " (done is final: a finished step never runs again)"
                if kind is StepState and old_state == StepState.DONE
                else ""
            )
        )
    return new_state


def check_sql(kind: type[StrEnum]) -> str:
    """The SQL CHECK list of a state column: ``('pending', 'running', …)``."""
    return "(" + ", ".join(f"'{s.value}'" for s in kind) + ")"
