"""False-positive rate and power of the TDS significance test at 3, 4 and 8 sweeps.

Nulls: the simulated table with the pump blocked (realistic noise and drift, the 300 °C
film in the beam), one fresh world per trial. Signals of known z: the noiseless ΔE of the
300 °C film scaled by α and added to a null's ΔE, where z = α·⟨Re Δσ⟩_clean / sd, sd
being the measured standard deviation of the band average of Re Δσ over the nulls at that
sweep count (the test's statistic, so z is the signal in units of its true noise).

    python benchmarks/significance_power.py [--trials 300]

Prints a line per sweep count and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from labctl.analysis import tds
from labctl.clock import VirtualClock
from labctl.simulators.physics.scan import anneal_nominal, simulate_sweeps
from labctl.simulators.world import World

TIMES = np.arange(-4.0, 12.0001, 0.05)
Z_SIGNALS = (5.0, 9.5)


def spectrum(e_ref, de):
    return tds.photoconductivity(
        TIMES,
        e_ref,
        de,
        thickness_m=100e-9,
        substrate_index=1.95,
        fmin_hz=0.3e12,
        fmax_hz=2.2e12,
        require_signal=False,
    )


def film_300():
    world = World(VirtualClock(), seed=0, noise=False)
    film = world.films[0]
    anneal_nominal(film, 300.0)
    return film


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--sweeps", type=int, nargs="+", default=[3, 4, 8])
    args = parser.parse_args()
    film = film_300()
    clean = simulate_sweeps(World(VirtualClock(), seed=0, noise=False), film, TIMES, 1)
    y_clean = float(np.mean(spectrum(clean.e_ref, clean.delta_e).sigma.real))
    out: dict = {"trials": args.trials, "threshold_p": tds.SIGNIFICANCE_P}
    t0 = time.perf_counter()
    for n in args.sweeps:
        nulls, ys, zs, ps, fp, scatter_used = [], [], [], [], 0, 0
        for k in range(args.trials):
            scan = simulate_sweeps(
                World(VirtualClock(), seed=10_000 * n + k), film, TIMES, n, pump_blocked=True
            )
            nulls.append(scan)
            spec = spectrum(scan.e_ref, scan.delta_e)
            test = tds.significance(spec)
            ys.append(float(np.mean(spec.sigma.real)))
            zs.append(test.statistic)
            ps.append(test.p_value)
            scatter_used += "sweep scatter" in test.method
            fp += bool(test.significant)
        sd = float(np.std(ys, ddof=1))
        row = {
            "false_positives": fp,
            "false_positive_rate": fp / args.trials,
            "z_sd_on_nulls": float(np.std(zs, ddof=1)),
            "max_abs_z_on_nulls": float(np.max(np.abs(zs))),
            # calibration where it is measurable: the rate of p below 0.05 and 0.01 on nulls
            "null_rate_p_below_0.05": float(np.mean(np.array(ps) < 0.05)),
            "null_rate_p_below_0.01": float(np.mean(np.array(ps) < 0.01)),
            "scatter_branch_rate": scatter_used / args.trials,
        }
        for z_true in Z_SIGNALS:
            alpha = z_true * sd / y_clean
            hits = 0
            for scan in nulls:
                spec = spectrum(scan.e_ref, scan.delta_e + alpha * clean.delta_e[0])
                hits += bool(tds.significance(spec).significant)
            row[f"power_at_z{z_true:g}"] = hits / len(nulls)
        out[f"{n}_sweeps"] = row
        print(
            f"{n} sweeps: false positives {fp}/{args.trials}, z sd on nulls "
            f"{row['z_sd_on_nulls']:.2f}, p<0.05 on {row['null_rate_p_below_0.05']:.3f} and "
            f"p<0.01 on {row['null_rate_p_below_0.01']:.3f} of nulls, power at z=5 {row['power_at_z5']:.2f}, "
            f"at z=9.5 {row['power_at_z9.5']:.2f}"
        )
    out["wall_s"] = time.perf_counter() - t0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
