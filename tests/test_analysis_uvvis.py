"""UV-Vis: absorbance, exciton peaks, Tauc gap."""

import numpy as np
import pytest

from labctl.analysis import uvvis
from labctl.analysis.constants import HC_EV_NM

WL = np.arange(350.0, 720.01, 0.5)
E = HC_EV_NM / WL


def _gauss(e0, fwhm, amp):
    return amp * np.exp(-0.5 * ((E - e0) / (fwhm / 2.3548)) ** 2)


def npl_spectrum(hh_nm, lh_nm, rng, noise=0.003):
    e_lh = HC_EV_NM / lh_nm
    a = (
        _gauss(HC_EV_NM / hh_nm, 0.035, 0.5)
        + _gauss(e_lh, 0.06, 0.3)
        + 0.6 / (1 + np.exp(-(E - (e_lh + 0.15)) / 0.05))
        + 0.01
    )
    return a + noise * rng.standard_normal(E.size)


def test_absorbance_from_counts_is_guarded():
    a = uvvis.absorbance([510.0, 100.0, 5.0, 50.0], [1010.0, 1010.0, 1010.0, 5.0], [10.0] * 4)
    assert a[0] == pytest.approx(-np.log10(0.5))
    assert a[1] == pytest.approx(-np.log10(90 / 1000))
    assert np.isnan(a[2]) and np.isnan(a[3])  # sample ≤ dark; reference ≤ dark


@pytest.mark.parametrize("hh,lh", [(512.0, 480.0), (520.3, 487.7), (545.2, 510.6)])
def test_exciton_peaks_sub_half_nm(hh, lh):
    rng = np.random.default_rng(int(hh))
    peaks = uvvis.find_exciton_peaks(WL, npl_spectrum(hh, lh, rng))
    assert abs(peaks.heavy_hole.wavelength_nm - hh) < 0.5
    assert abs(peaks.light_hole.wavelength_nm - lh) < 0.5
    assert peaks.heavy_hole.energy_ev == pytest.approx(HC_EV_NM / peaks.heavy_hole.wavelength_nm)
    assert peaks.heavy_hole.wavelength_nm_err < 0.5


def test_lh_shoulder_is_found():
    rng = np.random.default_rng(0)
    # LH close and weak on the continuum edge: no local maximum, only a shoulder
    e_lh = HC_EV_NM / 490.0
    a = (
        _gauss(HC_EV_NM / 512.0, 0.035, 0.5)
        + _gauss(e_lh, 0.07, 0.12)
        + 0.8 / (1 + np.exp(-(E - (e_lh + 0.02)) / 0.05))
        + 0.002 * rng.standard_normal(E.size)
    )
    peaks = uvvis.find_exciton_peaks(WL, a)
    assert peaks.light_hole is not None
    assert abs(peaks.light_hole.wavelength_nm - 490.0) < 2.0


@pytest.mark.parametrize("gap", [1.70, 1.74, 2.10])
def test_tauc_recovers_direct_gap(gap):
    rng = np.random.default_rng(5)
    a = np.sqrt(np.clip(E - gap, 0, None)) / E + 0.002 * rng.standard_normal(E.size)
    r = uvvis.tauc_gap(WL, a)
    assert abs(r.gap_ev - gap) < 0.01
    lo, hi = r.fit_range_ev
    assert gap < lo < hi and r.n_points >= 3 and r.r_squared > 0.99
    assert "auto" in r.selection
    fixed = uvvis.tauc_gap(WL, a, fit_range_ev=(gap + 0.1, gap + 0.4))
    assert fixed.fit_range_ev == (gap + 0.1, gap + 0.4)
    assert abs(fixed.gap_ev - gap) < 0.01


# ---------------------------------------------------------------- no invented excitons

# a spectrometer-like grid: cubic wavelength calibration, steps 0.36 → 0.32 nm, rounded
_PIX = np.arange(1300.0)
SPEC_WL = np.round(380.0 + 0.3607 * _PIX - 1.6e-5 * _PIX**2, 3)


def lamp_noise(wl, a, rng, sigma_red=0.001):
    """Absorbance noise of a lamp weak in the blue: ~10× larger at 380 nm than at 650 nm."""
    lamp = np.exp(-(((wl - 650.0) / 170.0) ** 2))
    sigma = sigma_red * 10 ** (0.5 * a) / lamp
    return sigma * rng.standard_normal(wl.size), sigma


def bulk_edge(wl, gap_ev, urbach_ev=0.025, scale=1.3):
    """Direct-gap edge √(E−Eg)/E with an Urbach tail below Eg + Eu/2, plus Rayleigh scatter."""
    e = HC_EV_NM / wl
    e_join = gap_ev + 0.5 * urbach_ev

    def direct(x):
        return scale * (gap_ev + 1.0) * np.sqrt(np.clip(x - gap_ev, 0.0, None)) / x

    tail = direct(e_join) * np.exp(np.clip((e - e_join) / urbach_ev, -200.0, 0.0))
    return np.where(e >= e_join, direct(e), tail) + 0.05 * (400.0 / wl) ** 4


def test_local_noise_follows_the_wavelength_dependent_noise():
    rng = np.random.default_rng(3)
    a = bulk_edge(SPEC_WL, 1.70)
    noise, sigma = lamp_noise(SPEC_WL, a, rng)
    wl, est = uvvis.local_noise(SPEC_WL, a + noise)
    for lam in (400.0, 450.0, 550.0, 650.0):
        i = np.argmin(np.abs(wl - lam))
        assert est[i] == pytest.approx(sigma[i], rel=0.2), lam
    # a single global figure would be off by the factor this ratio says
    assert est[np.argmin(np.abs(wl - 400))] / est[np.argmin(np.abs(wl - 650))] > 4


@pytest.mark.parametrize("gap", [1.70, 1.85, 2.05])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_featureless_edge_gives_no_exciton(gap, seed):
    rng = np.random.default_rng(seed)
    a = bulk_edge(SPEC_WL, gap)
    noise, _ = lamp_noise(SPEC_WL, a, rng)
    peaks = uvvis.find_exciton_peaks(SPEC_WL, a + noise)
    assert peaks.heavy_hole is None and peaks.light_hole is None
    assert not peaks.excitonic
    assert uvvis.FEATURELESS_WARNING in peaks.warnings
    assert peaks.to_dict()["hh"] is None and peaks.to_dict()["lh"] is None
    assert uvvis.excitonic_tauc_warning(peaks) is None
    tauc = uvvis.tauc_gap(SPEC_WL, a + noise)
    assert tauc.gap_ev == pytest.approx(gap, abs=0.03)


@pytest.mark.parametrize("sigma_red", [0.0, 1e-5])
def test_smooth_edge_curvature_alone_is_not_an_exciton(sigma_red):
    """Nearly noise-free: the edge's own curvature is 'significant', but not a local feature."""
    rng = np.random.default_rng(7)
    a = bulk_edge(SPEC_WL, 1.80)
    noise, _ = lamp_noise(SPEC_WL, a, rng, sigma_red=sigma_red)
    peaks = uvvis.find_exciton_peaks(SPEC_WL, a + noise)
    assert peaks.heavy_hole is None and peaks.light_hole is None


def test_pure_noise_gives_no_exciton():
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        a = 0.3 + 0.003 * rng.standard_normal(SPEC_WL.size)
        assert uvvis.find_exciton_peaks(SPEC_WL, a).heavy_hole is None, seed


def excitonic_film(hh_nm, rng, sigma_red=0.001, split_ev=0.161, hh_fwhm_ev=0.040, lh_fwhm_ev=0.075):
    """HH/LH lines and the 2D continuum on the spectrometer grid, with lamp noise."""
    e = HC_EV_NM / SPEC_WL
    e_hh = HC_EV_NM / hh_nm
    e_lh = e_hh + split_ev

    def line(e0, fwhm, amp):
        return amp * np.exp(-0.5 * ((e - e0) / (fwhm / 2.3548)) ** 2)

    a = (
        line(e_hh, hh_fwhm_ev, 0.30)
        + line(e_lh, lh_fwhm_ev, 0.20)
        + 0.28 * (1 + (e - e_lh - 0.06)) / (1 + np.exp(-(e - e_lh - 0.06) / 0.03))
        + 0.05 * (400.0 / SPEC_WL) ** 4
    )
    noise, _ = lamp_noise(SPEC_WL, a, rng, sigma_red=sigma_red)
    return a + noise, HC_EV_NM / e_lh


@pytest.mark.parametrize("hh_nm", [512.0, 530.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_excitons_recovered_with_wavelength_dependent_noise(hh_nm, seed):
    a, lh_nm = excitonic_film(hh_nm, np.random.default_rng(seed))
    peaks = uvvis.find_exciton_peaks(SPEC_WL, a)
    assert peaks.excitonic
    assert abs(peaks.heavy_hole.wavelength_nm - hh_nm) < 0.5
    assert abs(peaks.light_hole.wavelength_nm - lh_nm) < 0.5
    assert peaks.heavy_hole.kind == "maximum"
    assert peaks.heavy_hole.significance >= 5
    assert peaks.heavy_hole.amplitude > 5 * peaks.heavy_hole.amplitude_err
    caveat = uvvis.excitonic_tauc_warning(peaks)
    assert caveat and "Tauc" in caveat and f"{peaks.heavy_hole.wavelength_nm:.1f}" in caveat


def test_noisy_sharp_peak_is_a_maximum_and_a_weak_edge_line_a_shoulder():
    rng = np.random.default_rng(11)
    # large point-to-point noise: single neighbours often exceed the peak's own point
    peaks = uvvis.find_exciton_peaks(WL, npl_spectrum(512.0, 480.0, rng, noise=0.01))
    assert peaks.heavy_hole.kind == "maximum"
    e_lh = HC_EV_NM / 490.0
    a = (
        _gauss(HC_EV_NM / 512.0, 0.035, 0.5)
        + _gauss(e_lh, 0.07, 0.12)
        + 0.8 / (1 + np.exp(-(E - (e_lh + 0.02)) / 0.05))
        + 0.002 * rng.standard_normal(E.size)
    )
    assert uvvis.find_exciton_peaks(WL, a).light_hole.kind == "shoulder"


# ---------------------------------------------------------------- simulated films, via the CLI


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """Absorption spectra of films annealed at 350 °C (fused) and as made (25 °C), seed 0."""
    from labctl.cli import main

    out = tmp_path_factory.mktemp("uvvis")
    paths = {}
    for anneal_c in (350, 25):
        path = out / f"abs_{anneal_c}.csv"
        args = ["sim", "measure", "absorption", "--anneal-c", str(anneal_c)]
        assert main([*args, "--seed", "0", "--quiet", "--out", str(path)]) == 0
        paths[anneal_c] = path
    return paths


def _load(path):
    return np.loadtxt(path, delimiter=",", skiprows=1).T


def test_simulated_fused_film_has_no_exciton_and_the_bulk_gap(simulated, capsys):
    import json

    from labctl.cli import main

    wl, a = _load(simulated[350])
    peaks = uvvis.find_exciton_peaks(wl, a)
    assert peaks.heavy_hole is None and peaks.light_hole is None
    assert uvvis.tauc_gap(wl, a).gap_ev == pytest.approx(1.70, abs=0.05)
    capsys.readouterr()
    assert main(["analyze", "absorption", str(simulated[350]), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["peaks"]["hh"] is None and r["peaks"]["lh"] is None
    assert uvvis.FEATURELESS_WARNING in r["warnings"]
    assert not any("Tauc gap assumes" in w for w in r["warnings"])
    assert r["tauc"]["gap_eV"] == pytest.approx(1.70, abs=0.05)
    assert main(["analyze", "absorption", str(simulated[350])]) == 0
    text = capsys.readouterr().out
    assert "featureless" in text and "heavy-hole exciton:" not in text


def test_simulated_as_made_film_keeps_its_excitons(simulated, capsys, tmp_path):
    import json

    from labctl.cli import main

    wl, a = _load(simulated[25])
    peaks = uvvis.find_exciton_peaks(wl, a)
    assert peaks.heavy_hole.wavelength_nm == pytest.approx(512.0, abs=1.0)
    assert peaks.light_hole.wavelength_nm == pytest.approx(480.0, abs=2.0)
    assert peaks.heavy_hole.kind == "maximum"
    capsys.readouterr()
    png = tmp_path / "abs25.png"
    assert main(["analyze", "absorption", str(simulated[25]), "--json", "--plot", str(png)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["peaks"]["hh"]["wavelength_nm"] == pytest.approx(512.0, abs=1.0)
    assert r["peaks"]["lh"]["wavelength_nm"] == pytest.approx(480.0, abs=2.0)
    assert r["tauc"] is not None  # still computed ...
    assert any("Tauc gap assumes" in w for w in r["warnings"])  # ... but flagged
    assert png.stat().st_size > 0


def test_broadened_excitons_of_a_coupled_film_are_still_found():
    """Lines 30 meV broader (closer platelets) show best at a coarser smoothing scale."""
    a, lh_nm = excitonic_film(530.0, np.random.default_rng(4), hh_fwhm_ev=0.070, lh_fwhm_ev=0.105)
    peaks = uvvis.find_exciton_peaks(SPEC_WL, a)
    assert abs(peaks.heavy_hole.wavelength_nm - 530.0) < 0.5
    assert abs(peaks.light_hole.wavelength_nm - lh_nm) < 1.5
