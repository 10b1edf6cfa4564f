"""``labctl demo``: the paper's annealing series on the simulated station, start to finish.

Runs the bundled plan ``demo.yaml`` (package ``labctl.plans``) with the
overnight-series runner on the bundled simulated station at virtual time: a
fresh film per temperature (200, 250, 300, 325, 335, 340, 350 °C) annealed on
the furnace controller's programmer, then UV-Vis absorption, OPTP and THz-TDS
with live Drude-Smith fits. Hours of virtual time in well under a minute; the
output directory is a series directory like any other (``labctl series status``
and ``labctl series report`` work on it).
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

DEMO_PLAN = "demo.yaml"


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="the paper's annealing series on the simulators (no hardware, < 1 min)",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("--out", default="demo-out", help="series directory (default demo-out)")
    p.add_argument("--quiet", action="store_true", help="no live display")
    p.set_defaults(func=run)


def demo_plan_path() -> Path:
    """The bundled demo plan (found in an installed package as in a checkout)."""
    return Path(str(resources.files("labctl.plans") / DEMO_PLAN))


def run(args: argparse.Namespace) -> int:
    from labctl.cli.series import quiet_library_logs
    from labctl.cli.series_session import run_series
    from labctl.series.plan import load_plan

    quiet_library_logs()
    out = Path(args.out)
    if (out / "catalog.sqlite").exists():
        # the demo's simulated world lives in this process: a series cannot continue in it
        print(
            f"labctl demo: error: {out} already holds a series; remove it or choose another --out",
            file=sys.stderr,
        )
        return 2
    return run_series(
        load_plan(demo_plan_path()),
        out,
        station="sim",
        time_scale="virtual",
        quiet=args.quiet,
    )
