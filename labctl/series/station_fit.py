"""Does a plan fit its station? Checked by ``series check`` before anything moves.

Rule: everything a series would otherwise discover hours into the night is
checked against the station file up front, without connecting: the file
exists, it has the instruments each step needs, every film's slot is on the
sample holder (slot 0 is the blank), and every anneal's setpoint, heating ramp
and cooling ramp are within the furnace's limits (``max_setpoint_c``,
``max_ramp_c_per_min``). Each problem is one line naming the plan file, the
line and the key (the parameter checks themselves are
:func:`labctl.procedures.validate`, run when the plan is loaded).
"""

from __future__ import annotations

from pathlib import Path

from labctl.errors import LabctlError
from labctl.series.plan import Plan


def plan_station_name(plan: Plan, override: str | None = None) -> str | None:
    """The station a series of ``plan`` runs on: --station, else the plan's (beside the plan)."""
    if override is not None:
        return override
    if plan.station is None:
        return None
    beside = Path(plan.path).parent / plan.station
    if not Path(plan.station).is_absolute() and not Path(plan.station).exists() and beside.exists():
        return str(beside)
    return plan.station


def plan_station_spec(plan: Plan, override: str | None = None):
    """The station spec a series of ``plan`` runs on, with the plan's ``simulation``
    options over the station's own (a plan that assumes a simulated world says which).
    :class:`~labctl.errors.LabctlError` if the plan has some and the station no
    in-process simulated world to apply them to."""
    from labctl.station import load_station_spec

    spec = load_station_spec(plan_station_name(plan, override))
    if plan.simulation:
        problem = _simulation_problem(plan, spec)
        if problem:
            raise LabctlError(problem)
        spec.simulation = {**spec.simulation, **plan.simulation}
    return spec


def _simulation_problem(plan: Plan, spec) -> str:
    if not plan.simulation or spec.needs_world:
        return ""
    return (
        f"{plan.path}: simulation: the plan sets simulated-world options "
        f"({', '.join(plan.simulation)}) but station {spec.name!r} ({spec.source}) has no "
        "in-process simulated instrument to apply them to"
    )


def station_problems(plan: Plan, station: str | None = None) -> list[str]:
    """One line per way ``plan`` does not fit its station (empty: it fits)."""
    from labctl.procedures import procedure_class
    from labctl.station import load_station_spec
    from labctl.yamlfile import load_document

    document = load_document(plan.path, "plan file") if Path(plan.path).exists() else None

    def where(*key) -> str:
        return document.where(key) if document is not None else plan.path

    def line(key: tuple, problem: str) -> str:
        return f"{where(*key)}: {'.'.join(str(k) for k in key)}: {problem}"

    name = plan_station_name(plan, station)
    try:
        spec = load_station_spec(name)
    except LabctlError as exc:
        key = ("station",) if station is None and plan.station is not None else ()
        return [f"{where(*key)}: station: {exc}" if key else f"{plan.path}: station: {exc}"]
    problems: list[str] = [p for p in [_simulation_problem(plan, spec)] if p]
    roles = set(spec.instruments)
    for kind in dict.fromkeys(s.kind for s in plan.steps):
        missing = [r for r in getattr(procedure_class(kind), "ROLES", ()) if r not in roles]
        if missing:
            problems.append(
                f"{plan.path}: {kind}: station {spec.name!r} ({spec.source}) has no "
                f"{', '.join(missing)}"
            )
    stages = spec.instruments.get("stages")
    axes = (stages.options.get("axes") or {}) if stages is not None else {}
    n_slots = (axes.get("sample") or {}).get("n_slots")
    if n_slots is not None:
        bad = [
            slot for slot in dict.fromkeys(s.slot for s in plan.steps) if not 1 <= slot < n_slots
        ]
        if bad:
            problems.append(
                line(
                    ("slots",),
                    f"slot {bad[0]} does not exist on station {spec.name!r} (its "
                    f"holder has film slots 1..{n_slots - 1}; slot 0 is the blank)",
                )  # fmt: skip
            )
    furnace = spec.instruments.get("furnace")
    if furnace is not None:
        problems += _furnace_problems(plan, furnace.options, spec.name, line)
    return problems


def _furnace_problems(plan: Plan, options: dict, station_name: str, line) -> list[str]:
    max_c = options.get("max_setpoint_c")
    max_rate = options.get("max_ramp_c_per_min")
    out: list[str] = []
    seen: set[tuple] = set()
    temps = [s.temperature_c for s in plan.steps if s.kind == "anneal"]
    order = list(dict.fromkeys(temps))
    for step in plan.steps:
        if step.kind != "anneal":
            continue
        p = _anneal_defaults()
        p.update(step.params)
        t = p["anneal_c"]
        i = order.index(step.temperature_c)
        if max_c is not None and t > max_c and ("T", t) not in seen:
            seen.add(("T", t))
            out.append(line(("temperatures_c", i),
                            f"{t:g} °C is above the furnace's max_setpoint_c {max_c:g} °C "
                            f"(station {station_name!r})"))  # fmt: skip
        if max_rate is None:
            continue
        if p["ramp_c_per_min"] > max_rate and "ramp" not in seen:
            seen.add("ramp")
            out.append(line(("anneal", "ramp_c_per_min"),
                            f"{p['ramp_c_per_min']:g} °C/min is above the furnace's "
                            f"max_ramp_c_per_min {max_rate:g} (station {station_name!r})"))  # fmt: skip
        cool_rate = (t - p["ambient_c"]) / p["cool_min"]
        if cool_rate > max_rate and "cool" not in seen:
            seen.add("cool")
            key = ("anneal", "cool_min") if "cool_min" in step.params else ("temperatures_c", i)
            out.append(line(key,
                            f"cooling from {t:g} °C to {p['ambient_c']:g} °C in "
                            f"{p['cool_min']:g} min is {cool_rate:.3g} °C/min, above the "
                            f"furnace's max_ramp_c_per_min {max_rate:g}"))  # fmt: skip
    return out


def _anneal_defaults() -> dict:
    from labctl.checking import all_parameters
    from labctl.procedures.anneal import Anneal

    return {name: p.default for name, p in all_parameters(Anneal).items()}
