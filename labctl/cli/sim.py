"""``labctl sim``: serve the simulated instruments, make synthetic measurements."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def positive_time_scale(text: str) -> float:
    """argparse type: a finite, positive number of virtual seconds per wall second."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"must be a finite positive factor (virtual s per wall s), got {text!r}"
        )
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="simulated instruments: serve them, measure with them")
    simsub = p.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    s = simsub.add_parser(
        "serve",
        help="serve every simulated instrument of a station on loopback TCP",
        description=(
            "Start every simulated instrument (address sim://) of the station on 127.0.0.1. "
            "Prints one line per instrument, 'NAME RESOURCE', then 'ready', and serves until "
            "interrupted. Text instruments are pyvisa TCPIP SOCKET resources, serial ones "
            "pyserial socket:// URLs."
        ),
    )
    s.add_argument("--station", default=None, help="station file (default: the bundled 'sim')")
    s.add_argument(
        "--time-scale",
        type=positive_time_scale,
        default=1.0,
        help="virtual seconds per wall second (default 1: real time)",
    )
    s.add_argument(
        "--write-station",
        metavar="OUT",
        default=None,
        help="write a station file pointing at the served resources",
    )
    s.add_argument("--seed", type=int, default=None, help="seed of the simulated world's noise")
    s.set_defaults(func=serve)

    try:
        from labctl.cli.sim_measure import register_measure
    except ImportError as exc:
        if exc.name != "labctl.cli.sim_measure":
            raise
    else:
        register_measure(simsub)


def serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from labctl.errors import StationError
    from labctl.servesim import serve_station

    if args.write_station:  # refuse before anything is served: the output is a contract
        out = Path(args.write_station)
        if out.is_dir() or not out.parent.is_dir():
            raise StationError(f"--write-station {out}: not a writable file path")
    stop = threading.Event()

    def _terminate(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, _terminate)
    with serve_station(args.station, time_scale=args.time_scale, seed=args.seed) as served:
        for name, resource in served.resources.items():
            print(f"{name} {resource}", flush=True)
        if args.write_station:
            served.write_station(args.write_station)
        print("ready", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    print("stopped", file=sys.stderr, flush=True)
    return 0
