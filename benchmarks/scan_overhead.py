"""Cost of running an OPTP scan as a Procedure, against a bare loop of the same driver calls.

Both run on the in-process simulated station on virtual time (no instrument
latency, no real waiting). The bare loop does the same work by hand: the same
driver calls and the same decay fit of the mean trace after each sweep, so
``overhead_ratio`` is what the Procedure and the run engine add (header and
instrument settings, every point appended to the CSV and flushed, emit,
progress, the stop check, RUN.json). The decay fit alone is reported too
(``overhead_ratio_vs_no_fit``: against driver calls only): on the virtual clock
a sweep takes ~0.1 s of CPU, so a ~15 ms fit weighs far more than beside a
real sweep (~1 min). The THz peak is given, so neither side aligns; both range
the pump lock-in the same way first.

Rates are points per CPU second of this process (the virtual clock never waits,
so that is the run's time, without other load on the machine). Prints both
rates and, as its last line, one JSON object with ``points_per_s``
(the Procedure through :func:`labctl.runs.run_procedure`), ``bare_points_per_s``
and ``overhead_ratio`` (bare rate / procedure rate; target ≤ 1.2).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from labctl.analysis.optp import fit_decay
from labctl.procedures.optp import OPTP, RANGE_AT_PS, pump_delays
from labctl.runs import run_procedure
from labctl.station import Station

SCAN = {
    "start_ps": -2.0,
    "stop_ps": 10.0,
    "step_near_ps": 0.05,
    "near_until_ps": 2.0,
    "step_far_ps": 0.25,
}


def bare_scan(station: Station, sweeps: int, settle_tau: float, fit: bool = True) -> int:
    """The OPTP procedure's driver calls (and, with ``fit``, its decay fit of the mean trace
    after each sweep, warm-started the same way), in a plain loop; returns points read."""
    stages, ref, pump = station["stages"], station["lockin_ref"], station["lockin_pump"]
    delays = pump_delays(**SCAN)
    for lockin in (ref, pump):
        lockin.time_constant = 0.1
    stages.sample.move_to_slot(1)
    stages.sampling.move_to_ps(0.0)
    stages.pump.move_to_ps(RANGE_AT_PS)
    pump.range_with_headroom()
    signal = np.empty((sweeps, delays.size))
    points = 0
    lifetimes = None
    for s in range(sweeps):
        order = range(delays.size) if s % 2 == 0 else range(delays.size - 1, -1, -1)
        stages.pump.move_to_ps(float(delays[order[0]]))
        pump.settle(10.0)
        for i in order:
            stages.pump.move_to_ps(float(delays[i]))
            pump.settle(settle_tau)
            x_ref, x_pump = ref.read_xy()[0], pump.read_xy()[0]
            signal[s, i] = -2.0 * x_pump / (x_ref - x_pump)
            points += 1
        for lockin in (ref, pump):
            lockin.read_overload()
        if fit:
            mean = signal[: s + 1].mean(axis=0)
            err = signal[: s + 1].std(axis=0, ddof=1) / np.sqrt(s + 1) if s >= 2 else None
            result = fit_decay(delays, mean, err, initial_lifetimes_ps=lifetimes)
            lifetimes = result.lifetimes_ps
    return points


def procedure_scan(station: Station, sweeps: int, settle_tau: float, directory: Path) -> int:
    proc = OPTP(thz_peak_ps=0.0, sweeps=sweeps, settle_tau=settle_tau, **SCAN)
    outcome = run_procedure(proc, directory / f"optp_{time.monotonic_ns()}.csv", station=station)
    if not outcome.ok:
        raise SystemExit(f"the OPTP procedure failed: {outcome.message}")
    return outcome.points


def rate(fn, repeats: int) -> float:
    """Best points per CPU second of ``repeats`` runs, each on a fresh station (same seed).

    On the virtual clock nothing waits, so a run's time is its CPU time; counting
    the process's CPU time rather than wall time keeps other load on the machine
    out of the comparison.
    """
    best = 0.0
    for _ in range(repeats):
        with Station.from_file("sim", time_scale="virtual") as station:
            t0 = time.process_time()
            points = fn(station)
            best = max(best, points / (time.process_time() - t0))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweeps", type=int, default=4, help="sweeps per scan (default 4)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each, best kept")
    parser.add_argument("--settle-tau", type=float, default=5.0, help="settling per point, τ")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        # interleave, so a busy machine slows both alike
        bare = scan_only = proc = 0.0
        for _ in range(args.repeats):
            bare = max(bare, rate(lambda st: bare_scan(st, args.sweeps, args.settle_tau), 1))
            scan_only = max(
                scan_only,
                rate(lambda st: bare_scan(st, args.sweeps, args.settle_tau, fit=False), 1),
            )
            proc = max(
                proc,
                rate(lambda st: procedure_scan(st, args.sweeps, args.settle_tau, directory), 1),
            )
    n = pump_delays(**SCAN).size * args.sweeps
    print(f"OPTP scan, {args.sweeps} sweeps × {n // args.sweeps} points, virtual clock, CPU time:")
    print(f"  bare loop, driver calls + decay fit per sweep : {bare:8.1f} points/s")
    print(f"  bare loop, driver calls only                  : {scan_only:8.1f} points/s")
    print(f"  OPTP Procedure through run_procedure          : {proc:8.1f} points/s")
    print(f"  overhead vs the same work in a bare loop      : {bare / proc:8.3f}× (target ≤ 1.2)")
    print(f"  overhead vs driver calls alone (fit included) : {scan_only / proc:8.3f}×")
    print(
        json.dumps(
            {
                "points_per_s": round(proc, 1),
                "bare_points_per_s": round(bare, 1),
                "overhead_ratio": round(bare / proc, 3),
                "bare_no_fit_points_per_s": round(scan_only, 1),
                "overhead_ratio_vs_no_fit": round(scan_only / proc, 3),
                "points": n,
                "sweeps": args.sweeps,
            }
        )
    )


if __name__ == "__main__":
    main()
