"""Optical-pump THz-probe (OPTP): signal, absorbed photon density, decay fits, peak.

The OPTP signal is −ΔE/E at the THz peak versus pump delay. For a thin film,
sheet photoconductivity ΔS = (1 + n)/Z₀·(E/E_pumped − 1) ≈ (1 + n)/Z₀·(−ΔE/E), and
ΔS/(e·N_abs) = φμ (quantum yield × mobility) with N_abs absorbed photons per area.

N_abs = F·A/(hν): fluence F (J/m²), film absorptance A at the pump wavelength, photon
energy hν (3.10 eV at 400 nm); 1 µJ/cm² = 2.01e12 photons/cm².

Decay model (pump delay t, instrument response a Gaussian of standard deviation s):
    S(t) = Σᵢ Aᵢ/2·exp(s²/(2τᵢ²) − (t−t₀)/τᵢ)·erfc((s²/τᵢ − (t−t₀))/(√2 s))
           [+ A∞/2·erfc(−(t−t₀)/(√2 s))]
the exact convolution of a step-started multi-exponential with the Gaussian, evaluated
with erfcx where the exponential would overflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import erfc, erfcx

from labctl.errors import AnalysisError

from .constants import DEFAULT_SUBSTRATE_INDEX, E_CHARGE, EV_J, PUMP_PHOTON_ENERGY_EV, Z0_OHM

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: Longer traces are fitted as averages of consecutive points (bins), so a fit's
#: cost stays bounded; delay stages give a few hundred to a few thousand points.
MAX_FIT_POINTS = 5000


def bin_trace(t, y, err=None, max_points: int = MAX_FIT_POINTS):
    """Average consecutive points of a long trace down to at most ``max_points``.

    Returns ``(t, y, err, k)`` with ``k`` points per bin (1: unchanged); a bin's error
    is √(Σσ²)/k. The last bin may hold fewer points. Linear in the trace length.
    """
    t = np.asarray(t, float)
    y = np.asarray(y, float)
    n = t.size
    k = max(1, math.ceil(n / max_points))
    if k == 1:
        return t, y, (None if err is None else np.asarray(err, float)), 1
    edges = np.arange(0, n, k)
    counts = np.diff(np.append(edges, n))

    def mean(v):
        return np.add.reduceat(v, edges) / counts

    err_b = None
    if err is not None:
        err_b = np.sqrt(np.add.reduceat(np.asarray(err, float) ** 2, edges)) / counts
    return mean(t), mean(y), err_b, k


def fluence_j_m2(
    pump_power_w: float, rep_rate_hz: float, spot_diameter_m: float, profile: str = "flat-top"
) -> float:
    """Pump fluence (J/m²) from average power, repetition rate and spot diameter.

    ``profile="flat-top"``: diameter of a uniform disc; ``"gaussian"``: FWHM diameter of a
    Gaussian beam, giving its peak fluence (effective area π d²/(4 ln 2)).
    """
    if min(pump_power_w, rep_rate_hz, spot_diameter_m) <= 0:
        raise AnalysisError("pump power, repetition rate and spot size must be positive")
    pulse_energy = pump_power_w / rep_rate_hz
    if profile == "flat-top":
        area = math.pi * spot_diameter_m**2 / 4.0
    elif profile == "gaussian":
        area = math.pi * spot_diameter_m**2 / (4.0 * math.log(2.0))
    else:
        raise AnalysisError(f"unknown beam profile {profile!r} (flat-top or gaussian)")
    return pulse_energy / area


def absorbed_photon_density(
    fluence_j_m2: float, absorptance: float, photon_energy_ev: float = PUMP_PHOTON_ENERGY_EV
) -> float:
    """Absorbed photons per m², N_abs = F·A/(hν)."""
    if not 0 < absorptance <= 1:
        raise AnalysisError(f"absorptance must be in (0, 1], got {absorptance}")
    return fluence_j_m2 * absorptance / (photon_energy_ev * EV_J)


def minus_de_over_e(e_ref_peak, de_peak) -> np.ndarray:
    """OPTP signal −ΔE/E at the THz peak."""
    return -np.asarray(de_peak, float) / np.asarray(e_ref_peak, float)


def yield_mobility_cm2_vs(
    minus_de_over_e_value,
    n_abs_per_m2: float,
    substrate_index: float = DEFAULT_SUBSTRATE_INDEX,
):
    """φμ (cm²/Vs) from −ΔE/E and absorbed photons per m² (exact thin-film sheet form)."""
    x = np.asarray(minus_de_over_e_value, float)
    sheet_s = (1 + substrate_index) / Z0_OHM * x / (1 - x)  # E/E_p − 1 = x/(1 − x)
    return sheet_s / (E_CHARGE * n_abs_per_m2) * 1e4


# ---------------------------------------------------------------- decay model


def _exp_conv(x, s, tau):
    """exp(s²/2τ² − x/τ)·erfc((s/τ − x/s)/√2)/2, numerically safe."""
    b = (s / tau - x / s) / math.sqrt(2.0)
    with np.errstate(over="ignore", under="ignore"):
        safe = np.exp(-(x**2) / (2 * s * s)) * erfcx(np.maximum(b, 0.0))
        direct = np.exp(s * s / (2 * tau * tau) - x / tau) * erfc(np.minimum(b, 0.0))
    return 0.5 * np.where(b > 0, safe, direct)


def decay_model(
    pump_delay_ps,
    t0_ps: float,
    irf_fwhm_ps: float,
    amplitudes,
    lifetimes_ps,
    offset: float = 0.0,
):
    """Multi-exponential decay started at t0 convolved with a Gaussian IRF (FWHM)."""
    x = np.asarray(pump_delay_ps, float) - t0_ps
    s = irf_fwhm_ps / FWHM_PER_SIGMA
    out = np.zeros_like(x)
    for a, tau in zip(amplitudes, lifetimes_ps, strict=True):
        out += a * _exp_conv(x, s, tau)
    if offset:
        out += offset * 0.5 * erfc(-x / (math.sqrt(2.0) * s))
    return out


@dataclass
class DecayFit:
    """OPTP decay fit: values and 1σ errors (covariance scaled as in ``fitting``)."""

    t0_ps: float
    t0_ps_err: float
    irf_fwhm_ps: float
    irf_fwhm_ps_err: float
    amplitudes: list[float]
    amplitudes_err: list[float]
    lifetimes_ps: list[float]
    lifetimes_ps_err: list[float]
    offset: float
    offset_err: float
    chi2_red: float
    covariance: np.ndarray
    warnings: list[str] = field(default_factory=list)

    def evaluate(self, pump_delay_ps):
        return decay_model(
            pump_delay_ps,
            self.t0_ps,
            self.irf_fwhm_ps,
            self.amplitudes,
            self.lifetimes_ps,
            self.offset,
        )

    def to_dict(self) -> dict:
        def fin(v):
            return float(v) if np.isfinite(v) else None

        return {
            "t0_ps": self.t0_ps,
            "t0_ps_err": fin(self.t0_ps_err),
            "irf_fwhm_ps": self.irf_fwhm_ps,
            "irf_fwhm_ps_err": fin(self.irf_fwhm_ps_err),
            "amplitudes": self.amplitudes,
            "amplitudes_err": [fin(e) for e in self.amplitudes_err],
            "lifetimes_ps": self.lifetimes_ps,
            "lifetimes_ps_err": [fin(e) for e in self.lifetimes_ps_err],
            "offset": self.offset,
            "offset_err": fin(self.offset_err),
            "chi2_red": self.chi2_red,
            "warnings": list(self.warnings),
        }


def fit_decay(
    pump_delay_ps,
    signal,
    signal_err=None,
    *,
    n_exp: int = 2,
    irf_fwhm_ps: float | None = None,
    with_offset: bool = False,
    initial_lifetimes_ps=None,
) -> DecayFit:
    """Fit ``n_exp`` exponentials ⊗ Gaussian IRF to an OPTP trace.

    ``irf_fwhm_ps`` fixes the IRF width (else fitted, start 0.3 ps). Lifetimes are
    returned sorted ascending. Traces longer than :data:`MAX_FIT_POINTS` are fitted as
    bins of consecutive points (:func:`bin_trace`; a warning says so). Covariance: absolute if ``signal_err`` given (inflated by
    max(1, χ²_red)), else scaled by χ²_red.
    """
    from scipy.optimize import least_squares

    from .fitting import covariance_from_jacobian

    t, y, err_in, per_bin = bin_trace(pump_delay_ps, signal, signal_err)
    absolute = err_in is not None
    err = err_in if absolute else np.ones_like(y)
    n_par = 2 + 2 * n_exp + int(with_offset)
    if t.size <= n_par + 1:
        raise AnalysisError(f"{t.size} points are too few for a {n_exp}-exponential decay fit")
    peak = float(np.max(y))
    if peak <= 0:
        raise AnalysisError("OPTP trace has no positive signal to fit")
    i_peak = int(np.argmax(y))
    span = float(t[-1] - t[i_peak]) or 1.0
    taus = (
        list(initial_lifetimes_ps)
        if initial_lifetimes_ps is not None
        else list(span * np.geomspace(0.05, 0.5, n_exp))
    )
    fwhm0 = irf_fwhm_ps or 0.3
    p0 = [float(t[i_peak]) - fwhm0, fwhm0] + [peak / n_exp] * n_exp + taus
    lo = [t[0] - span, 1e-3] + [-np.inf] * n_exp + [1e-3] * n_exp
    hi = [t[-1], 10 * span] + [np.inf] * n_exp + [1e3 * span] * n_exp
    if with_offset:
        p0.append(0.0)
        lo.append(-np.inf)
        hi.append(np.inf)
    fixed_irf = irf_fwhm_ps is not None

    def unpack(p):
        p = list(p)
        if fixed_irf:
            p.insert(1, irf_fwhm_ps)
        amps = p[2 : 2 + n_exp]
        lts = p[2 + n_exp : 2 + 2 * n_exp]
        off = p[2 + 2 * n_exp] if with_offset else 0.0
        return p[0], p[1], amps, lts, off

    def strip(v):
        v = list(v)
        if fixed_irf:
            del v[1]
        return np.array(v, float)

    def resid(p):
        return (decay_model(t, *unpack(p)) - y) / err

    p0a, loa, hia = strip(p0), strip(lo), strip(hi)
    p0a = np.clip(p0a, loa + 1e-9, hia - 1e-9)
    res = least_squares(resid, p0a, bounds=(loa, hia), x_scale="jac", max_nfev=2000)
    r = res.fun
    dof = max(1, r.size - p0a.size)
    chi2_red = float(r @ r) / dof
    scale = max(1.0, chi2_red) if absolute else chi2_red
    cov = covariance_from_jacobian(res.jac) * scale
    perr = np.sqrt(np.abs(np.diag(cov)))
    t0, fwhm, amps, lts, off = unpack(res.x)
    e = list(perr)
    if fixed_irf:
        e.insert(1, 0.0)
    e_amps = e[2 : 2 + n_exp]
    e_lts = e[2 + n_exp : 2 + 2 * n_exp]
    e_off = e[2 + 2 * n_exp] if with_offset else 0.0
    order = np.argsort(lts)
    warnings = []
    if per_bin > 1:
        t_all = np.asarray(pump_delay_ps, float)
        first = np.arange(0, t_all.size, per_bin)
        last = np.minimum(first + per_bin - 1, t_all.size - 1)
        widest = float(np.max(t_all[last] - t_all[first]))
        warnings.append(
            f"{np.size(pump_delay_ps)} points fitted as {t.size} averages of {per_bin} "
            f"consecutive points (bins up to {widest:.3g} ps wide)"
        )
        if widest > 0.2 * fwhm:
            warnings.append(
                f"the bins are not narrow against the IRF ({fwhm:.3g} ps FWHM): "
                "the rise is blurred; fit fewer, less dense points"
            )
    if not res.success:
        warnings.append(f"decay fit did not converge: {res.message}")
    for k in order:
        if not np.isfinite(e_lts[k]) or e_lts[k] > lts[k]:
            warnings.append(f"lifetime {lts[k]:.3g} ps is not constrained by the data")
        if lts[k] > 3 * (t[-1] - t[0]):
            warnings.append(f"lifetime {lts[k]:.3g} ps is much longer than the scan")
    return DecayFit(
        t0_ps=float(t0),
        t0_ps_err=float(e[0]),
        irf_fwhm_ps=float(fwhm),
        irf_fwhm_ps_err=float(e[1]),
        amplitudes=[float(amps[k]) for k in order],
        amplitudes_err=[float(e_amps[k]) for k in order],
        lifetimes_ps=[float(lts[k]) for k in order],
        lifetimes_ps_err=[float(e_lts[k]) for k in order],
        offset=float(off),
        offset_err=float(e_off),
        chi2_red=chi2_red,
        covariance=cov,
        warnings=warnings,
    )


@dataclass
class OPTPPeak:
    pump_delay_ps: float
    value: float
    value_err: float


def optp_peak(pump_delay_ps, signal, signal_err=None, half_width_points: int = 3) -> OPTPPeak:
    """Peak of an OPTP trace from a quadratic fit to the 2·half_width+1 points around the
    maximum. Error: from ``signal_err`` if given, else from the fit residuals (or, with
    too few points for that, the point-to-point scatter of the trace)."""
    t = np.asarray(pump_delay_ps, float)
    y = np.asarray(signal, float)
    i = int(np.argmax(y))
    lo, hi = max(0, i - half_width_points), min(t.size, i + half_width_points + 1)
    tt, yy = t[lo:hi], y[lo:hi]
    scatter = float(np.std(np.diff(y)) / math.sqrt(2)) if y.size > 2 else 0.0
    if tt.size < 3:
        return OPTPPeak(float(t[i]), float(y[i]), scatter)
    x0 = t[i]
    if signal_err is not None:
        w = 1.0 / np.asarray(signal_err, float)[lo:hi]
    else:
        w = np.ones_like(yy)
    coef, cov = np.polyfit(tt - x0, yy, 2, w=w, cov="unscaled")
    a, b, c = coef
    if a >= 0:  # not a maximum (flat or kinked top): take the sample
        err = float(signal_err[i]) if signal_err is not None else scatter
        return OPTPPeak(float(x0), float(y[i]), err)
    xp = float(np.clip(-b / (2 * a), tt[0] - x0, tt[-1] - x0))
    val = a * xp**2 + b * xp + c
    g = np.array([xp**2, xp, 1.0])
    var = float(g @ cov @ g)
    if signal_err is None:
        resid = yy - np.polyval(coef, tt - x0)
        dof = tt.size - 3
        s2 = float(resid @ resid) / dof if dof > 0 else scatter**2
        s2 = max(s2, scatter**2) if dof < 3 else s2
        var *= s2
    return OPTPPeak(float(x0 + xp), float(val), math.sqrt(max(var, 0.0)))
