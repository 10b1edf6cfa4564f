"""THz-TDS → Δσ(ω): conventions, exact round trip, noise estimate."""

import numpy as np
import pytest

from labctl import paper
from labctl.analysis import models, tds
from labctl.errors import AnalysisError
from labctl.simulators import synthetic

D = 100e-9
N_SUB = 1.95


def photoconductivity_in_window(*fields, **kw):
    """Δσ(ω) of the test film (D, N_SUB) in the 0.3–2.2 THz window."""
    kw = {"thickness_m": D, "substrate_index": N_SUB, "fmin_hz": 0.3e12, "fmax_hz": 2.2e12} | kw
    return tds.photoconductivity(*fields, **kw)


F = np.linspace(0.2e12, 2.5e12, 50)


def test_drude_is_positive_real_and_imaginary():
    s = models.drude(F, 50e-15, 5e21)
    assert np.all(s.real > 0) and np.all(s.imag > 0)


def test_drude_smith_negative_c_gives_negative_imaginary_at_low_frequency():
    s = models.drude_smith(F, 44e-15, -0.87, 8.35e21)
    assert np.all(s.real > 0)
    assert s.imag[0] < 0
    assert np.all(models.drude_smith(F, 44e-15, 0.0, 8.35e21).imag > 0)


def test_lorentz_far_above_window_has_negative_imaginary_growing_with_frequency():
    s = models.lorentz(F, 5e21, 36e12, 5e12)
    assert np.all(s.imag < 0)
    assert np.all(np.diff(-s.imag) > 0)
    assert np.all(s.real > 0)


def test_spectrum_uses_physics_convention_for_a_delay():
    t = np.arange(0, 25, 0.05)
    f, e1 = tds.spectrum(t, synthetic.thz_pulse(t, 5.0))
    _, e2 = tds.spectrum(t, synthetic.thz_pulse(t, 6.0))
    band = (f > 0.3e12) & (f < 2.5e12)
    # E(t − Δ) ↔ E(ω)·e^{+iωΔ} when E(ω) = ∫E(t)e^{+iωt}dt
    expected = np.exp(1j * 2 * np.pi * f[band] * 1e-12)
    np.testing.assert_allclose(e2[band] / e1[band], expected, atol=1e-6)


@pytest.mark.parametrize("temperature", sorted(paper.TABLE2))
def test_exact_round_trip_recovers_table2_conductivity(temperature):
    p = paper.TABLE2[temperature]
    data = synthetic.synthetic_tds(tau_fs=p["tau_fs"], c=p["c"], n_m3=p["N_m3"])
    spec = photoconductivity_in_window(
        data.time_ps,
        data.e_ref,
        data.delta_e,
    )
    truth = models.drude_smith(spec.freq_hz, p["tau_fs"] * 1e-15, p["c"], p["N_m3"])
    np.testing.assert_allclose(spec.sigma, truth, rtol=1e-8)
    # the small-signal form is off by about |ΔE/E| (1e-4–1e-3), not more
    small = photoconductivity_in_window(
        data.time_ps,
        data.e_ref,
        data.delta_e,
        method="small-signal",
    )
    rel = np.abs(small.sigma - truth) / np.abs(truth)
    assert 1e-6 < rel.max() < 1e-2


def test_causal_response_has_no_delta_e_before_the_pulse():
    # slow Drude response (τ = 1 ps) makes any acausal precursor obvious
    def sigma(f):
        return models.drude(f, 1e-12, 2e21)

    data = synthetic.synthetic_tds(sigma, pulse_center_ps=8.0)
    onset = np.argmax(np.abs(data.e_ref) > 1e-3 * np.abs(data.e_ref).max())
    assert np.abs(data.delta_e[:onset]).max() < 1e-3 * np.abs(data.delta_e).max()
    # the opposite (numpy) convention would put the response before the pulse
    flipped = synthetic.transmit_film(
        data.time_ps, data.e_ref, lambda f: np.conj(sigma(f)), D, N_SUB
    )
    de_flipped = flipped - data.e_ref
    assert np.abs(de_flipped[:onset]).max() > 0.05 * np.abs(de_flipped).max()


def test_baseline_noise_estimate_matches_actual_scatter():
    rng = np.random.default_rng(7)
    clean = synthetic.synthetic_tds()
    spectra = []
    errs = []
    for _ in range(40):
        de = clean.delta_e + 3e-6 * rng.standard_normal(clean.delta_e.size)
        s = photoconductivity_in_window(
            clean.time_ps,
            clean.e_ref,
            de,
        )
        spectra.append(s.sigma)
        errs.append(s.sigma_err)
        assert s.noise_source == "baseline"
    spectra = np.array(spectra)
    actual = np.sqrt((spectra.real.var(axis=0) + spectra.imag.var(axis=0)) / 2)
    ratio = np.mean(errs, axis=0) / actual
    assert 0.8 < np.median(ratio) < 1.25


def test_noise_from_repeated_sweeps():
    data = synthetic.synthetic_tds(n_sweeps=8, noise_de=5e-6, rng=3)
    s = photoconductivity_in_window(
        data.time_ps,
        data.e_ref,
        data.delta_e,
    )
    assert s.noise_source == "sweep-scatter" and s.n_sweeps == 8
    assert s.sweep_sigma.shape == (8, s.freq_hz.size)
    b = photoconductivity_in_window(
        data.time_ps,
        data.e_ref,
        data.delta_e,
        noise="baseline",
    )
    # both estimate the noise of the 8-sweep average; agree within sampling scatter
    assert 0.6 < np.median(s.sigma_err / b.sigma_err) < 1.6


def test_window_and_padding_keep_the_spectrum_close():
    data = synthetic.synthetic_tds(pulse_center_ps=8.0)
    s = photoconductivity_in_window(
        data.time_ps,
        data.e_ref,
        data.delta_e,
        window=("tukey", 0.3),
        pad_factor=2,
    )
    truth = models.drude_smith(s.freq_hz, 44e-15, -0.87, 8.35e21)
    assert s.points_per_independent == 2
    assert np.max(np.abs(s.sigma - truth) / np.abs(truth)) < 0.02


def test_bad_inputs_raise_analysis_error():
    t = np.arange(0, 10, 0.05)
    with pytest.raises(AnalysisError, match="no frequency points"):
        tds.photoconductivity(
            t,
            synthetic.thz_pulse(t),
            t * 0,
            thickness_m=D,
            substrate_index=N_SUB,
            fmin_hz=50e12,
            fmax_hz=60e12,
        )
    with pytest.raises(AnalysisError, match="equally spaced"):
        tt = t.copy()
        tt[10] += 0.02
        tds.photoconductivity(
            tt, synthetic.thz_pulse(tt), tt * 0, thickness_m=D, substrate_index=N_SUB
        )


# ---------------------------------------------------------------- data-quality checks


def _echo_scan(echo_amplitude=0.1, echo_delay_ps=13.0, noise=3e-6, rng=0):
    """A scan whose reference carries a delayed replica (substrate echo) that crossed the
    excited film twice in the pumped scan, as in `labctl sim measure tds --t-stop-ps 25`."""
    t = np.arange(0, 30, 0.05)

    def sig(f):
        return models.drude_smith(f, 44e-15, -0.87, 8.35e21)

    main = synthetic.thz_pulse(t, 3.0)
    echo = echo_amplitude * synthetic.thz_pulse(t, 3.0 + echo_delay_ps)
    pumped = synthetic.transmit_film(t, main, sig) + synthetic.transmit_film(
        t, synthetic.transmit_film(t, echo, sig), sig
    )
    de = pumped - (main + echo) + noise * np.random.default_rng(rng).standard_normal(t.size)
    return t, main + echo, de


def test_echo_in_reference_is_detected_and_reported_not_removed():
    t, ref, de = _echo_scan()
    s = photoconductivity_in_window(t, ref, de)
    assert s.echo is not None and s.echo.delay_ps == pytest.approx(13.0, abs=0.06)
    assert s.echo.relative_amplitude == pytest.approx(0.1, rel=0.2)
    # leading edge of the echo: 10 % onset of the main pulse (≈ 2.6 ps) + 13 ps
    assert 15.0 < s.echo.arrival_ps < 16.0
    (w,) = [w for w in s.warnings if "replica" in w]
    assert "13.00 ps" in w and "truncate the scan before t ≈ 15." in w
    assert s.freq_hz.size == photoconductivity_in_window(t, ref, de, check_echo=False).freq_hz.size
    # a clean scan of the same length, and a weaker echo below 3 %: no warning
    clean = synthetic.synthetic_tds(noise_de=3e-6, rng=0, duration_ps=30)
    s = photoconductivity_in_window(clean.time_ps, clean.e_ref, clean.delta_e)
    assert s.echo is None and s.warnings == []
    assert tds.detect_echo(*_echo_scan(echo_amplitude=0.01)[:2]) is None


def test_no_usable_signal_is_refused():
    t = np.arange(0, 25, 0.05)
    ref = synthetic.thz_pulse(t)
    with pytest.raises(AnalysisError, match="dE is zero everywhere"):
        photoconductivity_in_window(t, ref, t * 0)
    for seed in range(5):  # pure noise: no photoconductivity at all
        noise = 1e-6 * np.random.default_rng(seed).standard_normal(t.size)
        with pytest.raises(AnalysisError, match="no usable signal.*baseline noise"):
            photoconductivity_in_window(t, ref, noise)
    # a weak but real signal (raw peak 4σ, 8σ after low-passing to the band) passes
    data = synthetic.synthetic_tds(n_m3=1e20, noise_de=1e-6, rng=3)
    assert photoconductivity_in_window(data.time_ps, data.e_ref, data.delta_e).freq_hz.size > 30


def test_frequencies_without_reference_field_are_dropped():
    data = synthetic.synthetic_tds(noise_de=3e-6, rng=0)
    s = photoconductivity_in_window(data.time_ps, data.e_ref, data.delta_e, fmax_hz=5e12)
    lo, hi = s.usable_band_hz
    assert 2.5e12 < hi < 4e12 and lo < 0.3e12
    assert s.freq_hz.max() <= hi and s.n_dropped_low_ref > 10
    ref_w = tds.spectrum(data.time_ps, data.e_ref)[1]
    assert np.all(np.abs(s.e_ref) >= 0.01 * np.abs(ref_w[1:]).max())
    assert any(f"dropped {s.n_dropped_low_ref} of" in w for w in s.warnings)
    with pytest.raises(AnalysisError, match=r"usable band is 0\.\d\d–3\.\d\d THz"):
        photoconductivity_in_window(
            data.time_ps, data.e_ref, data.delta_e, fmin_hz=5e12, fmax_hz=8e12
        )


@pytest.mark.parametrize("pad", [0.5, 17, np.inf, np.nan])
def test_bad_pad_factor_and_window_are_analysis_errors(pad):
    data = synthetic.synthetic_tds(noise_de=3e-6, rng=0)
    args = (data.time_ps, data.e_ref, data.delta_e)
    with pytest.raises(AnalysisError, match="between 1 and 16"):
        photoconductivity_in_window(*args, pad_factor=pad)
    with pytest.raises(AnalysisError, match="valid names: hann"):
        photoconductivity_in_window(*args, window="nosuch")
    with pytest.raises(AnalysisError, match="kaiser"):
        photoconductivity_in_window(*args, window="kaiser")  # needs its β
    assert photoconductivity_in_window(*args, pad_factor=16).points_per_independent == 16
