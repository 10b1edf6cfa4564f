"""False-positive rate of the OPTP peak significance test (labctl.analysis.optp_significance).

Three kinds of null:

1. white Gaussian noise on a 221-point pump-delay grid at 1, 2 (an alignment scan's
   forth and back passes) and 4 sweeps — the test's own calibration, many trials;
2. ``labctl run optp`` (the OPTP procedure, 4 sweeps) on the simulated station at zero
   pump fluence (pump blocked), on the default world (a real table's floor) and on the
   analysis-test table: drift, lock-in lag and the detector as measured;
3. the pump-delay alignment (find_optp_peak) at zero fluence: how often it parks.

And the power on the films of issue 16: the 250 °C film's OPTP (4 sweeps) on both floors.

    python benchmarks/optp_significance.py [--white 20000] [--station 40]

Prints a line per figure and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from quiet_table import QUIET_TABLE  # noqa: E402
from sim_furnace import annealed_station  # noqa: E402

from labctl.analysis.optp_significance import (  # noqa: E402
    FALSE_POSITIVE_RATE,
    SIGNIFICANCE_P,
    optp_peak_significance,
)
from labctl.errors import AnalysisError  # noqa: E402
from labctl.procedures.alignment import find_optp_peak  # noqa: E402
from labctl.procedures.optp import OPTP  # noqa: E402
from labctl.runs import FINISHED, run_procedure  # noqa: E402

GRID_PS = np.arange(-3.0, 8.0001, 0.05)


def white_nulls(trials: int, sweeps: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    hits = sum(
        bool(
            optp_peak_significance(GRID_PS, rng.standard_normal((sweeps, GRID_PS.size))).significant
        )
        for _ in range(trials)
    )
    return {"trials": trials, "false_positives": hits, "rate": hits / trials}


def optp_run(anneal_c: float, seed: int, fluence: float | None, simulation: dict) -> dict:
    station = annealed_station(anneal_c, seed=seed, **simulation)
    try:
        if fluence is not None:
            station.world.set_pump_fluence(fluence)
        with tempfile.TemporaryDirectory() as tmp:
            proc = OPTP(sweeps=4, absorptance_400nm=0.3, fluence_uj_cm2=5.0)
            outcome = run_procedure(proc, Path(tmp) / "optp.csv", station=station)
    finally:
        station.close()
    if outcome.status != FINISHED:
        raise RuntimeError(outcome.message)
    return outcome.results


def align(seed: int, simulation: dict) -> bool:
    """True when the alignment parked (found a 'peak') at zero fluence."""
    station = annealed_station(300.0, seed=seed, **simulation)
    try:
        station.world.set_pump_fluence(0.0)
        station["stages"].sampling.move_to_ps(0.0)
        try:
            find_optp_peak(station["stages"], station["lockin_pump"])
        except AnalysisError:
            return False
        return True
    finally:
        station.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--white", type=int, default=20000)
    parser.add_argument("--station", type=int, default=40)
    args = parser.parse_args()
    t0 = time.perf_counter()
    out: dict = {"goal_rate": FALSE_POSITIVE_RATE, "threshold_p": SIGNIFICANCE_P, "white_noise": {}}
    for sweeps in (1, 2, 4):
        row = white_nulls(args.white, sweeps, seed=sweeps)
        out["white_noise"][f"{sweeps}_sweeps"] = row
        print(f"white noise, {sweeps} sweeps: {row['false_positives']}/{row['trials']} significant")
    floors = {"real_floor": {}, "quiet_table": QUIET_TABLE}
    for name, simulation in floors.items():
        zs, hits = [], 0
        for k in range(args.station):
            r = optp_run(300.0, 1000 + k, 0.0, simulation)
            zs.append(r["peak_z"])
            hits += bool(r["significant"])
        parked = sum(align(2000 + k, simulation) for k in range(args.station))
        signal = [optp_run(250.0, 3000 + k, None, simulation) for k in range(5)]
        out[name] = {
            "optp_null_runs": args.station,
            "optp_null_false_positives": hits,
            "optp_null_max_z": float(np.max(zs)),
            "alignment_null_runs": args.station,
            "alignment_parked_on_noise": parked,
            "film_250c_significant": f"{sum(bool(r['significant']) for r in signal)}/5",
            "film_250c_z": [round(float(r["peak_z"]), 2) for r in signal],
        }
        print(f"{name}: {out[name]}")
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
