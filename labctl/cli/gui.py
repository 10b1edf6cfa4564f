"""``labctl gui [--station FILE] [--time-scale S] [--data DIR]``: the operator GUI.

With the default simulated station the simulators run in this process (scaled
time, 20× unless ``--time-scale`` says otherwise); with a served or real station
the GUI connects to it. Runs are recorded in ``--data DIR`` (default
``labctl-runs``), exactly as ``labctl run`` records them.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from labctl.cli.run import time_scale_arg

    p = subparsers.add_parser(
        "gui",
        help="operator GUI: run, watch and stop measurements and series",
        description=__doc__.split("\n\n")[1].replace("``", "") if __doc__ else None,
    )
    p.add_argument("--station", default="sim", help="station file or bundled name (default: sim)")
    p.add_argument(
        "--time-scale",
        type=time_scale_arg,
        default=None,
        metavar="S",
        help="'virtual', 'real' or a speed-up factor (default: 20 for a simulated station)",
    )
    p.add_argument("--data", default="labctl-runs", metavar="DIR", help="run files directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    # From the first moment (Qt takes seconds to import on a busy machine): a stop signal
    # is noted, and the GUI quits the orderly way as soon as its event loop runs.
    early: list[int] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, _frame: early.append(signum))

    if not getattr(args, "verbose", False):  # pymeasure warns at import of extras it lacks
        logging.getLogger("pymeasure").setLevel(logging.ERROR)
    from labctl.errors import LabctlError
    from labctl.gui.qt_check import qt_start_problem
    from labctl.station import load_station_spec

    # a wrong station file is said at once, not after seconds of importing the window
    load_station_spec(args.station)

    problem = qt_start_problem()
    if problem:  # said before Qt would abort the process with its own cryptic line
        raise LabctlError(problem)
    from labctl.gui.app import run_gui

    return run_gui(args.station, args.time_scale, args.data, early_signals=early)
