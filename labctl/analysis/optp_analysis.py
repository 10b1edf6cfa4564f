"""One OPTP analysis for every front end: sweeps → mean trace → decay fit → peak → per photon.

``labctl analyze optp``, the OPTP procedure's run results (after every sweep), the
series report and the GUI all call :func:`analyze_optp`. Its rules:

- The trace is the mean of the sweeps; its error is :func:`pooled_error` (one value for
  every point: a per-point scatter from a few sweeps is too uncertain to weight a fit,
  and the lock-in's lag has opposite signs in forward and backward sweeps).
- The decay is n exponentials ⊗ a Gaussian instrument response plus a step for what
  outlives the scan (:func:`labctl.analysis.optp.fit_decay`, ``with_offset``); the OPTP
  peak is the fitted curve's maximum (every point contributes), else the spline vertex
  of the points around the largest. Its value's error is that of a quadratic through
  the top (:func:`labctl.analysis.optp.optp_peak`).
- Per absorbed photon, thickness-free: N_abs = F·A/(hν) absorbed photons per m² of
  film, the peak −ΔE/E per N_abs (m²) and the yield-mobility product
  φμ = (1 + n)/(Z₀ e)·(−ΔE/E)/N_abs (cm²/Vs). A per-volume density would divide by a
  thickness the OPTP never measured and fold its error into the comparison of films.
- Significance first (:mod:`labctl.analysis.optp_significance`): a peak that does not
  stand above the noise (one-sided, look-elsewhere corrected, p ≤ 1e-3) is reported as
  ``significant: false`` with the peak value, its per-photon value and φμ null (what was
  measured kept under ``peak_of_noise``) and a warning — never noise as a measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from labctl.errors import AnalysisError

from .constants import DEFAULT_SUBSTRATE_INDEX, PUMP_PHOTON_ENERGY_EV
from .optp import (
    DecayFit,
    absorbed_photon_density,
    fit_decay,
    optp_peak,
    yield_mobility_cm2_vs,
)
from .optp_significance import PeakSignificance, not_significant_warning, optp_peak_significance
from .peaks import spline_vertex

#: the fitted maximum is searched within this many ps of the trace's largest point
PEAK_SEARCH_PS = 0.5


def pooled_error(signal: np.ndarray) -> np.ndarray | None:
    """Standard error of the mean trace of ``signal`` (sweeps × points), pooled over the points.

    One value for every point: the sweep-to-sweep scatter of a single point, from a
    few sweeps, is itself too uncertain to weight a fit by, and part of it is not
    random (the lock-in's residual lag has opposite signs in forward and backward
    sweeps, largest on the steep rise). Weighting by it leaves the rise out of the fit
    and puts the peak up to 27 fs early; equal weights do not. None below 3 sweeps.
    """
    signal = np.atleast_2d(signal)
    n = signal.shape[0]
    if n < 3:
        return None
    rms = math.sqrt(float(np.mean(np.var(signal, axis=0, ddof=1)))) / math.sqrt(n)
    return np.full(signal.shape[1], rms) if rms > 0 else None


@dataclass
class OPTPAnalysis:
    """What one OPTP analysis concluded; :meth:`to_dict` is what every front end shows."""

    pump_delay_ps: np.ndarray
    mean: np.ndarray
    error: np.ndarray | None
    n_sweeps: int
    peak_delay_ps: float
    peak: float
    peak_err: float | None
    peak_method: str
    decay: DecayFit | None
    decay_error: str | None
    fluence_j_m2: float | None
    absorptance: float | None
    absorbed_photons_m2: float | None
    substrate_index: float
    warnings: list[str] = field(default_factory=list)
    test: PeakSignificance | None = None

    @property
    def significant(self) -> bool | None:
        return None if self.test is None else self.test.significant

    def per_absorbed_photon_m2(self, value: float | None) -> float | None:
        if value is None or not self.absorbed_photons_m2:
            return None
        return value / self.absorbed_photons_m2

    def to_dict(self) -> dict:
        per = self.per_absorbed_photon_m2
        peak = {
            "pump_delay_ps": self.peak_delay_ps,
            "minus_dE_over_E": self.peak,
            "minus_dE_over_E_err": self.peak_err,
            "per_absorbed_photon_m2": per(self.peak),
            "per_absorbed_photon_m2_err": per(self.peak_err),
            "method": self.peak_method,
            "sweeps": self.n_sweeps,
        }
        phi_mu = phi_mu_err = None
        if self.absorbed_photons_m2:
            n_abs = self.absorbed_photons_m2
            phi_mu = float(yield_mobility_cm2_vs(self.peak, n_abs, self.substrate_index))
            if self.peak_err is not None:
                phi_mu_err = float(
                    yield_mobility_cm2_vs(self.peak_err, n_abs, self.substrate_index)
                )
        noise_peak = None
        if self.significant is False:  # noise is not a measurement: keep it, named as such
            noise_peak = {
                "minus_dE_over_E": peak["minus_dE_over_E"],
                "minus_dE_over_E_err": peak["minus_dE_over_E_err"],
                "phi_mu_cm2_Vs": phi_mu,
                "z": self.test.z,
            }
            for k in ("minus_dE_over_E", "minus_dE_over_E_err"):
                peak[k] = None
            for k in ("per_absorbed_photon_m2", "per_absorbed_photon_m2_err"):
                peak[k] = None
            phi_mu = phi_mu_err = None
        peak["significant"] = self.significant
        return {
            "optp_peak": peak,
            "significant": self.significant,
            **({} if self.test is None else self.test.to_dict()),
            "peak_of_noise": noise_peak,
            "fluence_uj_cm2": None if self.fluence_j_m2 is None else self.fluence_j_m2 * 1e2,
            "absorptance": self.absorptance,
            "absorbed_photons_m2": self.absorbed_photons_m2,
            "phi_mu_cm2_Vs": phi_mu,
            "phi_mu_cm2_Vs_err": phi_mu_err,
            "decay": None if self.decay is None else self.decay.to_dict(),
            "decay_error": self.decay_error,
            "n_sweeps": self.n_sweeps,
            "warnings": list(self.warnings)
            + ([] if self.decay is None else list(self.decay.warnings)),
        }


def analyze_optp(
    pump_delay_ps,
    signal,
    signal_err=None,
    *,
    fluence_j_m2: float | None = None,
    absorptance: float | None = None,
    photon_energy_ev: float = PUMP_PHOTON_ENERGY_EV,
    substrate_index: float = DEFAULT_SUBSTRATE_INDEX,
    n_exp: int = 2,
    irf_fwhm_ps: float | None = None,
    fit: bool = True,
    initial_lifetimes_ps=None,
) -> OPTPAnalysis:
    """Analyse an OPTP measurement: ``signal`` −ΔE/E, (n,) one trace or (n_sweeps, n)
    sweeps on ``pump_delay_ps``; ``signal_err`` (n,) for one trace if known. A decay
    fit that fails is reported in ``decay_error`` (the peak stands without it)."""
    t = np.asarray(pump_delay_ps, float)
    sweeps = np.atleast_2d(np.asarray(signal, float))
    if sweeps.shape[-1] != t.size:
        raise AnalysisError(f"shapes differ: pump delay {t.shape}, signal {sweeps.shape}")
    n = sweeps.shape[0]
    mean = sweeps.mean(axis=0)
    err = pooled_error(sweeps) if n > 1 else None
    if err is None and signal_err is not None:
        err = np.asarray(signal_err, float)
    warnings: list[str] = []
    decay = None
    decay_error = None
    if fit:
        try:
            decay = fit_decay(
                t,
                mean,
                err,
                n_exp=n_exp,
                irf_fwhm_ps=irf_fwhm_ps,
                with_offset=True,  # what outlives the scan (a step ⊗ IRF), not a bias on τ
                initial_lifetimes_ps=initial_lifetimes_ps,
            )
        except (AnalysisError, ValueError, RuntimeError) as exc:
            decay_error = str(exc)
    top = optp_peak(t, mean, err)
    i = int(np.argmax(mean))
    if decay is not None:
        near = float(t[i])
        at, value = decay.peak(max(t[0], near - PEAK_SEARCH_PS), min(t[-1], near + PEAK_SEARCH_PS))
        method = "maximum of the fitted decay"
    else:
        try:
            at = spline_vertex(t, mean)
        except AnalysisError:
            at = float(t[i])
        value = float(mean[i])
        method = "spline vertex of the mean trace"
    test = optp_peak_significance(t, sweeps, signal_err if n == 1 else None)
    if test.significant is False:
        warnings.append(not_significant_warning(test))
    elif test.significant is None:
        warnings.append(
            "OPTP peak significance not assessable: one trace without errors and too few "
            "pre-pump points for a noise estimate"
        )
    n_abs = None
    if fluence_j_m2 is not None and absorptance:
        n_abs = float(absorbed_photon_density(fluence_j_m2, absorptance, photon_energy_ev))
    elif fluence_j_m2 is not None:
        warnings.append(
            "no absorptance: N_abs, the peak per absorbed photon and φμ are not computed"
        )
    return OPTPAnalysis(
        pump_delay_ps=t,
        mean=mean,
        error=err,
        n_sweeps=n,
        peak_delay_ps=float(at),
        peak=float(value),
        peak_err=float(top.value_err) if top.value_err is not None else None,
        peak_method=method,
        decay=decay,
        decay_error=decay_error,
        fluence_j_m2=fluence_j_m2,
        absorptance=absorptance,
        absorbed_photons_m2=n_abs,
        substrate_index=substrate_index,
        warnings=warnings,
        test=test,
    )


def absorptance_from(absorptance: float | None, absorbance: float | None) -> float | None:
    """The film's absorptance at the pump: given, or 1 − 10^(−A) from its absorbance."""
    if absorptance is not None:
        return float(absorptance)
    if absorbance is not None:
        return 1.0 - 10.0 ** (-float(absorbance))
    return None
