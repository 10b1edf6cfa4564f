"""pymeasure Procedures (installed as labctl.procedures): the one home of every measurement.

``PROCEDURES`` maps the kind used on the command line (``labctl run KIND``), in
series plans and in the GUI to its Procedure class, imported on first use.

The one procedure API every front end calls (the CLI, ``series check`` and
plans, the series runner, the GUI's inputs) — so a plan that passes
``series check`` is refused nowhere later:

* :func:`parameters` — the Parameters a user may set;
* :func:`validate` — values checked (finite, typed, in range, cross-field rules,
  no internal parameter), see :mod:`labctl.checking`;
* :func:`estimate` — how long a run takes at real time (pymeasure's idiom is
  ``Procedure.get_estimates``; ours is the class's ``estimated_duration_s``).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from labctl.errors import LabctlError

PROCEDURES: dict[str, str] = {
    "anneal": "labctl.procedures.anneal:Anneal",
    "absorption": "labctl.procedures.absorption:Absorption",
    "optp": "labctl.procedures.optp:OPTP",
    "tds": "labctl.procedures.tds:TDS",
}


def procedure_class(kind: str):
    """The Procedure class of ``kind`` (``anneal``, ``absorption``, ``optp``, ``tds``)."""
    try:
        ref = PROCEDURES[kind]
    except KeyError:
        raise LabctlError(f"no procedure {kind!r} (known: {', '.join(PROCEDURES)})") from None
    module, _, name = ref.partition(":")
    return getattr(import_module(module), name)


#: Typical real-time duration of a kind without its own ``estimated_duration_s``.
TYPICAL_DURATION_S = {"absorption": 60.0, "optp": 900.0, "tds": 1800.0}


def _class_of(kind_or_class):
    return procedure_class(kind_or_class) if isinstance(kind_or_class, str) else kind_or_class


def parameters(kind) -> dict[str, Any]:
    """The pymeasure Parameters of ``kind`` a user may set (internal ones left out), in order."""
    from labctl.checking import public_parameters

    return public_parameters(_class_of(kind))


def validate(kind, values: dict[str, Any], *, internal: bool = False) -> dict[str, Any]:
    """``values`` checked and converted, or :class:`~labctl.checking.ParameterError`.

    ``internal=True`` is for the run engine alone (an anneal's continuation).
    """
    from labctl.checking import check_values

    return check_values(_class_of(kind), values, internal=internal)


def estimate(kind, values: dict[str, Any]) -> float:
    """Seconds a run of ``kind`` with ``values`` takes at real time."""
    cls = _class_of(kind)
    own = getattr(cls, "estimated_duration_s", None)
    if own is not None:
        return float(own(values))
    return TYPICAL_DURATION_S.get(getattr(cls, "KIND", ""), 600.0)
