"""How long a step takes at real time — for ``series check`` and the progress ETA."""

from __future__ import annotations

from labctl.series.plan import Step

AMBIENT_C = 25.0
NATURAL_COOLING_MIN = 30.0  # below the ready temperature after the programmed cooling
MEASUREMENT_S = {"absorption": 60.0, "optp": 900.0, "tds": 1800.0}


def step_duration_s(step: Step) -> float:
    """The procedure's own estimate if it has one, else a typical duration of the kind."""
    return run_duration_s(step.kind, step.params)


def run_duration_s(kind: str, params: dict) -> float:
    """Real-time duration of one run of ``kind`` with ``params`` (its Parameters' values)."""
    from labctl.procedures import procedure_class

    estimate = getattr(procedure_class(kind), "estimated_duration_s", None)
    if estimate is not None:
        return float(estimate(params))
    if kind == "anneal":
        p = params
        ramp = max(p.get("ramp_c_per_min", 10.0), 1e-3)
        heat_min = max(p["anneal_c"] - AMBIENT_C, 0.0) / ramp
        minutes = heat_min + p.get("dwell_min", 30.0) + p.get("cool_min", 120.0)
        return 60.0 * (minutes + NATURAL_COOLING_MIN)
    return MEASUREMENT_S.get(kind, 600.0)
