"""Are the reported errors honest? Pull distributions over many seeds of the simulated world.

For each configuration — the world's white noise, its realistic noise, and each
table noise source on its own (on top of the lock-ins' white noise) — draws
``--seeds`` per-sweep scans of a film annealed at 300 °C from the world's physics
and noise (``labctl.simulators.physics.scan``), analyses them as ``labctl analyze
tds`` does (errors from the sweep scatter with its covariance between
frequencies) and prints, per parameter, the standard deviation and mean of the
pulls (fit − truth)/error, the mean relative error and the mean χ²_red. Target:
pull standard deviation 0.8–1.25 and |mean pull| ≤ 0.5 everywhere.

    python benchmarks/error_calibration.py [--seeds 40] [--sweeps 8] [--only realistic]

The last line is one JSON object: {configuration: {parameter: pull std}}, plus
``"ok"`` (every pull std and mean within the target).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from labctl.simulators.synthetic import NOISE_SOURCES, PULL_KEYS, world_pull_study

STD_RANGE = (0.8, 1.25)
MAX_MEAN = 0.5


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=40, help="seeds per configuration (≥ 20)")
    ap.add_argument("--sweeps", type=int, default=8, help="sweeps per scan")
    ap.add_argument(
        "--only",
        choices=("white", "realistic", *NOISE_SOURCES),
        action="append",
        help="run only these configurations",
    )
    args = ap.parse_args()
    configs = args.only or ["white", "realistic", *NOISE_SOURCES]
    summary: dict = {}
    ok = True
    for name in configs:
        t0 = time.perf_counter()
        if name in ("white", "realistic"):
            res = world_pull_study(name, range(args.seeds), n_sweeps=args.sweeps)
        else:
            res = world_pull_study(only=name, seeds=range(args.seeds), n_sweeps=args.sweeps)
        stds = {k: float(np.std(res["pulls"][k])) for k in PULL_KEYS}
        means = {k: float(np.mean(res["pulls"][k])) for k in PULL_KEYS}
        good = all(STD_RANGE[0] <= stds[k] <= STD_RANGE[1] for k in PULL_KEYS) and all(
            abs(means[k]) <= MAX_MEAN for k in PULL_KEYS
        )
        ok &= good
        summary[name] = {k: round(v, 3) for k, v in stds.items()}
        cells = "  ".join(
            f"{k} {stds[k]:.2f}/{means[k]:+.2f} ({100 * res['rel_err'][k]:.2g} %)"
            for k in PULL_KEYS
        )
        print(
            f"{name:16s} pull std/mean (rel. error): {cells}  χ²_red {np.mean(res['chi2_red']):.2f}"
            f"  {'ok' if good else 'OUTSIDE TARGET'}  [{time.perf_counter() - t0:.1f} s]",
            flush=True,
        )
    summary["ok"] = ok
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
