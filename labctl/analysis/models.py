"""Conductivity models in the physics convention (fields ∝ exp(−iωt), σ = σ₁ + iσ₂).

SI functions (``drude``, ``drude_smith``, ``lorentz``, ``drude_smith_lorentz``,
``polarizability``) take
frequencies in Hz and parameters in SI units and return σ in S/m. The ``MODELS``
registry holds the same models in well-scaled *fit units* (τ in fs, densities in
1e21 m⁻³, frequencies in THz) with analytic Jacobians, for :mod:`labctl.analysis.fitting`.

Lorentz widths: ``gamma_hz`` is γ/2π, where γ (rad/s) enters σ_L = (N e²/m*)·iω/(ω² − ω₀² + iωγ).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .constants import DEFAULT_EFFECTIVE_MASS, E_CHARGE, EPSILON_0, M_ELECTRON, TWO_PI

FS = 1e-15
DENSITY_UNIT_M3 = 1e21
THZ_RAD_S = TWO_PI * 1e12  # 1 THz (ordinary frequency) in rad/s


def _omega(freq_hz) -> np.ndarray:
    return TWO_PI * np.asarray(freq_hz, dtype=float)


def _weight(n_m3: float, effective_mass: float) -> float:
    """N e²/m* in S/(m·s) — the spectral weight (ε₀ω_p²)."""
    return n_m3 * E_CHARGE**2 / (effective_mass * M_ELECTRON)


def drude(freq_hz, tau_s: float, n_m3: float, effective_mass: float = DEFAULT_EFFECTIVE_MASS):
    """Drude conductivity σ = (N e² τ/m*)/(1 − iωτ), S/m. ``effective_mass`` is m*/mₑ."""
    return drude_smith(freq_hz, tau_s, 0.0, n_m3, effective_mass)


def drude_smith(
    freq_hz, tau_s: float, c: float, n_m3: float, effective_mass: float = DEFAULT_EFFECTIVE_MASS
):
    """Drude-Smith σ = (N e² τ/m*)/(1 − iωτ)·(1 + c/(1 − iωτ)), S/m; −1 ≤ c ≤ 0."""
    d = 1.0 - 1j * _omega(freq_hz) * tau_s
    return _weight(n_m3, effective_mass) * tau_s / d * (1.0 + c / d)


def lorentz(
    freq_hz,
    n_x_m3: float,
    f0_hz: float,
    gamma_hz: float,
    effective_mass: float = DEFAULT_EFFECTIVE_MASS,
):
    """Lorentz oscillator σ_L = (N_X e²/m*)·iω/(ω² − ω₀² + iωγ), S/m (ω₀ = 2π f0, γ = 2π gamma_hz)."""
    w = _omega(freq_hz)
    w0 = TWO_PI * f0_hz
    g = TWO_PI * gamma_hz
    return _weight(n_x_m3, effective_mass) * 1j * w / (w**2 - w0**2 + 1j * w * g)


def drude_smith_lorentz(
    freq_hz,
    tau_s: float,
    c: float,
    n_m3: float,
    n_x_m3: float,
    f0_hz: float,
    gamma_hz: float,
    effective_mass: float = DEFAULT_EFFECTIVE_MASS,
):
    """Drude-Smith free carriers plus a Lorentz (exciton) oscillator, S/m."""
    return drude_smith(freq_hz, tau_s, c, n_m3, effective_mass) + lorentz(
        freq_hz, n_x_m3, f0_hz, gamma_hz, effective_mass
    )


def polarizability(freq_hz, chi_bound: float):
    """Bound charges resonant far above the band (an exciton's 1s→2p line, ~36 THz for
    4 ML CdSe): σ = −iωε₀χ_b, S/m — purely inductive, Im σ ∝ −ω. The Lorentz term
    (N_X e²/m*)·iω/(ω² − ω₀² + iωγ) tends to it for ω ≪ ω₀ with χ_b = N_X e²/(ε₀ m* ω₀²)."""
    return -1j * _omega(freq_hz) * EPSILON_0 * chi_bound


# ---------------------------------------------------------------- derived quantities


def mobility_cm2_vs(
    tau_s: float, c: float = 0.0, effective_mass: float = DEFAULT_EFFECTIVE_MASS
) -> float:
    """DC (long-range) mobility μ = eτ(1 + c)/m*, in cm²/(V·s)."""
    return E_CHARGE * tau_s * (1.0 + c) / (effective_mass * M_ELECTRON) * 1e4


def dc_conductivity(
    tau_s: float, c: float, n_m3: float, effective_mass: float = DEFAULT_EFFECTIVE_MASS
) -> float:
    """σ_DC = N e μ = (N e² τ/m*)(1 + c), S/m."""
    return _weight(n_m3, effective_mass) * tau_s * (1.0 + c)


def plasma_frequency_rad_s(n_m3: float, effective_mass: float = DEFAULT_EFFECTIVE_MASS) -> float:
    """Plasma (angular) frequency ω_p = sqrt(N e²/(ε₀ m*)), rad/s."""
    return math.sqrt(_weight(n_m3, effective_mass) / EPSILON_0)


def density_from_plasma_frequency(
    omega_p_rad_s: float, effective_mass: float = DEFAULT_EFFECTIVE_MASS
) -> float:
    """Carrier density N = ε₀ m* ω_p²/e², m⁻³ (inverse of :func:`plasma_frequency_rad_s`)."""
    return EPSILON_0 * effective_mass * M_ELECTRON * omega_p_rad_s**2 / E_CHARGE**2


# ---------------------------------------------------------------- fit-unit registry


@dataclass(frozen=True)
class ConductivityModel:
    """A model in fit units: σ(ω; p) and ∂σ/∂p, both complex, ω in rad/s.

    ``weight_unit`` is e²/m*·(1e21 m⁻³), i.e. the spectral weight of one density unit.
    """

    name: str
    param_names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    sigma: Callable[[np.ndarray, np.ndarray, float], np.ndarray]
    jacobian: Callable[[np.ndarray, np.ndarray, float], np.ndarray]
    linear: tuple[int, ...]  # indices of parameters σ is linear in (densities)


def _ds_sigma(w, p, a):
    tau = p[0] * FS
    d = 1.0 - 1j * w * tau
    return a * p[2] * tau / d * (1.0 + p[1] / d)


def _ds_jac(w, p, a):
    tau = p[0] * FS
    c = p[1]
    d = 1.0 - 1j * w * tau
    d2 = d * d
    amp = a * p[2]
    j = np.empty((w.size, 3), dtype=complex)
    j[:, 0] = amp * (1.0 / d2 + c * (d + 2j * w * tau) / (d2 * d)) * FS
    j[:, 1] = amp * tau / d2
    j[:, 2] = a * tau / d * (1.0 + c / d)
    return j


def _drude_sigma(w, p, a):
    return _ds_sigma(w, np.array([p[0], 0.0, p[1]]), a)


def _drude_jac(w, p, a):
    return _ds_jac(w, np.array([p[0], 0.0, p[1]]), a)[:, [0, 2]]


def _lor_sigma(w, p, a):
    w0 = p[1] * THZ_RAD_S
    g = p[2] * THZ_RAD_S
    return a * p[0] * 1j * w / (w * w - w0 * w0 + 1j * w * g)


def _lor_jac(w, p, a):
    w0 = p[1] * THZ_RAD_S
    g = p[2] * THZ_RAD_S
    den = w * w - w0 * w0 + 1j * w * g
    base = a * 1j * w / den
    j = np.empty((w.size, 3), dtype=complex)
    j[:, 0] = base
    j[:, 1] = a * p[0] * 1j * w * 2.0 * w0 / den**2 * THZ_RAD_S
    j[:, 2] = a * p[0] * w * w / den**2 * THZ_RAD_S
    return j


def _ds_pol_sigma(w, p, a):
    return _ds_sigma(w, p[:3], a) - 1j * w * EPSILON_0 * p[3]


def _ds_pol_jac(w, p, a):
    return np.hstack([_ds_jac(w, p[:3], a), (-1j * w * EPSILON_0)[:, None]])


def _dsl_sigma(w, p, a):
    return _ds_sigma(w, p[:3], a) + _lor_sigma(w, p[3:], a)


def _dsl_jac(w, p, a):
    return np.hstack([_ds_jac(w, p[:3], a), _lor_jac(w, p[3:], a)])


_INF = math.inf
MODELS: dict[str, ConductivityModel] = {
    "drude": ConductivityModel(
        "drude", ("tau_fs", "N_1e21"), (1e-3, 0.0), (1e5, _INF), _drude_sigma, _drude_jac, (1,)
    ),
    "drude-smith": ConductivityModel(
        "drude-smith",
        ("tau_fs", "c", "N_1e21"),
        (1e-3, -1.0, 0.0),
        (1e5, 0.0, _INF),
        _ds_sigma,
        _ds_jac,
        (2,),
    ),
    "lorentz": ConductivityModel(
        "lorentz",
        ("NX_1e21", "f0_THz", "gamma_THz"),
        (0.0, 0.0, 1e-4),
        (_INF, 1e3, 1e3),
        _lor_sigma,
        _lor_jac,
        (0,),
    ),
    # a resonance far above the band (the 2D exciton's 1s→2p line near 36 THz) seen
    # in-band: σ = −iωε₀χ_b, one parameter (bound-charge susceptibility), Im σ ∝ −ω
    "drude-smith+polarizability": ConductivityModel(
        "drude-smith+polarizability",
        ("tau_fs", "c", "N_1e21", "chi_bound"),
        (1e-3, -1.0, 0.0, 0.0),
        (1e5, 0.0, _INF, _INF),
        _ds_pol_sigma,
        _ds_pol_jac,
        (2, 3),
    ),
    "drude-smith+lorentz": ConductivityModel(
        "drude-smith+lorentz",
        ("tau_fs", "c", "N_1e21", "NX_1e21", "f0_THz", "gamma_THz"),
        (1e-3, -1.0, 0.0, 0.0, 0.0, 1e-4),
        (1e5, 0.0, _INF, _INF, 1e3, 1e3),
        _dsl_sigma,
        _dsl_jac,
        (2, 3),
    ),
}


def get_model(name: str) -> ConductivityModel:
    """Look up a model by name (``drude``, ``drude-smith``, ``lorentz``,
    ``drude-smith+polarizability``, ``drude-smith+lorentz``)."""
    from labctl.errors import AnalysisError

    try:
        return MODELS[name]
    except KeyError:
        raise AnalysisError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def weight_unit(effective_mass: float = DEFAULT_EFFECTIVE_MASS) -> float:
    """Spectral weight e²/m* of 1e21 m⁻³ carriers, S/(m·s)."""
    return _weight(DENSITY_UNIT_M3, effective_mass)


def evaluate_model(
    name: str, freq_hz, params_fit_units, effective_mass: float = DEFAULT_EFFECTIVE_MASS
) -> np.ndarray:
    """σ(f) in S/m of a registry model from parameters in fit units (see ``param_names``)."""
    m = get_model(name)
    return m.sigma(
        _omega(freq_hz), np.asarray(params_fit_units, float), weight_unit(effective_mass)
    )
