"""Parameter checks of every procedure, in one place the CLI, plans, the runner and the GUI share
(core: the run engine checks with it too; :mod:`labctl.procedures` exposes it as ``validate``).

Rule: a value reaches a procedure only if it is finite, of its Parameter's
type and within its limits, every cross-field rule of the procedure holds
(start before stop, minimum ≤ maximum, …), and it is not one of the
procedure's internal parameters. Why here: pymeasure's range checks let NaN
through (``nan < minimum`` is false), so ``max_deviation_c: .nan`` switched the
deviation interlock off and ``record_interval_s: .nan`` recorded every 27 ms;
``sweeps: .inf`` overflowed; three front ends each had their own partial copy.

* :func:`public_parameters` — the Parameters a user may set (internal ones left out);
* :func:`check_values` — checked, converted values, or :class:`ParameterError`
  naming the procedure, the parameter and what it accepts.

A procedure declares ``INTERNAL_PARAMETERS`` (set only by the run engine, e.g.
an anneal's continuation) and ``RULES`` (:class:`Rule`: names, a predicate
over the full set of values, and what it says when it fails).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pymeasure.experiment import (
    BooleanParameter,
    FloatParameter,
    IntegerParameter,
    ListParameter,
    Parameter,
)

from labctl.errors import InvalidInputError, LabctlError


class ParameterError(InvalidInputError):
    """A parameter value refused before anything moves; ``name`` is the parameter."""

    _UNSET = object()

    def __init__(self, kind: str, name: str, message: str, value: Any = _UNSET) -> None:
        self.kind, self.name, self.problem = kind, name, message
        shown = name if value is ParameterError._UNSET else f"{name} = {value!r}"
        super().__init__(f"{kind}: {shown}: {message}")


@dataclass(frozen=True)
class Rule:
    """A cross-field rule: ``holds(values)`` must be true (or raise LabctlError saying why)."""

    names: tuple[str, ...]
    holds: Callable[[Mapping[str, Any]], bool]
    says: str
    #: Only when every one of ``names`` was given (a default yields to the value given:
    #: ``max_sweeps: 2`` alone lowers the minimum with it; ``min 10, max 2`` is refused).
    when_all_given: bool = False


def _kind(cls) -> str:
    return getattr(cls, "KIND", "") or cls.__name__


def all_parameters(cls) -> dict[str, Parameter]:
    """Every pymeasure Parameter of a Procedure class, base class first, in definition order."""
    out: dict[str, Parameter] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Parameter):
                out.pop(name, None)
                out[name] = value
    return out


def public_parameters(cls) -> dict[str, Parameter]:
    """The Parameters a user may set: all but the class's ``INTERNAL_PARAMETERS``."""
    internal = set(getattr(cls, "INTERNAL_PARAMETERS", ()))
    return {k: v for k, v in all_parameters(cls).items() if k not in internal}


def expected(parameter: Parameter) -> str:
    """What a Parameter accepts, in words (pymeasure's messages name no limits)."""
    units = f" {parameter.units}" if getattr(parameter, "units", None) else ""
    if isinstance(parameter, FloatParameter | IntegerParameter):
        what = "a whole number" if isinstance(parameter, IntegerParameter) else "a finite number"
        lo, hi = parameter.minimum, parameter.maximum
        if lo > -1e9 or hi < 1e9:
            return f"{what} in {lo:g}…{hi:g}{units}"
        return f"{what}{units}"
    if isinstance(parameter, BooleanParameter):
        return "true or false"
    if isinstance(parameter, ListParameter):
        return "one of " + ", ".join(str(c) for c in parameter.choices)
    return "text"


def check_value(kind: str, name: str, parameter: Parameter, value: Any) -> Any:
    """``value`` converted by ``parameter``, or ParameterError (NaN/inf, type, range)."""
    numeric = isinstance(parameter, FloatParameter | IntegerParameter)
    refused = ParameterError(kind, name, f"must be {expected(parameter)}, got {value!r}", value)
    if value is None or (numeric and isinstance(value, str) and not value.strip()):
        if parameter.default is None:
            return None  # an optional value left unset ("find it")
        raise refused
    if numeric:
        if isinstance(value, bool | str):  # a plan's "30" is text, not a number
            raise refused
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise refused from None
        if not math.isfinite(number):
            raise refused
        if isinstance(parameter, IntegerParameter):
            if number != int(number):
                raise refused
            value = int(number)
        else:
            value = number
    elif isinstance(parameter, BooleanParameter) and not isinstance(value, bool):
        raise refused
    check = copy.deepcopy(parameter)
    try:
        check.value = value
    except (ValueError, TypeError, OverflowError):
        raise refused from None
    return check.value


def check_values(cls, values: Mapping[str, Any], *, internal: bool = False) -> dict[str, Any]:
    """``values`` checked and converted; every rule of ``cls`` checked over them and the defaults.

    ``internal=True`` (the run engine only) admits the class's internal parameters.
    Raises :class:`ParameterError` for the first value or rule that fails.
    """
    kind = _kind(cls)
    known = all_parameters(cls) if internal else public_parameters(cls)
    hidden = set(getattr(cls, "INTERNAL_PARAMETERS", ()))
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name not in known:
            if name in hidden:
                raise ParameterError(kind, name, "is internal to the procedure, not settable")
            raise ParameterError(kind, name, "not a parameter of this procedure")
        out[name] = check_value(kind, name, known[name], value)
    full = {name: p.default for name, p in all_parameters(cls).items()}
    full.update(out)
    for rule in getattr(cls, "RULES", ()):
        if rule.when_all_given and not all(n in out for n in rule.names):
            continue
        if any(full.get(n) is None for n in rule.names):
            continue  # an optional value left unset is chosen by the procedure itself
        try:
            ok = rule.holds(full)
        except LabctlError as exc:
            raise ParameterError(kind, ",".join(rule.names), str(exc)) from None
        except (TypeError, ValueError):
            ok = False
        if not ok:
            shown = ", ".join(f"{n} = {full.get(n)!r}" for n in rule.names)
            raise ParameterError(kind, rule.names[0], f"{rule.says} ({shown})")
    return out
