"""Precision-driven averaging on honest errors (the TDS procedure's stopping rule).

Per-sweep scans of a 300 °C film are drawn from the simulated world's physics and
noise (``simulators/physics/scan.py``, the cheap path without instrument simulators)
and judged sweep by sweep as ``TDS._target_met`` does: the analysis of the sweeps so far
with the errors a target is judged on (``procedures.tds.TARGET_NOISE``: the time-domain
noise model, many degrees of freedom) against ``target_shortfall``. With the table's
realistic noise the same τ target takes more sweeps than with the lock-ins' white noise
alone; where the rule stops the target holds on the pull distribution; and the errors
the stopped run reports are honest: (τ − truth)/τ_err over the seeds behaves like a unit
normal, not like the heavy-tailed pulls of 3-sweep scatter errors that a rule stopping on
the first small one selects (issue 16 item 5: std 1.65, a pull of 6.5 in 40 runs).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from quiet_table import QUIET_TABLE

from labctl.analysis.tds_analysis import analyze_tds
from labctl.clock import VirtualClock
from labctl.procedures.tds import (
    TARGET_GATE_PS,
    TARGET_NOISE,
    error_upper_factor,
    target_shortfall,
)
from labctl.simulators.physics.scan import anneal_nominal, simulate_sweeps
from labctl.simulators.world import World

TIMES = np.round(np.arange(-4.0, 12.0001, 0.05), 9)  # the TDS procedure's default window
TARGET = {"tau_fs_err": 0.3}
MIN_SWEEPS, MAX_SWEEPS = 3, 40  # the procedure's default minimum; a cap never reached here
SEEDS = range(40)


@pytest.fixture(scope="module")
def film():
    template = World(VirtualClock(), seed=0, noise=False)
    film = copy.deepcopy(template.films[0])
    anneal_nominal(film, 300.0)
    return film


def average_until_target(
    film, noise: str, seed: int, times=TIMES, target=TARGET, max_sweeps=MAX_SWEEPS
) -> tuple[int, dict, dict]:
    """Sweeps until the errors of the sweeps so far meet ``target`` (the procedure's rule):
    (sweeps, the stopped analysis as a dict, the truth with N at the parked pump delay)."""
    world = World(VirtualClock(), seed=seed, noise=noise)
    world.configure(**QUIET_TABLE)  # the stopping rule is under test, not the table's floor
    truth = dict(world.true_parameters(film))
    scan = simulate_sweeps(world, film, times, max_sweeps)
    truth["N_m3"] *= scan.transient_at_parked  # the stage's parking: a systematic here
    for k in range(MIN_SWEEPS, max_sweeps + 1):
        fit = analyze_tds(
            times,
            scan.e_ref[:k],
            scan.delta_e[:k],
            thickness_m=film.thickness_nm * 1e-9,
            substrate_index=float(world.params.table["substrate_index"]),
            effective_mass=float(world.params.photo["effective_mass"]),
            noise=TARGET_NOISE,
        ).to_dict()
        assert fit["noise_source"] == "noise-model"
        if not target_shortfall(target, fit):
            return k, fit, truth
    return max_sweeps, fit, truth


@pytest.fixture(scope="module")
def studies(film):
    return {
        noise: [average_until_target(film, noise, seed) for seed in SEEDS]
        for noise in ("white", "realistic")
    }


def test_realistic_noise_needs_more_sweeps_for_the_same_target(studies):
    """White noise meets τ ± 0.3 fs at the minimum of 3 sweeps; the realistic table's drift
    and jitter cost more (measured: 3–7, median 4, mean 4.2). The errors see that noise:
    with realistic noise they are larger for the same sweeps. (Under the old rule, with
    its χ² bound on scatter errors, realistic noise took a median of 11 sweeps.)"""
    white = np.array([n for n, _fit, _truth in studies["white"]])
    realistic = np.array([n for n, _fit, _truth in studies["realistic"]])
    assert np.all(white < MAX_SWEEPS) and np.all(realistic < MAX_SWEEPS)  # all reached it
    assert np.all(white == MIN_SWEEPS)
    assert np.median(realistic) > np.median(white)
    assert np.mean(realistic) >= np.mean(white) + 1


@pytest.mark.parametrize("noise", ["white", "realistic"])
def test_the_target_holds_on_the_pull_distribution(studies, noise):
    limit = TARGET["tau_fs_err"]
    errors = np.array([fit["tau_fs_err"] for _n, fit, _truth in studies[noise]])
    pulls = np.array([(fit["tau_fs"] - t["tau_fs"]) / limit for _n, fit, t in studies[noise]])
    assert np.all(errors <= limit)  # on paper
    rms = float(np.sqrt(np.mean(pulls**2)))
    assert rms <= 1.3, (rms, np.round(pulls, 2))  # and in fact: a unit normal's rms is 1
    assert np.mean(np.abs(pulls) > 2.5) <= 0.05  # no heavy tail of early stops
    assert abs(np.mean(pulls)) <= 0.5


def test_an_error_from_few_sweeps_must_clear_the_target_by_its_own_uncertainty():
    """The scatter of n sweeps has ν = n − 1 degrees of freedom: the one-sided 84 % bound
    on the true error is √(ν/χ²₀.₁₆(ν)) times the estimate — large for 3 sweeps, → 1."""
    factors = [error_upper_factor(n) for n in (3, 4, 8, 40, 1000)]
    assert factors[0] == pytest.approx(2.39, abs=0.01)
    assert all(a > b for a, b in zip(factors, factors[1:], strict=False))
    assert 1.0 < factors[-1] < 1.05
    assert error_upper_factor(None) == error_upper_factor(1) == 1.0
    fit = {"tau_fs_err": 1.0}
    assert target_shortfall({"tau_fs_err": 2.0}, fit) == {}  # no sweeps named: as reported
    assert target_shortfall({"tau_fs_err": 2.0}, fit, 3) == {"tau_fs_err": 1.0}
    assert target_shortfall({"tau_fs_err": 2.0}, fit, 8) == {}


def test_a_stopped_runs_errors_are_honest_at_a_third_of_the_time(film):
    """Issue 16 item 5's run: ``--target tau_fs_err=2`` at 300 °C on the coarse target grid,
    40 seeds of the realistic table. The errors the stopped runs report are honest for τ,
    c and N: the pulls (value − truth)/error have an rms ≤ 1.33 (a unit normal's rms over
    40 seeds has sd 0.11: 3 sd above 1) and none beyond 4 (for a unit normal: 0.25 % of
    40 runs), and are not inflated (rms ≥ 0.5). Measured on the analysis-test table: τ 0.87
    (max 2.0), c 0.86, N 0.85 (on the pre-1.4 per-channel floors: 0.92, 0.83, 0.97).
    The old rule — the live fit's sweep-scatter errors with an 84 % χ² bound — on the same
    seeds (pre-1.4 floors): 3–5 sweeps, τ rms 1.43 with a pull of 6.4, c's max 4.8 (in the procedure:
    std 1.65, a pull of 6.5)."""
    start, stop, step = TARGET_GATE_PS
    times = np.round(np.arange(start, stop + step / 2, step), 9)
    runs = [
        average_until_target(film, "realistic", 200 + seed, times, {"tau_fs_err": 2.0}, 10)
        for seed in range(40)
    ]
    sweeps = np.array([n for n, _fit, _truth in runs])
    assert np.all(sweeps == MIN_SWEEPS)  # τ ± 2 fs is met at once: a third of the time
    for key in ("tau_fs", "c", "N_m3"):
        pulls = np.array([(fit[key] - t[key]) / fit[f"{key}_err"] for _n, fit, t in runs])
        rms = float(np.sqrt(np.mean(pulls**2)))
        assert 0.5 <= rms <= 1.33, (key, rms)
        assert np.max(np.abs(pulls)) <= 4.0, (key, np.round(pulls, 2))
