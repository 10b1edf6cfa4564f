"""UV-Vis absorption: absorbance, heavy-/light-hole exciton peaks, Tauc gap.

Exciton peaks: candidates are minima of the (Savitzky-Golay) second derivative
d²A/dλ², which marks both true maxima and shoulders (the LH exciton often is one).
The heavy-hole (HH) exciton is the longest-wavelength candidate whose curvature
exceeds ``min_curvature_fraction`` of the strongest one; the light-hole (LH) exciton
is the most curved candidate 0.08–0.30 eV above it (at least
``lh_min_curvature_fraction`` of the strongest; LH lines are broader and weaker). Each position is refined to sub-nm by a
least-squares fit of a Gaussian plus a linear background to the raw absorbance within
±``fit_half_width_nm`` (clipped halfway to the neighbouring peak); its 1σ error comes
from that fit.

Tauc (direct gap): y = (αhν)² vs hν, α ∝ A (the film thickness only scales y).
The linear region is chosen explicitly and returned: from where y first exceeds
``low_fraction`` to where it first exceeds ``high_fraction`` of max(y) in the energy
range searched (``max_ev`` caps it, e.g. below an exciton), or ``fit_range_ev`` if given.
Eg = −intercept/slope of the straight-line fit there.
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


def _uniform(wl, a, step=None):
    """Sort, drop NaN and resample onto a uniform grid (if not already uniform)."""
    order = np.argsort(wl)
    wl, a = np.asarray(wl, float)[order], np.asarray(a, float)[order]
    ok = np.isfinite(a)
    wl, a = wl[ok], a[ok]
    steps = np.diff(wl)
    if steps.size and np.ptp(steps) <= 1e-3 * np.median(steps):
        return wl, a
    step = step or float(np.median(steps))
    grid = np.arange(wl[0], wl[-1] + 0.5 * step, step)
    return grid, np.interp(grid, wl, a)


@dataclass
class Peak:
    wavelength_nm: float
    wavelength_nm_err: float
    energy_ev: float
    energy_ev_err: float
    absorbance: float
    kind: str  # "maximum" or "shoulder"

    def to_dict(self) -> dict:
        return {
            "wavelength_nm": self.wavelength_nm,
            "wavelength_nm_err": self.wavelength_nm_err,
            "energy_eV": self.energy_ev,
            "energy_eV_err": self.energy_ev_err,
            "absorbance": self.absorbance,
            "kind": self.kind,
        }


@dataclass
class ExcitonPeaks:
    heavy_hole: Peak | None
    light_hole: Peak | None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "hh": self.heavy_hole.to_dict() if self.heavy_hole else None,
            "lh": self.light_hole.to_dict() if self.light_hole else None,
            "warnings": list(self.warnings),
        }


def _refine(wl, a, center, half_width):
    """Gaussian + linear background fit around ``center``; returns (λ0, err, height)."""
    from scipy.optimize import curve_fit

    sel = np.abs(wl - center) <= half_width
    x, y = wl[sel], a[sel]
    if x.size < 6:
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
    err = float(np.sqrt(cov[1, 1])) if np.isfinite(cov[1, 1]) else math.inf
    return float(p[1]), err, float(f(p[1], *p))


def find_exciton_peaks(
    wavelength_nm,
    absorbance_values,
    *,
    search_nm: tuple[float, float] = (400.0, 700.0),
    smooth_nm: float = 6.0,
    fit_half_width_nm: float = 10.0,
    min_curvature_fraction: float = 0.15,
    lh_min_curvature_fraction: float = 0.03,
    lh_offset_ev: tuple[float, float] = (0.08, 0.30),
) -> ExcitonPeaks:
    """Heavy-hole and light-hole exciton positions (nm, eV) with sub-nm precision."""
    from scipy.signal import find_peaks, savgol_filter

    wl, a = _uniform(wavelength_nm, absorbance_values)
    sel = (wl >= search_nm[0]) & (wl <= search_nm[1])
    wl, a = wl[sel], a[sel]
    if wl.size < 20:
        raise AnalysisError(
            f"fewer than 20 valid points between {search_nm[0]} and {search_nm[1]} nm"
        )
    step = float(wl[1] - wl[0])
    win = max(5, int(round(smooth_nm / step)) | 1)
    d2 = savgol_filter(a, win, 3, deriv=2, delta=step)
    curv = -d2
    idx, props = find_peaks(curv, height=0.0)
    warnings: list[str] = []
    if idx.size == 0:
        return ExcitonPeaks(None, None, ["no exciton feature (no negative curvature) found"])
    strongest = float(curv[idx].max())
    strong = idx[curv[idx] >= min_curvature_fraction * strongest]
    hh_i = int(strong.max())  # longest wavelength
    e_hh = HC_EV_NM / wl[hh_i]
    lh_i = None
    de = HC_EV_NM / wl[idx] - e_hh
    cand = idx[
        (de >= lh_offset_ev[0])
        & (de <= lh_offset_ev[1])
        & (curv[idx] >= lh_min_curvature_fraction * strongest)
    ]
    if cand.size:
        lh_i = int(cand[np.argmax(curv[cand])])

    def make(i, other):
        center = float(wl[i])
        hw = fit_half_width_nm
        if other is not None:
            hw = min(hw, abs(center - float(wl[other])) * 0.6)
        lo, hi = max(0, i - 2), min(a.size, i + 3)
        kind = "maximum" if a[i] >= a[lo:hi].max() - 1e-12 else "shoulder"
        try:
            x0, err, height = _refine(wl, a, center, hw)
        except (RuntimeError, ValueError) as exc:
            warnings.append(
                f"peak near {center:.1f} nm: refinement failed ({exc}); grid value used"
            )
            x0, err, height = center, step / 2, float(a[i])
        e = HC_EV_NM / x0
        return Peak(x0, err, e, e * err / x0, height, kind)

    hh = make(hh_i, lh_i)
    lh = make(lh_i, hh_i) if lh_i is not None else None
    if lh is None:
        warnings.append("no light-hole exciton found 0.08–0.30 eV above the heavy-hole one")
    return ExcitonPeaks(hh, lh, warnings)


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
    e = HC_EV_NM / wl[ok]
    alpha = a[ok] * (math.log(10) / thickness_m if thickness_m else 1.0)
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
