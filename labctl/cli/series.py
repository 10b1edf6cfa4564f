"""``labctl series run|check|status|report``: the overnight annealing series."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path


def register(sub) -> None:
    from labctl.cli.run import time_scale_arg

    p = sub.add_parser("series", help="overnight annealing series: run, check, status, report")
    ssub = p.add_subparsers(dest="series_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    r = ssub.add_parser("run", help="run (or --resume) a series plan")
    r.add_argument("plan", metavar="PLAN.yaml")
    r.add_argument(
        "--station",
        default=None,
        help="station file or name (default: the plan's; on --resume, the recorded one)",
    )
    r.add_argument(
        "--time-scale",
        type=time_scale_arg,
        default=None,
        metavar="S",
        help="'virtual' (instant), 'real' or a speed-up factor; overrides the station file",
    )
    r.add_argument("--out", required=True, metavar="DIR", help="series directory")
    r.add_argument("--resume", action="store_true", help="continue a series in DIR")
    r.add_argument(
        "--allow-changed-plan",
        action="store_true",
        help="resume although the plan file changed since the series started",
    )
    r.add_argument(
        "--allow-other-station",
        action="store_true",
        help="resume on --station although the series started on another station",
    )
    r.add_argument("--quiet", action="store_true", help="no live display")
    r.add_argument(
        "--watch-port",
        type=int,
        default=None,
        metavar="P",
        help="also serve the read-only watch page on this port while the series runs",
    )
    _exposure_args(r, prefix="watch-")
    r.set_defaults(func=run)

    c = ssub.add_parser("check", help="validate a plan against its station and print its schedule")
    c.add_argument("plan", metavar="PLAN.yaml")
    c.add_argument("--station", default=None, help="station file or name (default: the plan's)")
    c.set_defaults(func=check)

    s = ssub.add_parser("status", help="each step's state in a series directory")
    s.add_argument("dir", metavar="DIR")
    s.add_argument("--json", action="store_true", help="one JSON object")
    s.set_defaults(func=status)

    w = ssub.add_parser(
        "watch", help="read-only web page of a series, live (loopback unless --host and --token)"
    )
    w.add_argument("dir", metavar="DIR")
    w.add_argument("--port", type=int, default=None, metavar="P", help="port (default 8765)")
    _exposure_args(w, prefix="")
    w.set_defaults(func=watch)

    rep = ssub.add_parser("report", help="write summary.json/csv, plots and report.html")
    rep.add_argument("dir", metavar="DIR")
    rep.set_defaults(func=report)


def _exposure_args(p, prefix: str) -> None:
    from labctl.series.watch import DEFAULT_HOST, TOKEN_ENV

    p.add_argument(
        f"--{prefix}host",
        default=DEFAULT_HOST,
        metavar="H",
        help=f"interface of the watch page (default {DEFAULT_HOST}; any other needs a token)",
    )
    p.add_argument(
        f"--{prefix}token",
        default=None,
        metavar="T",
        help=f"every request must carry it (Bearer header or ?token=T); default ${TOKEN_ENV}",
    )


def _token(given: str | None) -> str | None:
    import os

    from labctl.series.watch import TOKEN_ENV

    return given or os.environ.get(TOKEN_ENV) or None


def _plan(path: str):
    from labctl.series.plan import load_plan

    return load_plan(path)


def quiet_library_logs() -> None:
    """pymeasure's import-time notices (no ZMQ, no IPython) are not the operator's business."""
    import logging

    root = logging.getLogger()
    if root.level > logging.DEBUG or root.level == logging.NOTSET:
        logging.getLogger("pymeasure").setLevel(logging.ERROR)


def _refused(func):
    """A plan or series that cannot run is bad input: one line, exit 2 (like argparse)."""

    def wrapper(args: argparse.Namespace) -> int:
        quiet_library_logs()
        from labctl.series.plan import PlanError
        from labctl.series.runner import SeriesError
        from labctl.series.watch import WatchRefused

        try:
            return func(args)
        except (PlanError, SeriesError, WatchRefused) as exc:
            print(f"labctl series: error: {exc}", file=sys.stderr)
            return 2

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@_refused
def check(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from labctl.series.estimate import step_duration_s
    from labctl.series.station_fit import station_problems

    plan = _plan(args.plan)
    problems = station_problems(plan, args.station)
    if problems:
        for problem in problems:
            print(f"labctl series: error: {problem}", file=sys.stderr)
        return 2
    table = Table(title=f"{plan.name}: {len(plan.steps)} steps")
    for col in ("#", "step", "T (°C)", "slot", "sample", "≈ min"):
        table.add_column(col, justify="right" if col in ("#", "slot", "≈ min") else "left")
    total = 0.0
    for s in plan.steps:
        d = step_duration_s(s)
        total += d
        t = "as made" if s.temperature_c is None else f"{s.temperature_c:g}"
        table.add_row(str(s.index), s.kind, t, str(s.slot), s.sample_id, f"{d / 60:.0f}")
    console = Console()
    console.print(table)
    console.print(f"estimated duration at real time: {total / 3600:.1f} h; plan {plan.digest}")
    return 0


@_refused
def run(args: argparse.Namespace) -> int:
    from labctl.cli.series_session import run_series
    from labctl.series.notify import notify_series_end
    from labctl.series.plan import PlanError
    from labctl.series.runner import SeriesError
    from labctl.series.station_fit import station_problems

    plan = _plan(args.plan)
    problems = station_problems(plan, args.station)  # what `series check` refuses, refused
    if problems:
        for problem in problems:
            print(f"labctl series: error: {problem}", file=sys.stderr)
        return 2
    watching = contextlib.nullcontext()
    if args.watch_port is not None:
        watching = _watch_alongside(args)
    with watching:
        try:
            code = run_series(
                plan,
                args.out,
                station=args.station,
                time_scale=args.time_scale,
                resume=args.resume,
                allow_changed_plan=args.allow_changed_plan,
                allow_other_station=args.allow_other_station,
                quiet=args.quiet,
            )
        except (PlanError, SeriesError):
            raise  # refused before anything ran: nothing to tell
        except BaseException:  # Ctrl-C, a crash: the series ended, the operator is told
            notify_series_end(args.out)
            raise
    notify_series_end(args.out)  # done, interlock, failure; never raises
    return code


@contextlib.contextmanager
def _watch_alongside(args: argparse.Namespace):
    """The watch page in a thread while the series runs; it waits for the catalog."""
    from labctl.series.watch import WatchServer, check_exposure

    token = _token(args.watch_token)
    check_exposure(args.watch_host, token)  # refused before anything is made
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with WatchServer(
        args.out, host=args.watch_host, port=args.watch_port, token=token, require_series=False
    ) as server:
        print(f"watch {server.url}", file=sys.stderr, flush=True)
        yield


def status(args: argparse.Namespace) -> int:
    from labctl.series.catalog import Catalog

    with Catalog.in_directory(args.dir) as catalog:
        series = catalog.series() or {}
        steps = catalog.steps()
        doc = {
            "name": series.get("name"),
            "state": series.get("state"),
            "message": series.get("message"),
            "plan_digest": series.get("plan_digest"),
            "steps": [
                {
                    "index": s["idx"],
                    "kind": s["kind"],
                    "temperature_c": s["temperature_c"],
                    "slot": s["slot"],
                    "sample_id": s["sample_id"],
                    "state": s["state"],
                    "attempts": s["attempts"],
                    "started": s["started"],
                    "ended": s["ended"],
                    "run_file": s["run_file"],
                    "message": s["message"],
                }
                for s in steps
            ],
        }
    if args.json:
        print(json.dumps(doc))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{doc['name']}: {doc['state']}")
    for col in ("#", "step", "T (°C)", "state", "tries", "start", "end", "run file"):
        table.add_column(col)
    for s in doc["steps"]:
        t = "as made" if s["temperature_c"] is None else f"{s['temperature_c']:g}"
        table.add_row(
            str(s["index"]),
            s["kind"],
            t,
            s["state"],
            str(s["attempts"]),
            s["started"] or "",
            s["ended"] or "",
            s["run_file"] or "",
        )
    console = Console(width=max(Console().width, 120))
    console.print(table)
    if doc["message"]:
        console.print(f"[bold]{doc['message']}[/bold]")
    return 0


@_refused
def watch(args: argparse.Namespace) -> int:
    from labctl.series.watch import DEFAULT_PORT, serve

    port = DEFAULT_PORT if args.port is None else args.port
    serve(
        args.dir,
        host=args.host,
        port=port,
        token=_token(args.token),
        announce=lambda line: print(line, flush=True),
    )
    return 0


def report(args: argparse.Namespace) -> int:
    from labctl.series.report import write_report

    paths = write_report(Path(args.dir))
    print(f"report: {paths['html']}", file=sys.stderr)
    return 0
