"""Progress of a series for the GUI: the whole series and the running step, with an ETA
learned from what the finished steps actually took.

The rule: every step has a real-time estimate (:mod:`labctl.series.estimate`, the one
``series check`` prints). The pace of this night is the wall time the finished steps
took over their estimates; before any step has finished it is what the time scale
promises (1/scale; "virtual" is unknown). The running step's progress is its elapsed
wall time over its estimate at that pace (held below 100 % until it ends), the series'
the estimated work done over the whole, and the ETA the work left at that pace. So a
one-film plan estimated at 3.6 min that runs 7 min says so as the first step ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from labctl.series.states import StepState

FINISHED_STATES = (StepState.DONE, StepState.SKIPPED, StepState.FAILED)


@dataclass
class SeriesProgress:
    fraction: float  # 0…1 of the estimated work
    step_fraction: float | None  # the running step's, or None
    running_idx: int | None
    remaining_s: float | None  # wall seconds left, None when unknown
    pace: float | None  # wall seconds per estimated second
    learned: bool  # pace from finished steps (not from the time scale)
    done: int
    total: int

    def text(self) -> str:
        head = f"{self.done}/{self.total} steps"
        if self.remaining_s is None:
            return head + ", ETA unknown until a step ends"
        source = (
            f"steps so far took {self.pace:.2g}× their real-time estimate"
            if self.learned
            else "from the time scale, until a step ends"
        )
        return f"{head}, ≈ {duration(self.remaining_s)} left ({source})"


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _estimate_s(row: dict[str, Any]) -> float:
    from labctl.series.estimate import step_duration_s
    from labctl.series.plan import Step

    try:
        step = Step(
            row["idx"], row["kind"], row.get("temperature_c"), row.get("slot"),
            row.get("sample_id"), row.get("params") or {},
        )  # fmt: skip
        return max(float(step_duration_s(step)), 1e-9)
    except (KeyError, TypeError, ValueError, LookupError):
        return 600.0


def series_progress(
    steps: list[dict[str, Any]], time_scale: str | float | None = None, now: datetime | None = None
) -> SeriesProgress:
    """Progress and ETA of ``steps`` (catalog rows) at ``now``."""
    estimates = [_estimate_s(s) for s in steps]
    total = sum(estimates) or 1.0
    est_done = wall_done = 0.0
    work_done = 0.0
    for s, est in zip(steps, estimates, strict=True):
        if s.get("state") in FINISHED_STATES:
            work_done += est
        start, end = _time(s.get("started")), _time(s.get("ended"))
        if s.get("state") == StepState.DONE and start and end:
            est_done += est
            wall_done += max((end - start).total_seconds(), 0.0)
    learned = est_done > 0  # a step that ended within the same second: pace ≈ 0
    pace: float | None = wall_done / est_done if learned else None
    if pace is None:
        try:
            scale = float(time_scale) if time_scale not in (None, "real") else 1.0
            pace = None if scale == float("inf") else 1.0 / scale
        except (TypeError, ValueError):
            pace = None  # "virtual"
    running = next((i for i, s in enumerate(steps) if s.get("state") == StepState.RUNNING), None)
    step_fraction = None
    spent_running = 0.0
    if running is not None:
        start = _time(steps[running].get("started"))
        if start is not None:
            clock = now or (datetime.now(UTC) if start.tzinfo else datetime.now())
            elapsed = max((clock - start).total_seconds(), 0.0)
            if pace:
                expected = estimates[running] * pace
                step_fraction = min(elapsed / expected, 0.99)
                spent_running = min(elapsed, expected)
            else:
                step_fraction = 0.0
        work_done += estimates[running] * (step_fraction or 0.0)
    left = sum(
        est for s, est in zip(steps, estimates, strict=True)
        if s.get("state") not in FINISHED_STATES
    )  # fmt: skip
    remaining = None if pace is None else max(left * pace - spent_running, 0.0)
    done = sum(1 for s in steps if s.get("state") in FINISHED_STATES)
    return SeriesProgress(
        fraction=min(work_done / total, 1.0),
        step_fraction=step_fraction,
        running_idx=None if running is None else steps[running].get("idx", running),
        remaining_s=remaining,
        pace=pace,
        learned=learned,
        done=done,
        total=len(steps),
    )
