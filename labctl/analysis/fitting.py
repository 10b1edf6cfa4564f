"""Complex least-squares fits of conductivity spectra.

Residuals are (model − data)/err with real and imaginary parts stacked. Parameters
are fitted in *fit units* (τ in fs, densities in 1e21 m⁻³, frequencies in THz) for
conditioning. Two paths give the same answer (tested, benchmarked):

- ``method="fast"``: :func:`scipy.optimize.least_squares` with the analytic Jacobian
  of :mod:`labctl.analysis.models` — MINPACK Levenberg-Marquardt, redone with the
  bounded dogbox method if the optimum leaves the bounds — the live fit;
- ``method="lmfit"``: :func:`lmfit.minimize` (Levenberg-Marquardt, ``leastsq``), the
  field's standard, with lmfit's own covariance.

Uncertainties: covariance C = (JᵀJ)⁻¹ of the weighted residuals at the optimum.
With measured noise (``sigma_err`` given) C is in absolute units and is inflated by
max(1, χ²_red) — never shrunk — so an inadequate model or underestimated noise widens
the errors. Without noise (unit weights) C is scaled by χ²_red (lmfit's convention).
If the spectrum was zero-padded, C is further multiplied by the padding factor.
Warnings flag parameters on a bound or not constrained by the data, and (with
measured noise) χ²_red > :data:`CHI2_RED_WARN`. ``success`` is False when the optimiser
did not converge, a parameter sits on a bound, or χ²_red > :data:`CHI2_RED_FAIL`
(``converged`` keeps the optimiser's own verdict).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from labctl.errors import AnalysisError

from .constants import DEFAULT_EFFECTIVE_MASS, E_CHARGE, M_ELECTRON, TWO_PI
from .models import DENSITY_UNIT_M3, FS, MODELS, evaluate_model, get_model, weight_unit

#: limits of a parameter's 1σ error beyond which it counts as "not constrained"
_C_UNCONSTRAINED = 0.5
#: with measured noise: χ²_red above this gets a warning, above the second ``success``
#: is False (the model does not describe the data, or the noise is underestimated)
CHI2_RED_WARN = 5.0
CHI2_RED_FAIL = 100.0
#: with per-frequency (diagonal) errors, χ²_red below this gets a warning
CHI2_RED_LOW = 0.3


@dataclass
class FitResult:
    """Result of a conductivity fit; parameters and covariance in fit units."""

    model: str
    param_names: tuple[str, ...]
    values: dict[str, float]
    errors: dict[str, float]
    covariance: np.ndarray
    chi2: float
    chi2_red: float
    dof: int
    n_freq: int
    fmin_hz: float
    fmax_hz: float
    effective_mass: float
    method: str
    success: bool
    message: str
    nfev: int
    covariance_scale: float
    warnings: list[str] = field(default_factory=list)
    converged: bool = True  # the optimiser's verdict; ``success`` also needs a sane fit
    on_bound: tuple[str, ...] = ()

    # ---- physics views
    def _get(self, name: str, default: float | None = None) -> float | None:
        return self.values.get(name, default)

    @property
    def tau_s(self) -> float | None:
        v = self._get("tau_fs")
        return None if v is None else v * FS

    @property
    def c(self) -> float | None:
        if "c" in self.values:
            return self.values["c"]
        return 0.0 if "tau_fs" in self.values else None

    @property
    def n_m3(self) -> float | None:
        v = self._get("N_1e21")
        return None if v is None else v * DENSITY_UNIT_M3

    def mobility(self) -> tuple[float | None, float | None]:
        """DC mobility μ = eτ(1 + c)/m* and its error (cm²/Vs), covariance of τ and c included."""
        if "tau_fs" not in self.values:
            return None, None
        k = E_CHARGE * FS / (self.effective_mass * M_ELECTRON) * 1e4  # cm²/Vs per fs
        tau = self.values["tau_fs"]
        c = self.c
        mu = k * tau * (1 + c)
        i_tau = self.param_names.index("tau_fs")
        grad = np.zeros(len(self.param_names))
        grad[i_tau] = k * (1 + c)
        if "c" in self.values:
            grad[self.param_names.index("c")] = k * tau
        with np.errstate(invalid="ignore"):  # an unconstrained parameter: infinite variance
            var = float(grad @ self.covariance @ grad)
        return float(mu), (math.sqrt(var) if np.isfinite(var) and var >= 0 else math.inf)

    def evaluate(self, freq_hz) -> np.ndarray:
        """Model σ(f) (S/m) at the fitted parameters."""
        p = [self.values[n] for n in self.param_names]
        return evaluate_model(self.model, freq_hz, p, self.effective_mass)

    def correlation(self) -> np.ndarray:
        d = np.sqrt(np.abs(np.diag(self.covariance)))
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.covariance / np.outer(d, d)

    def to_dict(self) -> dict:
        """Flat JSON-ready dict: SI/lab units, each with ``_err``; None where not applicable."""
        v, e = self.values, self.errors

        def pair(name, key, scale=1.0):
            if key in v:
                return {name: v[key] * scale, f"{name}_err": _finite(e[key] * scale)}
            return {name: None, f"{name}_err": None}

        out: dict = {"model": self.model}
        out |= pair("tau_fs", "tau_fs")
        if "c" in v:
            out |= pair("c", "c")
        elif "tau_fs" in v:
            out |= {"c": 0.0, "c_err": 0.0}
        else:
            out |= {"c": None, "c_err": None}
        out |= pair("N_m3", "N_1e21", DENSITY_UNIT_M3)
        mu, mu_err = self.mobility()
        out |= {"mobility_cm2_Vs": mu, "mobility_cm2_Vs_err": _finite(mu_err)}
        if "chi_bound" in v:
            out |= pair("chi_bound", "chi_bound")
        if "NX_1e21" in v:
            out |= pair("N_X_m3", "NX_1e21", DENSITY_UNIT_M3)
            out |= pair("f0_THz", "f0_THz")
            out |= pair("gamma_THz", "gamma_THz")
        out |= {
            "effective_mass": self.effective_mass,
            "chi2": self.chi2,
            "chi2_red": self.chi2_red,
            "dof": self.dof,
            "n_freq": self.n_freq,
            "fmin_THz": self.fmin_hz / 1e12,
            "fmax_THz": self.fmax_hz / 1e12,
            "fit_method": self.method,
            "covariance_scale": self.covariance_scale,
            "success": self.success,
            "converged": self.converged,
            "warnings": list(self.warnings),
        }
        return out


def _finite(x):
    return None if x is None or not np.isfinite(x) else float(x)


# ---------------------------------------------------------------- initial guess


def initial_guess(
    model: str, freq_hz, sigma, sigma_err=None, effective_mass=DEFAULT_EFFECTIVE_MASS
):
    """Starting parameters (fit units) from a grid over the nonlinear parameters with the
    densities solved by linear least squares at each grid point (variable projection)."""
    m = get_model(model)
    w = TWO_PI * np.asarray(freq_hz, float)
    s = np.asarray(sigma, complex)
    err = np.ones(w.size) if sigma_err is None else np.asarray(sigma_err, float)
    a = weight_unit(effective_mass)
    fmin, fmax = float(np.min(freq_hz)) / 1e12, float(np.max(freq_hz)) / 1e12
    grids = {
        "tau_fs": [10.0, 30.0, 60.0, 120.0, 300.0],
        "c": [-0.97, -0.85, -0.6, -0.3, 0.0],
        "f0_THz": list(np.linspace(fmin, fmax, 5)) + [3 * fmax],
        "gamma_THz": [0.3, 1.0, 3.0],
    }
    nonlin = [i for i in range(len(m.param_names)) if i not in m.linear]
    axes = [grids[m.param_names[i]] for i in nonlin]
    mesh = np.array(np.meshgrid(*axes, indexing="ij")).reshape(len(axes), -1).T
    best, best_cost = None, np.inf
    for point in mesh:
        p = np.ones(len(m.param_names))
        p[nonlin] = point
        # basis: σ for unit density in each linear parameter
        basis = []
        for li in m.linear:
            q = p.copy()
            for lj in m.linear:
                q[lj] = 1.0 if lj == li else 0.0
            basis.append(m.sigma(w, q, a) / err)
        basis = np.array(basis).T
        big = np.vstack([basis.real, basis.imag])
        rhs = np.concatenate([(s / err).real, (s / err).imag])
        amp, *_ = np.linalg.lstsq(big, rhs, rcond=None)
        amp = np.clip(amp, 1e-6, None)
        cost = float(np.sum((big @ amp - rhs) ** 2))
        if cost < best_cost:
            best_cost = cost
            p[list(m.linear)] = amp
            best = p
    return best


# ---------------------------------------------------------------- the fit


def fit_conductivity(
    freq_hz,
    sigma,
    sigma_err=None,
    *,
    model: str = "drude-smith",
    effective_mass: float = DEFAULT_EFFECTIVE_MASS,
    initial: dict[str, float] | np.ndarray | None = None,
    method: str = "fast",
    points_per_independent: float = 1.0,
    max_nfev: int | None = None,
    sigma_sweeps=None,
    sigma_cov=None,
    sweep_cov=None,
    n_sweeps: int | None = None,
) -> FitResult:
    """Fit a conductivity model to Δσ(f).

    Parameters
    ----------
    freq_hz, sigma : frequencies (Hz) and complex Δσ (S/m, physics convention).
    sigma_err : 1σ noise of Re and of Im Δσ per frequency (S/m), or None (unit weights).
    model : ``drude``, ``drude-smith``, ``lorentz`` or ``drude-smith+lorentz``.
    effective_mass : m*/mₑ.
    initial : starting values in fit units (dict by name or array); default from a grid.
    method : ``"fast"`` (least_squares, analytic Jacobian) or ``"lmfit"``.
    points_per_independent : zero-padding factor of the spectrum (inflates the covariance).
    sigma_sweeps : per-sweep Δσ (n_sweeps, F), n ≥ 3: the parameter covariance is the
        scatter of the sweeps propagated through the (linearised) fit — their covariance
        between frequencies included — see :func:`sweep_parameter_covariance`.
    sigma_cov : covariance (2F × 2F) of [Re Δσ, Im Δσ] (a noise model), propagated the same way.
    sweep_cov, n_sweeps : instead of ``sigma_sweeps``, the covariance (2F × 2F, ddof 1) of
        the per-sweep [Re Δσ, Im Δσ] and the number of sweeps (running sums, the live fit):
        the same parameter covariance as ``sigma_sweeps``.
    """
    m = get_model(model)
    f = np.asarray(freq_hz, float)
    s = np.asarray(sigma, complex)
    n_par = len(m.param_names)
    if f.size != s.size:
        raise AnalysisError("frequency and conductivity arrays differ in length")
    if 2 * f.size <= n_par:
        raise AnalysisError(
            f"{f.size} frequency points are too few to fit {n_par} parameters of {model}"
        )
    if not np.all(np.isfinite(s)):
        raise AnalysisError("conductivity spectrum contains NaN or infinite values")
    if sigma_err is None:
        err = np.ones(f.size)
        absolute = False
    else:
        err = np.asarray(sigma_err, float)
        if err.shape != f.shape or not np.all(np.isfinite(err)) or np.any(err <= 0):
            raise AnalysisError("sigma_err must be positive and finite at every frequency")
        absolute = True
    w = TWO_PI * f
    a = weight_unit(effective_mass)
    lo = np.array(m.lower)
    hi = np.array(m.upper)
    if initial is None:
        p0 = initial_guess(model, f, s, err if absolute else None, effective_mass)
    elif isinstance(initial, dict):
        p0 = np.array([initial[n] for n in m.param_names], float)
    else:
        p0 = np.array(initial, float)
    # strictly inside the bounds (TRF requires it)
    span = np.where(np.isfinite(hi - lo), hi - lo, np.abs(p0) + 1.0)
    p0 = np.clip(p0, lo + 1e-6 * span, hi - 1e-6 * span)

    def residuals(p):
        r = (m.sigma(w, p, a) - s) / err
        return np.concatenate([r.real, r.imag])

    def jacobian(p):
        j = m.jacobian(w, p, a) / err[:, None]
        return np.vstack([j.real, j.imag])

    if method == "fast":
        p, cov_raw, nfev, ok, msg = _fit_fast(residuals, jacobian, p0, lo, hi, max_nfev)
    elif method == "lmfit":
        p, cov_raw, nfev, ok, msg = _fit_lmfit(m, residuals, jacobian, p0, lo, hi, max_nfev)
    else:
        raise AnalysisError(f"unknown fit method {method!r} (fast or lmfit)")

    r = residuals(p)
    chi2 = float(r @ r)
    dof = max(1, r.size - n_par)
    chi2_red = chi2 / dof
    scale = max(1.0, chi2_red) if absolute else chi2_red
    correlated = None
    if absolute and sigma_sweeps is not None and np.shape(sigma_sweeps)[0] >= 3:
        correlated = sweep_parameter_covariance(jacobian(p), err, sigma_sweeps, cov_raw)
    elif absolute and sweep_cov is not None and n_sweeps is not None and n_sweeps >= 3:
        scatter_of_mean = np.asarray(sweep_cov, float) / n_sweeps
        correlated = _propagate(jacobian(p), err, cov_raw, scatter_of_mean)
        correlated *= small_sample_factor(n_sweeps)
    elif absolute and sigma_cov is not None:
        correlated = _propagate(jacobian(p), err, cov_raw, np.asarray(sigma_cov, float))
    if correlated is not None:
        cov = correlated * scale
    else:
        scale *= max(1.0, points_per_independent)
        cov = cov_raw * scale
    errs = np.sqrt(np.where(np.diag(cov) >= 0, np.diag(cov), np.inf))
    values = dict(zip(m.param_names, map(float, p), strict=True))
    errors = dict(zip(m.param_names, map(float, errs), strict=True))
    warnings = _warnings(m, p, errs, lo, hi)
    on_bound = tuple(
        name
        for name, v, low, high in zip(m.param_names, p, lo, hi, strict=True)
        if _at_bound(v, low) or _at_bound(v, high)
    )
    if not ok:
        warnings.insert(0, f"fit did not converge: {msg}")
    if absolute and correlated is None and chi2_red < CHI2_RED_LOW and dof >= 10:
        warnings.append(
            f"χ²_red = {chi2_red:.3g} is far below 1: the errors are overestimated or the "
            "noise is correlated between frequencies (record ≥ 3 sweeps for errors from "
            "their scatter)"
        )
    if absolute and chi2_red > CHI2_RED_WARN:
        warnings.append(
            f"χ²_red = {chi2_red:.3g} is far above 1: the model does not describe the data "
            "or the errors are underestimated (errors were inflated by √χ²_red)"
        )
    success = bool(ok) and not on_bound and not (absolute and chi2_red > CHI2_RED_FAIL)
    return FitResult(
        model=model,
        param_names=m.param_names,
        values=values,
        errors=errors,
        covariance=cov,
        chi2=chi2,
        chi2_red=chi2_red,
        dof=dof,
        n_freq=int(f.size),
        fmin_hz=float(f.min()),
        fmax_hz=float(f.max()),
        effective_mass=effective_mass,
        method=method,
        success=success,
        message=str(msg),
        nfev=int(nfev),
        covariance_scale=float(scale),
        warnings=warnings,
        converged=bool(ok),
        on_bound=on_bound,
    )


def fit_spectrum(spectrum, **kwargs) -> FitResult:
    """:func:`fit_conductivity` on a :class:`~labctl.analysis.tds.TDSSpectrum`.

    Needs at least two frequency points per parameter (else AnalysisError naming the
    band where the reference is usable); the spectrum's warnings (echo, dropped
    frequencies) come first in the result's ``warnings``.
    """
    model = kwargs.get("model", "drude-smith")
    n_par = len(get_model(model).param_names)
    n = int(spectrum.freq_hz.size)
    if n < 2 * n_par:
        band = getattr(spectrum, "usable_band_hz", None)
        where = (
            f"; |E_ref| is usable over {band[0] / 1e12:.2f}–{band[1] / 1e12:.2f} THz"
            if band
            else ""
        )
        raise AnalysisError(
            f"only {n} usable frequency points between {spectrum.freq_hz.min() / 1e12:.2f} "
            f"and {spectrum.freq_hz.max() / 1e12:.2f} THz for the {n_par} parameters of "
            f"{model} (need ≥ {2 * n_par}){where}: widen the window or lengthen the scan"
        )
    kwargs.setdefault("points_per_independent", spectrum.points_per_independent)
    kwargs.setdefault("sigma_sweeps", getattr(spectrum, "sweep_sigma", None))
    kwargs.setdefault("sigma_cov", getattr(spectrum, "sigma_cov", None))
    if getattr(spectrum, "sweep_cov", None) is not None and kwargs["sigma_sweeps"] is None:
        kwargs.setdefault("sweep_cov", spectrum.sweep_cov)
        kwargs.setdefault("n_sweeps", spectrum.n_sweeps)
    fit = fit_conductivity(spectrum.freq_hz, spectrum.sigma, spectrum.sigma_err, **kwargs)
    fit.warnings[:0] = list(getattr(spectrum, "warnings", ()))
    return fit


def _propagate(jac_w: np.ndarray, err: np.ndarray, cov_raw: np.ndarray, cov_data) -> np.ndarray:
    """A·Σ·Aᵀ with A = (JᵀWJ)⁻¹JᵀW the weighted fit's linear map from data to parameters
    (``jac_w`` = J/err, rows [Re; Im]) and Σ the data covariance (2F × 2F)."""
    w = np.concatenate([err, err])
    a = np.where(np.isfinite(cov_raw), cov_raw, 0.0) @ (jac_w / w[:, None]).T
    out = a @ cov_data @ a.T
    bad = np.isinf(np.diag(cov_raw))
    out[bad, :] = np.inf
    out[:, bad] = np.inf
    return out


def small_sample_factor(n_sweeps: int) -> float:
    """Variance factor ν/(ν − 2), ν = n − 1, that gives errors from the scatter of n sweeps
    unit mean-square pulls (the pull of a scatter-based error is Student-t distributed);
    3 sweeps (ν = 2, infinite variance) get the factor of 4."""
    nu = max(3, int(n_sweeps) - 1)
    return nu / (nu - 2)


def sweep_parameter_covariance(jac_w, err, sigma_sweeps, cov_raw) -> np.ndarray:
    """Parameter covariance from the scatter of per-sweep spectra: each sweep's deviation
    from the mean goes through the fit's linear map A; the covariance of the mean is
    Σ δp δpᵀ/(n(n−1)) (every correlation between frequencies, e.g. a pump-energy change
    that scales a whole sweep, included), times :func:`small_sample_factor`. Drift slower
    than the whole run does not show in any scatter (docs/analysis.md)."""
    s = np.asarray(sigma_sweeps, complex)
    n = s.shape[0]
    dev = s - s.mean(axis=0)
    stacked = np.concatenate([dev.real, dev.imag], axis=1)
    w = np.concatenate([err, err])
    a = np.where(np.isfinite(cov_raw), cov_raw, 0.0) @ (jac_w / w[:, None]).T
    dp = stacked @ a.T
    out = dp.T @ dp / (n * (n - 1)) * small_sample_factor(n)
    bad = np.isinf(np.diag(cov_raw))
    out[bad, :] = np.inf
    out[:, bad] = np.inf
    return out


def covariance_from_jacobian(jac: np.ndarray) -> np.ndarray:
    """(JᵀJ)⁻¹ by SVD; directions the data do not constrain get infinite variance."""
    _, sv, vt = np.linalg.svd(jac, full_matrices=False)
    tol = np.finfo(float).eps * max(jac.shape) * sv[0] * 1e3 if sv.size else 0.0
    good = sv > tol
    cov = (vt[good].T / sv[good] ** 2) @ vt[good]
    if not good.all():
        null = np.abs(vt[~good]).max(axis=0) > 1e-6
        cov[np.ix_(null, null)] = np.inf
        cov[null, null] = np.inf
    return cov


def _fit_fast(residuals, jacobian, p0, lo, hi, max_nfev):
    """MINPACK Levenberg-Marquardt (``least_squares(method="lm")``, analytic Jacobian),
    which is unbounded; if its optimum leaves the box, redo with the bounded dogbox."""
    res = None
    try:
        res = least_squares(
            residuals,
            p0,
            jac=jacobian,
            method="lm",
            x_scale="jac",
            max_nfev=max_nfev or 200,
            xtol=1e-10,
            ftol=1e-10,
            gtol=1e-10,
        )
    except ValueError:  # e.g. fewer residuals than parameters
        res = None
    if res is None or not res.success or np.any(res.x < lo) or np.any(res.x > hi):
        res = least_squares(
            residuals,
            p0,
            jac=jacobian,
            bounds=(lo, hi),
            method="dogbox",
            x_scale="jac",
            max_nfev=max_nfev or 200,
            xtol=1e-10,
            ftol=1e-10,
            gtol=1e-10,
        )
    cov = covariance_from_jacobian(res.jac)
    return res.x, cov, res.nfev, res.status > 0, res.message


def _fit_lmfit(m, residuals, jacobian, p0, lo, hi, max_nfev):
    import lmfit

    params = lmfit.Parameters()
    for name, v, low, high in zip(m.param_names, p0, lo, hi, strict=True):
        params.add(name, value=float(v), min=float(low), max=float(high))
    names = m.param_names

    def fcn(pars):
        return residuals(np.array([pars[n].value for n in names]))

    out = lmfit.minimize(
        fcn, params, method="leastsq", scale_covar=False, max_nfev=max_nfev or 2000
    )
    p = np.array([out.params[n].value for n in names])
    if out.covar is not None and np.all(np.isfinite(out.covar)):
        cov = np.array(out.covar)
    else:  # lmfit could not estimate it (e.g. a parameter pinned at a bound)
        cov = covariance_from_jacobian(jacobian(p))
    return p, cov, out.nfev, bool(out.success), out.message


def _at_bound(v, bound) -> bool:
    return bool(np.isfinite(bound) and abs(v - bound) <= 1e-4 * max(1.0, abs(bound)))


def _warnings(m, p, errs, lo, hi) -> list[str]:
    out = []
    for name, v, e, low, high in zip(m.param_names, p, errs, lo, hi, strict=True):
        for bound in (low, high):
            if _at_bound(v, bound):
                out.append(f"{name} = {v:.4g} sits on its bound {bound:g}")
        limit = _C_UNCONSTRAINED if name == "c" else abs(v)
        if not np.isfinite(e) or e > limit:
            out.append(f"{name} is not constrained by the data ({v:.4g} ± {e:.3g})")
    return out


__all__ = [
    "MODELS",
    "FitResult",
    "covariance_from_jacobian",
    "fit_conductivity",
    "fit_spectrum",
    "initial_guess",
]
