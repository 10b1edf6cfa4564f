"""Is there an OPTP peak at all? A one-sided test of the largest −ΔE/E against its noise.

Rule: the OPTP peak is significant when the largest point of the mean trace stands above
zero by more than its noise allows anywhere in the scan: z = max(−ΔE/E) / σ_mean, one-sided
(a photoexcited film's −ΔE is positive), p from Student's t with the noise estimate's
degrees of freedom (a σ from few points has heavy tails), multiplied by the number of
points searched (Bonferroni: the maximum of M noise points is searched, not one chosen in
advance). Significant when p ≤ :data:`SIGNIFICANCE_P`, half the goal
:data:`FALSE_POSITIVE_RATE`: on independent points the correction is exact, not
conservative (white nulls at p ≤ 1e-3 came out 1.0–1.15e-3 over 20 000 trials). Why: on a real table's
detector floor (docs/physics.md "Noise floor") a cool film's trace is noise, and its
largest point — or a decay fitted to it — is a number that measures nothing.

σ_mean, in order of preference:

1. sweep-to-sweep scatter (≥ 2 sweeps): the standard error of the mean trace pooled over
   the points (many degrees of freedom; lag and drift only inflate it — conservative);
2. the scatter of the pre-pump baseline (one trace): points more than
   :data:`BASELINE_GAP_PS` before the largest, at least :data:`MIN_BASELINE_POINTS`;
3. a given per-point error; else the test is not assessable (``significant`` None).

False-positive rate measured on simulated nulls in ``benchmarks/optp_significance.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: the goal: nulls declared significant at most this often (issue 16)
FALSE_POSITIVE_RATE = 1e-3
#: p-value (after the look-elsewhere factor) at or below which a peak is significant
SIGNIFICANCE_P = 0.5 * FALSE_POSITIVE_RATE
#: baseline points end this long before the largest point (the rise is ~0.3 ps)
BASELINE_GAP_PS = 1.0
#: fewest pre-pump points whose scatter is a noise estimate
MIN_BASELINE_POINTS = 5


@dataclass(frozen=True)
class PeakSignificance:
    """The test's outcome: ``significant`` None when no noise estimate exists."""

    significant: bool | None
    z: float | None
    p_value: float | None
    noise: float | None
    noise_source: str | None
    n_points: int
    dof: float | None = None

    def to_dict(self) -> dict:
        return {
            "significant": self.significant,
            "peak_z": self.z,
            "peak_p_value": self.p_value,
            "peak_noise": self.noise,
            "peak_noise_source": self.noise_source,
        }


def sweep_scatter_sem(sweeps: np.ndarray) -> tuple[float, int] | None:
    """Standard error of the mean trace from the sweep-to-sweep scatter, pooled over the
    points, and its degrees of freedom; None below 2 sweeps or for zero scatter."""
    sweeps = np.atleast_2d(np.asarray(sweeps, float))
    n = sweeps.shape[0]
    if n < 2:
        return None
    var = np.nanvar(sweeps, axis=0, ddof=1)
    var = var[np.isfinite(var)]
    if not var.size:
        return None
    sem = math.sqrt(float(np.mean(var))) / math.sqrt(n)
    return (sem, var.size * (n - 1)) if sem > 0 and math.isfinite(sem) else None


def baseline_sd(pump_delay_ps: np.ndarray, trace: np.ndarray) -> tuple[float, int] | None:
    """Scatter of one trace's pre-pump points (before the largest by BASELINE_GAP_PS) and
    its degrees of freedom."""
    t = np.asarray(pump_delay_ps, float)
    y = np.asarray(trace, float)
    before = y[t < t[int(np.nanargmax(y))] - BASELINE_GAP_PS]
    before = before[np.isfinite(before)]
    if before.size < MIN_BASELINE_POINTS:
        return None
    sd = float(np.std(before, ddof=1))
    return (sd, before.size - 1) if sd > 0 else None


def optp_peak_significance(
    pump_delay_ps, sweeps, point_err=None, *, alpha: float = SIGNIFICANCE_P
) -> PeakSignificance:
    """Test the largest point of the mean of ``sweeps`` (n_sweeps × n, or one trace)."""
    sweeps = np.atleast_2d(np.asarray(sweeps, float))
    mean = np.nanmean(sweeps, axis=0)
    m = int(np.isfinite(mean).sum())
    estimate, source = sweep_scatter_sem(sweeps), "sweep scatter"
    if estimate is None:
        estimate, source = baseline_sd(pump_delay_ps, mean), "pre-pump baseline"
    if estimate is None and point_err is not None:
        err = np.asarray(point_err, float)
        err = err[np.isfinite(err) & (err > 0)]
        if err.size:
            estimate, source = (float(np.median(err)), math.inf), "given point errors"
    if estimate is None or m == 0:
        return PeakSignificance(None, None, None, None, None, m)
    noise, dof = estimate
    z = float(np.nanmax(mean)) / noise
    one_point = stats.norm.sf(z) if math.isinf(dof) else stats.t.sf(z, dof)
    p = min(1.0, m * float(one_point))
    return PeakSignificance(p <= alpha, z, p, noise, source, m, float(dof))


def not_significant_warning(test: PeakSignificance, where: str = "OPTP peak") -> str:
    """The one line every front end shows for a peak that is noise."""
    return (
        f"{where} not significant: largest −ΔE/E is {test.z:.2g}σ above zero "
        f"(p = {test.p_value:.2g} over {test.n_points} points, noise {test.noise:.2g} from "
        f"{test.noise_source}); peak value and φμ are not reported"
    )
