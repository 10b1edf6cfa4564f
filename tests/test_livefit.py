"""Live fit: converges while sweeps arrive, never raises into the scan, bounded work."""

import threading

import numpy as np
import pytest

from labctl import paper
from labctl.livefit import LiveTDSFit
from labctl.simulators import synthetic

TRUTH = paper.TABLE2[300]


@pytest.fixture(scope="module")
def sweeps():
    return synthetic.table2_sweeps(12, rng=1)


def test_feeding_sweeps_converges_to_the_truth(sweeps):
    updates = []
    with LiveTDSFit(100e-9, 1.95, threaded=False) as live:
        live.subscribe(updates.append)
        for k in range(12):
            live.add_sweep(sweeps.time_ps, sweeps.e_ref[k], sweeps.delta_e[k])
    assert [u.n_sweeps for u in updates] == list(range(1, 13))
    assert all(u.ok for u in updates)
    last = updates[-1].params
    for key in ("tau_fs", "c", "N_m3"):
        assert abs(last[key] - TRUTH[key]) < 3 * last[f"{key}_err"], key
    # more sweeps, smaller errors; noise from sweep scatter once there are ≥ 3
    assert last["tau_fs_err"] < 0.6 * updates[0].params["tau_fs_err"]
    assert updates[-1].noise_source == "sweep-scatter" and updates[0].noise_source == "baseline"
    # published for plotting: spectrum, errors, model curve on the same frequencies
    u = updates[-1]
    assert u.freq_hz.shape == u.sigma.shape == u.model_sigma.shape == u.sigma_err.shape
    assert u.to_dict()["fit"]["model"] == "drude-smith"


def test_points_feed_and_refit_every_n_points(sweeps):
    updates = []
    live = LiveTDSFit(100e-9, 1.95, threaded=False, refit_every_points=100)
    live.subscribe(updates.append)
    for k in range(4):
        for i, t in enumerate(sweeps.time_ps):
            live.add_point(t, sweeps.e_ref[k, i], sweeps.delta_e[k, i])
    live.end_sweep()
    assert live.n_sweeps == 4
    # one update per finished sweep, plus every 100 points after the first sweep
    assert len(updates) >= 4 + 3 * (sweeps.time_ps.size // 100) - 3
    assert updates[-1].ok and updates[-1].n_sweeps == 4
    assert (
        abs(updates[-1].params["tau_fs"] - TRUTH["tau_fs"]) < 3 * updates[-1].params["tau_fs_err"]
    )


def test_fit_errors_are_published_not_raised(sweeps):
    updates = []
    live = LiveTDSFit(100e-9, 1.95, threaded=False)
    live.subscribe(updates.append)

    def broken_subscriber(update):
        raise RuntimeError("GUI fell over")

    live.subscribe(broken_subscriber)
    bad = sweeps.delta_e[0].copy()
    bad[50] = np.nan
    live.add_sweep(sweeps.time_ps, sweeps.e_ref[0], bad)  # must not raise
    assert updates[-1].error is not None and "NaN" in updates[-1].error
    assert updates[-1].fit is None
    live.add_sweep(sweeps.time_ps[:100], sweeps.e_ref[0, :100], sweeps.delta_e[0, :100])
    assert "does not match the grid" in updates[-1].error
    live.reset()
    live.add_sweep(sweeps.time_ps, sweeps.e_ref[1], sweeps.delta_e[1])
    assert updates[-1].ok  # recovers after the bad data


def test_threaded_acquisition_never_waits_for_the_fit(sweeps):
    """A subscriber that hangs (a frozen GUI) holds the fit worker, never the scan."""
    started, release = threading.Event(), threading.Event()

    def stuck_subscriber(update):
        started.set()
        release.wait(timeout=30)

    updates = []
    with LiveTDSFit(100e-9, 1.95) as live:
        live.subscribe(stuck_subscriber)
        live.subscribe(updates.append)
        for k in range(6):
            for i, t in enumerate(sweeps.time_ps):
                live.add_point(t, sweeps.e_ref[k, i], sweeps.delta_e[k, i])
            if k == 0:
                live.end_sweep()
                assert started.wait(timeout=10)  # the worker is now stuck in the subscriber
        live.end_sweep()
        # every point of sweeps 2-6 went in while the worker could not have fitted
        assert not release.is_set() and live.n_sweeps == 6
        release.set()
        assert live.wait_idle(timeout=10)
    # requests made while the worker was busy were coalesced, the newest data won
    assert len(updates) < 6
    assert updates[-1].n_sweeps == 6 and updates[-1].ok


def test_threaded_errors_reach_subscribers_from_the_worker(sweeps):
    seen = []
    with LiveTDSFit(100e-9, 1.95) as live:
        live.subscribe(lambda u: seen.append((u, threading.current_thread().name)))
        live.add_sweep(sweeps.time_ps, sweeps.e_ref[0], sweeps.delta_e[0])
        live.add_sweep(sweeps.time_ps[:50], sweeps.e_ref[0, :50], sweeps.delta_e[0, :50])
        assert live.wait_idle(timeout=10)
    errors = [u for u, _ in seen if u.error]
    assert errors and "does not match the grid" in errors[0].error
    assert {name for _, name in seen} == {"LiveTDSFit"}
    assert any(u.ok for u, _ in seen)


def test_spectrum_warnings_reach_live_subscribers(sweeps):
    """Frequencies without THz (here up to 6 THz) are dropped, and the live fit says so."""
    updates = []
    with LiveTDSFit(100e-9, 1.95, fmax_hz=6e12, threaded=False) as live:
        live.subscribe(updates.append)
        for k in range(3):
            live.add_sweep(sweeps.time_ps, sweeps.e_ref[k], sweeps.delta_e[k])
    assert updates[-1].ok
    assert any("1 %" in w or "dropped" in w for w in updates[-1].fit.warnings)


def test_running_sums_give_the_batch_result_to_rounding():
    """No sweep is kept after the second, yet Δσ, its errors from the scatter (with their
    covariance between frequencies), the significance test and the parameter errors are
    those of ``labctl analyze tds``'s batch computation over every sweep."""
    from labctl.analysis import tds
    from labctl.analysis.fitting import fit_spectrum

    data = synthetic.table2_sweeps(40, rng=7)
    live = LiveTDSFit(100e-9, 1.95, threaded=False)
    for k in range(40):
        live.add_sweep(data.time_ps, data.e_ref[k], data.delta_e[k])
    u = live.latest
    assert u.ok and u.n_sweeps == 40 and u.noise_source == "sweep-scatter"
    batch = tds.photoconductivity(
        data.time_ps, data.e_ref, data.delta_e, thickness_m=100e-9, substrate_index=1.95,
        fmin_hz=live.fmin_hz, fmax_hz=live.fmax_hz, require_signal=False,
    )  # fmt: skip
    np.testing.assert_array_equal(u.freq_hz, batch.freq_hz)
    np.testing.assert_allclose(u.sigma, batch.sigma, rtol=1e-9)
    np.testing.assert_allclose(u.sigma_err, batch.sigma_err, rtol=1e-7)
    assert u.p_value == pytest.approx(tds.significance(batch).p_value, rel=1e-6, abs=1e-300)
    start = np.array([u.fit.values[n] for n in u.fit.param_names])
    fit = fit_spectrum(batch, initial=start)
    for name in u.fit.param_names:
        assert u.fit.values[name] == pytest.approx(fit.values[name], rel=1e-6)
        assert u.fit.errors[name] == pytest.approx(fit.errors[name], rel=1e-5)
    # what is kept does not grow with the sweeps: two raw sweeps, then sums only
    held = [v for v in vars(live).values() if isinstance(v, list)]
    assert max(len(v) for v in held) <= 2


@pytest.mark.parametrize("case", ["null", "drifting pump"])
def test_running_sums_give_the_batch_significance_test(case):
    """The significance test from the running sums is ``analyze_tds``'s on every sweep:
    the noise model's band variance (per-point variances and neighbour correlation from
    sums) on a null, and the switch to the sweeps' scatter (Student t, Welch dof) when
    the pump drifts between sweeps."""
    from labctl.analysis.tds_analysis import analyze_tds

    drifting = case == "drifting pump"
    data = synthetic.table2_sweeps(8, rng=11, density_scale=0.2 if drifting else 0.002)
    de = data.delta_e.copy()
    if drifting:
        de *= 1 + 0.5 * np.random.default_rng(3).standard_normal((de.shape[0], 1))
    live = LiveTDSFit(100e-9, 1.95, threaded=False)
    for k in range(de.shape[0]):
        live.add_sweep(data.time_ps, data.e_ref[k], de[k])
    mine = live.latest.analysis
    batch = analyze_tds(data.time_ps, data.e_ref, de, thickness_m=100e-9, substrate_index=1.95)
    assert mine.test.method == batch.test.method
    assert ("sweep scatter" in batch.test.method) is drifting
    assert mine.test.statistic == pytest.approx(batch.test.statistic, rel=1e-9)
    assert mine.test.p_value == pytest.approx(batch.test.p_value, rel=1e-7)
    assert mine.test.dof == pytest.approx(batch.test.dof, rel=1e-7)
    assert mine.spectrum.model_band_var == pytest.approx(batch.spectrum.model_band_var, rel=1e-9)
    assert mine.significant == batch.significant
