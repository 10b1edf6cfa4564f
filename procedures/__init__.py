"""pymeasure Procedures (installed as labctl.procedures): the one home of every measurement.

``PROCEDURES`` maps the kind used on the command line (``labctl run KIND``), in
series plans and in the GUI to its Procedure class, imported on first use.
"""

from __future__ import annotations

from importlib import import_module

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
