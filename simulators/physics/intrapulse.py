"""A photoresponse that changes within the THz pulse (opt-in: ``table["intrapulse_response"]``).

The default world is quasi-static: at pump delay t_p every frequency of the THz pulse
sees Δσ(ω)·g(t_p). Real carriers are younger at the front of the pulse than at its
back. Here the film's current is built in the time domain from the carriers present
when the field drives them (Kindt & Schmuttenmaer, J. Chem. Phys. 110, 8589 (1999);
Němec, Kadlec & Kužel, J. Chem. Phys. 117, 8454 (2002)):

    J(t_s) = ∫₀^∞ h(u) · g(t_p + t_s − u) · E(t_s − u) du
    h(u)   = N (e²/m*) e^{−u/τ} (1 + c·u/τ)        (the Drude-Smith impulse response)
    ΔE(t_s) = −Z₀ d J(t_s) / (1 + n)               (thin film, small signal)

with E(t) the unexcited transmitted field at gate delay t (gate zero = THz peak), g
the OPTP transient normalised to 1 at the TDS delay (the carriers' age at gate time
t is t_p + t), N, τ, c the film's response at the TDS delay. For a g that does not
change over the pulse this is the quasi-static ΔE = −Z₀dσE/(1+n) of the default
world. A scan with the pump locked to the gate (t_p = t_pp − t_s) gives the kernel
h(u)·g(t_pp − u), independent of t_s: one spectrum at the constant pump-probe delay
t_pp. The exciton (Lorentz) part and the substrate echo are left out here.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.integrate import trapezoid

from labctl.simulators.physics.thz import Z0_OHM, THzPulse

E_CHARGE = 1.602176634e-19
M_ELECTRON = 9.1093837015e-31
#: the impulse response is integrated over this many τ, this many points per τ
SPAN_TAU = 14.0
POINTS_PER_TAU = 24


def intrapulse_delta_e(
    pulse: THzPulse,
    sample_spec: np.ndarray,
    response,
    transient,
    thickness_nm: float,
    sampling_ps: float,
    pump_ps: float,
) -> float:
    """ΔE at gate delay ``sampling_ps`` and pump delay ``pump_ps`` (see the module docstring).

    ``sample_spec``: the unexcited transmitted spectrum; ``response``: a PhotoResponse
    (``tau_s``, ``c``, ``n_free_m3``, ``effective_mass``); ``transient(t_ps)``: g, for
    an array of delays.
    """
    tau_ps = response.tau_s * 1e12
    u, lag = _lag_phases(tau_ps, pulse._omega_ps)
    g = np.asarray(transient(pump_ps + sampling_ps - u), dtype=float)
    if not np.any(g):
        return 0.0
    unit = E_CHARGE**2 / (response.effective_mass * M_ELECTRON)
    h = response.n_free_m3 * unit * np.exp(-u / tau_ps) * (1.0 + response.c * u / tau_ps)
    # E(t_s − u) = 2 Re Σ e^{−iω t_s} e^{+iω u} E_k: the lag phases depend on τ only
    e = 2.0 * np.real(lag @ (sample_spec * pulse.phase(sampling_ps)))
    integrand = h * g * e
    current = float(trapezoid(integrand, u * 1e-12))
    n_sub = pulse.substrate_index
    return -Z0_OHM * thickness_nm * 1e-9 * current / (1.0 + n_sub)


_LAG_CACHE: dict = {}


def _lag_phases(tau_ps: float, omega_ps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lag grid u (ps) and e^{+iω u} (cached per τ and frequency grid)."""
    key = (tau_ps, omega_ps.size, float(omega_ps[-1]))
    if key not in _LAG_CACHE:
        if len(_LAG_CACHE) > 16:
            _LAG_CACHE.clear()
        u = np.linspace(0.0, SPAN_TAU * tau_ps, int(SPAN_TAU * POINTS_PER_TAU) + 1)
        _LAG_CACHE[key] = (u, np.exp(1j * np.outer(u, omega_ps)))
    return _LAG_CACHE[key]


def decay_over_pulse(transient, pump_ps: float, pulse_fwhm_ps: float) -> float:
    """|g(t_p + w/2) − g(t_p − w/2)| / g(t_p): how far from quasi-static a delay is."""
    g0 = transient(pump_ps)
    if g0 == 0:
        return math.inf
    return abs(transient(pump_ps + pulse_fwhm_ps / 2) - transient(pump_ps - pulse_fwhm_ps / 2)) / g0
