"""Model fits: round trips through the exact thin-film transfer, errors, warnings."""

import numpy as np
import pytest

from labctl import paper
from labctl.analysis import fitting, models, tds
from labctl.errors import AnalysisError
from labctl.simulators import synthetic

D = 100e-9
N_SUB = 1.95


def photoconductivity_in_window(*fields, **kw):
    """Δσ(ω) of the test film (D, N_SUB) in the 0.3–2.2 THz window."""
    kw = {"thickness_m": D, "substrate_index": N_SUB, "fmin_hz": 0.3e12, "fmax_hz": 2.2e12} | kw
    return tds.photoconductivity(*fields, **kw)


def _spectrum(data, **kw):
    return photoconductivity_in_window(
        data.time_ps,
        data.e_ref,
        data.delta_e,
        **kw,
    )


@pytest.mark.parametrize("temperature", sorted(paper.TABLE2))
def test_noise_free_round_trip_table2(temperature):
    p = paper.TABLE2[temperature]
    spec = _spectrum(
        synthetic.synthetic_tds(tau_fs=p["tau_fs"], c=p["c"], n_m3=p["N_m3"]), noise="none"
    )
    r = fitting.fit_spectrum(spec).to_dict()
    assert r["tau_fs"] == pytest.approx(p["tau_fs"], rel=1e-6)
    assert r["c"] == pytest.approx(p["c"], abs=1e-7)
    assert r["N_m3"] == pytest.approx(p["N_m3"], rel=1e-6)
    assert r["warnings"] == []


@pytest.mark.parametrize("temperature", [250, 300, 350])
def test_noisy_round_trip_within_3_sigma(temperature):
    p = paper.TABLE2[temperature]
    data = synthetic.synthetic_tds(
        tau_fs=p["tau_fs"],
        c=p["c"],
        n_m3=p["N_m3"],
        noise_de=3e-6,
        noise_ref=1e-4,
        n_sweeps=6,
        rng=temperature,
    )
    r = fitting.fit_spectrum(_spectrum(data)).to_dict()
    for key in ("tau_fs", "c", "N_m3"):
        assert abs(r[key] - p[key]) < 3 * r[f"{key}_err"], key
    mu_true = models.mobility_cm2_vs(p["tau_fs"] * 1e-15, p["c"])
    assert abs(r["mobility_cm2_Vs"] - mu_true) < 3 * r["mobility_cm2_Vs_err"]
    assert 0.3 < r["chi2_red"] < 3


def test_reported_errors_are_calibrated():
    """Over many noise realisations the pulls (fit − truth)/err have unit spread."""
    p = paper.TABLE2[300]
    clean = synthetic.synthetic_tds(tau_fs=p["tau_fs"], c=p["c"], n_m3=p["N_m3"])
    rng = np.random.default_rng(11)
    pulls = {"tau_fs": [], "c": [], "N_m3": []}
    for _ in range(40):
        de = clean.delta_e + 4e-6 * rng.standard_normal(clean.delta_e.size)
        spec = photoconductivity_in_window(
            clean.time_ps,
            clean.e_ref,
            de,
        )
        r = fitting.fit_spectrum(spec).to_dict()
        for k in pulls:
            pulls[k].append((r[k] - p[k]) / r[f"{k}_err"])
    for k, v in pulls.items():
        assert 0.6 < np.std(v) < 1.5, k
        assert abs(np.mean(v)) < 0.6, k


def test_fast_and_lmfit_paths_agree():
    data = synthetic.synthetic_tds(noise_de=3e-6, rng=5)
    spec = _spectrum(data)
    fast = fitting.fit_spectrum(spec, method="fast")
    slow = fitting.fit_spectrum(spec, method="lmfit")
    for name in fast.param_names:
        assert fast.values[name] == pytest.approx(slow.values[name], rel=1e-4)
        assert fast.errors[name] == pytest.approx(slow.errors[name], rel=0.02)
    assert fast.chi2 == pytest.approx(slow.chi2, rel=1e-6)


def test_table2_mobilities_match_the_orders_of_magnitude_in_physics_md():
    """docs/physics.md: μ, σ_DC and σ(1 THz) from Table 2 (Chen et al., Small 2023)."""
    expected = {250: 29, 300: 77, 350: 308}
    for t, mu in expected.items():
        p = paper.TABLE2[t]
        assert models.mobility_cm2_vs(p["tau_fs"] * 1e-15, p["c"], 0.13) == pytest.approx(
            mu, rel=0.01
        )
    p = paper.TABLE2[350]
    assert models.dc_conductivity(p["tau_fs"] * 1e-15, p["c"], p["N_m3"]) == pytest.approx(
        59.7, rel=0.01
    )
    s1 = models.drude_smith(1e12, p["tau_fs"] * 1e-15, p["c"], p["N_m3"])
    assert s1.real == pytest.approx(82.6, rel=0.01) and s1.imag == pytest.approx(-8.5, rel=0.02)


def test_mobility_error_includes_tau_c_covariance():
    spec = _spectrum(synthetic.synthetic_tds(noise_de=3e-6, rng=1))
    fit = fitting.fit_spectrum(spec)
    mu, mu_err = fit.mobility()
    k = mu / (fit.values["tau_fs"] * (1 + fit.values["c"]))
    i, j = fit.param_names.index("tau_fs"), fit.param_names.index("c")
    g = np.array([k * (1 + fit.values["c"]), k * fit.values["tau_fs"]])
    cov = fit.covariance[np.ix_([i, j], [i, j])]
    assert mu_err == pytest.approx(np.sqrt(g @ cov @ g))
    no_corr = np.sqrt(g[0] ** 2 * cov[0, 0] + g[1] ** 2 * cov[1, 1])
    assert abs(mu_err - no_corr) > 0.01 * no_corr  # τ and c are correlated


def test_plasma_frequency_round_trip():
    wp = models.plasma_frequency_rad_s(8.35e21, 0.13)
    assert models.density_from_plasma_frequency(wp, 0.13) == pytest.approx(8.35e21)


def test_drude_round_trip():
    data = synthetic.synthetic_tds(lambda f: models.drude(f, 30e-15, 3e21))
    r = fitting.fit_spectrum(_spectrum(data, noise="none"), model="drude").to_dict()
    assert r["tau_fs"] == pytest.approx(30, rel=1e-6)
    assert r["N_m3"] == pytest.approx(3e21, rel=1e-6)
    assert r["c"] == 0.0


def test_lorentz_round_trip():
    data = synthetic.synthetic_tds(
        lambda f: models.lorentz(f, 2e21, 1.5e12, 0.8e12), noise_de=1e-6, rng=2
    )
    fit = fitting.fit_spectrum(_spectrum(data), model="lorentz")
    truth = {"NX_1e21": 2.0, "f0_THz": 1.5, "gamma_THz": 0.8}
    for k, v in truth.items():
        assert abs(fit.values[k] - v) < 3 * fit.errors[k], k
    assert fit.to_dict()["tau_fs"] is None


def test_drude_smith_plus_lorentz_round_trip():
    def sigma(f):
        return models.drude_smith_lorentz(f, 60e-15, -0.7, 6e21, 1e21, 1.8e12, 0.6e12)

    fit = fitting.fit_spectrum(
        _spectrum(synthetic.synthetic_tds(sigma), noise="none"), model="drude-smith+lorentz"
    )
    expected = dict(tau_fs=60, c=-0.7, N_1e21=6, NX_1e21=1, f0_THz=1.8, gamma_THz=0.6)
    for k, v in expected.items():
        assert fit.values[k] == pytest.approx(v, rel=1e-4), k


def test_warning_when_parameter_sits_on_bound():
    # pure Drude data fitted with Drude-Smith: the best c is 0, the upper bound
    data = synthetic.synthetic_tds(lambda f: models.drude(f, 40e-15, 5e21))
    fit = fitting.fit_spectrum(_spectrum(data, noise="none"))
    assert fit.values["tau_fs"] == pytest.approx(40, rel=1e-4)
    assert any(w.startswith("c = ") and "bound 0" in w for w in fit.warnings)
    # complete back-scattering, c = −1: the lower bound
    data = synthetic.synthetic_tds(lambda f: models.drude_smith(f, 40e-15, -1.0, 5e21))
    fit = fitting.fit_spectrum(_spectrum(data, noise="none"))
    assert any("bound -1" in w for w in fit.warnings)
    # an interior optimum gives no warning
    fit = fitting.fit_spectrum(_spectrum(synthetic.synthetic_tds(), noise="none"))
    assert fit.warnings == []


def test_warning_when_lorentz_far_above_window_is_unconstrained():
    # a 36 THz exciton line: in-band only N_X/f0² is measured, N_X and f0 are degenerate
    data = synthetic.synthetic_tds(
        lambda f: models.lorentz(f, 5e21, 36e12, 5e12), noise_de=1e-6, rng=4
    )
    fit = fitting.fit_spectrum(_spectrum(data), model="lorentz")
    assert any("not constrained" in w for w in fit.warnings)


def test_to_dict_has_contract_keys():
    spec = _spectrum(synthetic.synthetic_tds(noise_de=3e-6, rng=1))
    d = fitting.fit_spectrum(spec).to_dict()
    for k in ("tau_fs", "c", "N_m3", "mobility_cm2_Vs"):
        assert isinstance(d[k], float) and isinstance(d[f"{k}_err"], float)
    assert {"chi2_red", "model", "warnings", "fmin_THz", "fmax_THz"} <= set(d)


def test_success_false_on_bound_or_huge_chi2_with_warnings():
    data = synthetic.synthetic_tds(noise_de=3e-6, rng=2)
    spec = _spectrum(data)
    good = fitting.fit_spectrum(spec)
    assert good.success and good.converged and good.on_bound == ()
    # errors underestimated 30×: χ²_red ≈ 900 → warning and success False
    spec.sigma_err = spec.sigma_err / 30
    bad = fitting.fit_spectrum(spec)
    assert bad.chi2_red > 100 and bad.converged and not bad.success
    assert any("far above 1" in w and "underestimated" in w for w in bad.warnings)
    # ×3: χ²_red ≈ 9 → warned, still a success
    spec.sigma_err = spec.sigma_err * 10
    mid = fitting.fit_spectrum(spec)
    assert 5 < mid.chi2_red < 100 and mid.success and any("far above 1" in w for w in mid.warnings)
    # unphysical data (a "c = −1.2" film, χ²_red ≈ 85 < 100): c pinned on its bound −1
    beyond = synthetic.synthetic_tds(
        lambda f: models.drude_smith(f, 40e-15, -1.2, 8e21), noise_de=3e-6, rng=1
    )
    fit = fitting.fit_spectrum(_spectrum(beyond))
    assert fit.on_bound == ("c",) and fit.chi2_red < 100 and fit.converged
    assert not fit.success and fit.to_dict()["success"] is False
    assert any("sits on its bound" in w for w in fit.warnings)


def test_too_few_usable_points_names_the_band():
    data = synthetic.synthetic_tds(noise_de=3e-6, rng=0)
    spec = _spectrum(data, fmin_hz=3.05e12, fmax_hz=3.3e12)
    assert spec.freq_hz.size < 6
    with pytest.raises(AnalysisError, match=r"need ≥ 6\); \|E_ref\| is usable over 0\.\d\d–3"):
        fitting.fit_spectrum(spec)


def test_spectrum_warnings_reach_the_fit():
    data = synthetic.synthetic_tds(noise_de=3e-6, rng=0)
    spec = _spectrum(data, fmax_hz=4e12)
    fit = fitting.fit_spectrum(spec)
    assert fit.warnings[0].startswith(f"dropped {spec.n_dropped_low_ref} of")
