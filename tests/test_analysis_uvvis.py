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
