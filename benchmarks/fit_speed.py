"""Speed of the conductivity fits and of one live-fit update.

Prints ms per Drude-Smith fit (60 frequency points) for the fast path
(scipy least_squares + analytic Jacobian) and the lmfit path from the same start,
checks they agree, and ms per live update (FFT + Δσ + warm-started fit) for
400-point TDS sweeps — early in a run and after 3 000 sweeps, with a table of the cost
at several sweep counts (issue 20 asks that it stay flat: ratio ≤ 2).
The last line is one JSON object.

    .venv/bin/python benchmarks/fit_speed.py
"""

from __future__ import annotations

import json
import time

import numpy as np

from labctl import paper
from labctl.analysis import fitting, models
from labctl.livefit import LiveTDSFit
from labctl.simulators import synthetic


def per_call_ms(fn, min_time=0.5, min_calls=20) -> float:
    fn()  # warm-up
    n, t0 = 0, time.perf_counter()
    while n < min_calls or time.perf_counter() - t0 < min_time:
        fn()
        n += 1
    return (time.perf_counter() - t0) / n * 1e3


def main() -> dict:
    p = paper.TABLE2[300]
    rng = np.random.default_rng(0)
    freq = np.linspace(0.3e12, 2.2e12, 60)
    truth = models.drude_smith(freq, p["tau_fs"] * 1e-15, p["c"], p["N_m3"])
    err = np.full(freq.size, 0.3)
    sigma = truth + err * (rng.standard_normal(60) + 1j * rng.standard_normal(60))
    start = fitting.initial_guess("drude-smith", freq, sigma, err)

    fast = fitting.fit_conductivity(freq, sigma, err, initial=start, method="fast")
    slow = fitting.fit_conductivity(freq, sigma, err, initial=start, method="lmfit")
    max_rel_diff = max(
        abs(fast.values[k] - slow.values[k]) / abs(slow.values[k]) for k in fast.param_names
    )
    max_err_diff = max(
        abs(fast.errors[k] - slow.errors[k]) / slow.errors[k] for k in fast.param_names
    )

    ms_fast = per_call_ms(
        lambda: fitting.fit_conductivity(freq, sigma, err, initial=start, method="fast")
    )
    ms_lmfit = per_call_ms(
        lambda: fitting.fit_conductivity(freq, sigma, err, initial=start, method="lmfit")
    )
    ms_cold = per_call_ms(lambda: fitting.fit_conductivity(freq, sigma, err, method="fast"))
    warm = np.array([fast.values[k] for k in fast.param_names]) * 1.02
    ms_warm = per_call_ms(
        lambda: fitting.fit_conductivity(freq, sigma, err, initial=warm, method="fast")
    )
    print(f"Drude-Smith fit, 60 frequency points (same start, {start.round(3)}):")
    print(f"  fast (least_squares + analytic Jacobian): {ms_fast:7.2f} ms  nfev {fast.nfev}")
    print(f"  lmfit (leastsq, numerical Jacobian):      {ms_lmfit:7.2f} ms  nfev {slow.nfev}")
    print(f"  ratio lmfit/fast:                         {ms_lmfit / ms_fast:7.1f}x")
    print(f"  fast, cold start (incl. grid guess):      {ms_cold:7.2f} ms")
    print(f"  fast, warm start (2 % off):               {ms_warm:7.2f} ms")
    print(f"  agreement: max rel. diff values {max_rel_diff:.1e}, errors {max_err_diff:.1e}")

    # live update: 400-point sweeps (0.05 ps → 20 ps), inline mode to time the work itself
    data = synthetic.table2_sweeps(60, rng=1)
    assert data.time_ps.size == 400
    live = LiveTDSFit(100e-9, 1.95, threaded=False)
    times = []
    for k in range(60):
        t0 = time.perf_counter()
        live.add_sweep(data.time_ps, data.e_ref[k], data.delta_e[k])
        times.append((time.perf_counter() - t0) * 1e3)
    last = live.latest
    steady = np.array(times[5:])  # after the cold first fits
    print("Live update (400-point sweep: FFT + Δσ + scatter + warm fit):")
    print(
        f"  median {np.median(steady):.2f} ms, 95th pct {np.percentile(steady, 95):.2f} ms, "
        f"max {steady.max():.2f} ms; first (cold) {times[0]:.2f} ms"
    )
    print(
        f"  after 60 sweeps: tau = {last.params['tau_fs']:.2f} ± {last.params['tau_fs_err']:.2f} fs "
        f"(truth {p['tau_fs']}), {last.fit.n_freq} frequency points"
    )
    # growth: the cost of an update at several sweep counts, up to 3 000 sweeps
    checkpoints = (10, 100, 300, 1000, 3000)
    n_total = checkpoints[-1]
    many = synthetic.table2_sweeps(n_total, rng=2)
    live = LiveTDSFit(100e-9, 1.95, threaded=False)
    per_sweep_ms = np.empty(n_total)
    for k in range(n_total):
        t0 = time.perf_counter()
        live.add_sweep(many.time_ps, many.e_ref[k], many.delta_e[k])
        per_sweep_ms[k] = (time.perf_counter() - t0) * 1e3
    window = 10  # median of the 10 updates ending at each checkpoint
    table = {n: float(np.median(per_sweep_ms[n - window : n])) for n in checkpoints}
    print("Live update cost against sweeps done (median of the 10 updates before):")
    print("  sweeps   ms/update")
    for n, ms in table.items():
        print(f"  {n:6d}   {ms:8.2f}")
    after = table[n_total]
    early = table[checkpoints[0]]
    print(f"  ratio after {n_total} / after {checkpoints[0]}: {after / early:.2f}")
    print(f"  whole run of {n_total} sweeps: {per_sweep_ms.sum() / 1e3:.1f} s of fitting CPU")
    result = {
        "ms_per_fit_live": round(ms_fast, 3),
        "ms_per_fit_lmfit": round(ms_lmfit, 3),
        "lmfit_over_live": round(ms_lmfit / ms_fast, 2),
        "ms_per_fit_live_cold": round(ms_cold, 3),
        "ms_per_fit_live_warm": round(ms_warm, 3),
        "ms_per_update": round(float(np.median(steady)), 3),
        "ms_per_update_p95": round(float(np.percentile(steady, 95)), 3),
        "ms_per_update_after_3000_sweeps": round(after, 3),
        "ratio_after_3000_over_ms_per_update": round(after / float(np.median(steady)), 2),
        "update_ratio_3000_over_10": round(after / early, 2),
        "ms_per_update_by_sweeps": {str(n): round(ms, 3) for n, ms in table.items()},
        "fit_cpu_s_3000_sweeps": round(float(per_sweep_ms.sum()) / 1e3, 2),
        "max_rel_diff_fast_vs_lmfit": float(f"{max_rel_diff:.3g}"),
        "n_freq_fit": 60,
        "n_time_points_update": 400,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
