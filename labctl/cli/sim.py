"""``labctl sim``: serve the simulated instruments, make synthetic measurements."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def positive_time_scale(text: str) -> float:
    """argparse type: a finite, positive number of virtual seconds per wall second, or
    ``virtual`` (math.inf): the world's time moves only when its clients wait."""
    import math

    if text.strip().lower() == "virtual":
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    from labctl.cli.run import MAX_TIME_SCALE

    if not (math.isfinite(value) and 0 < value <= MAX_TIME_SCALE):
        raise argparse.ArgumentTypeError(
            f"must be a finite positive factor (virtual s per wall s) or 'virtual', got {text!r}"
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
        help=(
            "virtual seconds per wall second (default 1: real time), or 'virtual': the "
            "world's time moves only when the programs driving it wait (deterministic, "
            "as fast as the machine computes)"
        ),
    )
    s.add_argument(
        "--write-station",
        metavar="OUT",
        default=None,
        help="write a station file pointing at the served resources",
    )
    s.add_argument("--seed", type=int, default=None, help="seed of the simulated world's noise")
    s.set_defaults(func=serve)

    f = simsub.add_parser(
        "fault",
        help="inject or clear a fault in a served station's simulators",
        description=(
            "Inject a fault into a simulated instrument served by `labctl sim serve "
            "--write-station OUT` (through the control socket named in OUT), or clear faults. "
            "Kinds: silent, garbled, disconnect, late (any instrument; --delay-s for late), "
            "sensor_break (furnace), stage_stall (stages; --axis for one axis)."
        ),
    )
    f.add_argument("--station", required=True, help="the station file `sim serve` wrote")
    f.add_argument("role", nargs="?", help="instrument role, e.g. furnace, lockin_pump")
    f.add_argument("kind", nargs="?", help="fault kind (see above)")
    f.add_argument("--axis", type=int, default=None, help="stage_stall: only this axis (1..3)")
    f.add_argument(
        "--delay-s", type=float, default=None, help="late: how late replies come (wall s, ≤ 10)"
    )
    f.add_argument(
        "--clear", action="store_true", help="clear ROLE's faults (every fault without ROLE)"
    )
    f.add_argument("--status", action="store_true", help="print the active faults (JSON)")
    f.set_defaults(func=fault)

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
            while not stop.wait(0.1):
                pass
        except KeyboardInterrupt:
            pass
    print("stopped", file=sys.stderr, flush=True)
    return 0


def fault(args: argparse.Namespace) -> int:
    from labctl.errors import LabctlError
    from labctl.servesim import RemoteFaultBoard

    faults = RemoteFaultBoard.from_station_file(args.station)
    if args.status:
        if args.clear or args.role:
            raise LabctlError("--status takes no ROLE, KIND or --clear")
        reply = json.dumps(faults.summary())
    elif args.clear:
        if args.kind is not None or args.axis is not None or args.delay_s is not None:
            raise LabctlError("--clear takes at most a ROLE")
        reply = faults.clear(args.role)
    else:
        if not (args.role and args.kind):
            raise LabctlError("give ROLE and KIND to inject, or --clear [ROLE], or --status")
        reply = faults.inject(args.role, args.kind, axis=args.axis, delay_s=args.delay_s)
    print(reply, flush=True)
    return 0
