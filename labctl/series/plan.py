"""Series plans: a YAML file → a validated, ordered list of steps.

A plan anneals films through a list of temperatures and measures after each
anneal. Nothing in it is evaluated; every error names the file, the line and
the key. The steps are the unit of the catalog and of ``--resume``: a step is
identified by its position and content, so a plan changed since a series
started is recognised (its hash differs).

```yaml
name: paper-series
sample: NPL-4ML                      # sample id prefix; films are SAMPLE-T<temperature>
films: per-temperature               # or 'one': one film through all temperatures
slots: [1, 2, 3, 4, 5, 6, 7]         # one per temperature ('one': a single slot)
temperatures_c: [200, 250, 300, 325, 335, 340, 350]
anneal: {ramp_c_per_min: 10, dwell_min: 30, cool_min: 120}
measurements:                        # after each anneal, in this order
  - absorption: {averages: 10}
  - optp: {}
  - tds: {target: "tau_fs_err=3", max_sweeps: 12}
retries: 1                           # extra attempts of a failed measurement (never of an anneal)
on_failure: stop                     # or 'next-film': skip the rest of this film's steps
interlocks: {max_deviation_c: 10, deviation_grace_s: 300}
```
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.errors import LabctlError
from labctl.yamlfile import YamlDocument, load_document

MEASUREMENT_KINDS = ("absorption", "optp", "tds")
TOP_KEYS = {
    "name": "series name",
    "description": "free text",
    "station": "station file or bundled station name (--station overrides)",
    "sample": "sample id prefix",
    "films": "'per-temperature' (a fresh film each) or 'one' (one film through all)",
    "slots": "holder slots of the films",
    "temperatures_c": "anneal temperatures, °C",
    "anneal": "recipe: ramp_c_per_min, dwell_min, cool_min (and other Anneal parameters)",
    "measurements": "list of {kind: {parameters}} after each anneal",
    "measure_as_made": "measure each film once before its first anneal",
    "retries": "extra attempts of a failed measurement",
    "on_failure": "'stop' or 'next-film'",
    "interlocks": "max_deviation_c, deviation_grace_s",
    "simulation": "simulated-world options the plan assumes (a station's `simulation:`), "
    "applied over the station's own; refused on a station with no simulated instrument",
}
ON_FAILURE = ("stop", "next-film")
INTERLOCK_KEYS = ("max_deviation_c", "deviation_grace_s")
FILM_MODES = ("per-temperature", "one")
MAX_TEMPERATURE_C = 400.0  # above any anneal of the study; the station's furnace limit also applies


class PlanError(LabctlError):
    """A plan file that cannot be run; the message names file, line and key."""


@dataclass(frozen=True)
class Step:
    """One unit of work: an anneal or a measurement of one film."""

    index: int
    kind: str  # "anneal" or a measurement kind
    temperature_c: float | None  # the anneal temperature this step belongs to (None: as made)
    slot: int
    sample_id: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        t = "as made" if self.temperature_c is None else f"{self.temperature_c:g} °C"
        return f"{self.kind} {t} (slot {self.slot}, {self.sample_id})"


@dataclass
class Plan:
    path: str
    name: str
    text: str
    station: str | None
    steps: list[Step]
    retries: int
    on_failure: str
    interlocks: dict[str, float]
    slots_where: str = ""  # FILE:LINE of 'slots', for errors found against a station
    #: simulated-world options over the station's (e.g. the demo's quiet detector floor)
    simulation: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """Hash of what the plan does (its steps and policies), not of comments or layout."""
        doc = {
            "steps": [[s.kind, s.temperature_c, s.slot, s.sample_id, s.params] for s in self.steps],
            "retries": self.retries,
            "on_failure": self.on_failure,
            "interlocks": self.interlocks,
        }
        if self.simulation:  # the world the plan assumes is part of what it does
            doc["simulation"] = self.simulation
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


class _Where:
    """``FILE:LINE: key.path: problem`` errors from a loaded document's key lines."""

    def __init__(self, document: YamlDocument | None, source: str) -> None:
        self.document = document
        self.source = source

    def __call__(self, *key) -> str:
        return self.document.where(key) if self.document is not None else self.source

    def error(self, key: tuple, message: str) -> PlanError:
        dotted = ".".join(str(k) for k in key)
        return PlanError(f"{self(*key)}: {dotted}: {message}" if dotted else f"{self()}: {message}")


def _did_you_mean(word: str, options) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _number(where: _Where, key: tuple, value, lo: float, hi: float, integer: bool = False):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.error(key, f"must be a number, got {value!r}")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise where.error(key, f"must lie in {lo:g}…{hi:g}, got {value!r}")
    if integer and value != int(value):
        raise where.error(key, f"must be a whole number, got {value!r}")
    return int(value) if integer else float(value)


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file; :class:`PlanError` names file, line and key."""
    document = load_document(path, "plan file", PlanError)
    text = Path(path).read_text(encoding="utf-8")
    return parse_plan(document.data, str(path), text, document)


def parse_plan(
    data: Any, source: str = "<plan>", text: str = "", document: YamlDocument | None = None
) -> Plan:
    """Validate a plan mapping (as loaded from YAML) into steps."""
    where = _Where(document, source)
    if not isinstance(data, dict):
        raise where.error((), "a plan is a mapping with 'temperatures_c' and 'measurements'")
    for key in data:
        if key not in TOP_KEYS:
            raise where.error((key,), f"unknown key{_did_you_mean(key, TOP_KEYS)}")
    temps = data.get("temperatures_c")
    if not isinstance(temps, list) or not temps:
        raise where.error(("temperatures_c",), "must be a non-empty list of °C")
    temps = [
        _number(where, ("temperatures_c", i), t, 30.0, MAX_TEMPERATURE_C)
        for i, t in enumerate(temps)
    ]
    films = data.get("films", "per-temperature")
    if films not in FILM_MODES:
        raise where.error(("films",), f"must be one of {FILM_MODES}, got {films!r}")
    if films == "one" and temps != sorted(temps):
        raise where.error(
            ("temperatures_c",), "one film through all temperatures needs them ascending"
        )
    n_films = len(temps) if films == "per-temperature" else 1
    slots = data.get("slots", list(range(1, n_films + 1)))
    if not isinstance(slots, list):
        raise where.error(("slots",), "must be a list of holder slots")
    slots = [_number(where, ("slots", i), s, 1, 64, integer=True) for i, s in enumerate(slots)]
    if len(slots) != n_films:
        raise where.error(
            ("slots",),
            f"{films} needs {n_films} slot(s) for {len(temps)} temperature(s), got {len(slots)}",
        )
    if len(set(slots)) != len(slots):
        raise where.error(("slots",), f"a slot appears twice: {slots}")
    sample = data.get("sample", "film")
    if not isinstance(sample, str) or not sample.strip() or len(sample) > 64:
        raise where.error(("sample",), "must be a short non-empty text")
    anneal = _params(where, ("anneal",), data.get("anneal", {}))
    if "anneal_c" in anneal:
        raise where.error(("anneal", "anneal_c"), "is set by 'temperatures_c'")
    _check_procedure_parameters(where, "anneal", anneal, lambda k: ("anneal", k))
    measurements = _measurements(where, data.get("measurements", []))
    retries = _number(where, ("retries",), data.get("retries", 1), 0, 10, integer=True)
    on_failure = data.get("on_failure", "stop")
    if on_failure not in ON_FAILURE:
        raise where.error(("on_failure",), f"must be one of {ON_FAILURE}, got {on_failure!r}")
    interlocks = _params(where, ("interlocks",), data.get("interlocks", {}))
    for key in interlocks:
        if key not in INTERLOCK_KEYS:
            raise where.error(
                ("interlocks", key),
                f"unknown interlock setting{_did_you_mean(key, INTERLOCK_KEYS)}",
            )
    _check_procedure_parameters(where, "anneal", interlocks, lambda k: ("interlocks", k))
    as_made = data.get("measure_as_made", False)
    if not isinstance(as_made, bool):
        raise where.error(("measure_as_made",), f"must be true or false, got {as_made!r}")
    station = data.get("station")
    if station is not None and not isinstance(station, str):
        raise where.error(("station",), "must be a station file path or name")
    simulation = _simulation(where, data.get("simulation", {}))

    steps: list[Step] = []

    def add(kind, temperature, slot, sample_id, params):
        steps.append(Step(len(steps), kind, temperature, slot, sample_id, dict(params)))

    seen_ids: dict[str, int] = {}
    for film_index in range(n_films):
        slot = slots[film_index]
        film_temps = temps if films == "one" else [temps[film_index]]
        sample_id = sample if films == "one" else f"{sample}-{film_temps[0]:g}C"
        seen_ids[sample_id] = seen_ids.get(sample_id, 0) + 1
        if seen_ids[sample_id] > 1:  # two films at one temperature: two samples, two ids
            sample_id = f"{sample_id}-{seen_ids[sample_id]}"
        if as_made:
            for kind, params in measurements:
                add(kind, None, slot, sample_id, params)
        for t in film_temps:
            add("anneal", t, slot, sample_id, {**interlocks, **anneal, "anneal_c": t})
            for kind, params in measurements:
                add(kind, t, slot, sample_id, params)
    plan = Plan(
        path=source,
        name=str(data.get("name", Path(source).stem)),
        text=text,
        station=station,
        steps=steps,
        retries=retries,
        on_failure=on_failure,
        interlocks=interlocks,
        slots_where=where("slots"),
        simulation=simulation,
    )
    return plan


def _simulation(where: _Where, value) -> dict:
    """The plan's ``simulation`` options, checked against the station schema's."""
    from labctl.schema import Invalid
    from labctl.station_schema import SIMULATION

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise where.error(("simulation",), "must be a mapping of simulated-world options")
    try:
        return dict(SIMULATION.check(value))
    except Invalid as exc:
        raise where.error(("simulation", *exc.line_path), exc.message) from None


def _params(where: _Where, key: tuple, value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise where.error(key, f"must be a mapping of parameters, got {value!r}")
    return dict(value)


def _measurements(where: _Where, value) -> list[tuple[str, dict]]:
    if not isinstance(value, list):
        raise where.error(("measurements",), "must be a list like [absorption: {}, tds: {}]")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            item = {item: {}}
        if not isinstance(item, dict) or len(item) != 1:
            raise where.error(("measurements", i), "each entry is one 'kind: {parameters}'")
        ((kind, params),) = item.items()
        if kind not in MEASUREMENT_KINDS:
            raise where.error(
                ("measurements", i, kind),
                f"unknown measurement{_did_you_mean(kind, MEASUREMENT_KINDS)} "
                f"(known: {', '.join(MEASUREMENT_KINDS)})",
            )
        params = _params(where, ("measurements", i, kind), params)
        _check_procedure_parameters(
            where, kind, params, lambda k, i=i, kind=kind: ("measurements", i, kind, k)
        )
        out.append((kind, params))
    return out


def _check_procedure_parameters(where: _Where, kind: str, params: dict, key_of) -> dict:
    """The parameters checked by :func:`labctl.procedures.validate` (finite, in range, rules,
    no internal parameter), the refusal naming file, line and key."""
    from labctl.checking import ParameterError
    from labctl.procedures import parameters, validate

    known = parameters(kind)
    for name in params:
        if name in ("slot", "sample_id", "station_file"):
            raise where.error(
                key_of(name), "is set by the plan itself ('slots', 'sample', 'station')"
            )
        if name not in known:
            raise where.error(
                key_of(name), f"not a parameter of {kind}{_did_you_mean(name, known)}"
            )
    try:
        return validate(kind, params)
    except ParameterError as exc:
        key = key_of(exc.name) if exc.name in params else key_of(next(iter(params), exc.name))
        raise where.error(key, exc.problem) from None
