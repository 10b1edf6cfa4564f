"""Where the pump stage is parked: an uncertainty in N that no averaging removes.

Rule: a THz-TDS at a fixed pump delay measures Δσ ∝ g(t_pump), the OPTP transient
at the delay where the stage actually sits. That delay is uncertain by the OPTP
peak-finding (the stage is parked relative to a found peak) and by the stage's
repeatability (one move for the whole run), so N (and any other carrier density
the fit gives) carries the relative uncertainty

    σ_N / N = |d ln g / dt| · √(σ_peak² + σ_stage²)

the same in every sweep of a run. An error from the sweeps' scatter shrinks as
1/√n and leaves it out: on the simulated table N pulls against the nominal
truth grew to 1.3 at 8 sweeps and 1.6 at 40 (issue 16). Added in quadrature to
the fit's N error (the fit's own error is kept as ``N_m3_err_fit``).

Figures (simulated table, realistic noise, 300 °C film): peak-finding 5–6 fs sd
over seeds; stage repeatability 1 µm (6.67 fs double pass); d ln g/dt ≈ −0.7/ps
0.2 ps after the OPTP peak (the fast decay) — ≈ 0.6 % rms in N.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

#: sd of the OPTP peak found by ``procedures.alignment.find_optp_peak`` (measured, fs)
PEAK_FINDING_SD_FS = 5.5
#: pump-stage repeatability as double-pass delay: 1 µm → 6.67 fs (stage specification)
STAGE_REPEATABILITY_FS = 6.67
#: d ln g/dt at the paper's TDS delay (0.2 ps after the OPTP peak) when no decay fit
#: of the run gives it: the simulated 300 °C film's transient (per ps)
DEFAULT_LOG_SLOPE_PER_PS = -0.7
#: carrier densities a fit may report, each scaled by g(t_pump)
DENSITY_KEYS = ("N_m3", "N_X_m3")


def parking_delay_sd_ps(
    peak_sd_fs: float = PEAK_FINDING_SD_FS, stage_sd_fs: float = STAGE_REPEATABILITY_FS
) -> float:
    """Total sd (ps) of the pump delay actually reached relative to the intended one."""
    return 1e-3 * math.hypot(peak_sd_fs, stage_sd_fs)


def log_slope_per_ps(transient: Callable, delay_ps: float, step_ps: float = 0.02) -> float:
    """d ln g/dt (per ps) of a transient ``transient(delays) → g`` at ``delay_ps``
    (central difference); the default when g is not positive there."""
    g = np.asarray(transient(np.array([delay_ps - step_ps, delay_ps + step_ps])), float)
    if not (np.all(np.isfinite(g)) and np.all(g > 0)):
        return DEFAULT_LOG_SLOPE_PER_PS
    return float((math.log(g[1]) - math.log(g[0])) / (2 * step_ps))


def density_rel_sd(log_slope: float, delay_sd_ps: float) -> float:
    """σ_N/N from the parking: |d ln g/dt| · σ_t."""
    return abs(float(log_slope)) * float(delay_sd_ps)


def with_parking_uncertainty(fit: dict, rel_sd: float) -> dict:
    """``fit`` (a ``FitResult.to_dict()``) with each density's error including the
    parking's ``rel_sd`` in quadrature; the fit's own error kept as ``KEY_err_fit`` and
    the parking's as ``KEY_err_parking``. Idempotent (starts from ``_err_fit``)."""
    out = dict(fit)
    for key in DENSITY_KEYS:
        value, err = out.get(key), out.get(f"{key}_err_fit", out.get(f"{key}_err"))
        if value is None or err is None or not math.isfinite(value):
            continue
        parking = abs(value) * float(rel_sd)
        out[f"{key}_err_fit"] = err
        out[f"{key}_err_parking"] = parking
        out[f"{key}_err"] = math.hypot(err, parking) if math.isfinite(err) else err
    return out
