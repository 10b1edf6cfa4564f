"""``labctl station check FILE``: the first command when wiring real hardware.

Connects to every instrument of the station on its own (one failure does not
hide the others), confirms its identity (each driver refuses an instrument that
is not its model while connecting: the Eurotherm's ident register, the SR830's
``*IDN?``, …), prints its settings and limits, and names each one that fails —
one line each, the cause included. Exit 0 when every instrument answered, 1
when one did not, 2 when the file itself is wrong (no such file, bad YAML).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

#: Settings printed per instrument, at most this many characters per line.
LINE_CHARS = 200


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("station", help="station files: check the instruments they name")
    stsub = p.add_subparsers(dest="station_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    c = stsub.add_parser(
        "check",
        help="connect to every instrument, confirm its identity, print settings and limits",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    c.add_argument("file", metavar="FILE", help="station file (or a bundled name, e.g. sim)")
    c.set_defaults(func=check)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _one_line(text: str, limit: int = LINE_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_instrument(spec, role: str) -> tuple[bool, str, dict]:
    """Connect ``role`` alone; (ok, one line, its settings). An instrument a run owns
    (:mod:`labctl.ownership`) is named with its holder and not connected: a check must
    not put its handshake between a running series and its furnace."""
    from labctl.ownership import Busy, claim_station
    from labctl.station import Station

    inst = spec.instruments[role]
    alone = replace(spec, instruments={role: inst})
    where = f"{inst.driver} at {inst.address}"
    try:
        claim = claim_station(alone)
    except Busy as exc:
        return False, _one_line(f"{role}: NOT CHECKED ({where}): {exc}; not connected"), {}
    try:
        with claim, Station(alone, time_scale="virtual" if spec.needs_world else None) as st:
            settings = st.settings().get(role, {})
    except Exception as exc:  # any failure is this instrument's: name it, go on
        cause = str(exc) or type(exc).__name__
        return False, _one_line(f"{role}: FAILED ({where}): {cause}"), {}
    if "error" in settings:
        return False, _one_line(f"{role}: FAILED ({where}): {settings['error']}"), settings
    return True, _one_line(f"{role}: ok ({where})"), settings


def check(args: argparse.Namespace) -> int:
    from labctl.station import load_station_spec

    spec = load_station_spec(args.file)  # StationError → exit 2 with one line (cli.main)
    failed: list[str] = []
    print(f"station {spec.name} ({spec.source}): {len(spec.instruments)} instruments")
    for role in spec.instruments:
        ok, line, settings = check_instrument(spec, role)
        print(line, flush=True)
        for key, value in settings.items():
            if key in ("driver", "address", "error"):
                continue
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for sub, v in items:  # one level of nesting (the stages' axes) a line each
                name = key if sub is None else f"{key}.{sub}"
                shown = (
                    ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
                    if isinstance(v, dict)
                    else _fmt(v)
                )
                print("    " + _one_line(f"{name}: {shown}"))
        if not ok:
            failed.append(role)
    if failed:
        print(
            f"labctl station check: {len(failed)} of {len(spec.instruments)} instruments "
            f"failed: {', '.join(failed)}",
            file=sys.stderr,
        )
        return 1
    print(f"all {len(spec.instruments)} instruments answered")
    return 0
