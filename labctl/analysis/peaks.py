"""Peak positions of sampled traces, for alignment scans.

Three estimators of increasing robustness to asymmetric peaks:

* :func:`parabolic_peak` — three-point parabola through the maximum sample (the
  THz peak: a smooth, nearly symmetric top);
* :func:`spline_vertex` — maximum of a cubic spline through the points around the
  maximum (the OPTP rise: asymmetric, a parabola would be biased);
* :func:`quartic_peak` — maximum of a least-squares quartic over a fine scan (a
  fine, noisy trace: the fit averages the noise of every point).
"""

from __future__ import annotations

import numpy as np

from labctl.errors import AnalysisError


def _xy(x, y, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:
        raise AnalysisError(f"peak: x and y must be 1-D of one length, got {x.shape}, {y.shape}")
    if x.size < minimum:
        raise AnalysisError(f"peak: {x.size} points, need at least {minimum}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise AnalysisError("peak: the trace holds NaN or inf")
    if np.any(np.diff(x) <= 0):
        raise AnalysisError("peak: x must be strictly increasing")
    return x, y


def parabolic_peak(x, y) -> float:
    """Vertex of the parabola through the maximum and its two neighbours (equal spacing).

    At an end of the trace, or on a flat top, the position of the maximum sample.
    """
    x, y = _xy(x, y, 1)
    i = int(np.argmax(y))
    if 0 < i < len(y) - 1:
        denom = y[i - 1] - 2 * y[i] + y[i + 1]
        if denom < 0:
            return float(x[i] + 0.5 * (x[1] - x[0]) * (y[i - 1] - y[i + 1]) / denom)
    return float(x[i])


def spline_vertex(x, y, half_width: int = 6) -> float:
    """Maximum of a cubic spline through ``2·half_width + 1`` points around the maximum."""
    from scipy.interpolate import CubicSpline

    x, y = _xy(x, y, 4)
    i = int(np.argmax(y))
    lo, hi = max(0, i - half_width), min(len(y), i + half_width + 1)
    if hi - lo < 4:
        return parabolic_peak(x, y)
    spline = CubicSpline(x[lo:hi], y[lo:hi])
    fine = np.linspace(x[max(lo, i - 1)], x[min(hi - 1, i + 1)], 401)
    return float(fine[int(np.argmax(spline(fine)))])


def quartic_peak(x, y, centre: float, half_range: float) -> float:
    """Maximum of a least-squares quartic in ``x − centre`` within ``centre ± half_range``."""
    x, y = _xy(x, y, 6)
    poly = np.polyfit(x - centre, y, 4)
    grid = np.linspace(-half_range, half_range, 2001)
    return float(centre + grid[int(np.argmax(np.polyval(poly, grid)))])
