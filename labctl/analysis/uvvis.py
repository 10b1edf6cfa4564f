"""UV-Vis absorption: absorbance, heavy-/light-hole exciton peaks, Tauc gap.

Exciton peaks. An exciton is a *local*, statistically significant feature, not
merely the most curved point of the spectrum (a smooth, bulk-like edge is curved
everywhere, and noise adds wiggles to it).

1. The spectrum is put on a grid smooth in pixel index (a spectrometer's polynomial
   wavelength calibration is kept as it is, so its pixel noise stays white;
   irregular grids are resampled). Curvatures d²A/dλ² come from cubic
   Savitzky-Golay filters.
2. Local noise: the absorbance noise varies strongly with wavelength (the lamp is weak
   in the blue, the sample dark where it absorbs), so one global figure is wrong.
   σ_A(λ) is the running RMS (±``noise_half_window_nm``) of the residual from a
   5-point cubic smooth (nearly free of signal), corrected for the part of the noise
   that smooth follows (:func:`local_noise`); a curvature's noise is σ_A(λ) times the
   second-derivative filter's noise gain ‖c‖/h² (``scipy.signal.savgol_coeffs``).
3. Candidates, at smoothing widths ``smooth_nm``·``scales`` (narrow lines show best at
   the finest, lines broadened by inter-platelet coupling at coarser ones): maxima of
   the negative curvature (true maxima and shoulders alike) whose significance
   z = −d²A/dλ² / σ_curv reaches ``min_significance`` (HH) or ``lh_min_significance``
   (LH, searched in a narrow window: fewer chances of a false alarm).
4. Each candidate is fitted by a Gaussian plus a linear background on the raw
   absorbance within ±max(``fit_half_width_nm``, 1.25·width) (clipped to 0.6 of the
   distance to the neighbouring candidate) and kept only if it is a local line:
   amplitude ≥ ``min_amp_significance``·σ_amp; width σ ≤ ``max_width_fraction`` of the
   half-window (on a featureless edge the Gaussian only takes up the edge's gentle
   curvature and grows as wide as the window); the Gaussian fits better than a cubic
   by Δχ² ≥ ``min_feature_chi2`` (in units of the local σ_A²); and the curvature is
   convex on *both* flanks (a line, even a shoulder, has them; the knee of a band
   edge at Eg stays concave on its high-energy side).
5. HH: the longest-wavelength kept line whose amplitude is at least
   ``min_amplitude_fraction`` of the strongest; LH: the strongest kept line
   0.08–0.30 eV above it. Positions and 1σ errors come from the fit (refitted
   within 0.6 of the HH–LH distance); "maximum" vs "shoulder" is judged on the
   smoothed spectrum around the fitted position, not on single noisy points.

No kept line: ``heavy_hole=None, light_hole=None`` and :data:`FEATURELESS_WARNING`.

Tauc (direct gap): y = (αhν)² vs hν, α ∝ A (the film thickness only scales y).
The linear region is chosen explicitly and returned: from where y first exceeds
``low_fraction`` to where it first exceeds ``high_fraction`` of max(y) in the energy
range searched (``max_ev`` caps it, e.g. below an exciton), or ``fit_range_ev`` if given.
Eg = −intercept/slope of the straight-line fit there. For an excitonic film the Tauc
model (band-to-band absorption) does not hold: see :func:`excitonic_tauc_warning`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from labctl.errors import AnalysisError

from .constants import HC_EV_NM


def absorbance(sample, reference, dark=None) -> np.ndarray:
    """A = −log10((S − D)/(R − D)); NaN where S − D ≤ 0 or R − D ≤ 0 (no valid value)."""
    s = np.asarray(sample, float)
    r = np.asarray(reference, float)
    d = 0.0 if dark is None else np.asarray(dark, float)
    num, den = s - d, r - d
    ok = (num > 0) & (den > 0)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    out[ok] = -np.log10(num[ok] / den[ok])
    return out


FEATURELESS_WARNING = "no exciton feature: the absorption edge is featureless (bulk-like)"


#: Finest wavelength step analysed (nm). Denser spectra are averaged in bins of
#: consecutive points first: excitons are nm wide and spectrometer pixels ≥ 0.02 nm,
#: and the filter windows (in points) would otherwise grow with the points per nm.
MIN_STEP_NM = 0.05


def _average_consecutive(wl: np.ndarray, a: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Means of ``k`` consecutive points (the last, partial bin dropped if < k/2 points)."""
    n_full = wl.size // k
    wl_b = wl[: n_full * k].reshape(n_full, k).mean(axis=1)
    a_b = a[: n_full * k].reshape(n_full, k).mean(axis=1)
    rest = wl.size - n_full * k
    if rest >= max(1, k // 2):
        wl_b = np.append(wl_b, wl[n_full * k :].mean())
        a_b = np.append(a_b, a[n_full * k :].mean())
    return wl_b, a_b


def _grid(wl, a):
    """Sorted finite points on a grid smooth in index; returns (λ, A, local step h, resampled).

    Spectra sampled more finely than :data:`MIN_STEP_NM` are first averaged in bins of
    consecutive points (noise stays white, each bin's σ drops as 1/√k). A grid whose
    wavelengths follow a cubic in pixel index to within 5 % of a step (a spectrometer's
    calibration, rounded values included) is kept, with h = dλ/di from that cubic;
    anything else is resampled uniformly (linear interpolation, which correlates
    neighbouring points' noise: the significances are then approximate).
    """
    order = np.argsort(wl)
    wl, a = np.asarray(wl, float)[order], np.asarray(a, float)[order]
    ok = np.isfinite(a) & np.isfinite(wl)
    wl, a = wl[ok], a[ok]
    if wl.size and wl[0] <= 0:
        raise AnalysisError(f"wavelengths must be positive, got {wl[0]:g} nm")
    if wl.size < 8:
        return wl, a, np.ones_like(wl), False
    mean_step = float(wl[-1] - wl[0]) / (wl.size - 1)
    if mean_step < MIN_STEP_NM:
        k = math.ceil(MIN_STEP_NM / mean_step) if mean_step > 0 else wl.size
        if wl.size // k >= 8:
            wl, a = _average_consecutive(wl, a, k)
    steps = np.diff(wl)
    med = float(np.median(steps))
    i = np.arange(wl.size, dtype=float)
    if med > 0 and np.all(steps > 0):
        half_span = (wl.size - 1) / 2.0
        u = (i - half_span) / half_span
        coef = np.polynomial.polynomial.polyfit(u, wl, 3)
        if np.max(np.abs(np.polynomial.polynomial.polyval(u, coef) - wl)) <= 0.05 * med:
            dcoef = np.polynomial.polynomial.polyder(coef)
            h = np.polynomial.polynomial.polyval(u, dcoef) / half_span
            return wl, a, h, False
    if not med > 0:  # many repeated wavelengths
        med = float(wl[-1] - wl[0]) / (wl.size - 1)
        if not med > 0:
            raise AnalysisError("all wavelengths are equal")
    grid = np.arange(wl[0], wl[-1] + 0.5 * med, med)
    return grid, np.interp(grid, wl, a), np.full(grid.size, med), True


def _running_mean(x: np.ndarray, half: int) -> np.ndarray:
    """Mean over ±half points (fewer at the ends), from a cumulative sum: O(n) for any
    window (a convolution's cost grew with the points per window)."""
    n = x.size
    csum = np.concatenate(([0.0], np.cumsum(x, dtype=float)))
    i = np.arange(n)
    lo = np.maximum(i - half, 0)
    hi = np.minimum(i + half + 1, n)
    return (csum[hi] - csum[lo]) / (hi - lo)


def local_noise(
    wavelength_nm, absorbance_values, *, half_window_nm: float = 15.0
) -> tuple[np.ndarray, np.ndarray]:
    """Point-to-point absorbance noise σ_A(λ): (wavelengths, σ) on the analysis grid.

    Running RMS (±``half_window_nm``) of the residual from a 5-point cubic
    Savitzky-Golay smooth, divided by √(1 − c₀) (c₀ its centre coefficient: the part
    of white noise the smooth itself follows). A cubic over 5 points follows any real
    band (nm wide) to ~10⁻⁵, so the residual is noise.
    """
    wl, a, h, _ = _grid(wavelength_nm, absorbance_values)
    return wl, _local_sigma(a, h, half_window_nm)


def _local_sigma(a, h, half_window_nm):
    from scipy.signal import savgol_coeffs, savgol_filter

    if a.size < 5:
        raise AnalysisError("fewer than 5 valid points: no noise estimate")
    resid = a - savgol_filter(a, 5, 3)
    c0 = float(savgol_coeffs(5, 3)[2])
    half = max(2, int(round(half_window_nm / float(np.median(h)))))
    sigma = np.sqrt(_running_mean(resid**2, half) / (1.0 - c0))
    return np.maximum(sigma, 1e-12)


@dataclass
class Peak:
    wavelength_nm: float
    wavelength_nm_err: float
    energy_ev: float
    energy_ev_err: float
    absorbance: float
    kind: str  # "maximum" or "shoulder"
    significance: float = math.nan  #: −d²A/dλ² over its local noise
    width_nm: float = math.nan  #: Gaussian σ of the refinement
    amplitude: float = math.nan  #: Gaussian amplitude above the local linear background
    amplitude_err: float = math.nan

    def to_dict(self) -> dict:
        return {
            "wavelength_nm": self.wavelength_nm,
            "wavelength_nm_err": self.wavelength_nm_err,
            "energy_eV": self.energy_ev,
            "energy_eV_err": self.energy_ev_err,
            "absorbance": self.absorbance,
            "kind": self.kind,
            "significance": self.significance,
            "width_nm": self.width_nm,
            "amplitude": self.amplitude,
            "amplitude_err": self.amplitude_err,
        }


@dataclass
class ExcitonPeaks:
    heavy_hole: Peak | None
    light_hole: Peak | None
    warnings: list[str] = field(default_factory=list)

    @property
    def excitonic(self) -> bool:
        return self.heavy_hole is not None

    def to_dict(self) -> dict:
        return {
            "hh": self.heavy_hole.to_dict() if self.heavy_hole else None,
            "lh": self.light_hole.to_dict() if self.light_hole else None,
            "warnings": list(self.warnings),
        }


@dataclass
class _Fit:
    x0: float
    x0_err: float
    height: float
    amp: float
    amp_err: float
    width: float
    half_width: float
    feature_chi2: float = math.nan  #: (χ²_cubic − χ²_Gaussian)/σ² in the window


def _refine(wl, a, center, half_width, sigma=None) -> _Fit:
    """Gaussian + linear background fit to the raw absorbance within ±half_width.

    With the local noise ``sigma`` also the evidence for a local feature,
    Δχ² = (χ²_cubic − χ²_Gaussian)/σ²: a smooth edge is fitted as well by a cubic.
    """
    from scipy.optimize import curve_fit

    sel = np.abs(wl - center) <= half_width
    x, y = wl[sel], a[sel]
    if x.size < 8:
        raise RuntimeError("too few points")

    def f(x, amp, x0, w, b0, b1):
        return amp * np.exp(-0.5 * ((x - x0) / w) ** 2) + b0 + b1 * (x - center)

    b1 = (y[-1] - y[0]) / (x[-1] - x[0])
    b0 = min(y[0], y[-1])
    amp = float(np.interp(center, x, y) - b0)
    p0 = [max(amp, 1e-6), center, half_width / 2.5, b0, b1]
    bounds = (
        [0, center - half_width / 2, 0.2, -np.inf, -np.inf],
        [np.inf, center + half_width / 2, 2 * half_width, np.inf, np.inf],
    )
    p, cov = curve_fit(f, x, y, p0=p0, bounds=bounds, maxfev=5000)
    var = np.diag(cov)
    err = float(np.sqrt(var[1])) if np.isfinite(var[1]) else math.inf
    amp_err = float(np.sqrt(var[0])) if np.isfinite(var[0]) else math.inf
    dchi2 = math.nan
    if sigma is not None:
        chi2_gauss = float(np.sum((y - f(x, *p)) ** 2))
        cubic = np.polynomial.polynomial.polyfit(x - center, y, 3)
        chi2_cubic = float(np.sum((y - np.polynomial.polynomial.polyval(x - center, cubic)) ** 2))
        dchi2 = (chi2_cubic - chi2_gauss) / float(np.mean(sigma[sel] ** 2))
    return _Fit(
        float(p[1]),
        err,
        float(f(p[1], *p)),
        float(p[0]),
        amp_err,
        float(p[2]),
        half_width,
        dchi2,
    )


@dataclass
class _Feature:
    index: int  #: grid index of the curvature maximum
    significance: float  #: curvature / its noise, at the detection scale
    smooth_nm: float  #: detection scale
    fit: _Fit


def _has_both_flanks(wl, a, h, sigma_a, fit: _Fit) -> bool:
    """A line, even a shoulder, is convex on both flanks of its concave core.

    The curvature is taken with a window matched to the fitted width σ (2σ) at the
    core and at x0 ± √3σ (where a Gaussian's d²/dx² peaks positive); both flanks must be
    convex by min(1.5, 0.15·z_core) standard errors. The knee of a band edge (and a
    step) stays concave on its high-energy side.
    """
    from scipy.signal import savgol_coeffs, savgol_filter

    step = float(np.median(h))
    win = max(5, int(round(2.0 * fit.width / step)) | 1)
    if win > a.size:
        return False
    gain = float(np.sqrt(np.sum(savgol_coeffs(win, 3, deriv=2) ** 2)))
    z = -savgol_filter(a, win, 3, deriv=2) / (sigma_a * gain)
    at = [
        int(np.argmin(np.abs(wl - x)))
        for x in (fit.x0, fit.x0 - 1.732 * fit.width, fit.x0 + 1.732 * fit.width)
    ]
    core, left, right = (float(z[j]) for j in at)
    if core <= 0 or min(at[1], a.size - 1 - at[2]) < win // 2:
        return False
    threshold = -min(1.5, 0.15 * core)
    return left <= threshold and right <= threshold


def _features(wl, a, h, sigma_a, in_search, smooth_nm, half_width_nm, z_min, tests):
    """Significant, local curvature features at one smoothing scale."""
    from scipy.signal import find_peaks, savgol_coeffs, savgol_filter

    step = float(np.median(h))
    win = max(5, int(round(smooth_nm / step)) | 1)
    if win > a.size:
        return []
    curv = -savgol_filter(a, win, 3, deriv=2) / h**2
    gain = float(np.sqrt(np.sum(savgol_coeffs(win, 3, deriv=2) ** 2)))
    z = curv / (sigma_a * gain / h**2)
    # noise splits a strong curvature peak: keep the highest within one window;
    # stay away from the data ends, where the filter extrapolates
    idx, _ = find_peaks(curv, height=0.0, distance=win)
    idx = idx[in_search[idx] & (idx >= win // 2) & (idx < a.size - win // 2) & (z[idx] >= z_min)]
    out = []
    for i in idx:
        others = idx[idx != i]
        hw = half_width_nm
        if others.size:  # halfway to the neighbouring candidate (with some overlap)
            hw = min(hw, 0.6 * float(np.min(np.abs(wl[others] - wl[i]))))
        try:
            fit = _refine(wl, a, float(wl[i]), hw, sigma_a)
        except (RuntimeError, ValueError):
            continue
        if tests(fit) and _has_both_flanks(wl, a, h, sigma_a, fit):
            out.append(_Feature(int(i), float(z[i]), smooth_nm, fit))
    return out


def find_exciton_peaks(
    wavelength_nm,
    absorbance_values,
    *,
    search_nm: tuple[float, float] = (400.0, 700.0),
    smooth_nm: float = 6.0,
    scales: tuple[float, ...] = (1.0, 2.0, 4.0),
    fit_half_width_nm: float = 10.0,
    min_amplitude_fraction: float = 0.15,
    lh_min_amplitude_fraction: float = 0.03,
    lh_offset_ev: tuple[float, float] = (0.08, 0.30),
    noise_half_window_nm: float = 15.0,
    min_significance: float = 5.0,
    lh_min_significance: float = 4.0,
    min_amp_significance: float = 5.0,
    min_feature_chi2: float = 25.0,
    max_width_fraction: float = 0.8,
) -> ExcitonPeaks:
    """Heavy-hole and light-hole exciton positions (nm, eV) with sub-nm precision.

    Features are searched at smoothing widths ``smooth_nm``·``scales`` (fit half-windows
    max(``fit_half_width_nm``, 1.25·width)): narrow excitons are best seen at the finest
    scale, excitons broadened by coupling at coarser ones; a coarse-scale feature is
    added only where no finer one lies within its width. Returns
    ``ExcitonPeaks(None, None, [FEATURELESS_WARNING])`` for a featureless edge.
    """
    from scipy.signal import savgol_filter

    wl, a, h, resampled = _grid(wavelength_nm, absorbance_values)
    in_search = (wl >= search_nm[0]) & (wl <= search_nm[1])
    if in_search.sum() < 20:
        raise AnalysisError(
            f"fewer than 20 valid points between {search_nm[0]} and {search_nm[1]} nm"
        )
    widths = [smooth_nm * s for s in scales]
    half_widths = [max(fit_half_width_nm, 1.25 * w) for w in widths]
    # the search range plus a margin (filters, noise and fits need context)
    margin = noise_half_window_nm + max(half_widths) + max(widths)
    keep = (wl >= search_nm[0] - margin) & (wl <= search_nm[1] + margin)
    wl, a, h = wl[keep], a[keep], h[keep]
    in_search = (wl >= search_nm[0]) & (wl <= search_nm[1])
    sigma_a = _local_sigma(a, h, noise_half_window_nm)
    smooth = savgol_filter(a, max(5, int(round(smooth_nm / float(np.median(h)))) | 1), 3)

    def local(fit: _Fit) -> bool:
        return (
            fit.amp >= min_amp_significance * fit.amp_err
            and fit.width <= max_width_fraction * fit.half_width
            and fit.feature_chi2 >= min_feature_chi2
        )

    z_min = min(min_significance, lh_min_significance)
    features: list[_Feature] = []
    for width, hw in zip(widths, half_widths, strict=True):
        for feat in _features(wl, a, h, sigma_a, in_search, width, hw, z_min, local):
            near = [
                f
                for f in features
                if abs(f.fit.x0 - feat.fit.x0) < max(width, 2 * f.fit.width, 2 * feat.fit.width)
            ]
            if not near:
                features.append(feat)

    warnings: list[str] = []
    if resampled:
        warnings.append("irregular wavelength grid resampled: peak significances approximate")
    hh_pool = [f for f in features if f.significance >= min_significance]
    if not hh_pool:
        return ExcitonPeaks(None, None, [*warnings, FEATURELESS_WARNING])
    strongest = max(f.fit.amp for f in hh_pool)
    hh = max(
        (f for f in hh_pool if f.fit.amp >= min_amplitude_fraction * strongest),
        key=lambda f: f.fit.x0,
    )
    e_hh = HC_EV_NM / hh.fit.x0
    lh_pool = [
        f
        for f in features
        if lh_offset_ev[0] <= HC_EV_NM / f.fit.x0 - e_hh <= lh_offset_ev[1]
        and f.fit.amp >= lh_min_amplitude_fraction * strongest
    ]
    lh = max(lh_pool, key=lambda f: f.fit.amp) if lh_pool else None

    def make(feat: _Feature, other: _Feature | None) -> Peak:
        fit = feat.fit
        if other is not None:  # refit, clipped to 0.6 of the distance to the partner
            hw = min(fit.half_width, 0.6 * abs(feat.fit.x0 - other.fit.x0))
            if hw < fit.half_width:
                try:
                    fit = _refine(wl, a, float(wl[feat.index]), hw, sigma_a)
                except (RuntimeError, ValueError):
                    fit = feat.fit
        e = HC_EV_NM / fit.x0
        return Peak(
            fit.x0,
            fit.x0_err,
            e,
            e * fit.x0_err / fit.x0,
            fit.height,
            _kind(wl, smooth, fit),
            significance=feat.significance,
            width_nm=fit.width,
            amplitude=fit.amp,
            amplitude_err=fit.amp_err,
        )

    hh_peak = make(hh, lh)
    lh_peak = make(lh, hh) if lh is not None else None
    if lh_peak is None:
        warnings.append("no light-hole exciton found 0.08–0.30 eV above the heavy-hole one")
    return ExcitonPeaks(hh_peak, lh_peak, warnings)


def _kind(wl, smooth, fit: _Fit) -> str:
    """ "maximum" if the smoothed absorbance peaks inside x0 ± max(σ, 1.5 nm), else "shoulder"."""
    reach = max(fit.width, 1.5)
    sel = np.nonzero(np.abs(wl - fit.x0) <= reach)[0]
    if sel.size < 3:
        return "shoulder"
    j = int(np.argmax(smooth[sel]))
    return "maximum" if 0 < j < sel.size - 1 else "shoulder"


def excitonic_tauc_warning(peaks: ExcitonPeaks) -> str | None:
    """A caveat for the Tauc gap of a film with excitons (None for a bulk-like edge)."""
    if peaks.heavy_hole is None:
        return None
    return (
        f"excitonic absorption (heavy-hole exciton at {peaks.heavy_hole.wavelength_nm:.1f} nm): "
        "the Tauc gap assumes band-to-band absorption and is of little meaning here; "
        "use the exciton energy"
    )


@dataclass
class TaucResult:
    gap_ev: float
    gap_ev_err: float
    fit_range_ev: tuple[float, float]
    slope: float
    intercept: float
    r_squared: float
    n_points: int
    selection: str
    energy_ev: np.ndarray = field(repr=False, default=None)
    tauc_y: np.ndarray = field(repr=False, default=None)

    def to_dict(self) -> dict:
        return {
            "gap_eV": self.gap_ev,
            "gap_eV_err": self.gap_ev_err,
            "gap_nm": HC_EV_NM / self.gap_ev,
            "fit_range_eV": list(self.fit_range_ev),
            "r_squared": self.r_squared,
            "n_points": self.n_points,
            "selection": self.selection,
        }


def tauc_gap(
    wavelength_nm,
    absorbance_values,
    *,
    fit_range_ev: tuple[float, float] | None = None,
    min_ev: float | None = None,
    max_ev: float | None = None,
    low_fraction: float = 0.1,
    high_fraction: float = 0.5,
    thickness_m: float | None = None,
) -> TaucResult:
    """Direct Tauc gap from (αhν)² vs hν; α = ln10·A/d (or A if no thickness)."""
    wl = np.asarray(wavelength_nm, float)
    a = np.asarray(absorbance_values, float)
    ok = np.isfinite(a)
    if np.any(wl[ok] <= 0):
        raise AnalysisError("wavelengths must be positive")
    e = HC_EV_NM / wl[ok]
    # α < 0 (the sample brighter than the reference: noise or a baseline offset) is no
    # absorption; squared it would count as absorption in (αhν)²
    alpha = np.maximum(a[ok], 0.0) * (math.log(10) / thickness_m if thickness_m else 1.0)
    order = np.argsort(e)
    e, alpha = e[order], alpha[order]
    y = (alpha * e) ** 2
    if fit_range_ev is not None:
        lo_e, hi_e = fit_range_ev
        selection = "given"
    else:
        rng = np.ones(e.size, bool)
        if min_ev is not None:
            rng &= e >= min_ev
        if max_ev is not None:
            rng &= e <= max_ev
        if rng.sum() < 5:
            raise AnalysisError("too few points in the Tauc search range")
        er, yr = e[rng], y[rng]
        # light smoothing so a noise spike does not set the levels
        ys = np.convolve(yr, np.ones(5) / 5, mode="same")
        ymax = float(ys[2:-2].max()) if ys.size > 4 else float(ys.max())
        if not ymax > 0:
            raise AnalysisError("no positive absorbance in the Tauc search range")
        i_hi = int(np.argmax(ys >= high_fraction * ymax))
        below = np.nonzero(ys[: i_hi + 1] < low_fraction * ymax)[0]
        i_lo = int(below[-1]) + 1 if below.size else 0
        lo_e, hi_e = float(er[i_lo]), float(er[i_hi])
        selection = (
            f"auto: (αhν)² from {low_fraction:g} to {high_fraction:g} of its maximum "
            f"({ymax:.3g}) in {er[0]:.3f}–{er[-1]:.3f} eV"
        )
    fit = (e >= lo_e) & (e <= hi_e)
    if fit.sum() < 3:
        raise AnalysisError(f"fewer than 3 points in the Tauc fit range {lo_e:.3f}–{hi_e:.3f} eV")
    (slope, intercept), cov = np.polyfit(e[fit], y[fit], 1, cov=True)
    if slope <= 0:
        raise AnalysisError("Tauc plot is not rising in the chosen range")
    gap = -intercept / slope
    g = np.array([intercept / slope**2, -1.0 / slope])
    gap_err = math.sqrt(max(float(g @ cov @ g), 0.0))
    pred = slope * e[fit] + intercept
    ss_res = float(np.sum((y[fit] - pred) ** 2))
    ss_tot = float(np.sum((y[fit] - y[fit].mean()) ** 2)) or 1.0
    return TaucResult(
        gap_ev=float(gap),
        gap_ev_err=gap_err,
        fit_range_ev=(float(lo_e), float(hi_e)),
        slope=float(slope),
        intercept=float(intercept),
        r_squared=1 - ss_res / ss_tot,
        n_points=int(fit.sum()),
        selection=selection,
        energy_ev=e,
        tauc_y=y,
    )
