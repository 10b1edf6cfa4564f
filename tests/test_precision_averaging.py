"""Precision-driven averaging on honest errors (the TDS procedure's stopping rule).

Per-sweep scans of a 300 °C film are drawn from the simulated world's physics and
noise (``simulators/physics/scan.py``, the cheap path without instrument simulators)
and fed sweep by sweep to the procedure's live fit (``LiveTDSFit``) and stopping rule
(``procedures.tds.target_shortfall`` with the sweeps the errors come from), as
``TDS._target_met`` does. With the table's realistic noise the same τ target takes
more sweeps than with the lock-ins' white noise alone, and where the rule stops the
target holds on the pull distribution: |τ − truth|/target behaves like a unit normal.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from quiet_table import QUIET_TABLE

from labctl.clock import VirtualClock
from labctl.livefit import LiveTDSFit
from labctl.procedures.tds import error_upper_factor, target_shortfall
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


def average_until_target(film, noise: str, seed: int) -> tuple[int, dict, float]:
    """Sweeps until the live fit meets TARGET (the procedure's rule): (sweeps, fit, true τ)."""
    world = World(VirtualClock(), seed=seed, noise=noise)
    world.configure(**QUIET_TABLE)  # the stopping rule is under test, not the table's floor
    truth = world.true_parameters(film)["tau_fs"]
    scan = simulate_sweeps(world, film, TIMES, MAX_SWEEPS)
    with LiveTDSFit(
        film.thickness_nm * 1e-9,
        float(world.params.table["substrate_index"]),
        effective_mass=float(world.params.photo["effective_mass"]),
        threaded=False,
    ) as live:
        for k in range(MAX_SWEEPS):
            live.add_sweep(TIMES, scan.e_ref[k], scan.delta_e[k])
            update = live.latest
            assert update.ok, update.error
            fit = update.fit.to_dict()
            scatter = k + 1 if update.noise_source == "sweep-scatter" else None
            if k + 1 >= MIN_SWEEPS and not target_shortfall(TARGET, fit, scatter):
                assert update.noise_source == "sweep-scatter"
                return k + 1, fit, truth
    return MAX_SWEEPS, fit, truth


@pytest.fixture(scope="module")
def studies(film):
    return {
        noise: [average_until_target(film, noise, seed) for seed in SEEDS]
        for noise in ("white", "realistic")
    }


def test_realistic_noise_needs_more_sweeps_for_the_same_target(studies):
    white = np.array([n for n, _fit, _truth in studies["white"]])
    realistic = np.array([n for n, _fit, _truth in studies["realistic"]])
    assert np.all(white < MAX_SWEEPS) and np.all(realistic < MAX_SWEEPS)  # all reached it
    assert np.median(realistic) >= 2 * np.median(white)
    assert np.mean(realistic) > np.mean(white) + 3


@pytest.mark.parametrize("noise", ["white", "realistic"])
def test_the_target_holds_on_the_pull_distribution(studies, noise):
    limit = TARGET["tau_fs_err"]
    errors = np.array([fit["tau_fs_err"] for _n, fit, _truth in studies[noise]])
    pulls = np.array([(fit["tau_fs"] - truth) / limit for _n, fit, truth in studies[noise]])
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
