"""``labctl run KIND``: run one measurement procedure on a station and record it.

``labctl run anneal|absorption|optp|tds [--station FILE] [--time-scale S]
[--slot N] [--sample-id ID] [--PARAM VALUE ...] --out DIR``

The options after KIND are generated from the procedure's pymeasure
Parameters (``anneal_c`` → ``--anneal-c``, with units, range and default in
``labctl run KIND --help``), so they are written once, in the procedure. Every
point is on disk as it is measured (``DIR/KIND_SAMPLE_DATE.csv``, pymeasure
Results format, and its ``.json`` run summary beside it). A progress bar and
the phase go to stderr; the one-line result and the data file to stdout.
Ctrl-C or SIGTERM stops the run within a second: the instruments are put in
their safe state (a second Ctrl-C does not interrupt it) and the data and
summary kept. The last line says whether the safe state was confirmed by
reading it back.

Exit codes: 0 finished, 1 failed (one-line reason), 130 aborted (Ctrl-C),
143 stopped by SIGTERM, 2 bad options.
"""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from labctl.parameter_limits import station_limits

#: Parameters every procedure has that ``labctl run`` spells differently.
RENAMED = {"station_file": "--station"}


def register(subparsers) -> None:
    from labctl.procedures import PROCEDURES

    p = subparsers.add_parser(
        "run",
        help="run a measurement procedure (anneal, absorption, optp, tds) and record it",
        description=__doc__.split("\n\n")[2].replace("``", "") if __doc__ else None,
        epilog="'labctl run KIND --help' lists KIND's parameters.",
    )
    p.add_argument("kind", choices=list(PROCEDURES), metavar="KIND", help=", ".join(PROCEDURES))
    p.add_argument("options", nargs=argparse.REMAINDER, help="the procedure's options (see above)")
    p.set_defaults(func=run)


def option_name(parameter_name: str) -> str:
    return RENAMED.get(parameter_name, "--" + parameter_name.replace("_", "-"))


def procedure_parameters(cls) -> dict[str, Any]:
    """The Parameters a user may set (:func:`labctl.procedures.parameters`), base class first."""
    from labctl.procedures import parameters

    return parameters(cls)


#: Beyond this speed-up a float clock cannot resolve a record interval (1e300 hung).
MAX_TIME_SCALE = 1e7


def time_scale_arg(text: str) -> str | float:
    """argparse type of ``--time-scale``: 'virtual', 'real' or a positive finite factor."""
    if text in ("virtual", "real"):
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 < value <= MAX_TIME_SCALE):
        raise argparse.ArgumentTypeError(
            f"'virtual', 'real' or a speed-up factor in (0, {MAX_TIME_SCALE:g}], not {text!r}"
        )
    return value


#: The syntax of text Parameters that have one.
SYNTAX = {
    "target": (
        "NAME_err=VALUE[,NAME_err=VALUE…], e.g. tau_fs_err=0.5,c_err=0.01: stop once the "
        "live fit's errors are below; NAME one of {names}"
    ),
}
#: A bound at or beyond this size is "no bound" (pymeasure's default is ±1e9).
UNBOUNDED = 1e9


def _number(value: float) -> str:
    return f"{value:g}"


def _describe(name: str, param, limits: dict | None = None) -> str:
    from pymeasure.experiment import FloatParameter, IntegerParameter, ListParameter

    text = param.name
    units = (getattr(param, "units", None) or "").replace("degC", "°C")
    if units:
        text += f", {units}"
    if isinstance(param, FloatParameter | IntegerParameter):
        lo = param.minimum if param.minimum > -UNBOUNDED else None
        hi = param.maximum if param.maximum < UNBOUNDED else None
        s_lo, s_hi = (limits or {}).get(name, (None, None))
        lo = lo if s_lo is None else (s_lo if lo is None else max(lo, s_lo))
        hi = hi if s_hi is None else (s_hi if hi is None else min(hi, s_hi))
        where = " (this station)" if name in (limits or {}) else ""
        if lo is not None and hi is not None:
            text += f"; {_number(lo)}…{_number(hi)}{where}"
        elif lo is not None:
            text += f"; ≥ {_number(lo)}"
        elif hi is not None:
            text += f"; ≤ {_number(hi)}{where}"
    if isinstance(param, ListParameter):
        text += f"; one of {', '.join(str(c) for c in param.choices)}"
    if name in SYNTAX:
        from labctl.procedures.tds import TARGET_PARAMETERS

        text += "; " + SYNTAX[name].format(names=", ".join(TARGET_PARAMETERS))
    if param.default is not None and param.default != "":
        default = param.default
        text += f" (default {_number(default) if isinstance(default, float) else default})"
    return text.replace("%", "%%")


def build_parser(
    kind: str, cls, station_name: str | None = None
) -> tuple[argparse.ArgumentParser, dict[str, Any]]:
    """The option parser of ``labctl run KIND``, generated from the class's Parameters
    (ranges narrowed to what ``station_name``'s instruments allow, units in °C)."""
    from pymeasure.experiment import (
        BooleanParameter,
        FloatParameter,
        IntegerParameter,
        ListParameter,
    )

    doc = (cls.__doc__ or "").strip().splitlines()
    parser = argparse.ArgumentParser(
        prog=f"labctl run {kind}",
        description=doc[0] if doc else None,
        epilog="Exit codes: 0 finished, 1 failed, 130 aborted (Ctrl-C), 143 SIGTERM, 2 bad options.",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="directory of the run file")
    parser.add_argument(
        "--time-scale",
        type=time_scale_arg,
        metavar="S",
        help="'virtual' (instant), 'real' or a speed-up factor; overrides the station file",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    params = procedure_parameters(cls)
    if station_name is None and "station_file" in params:
        station_name = params["station_file"].default
    limits = station_limits(station_name)
    for name, param in params.items():
        opt = option_name(name)
        kw: dict[str, Any] = {"dest": name, "default": None, "help": _describe(name, param, limits)}
        if isinstance(param, BooleanParameter):
            kw["action"] = argparse.BooleanOptionalAction
        elif isinstance(param, IntegerParameter):
            kw.update(type=int, metavar="N")
        elif isinstance(param, FloatParameter):
            kw.update(type=float, metavar="X")
        elif isinstance(param, ListParameter):
            kw.update(choices=[str(c) for c in param.choices])
        else:
            kw.update(metavar="TEXT")
        parser.add_argument(opt, **kw)
    return parser, params


def parameter_values(parser, params: dict[str, Any], ns: argparse.Namespace, cls=None) -> dict:
    """The options given, checked by :func:`labctl.procedures.validate` (finite, in range,
    cross-field rules); a refused one exits 2 naming its option."""
    from pymeasure.experiment import ListParameter

    from labctl.checking import ParameterError
    from labctl.procedures import validate

    values: dict[str, Any] = {}
    for name, param in params.items():
        given = getattr(ns, name)
        if given is None:
            continue
        if isinstance(param, ListParameter):
            given = {str(c): c for c in param.choices}[given]
        values[name] = given
    try:
        return validate(cls, values) if cls is not None else values
    except ParameterError as exc:
        given = values.get(exc.name, "")
        parser.error(f"{option_name(exc.name)} {given}: {exc.problem}")
    raise AssertionError("unreachable")  # parser.error exits


def run(args: argparse.Namespace) -> int:
    if getattr(args, "verbose", False):
        return _run(args)
    with _quiet_logs():
        return _run(args)


@contextmanager
def _quiet_logs():
    """pymeasure warns of optional extras it lacks; the run engine logs the trace of an
    unforeseen failure, which the outcome already states on one line (-v shows both)."""
    loggers = [logging.getLogger("pymeasure.experiment"), logging.getLogger("labctl.runs")]
    levels = [lg.level for lg in loggers]
    loggers[0].setLevel(logging.ERROR)
    loggers[1].setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _run(args: argparse.Namespace) -> int:
    import threading

    from labctl.cli.stopping import StopOnSignals
    from labctl.errors import LabctlError, brief
    from labctl.ownership import Busy, claim_station, owner_scope
    from labctl.procedures import procedure_class
    from labctl.runs import ABORTED, FINISHED, new_run_file, run_procedure, summary_path
    from labctl.station import Station, load_station_spec

    kind = args.kind
    try:
        cls = procedure_class(kind)
    except ImportError as exc:
        raise LabctlError(f"procedure {kind!r} is not available here: {exc}") from None
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--station", default=None)
    station_arg = pre.parse_known_args(args.options)[0].station
    parser, params = build_parser(kind, cls, station_arg)
    try:
        ns = parser.parse_args(args.options)
        values = parameter_values(parser, params, ns, cls)
    except SystemExit as exc:  # --help (0) or a bad option (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    out = Path(ns.out)
    if out.exists() and not out.is_dir():
        raise LabctlError(f"--out {out}: not a directory")
    station_name = values.get("station_file") or params["station_file"].default
    values["station_file"] = station_name
    procedure = cls(**values)
    stop = threading.Event()
    spec = load_station_spec(station_name)
    owner = object()  # this run: the procedure's own claim in startup() is re-entrant
    try:  # claimed before the station opens: refused, this run touches no instrument
        claim = claim_station(spec, cls.roles_to_claim(spec.instruments), owner)
    except Busy as exc:
        raise Busy(f"{kind} refused, no instrument touched, nothing recorded: {exc}") from None
    with claim, owner_scope(owner), StopOnSignals(stop, f"labctl run {kind}") as signals:
        station = Station(spec, time_scale=ns.time_scale or "station")
        try:
            _say_pace(station, kind, params, values)
            path = new_run_file(out, kind, values.get("sample_id") or "")
            with _Display(kind, quiet=ns.quiet) as display:
                outcome = run_procedure(
                    procedure, path, station=station, stop=stop, on_emit=display.on_emit
                )
        finally:
            station.close()
    rows = f"{outcome.points} rows"
    where = f"({rows}; summary {summary_path(outcome.data_file)})"
    if outcome.status == FINISHED:
        print(cls.summary_line(outcome.results))
        print(f"data: {outcome.data_file} {where}")
        print(outcome.safe_state)
        return 0
    word = "aborted" if outcome.status == ABORTED else "failed"
    print(brief(f"labctl run {kind}: {word}: {outcome.message}"), file=sys.stderr)
    print(f"data kept: {outcome.data_file} {where}")
    print(brief(outcome.safe_state))
    return signals.exit_code() if outcome.status == ABORTED else 1


def _say_pace(station, kind: str, params: dict[str, Any], values: dict[str, Any]) -> None:
    """On a simulated station at real pace, say how long this takes and how to speed up."""
    from labctl.pace import pace_notice
    from labctl.procedures import estimate

    full = {name: values.get(name, param.value) for name, param in params.items()}
    try:
        estimate_s = estimate(kind, full)
    except (KeyError, TypeError, ValueError):
        return
    notice = pace_notice(station, estimate_s, f"this {kind} run")
    if notice:
        print(notice, file=sys.stderr, flush=True)


class _Display:
    """A rich progress bar on stderr fed by the procedure's ``progress`` and ``phase`` emits."""

    def __init__(self, kind: str, quiet: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.kind = kind
        self.rows = 0
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[rows]} rows"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=quiet,
        )
        self.task = self.progress.add_task(kind, total=100.0, rows=0)

    def __enter__(self) -> _Display:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def on_emit(self, topic: str, record: Any) -> None:
        if topic == "progress":
            self.progress.update(self.task, completed=float(record))
        elif topic == "phase":
            self.progress.update(self.task, description=f"{self.kind}: {record}")
        elif topic in ("results", "batch results"):
            n = len(next(iter(record.values()), ())) if topic == "batch results" else 1
            self.rows += n
            self.progress.update(self.task, rows=self.rows)
