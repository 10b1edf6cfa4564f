"""How long a step takes at real time — for ``series check`` and the progress ETA."""

from __future__ import annotations

from labctl.series.plan import Step


def step_duration_s(step: Step) -> float:
    """The procedure's own estimate (:func:`labctl.procedures.estimate`) at real time."""
    from labctl.procedures import estimate

    return estimate(step.kind, step.params)
