"""A reflection setup: the THz pulse reflected off a photoexcited layer on a bulk substrate.

The layer (thickness ≪ λ, sheet conductance Δσ·d) sits at the air/substrate interface;
the probe arrives from the air side at angle θ, s- or p-polarized. Its reflection
coefficient is the Fresnel one with the sheet current in the boundary condition
(physics convention, ñ = n + iκ; the thin-conductor form of the graphene literature,
written here independently of the inversion in ``labctl.analysis.reflection``, so a
test of one against the other checks the algebra)::

    s:  r = (cos θ − ñ cos θ_t − y) / (cos θ + ñ cos θ_t + y)
    p:  r = (ñ cos θ − cos θ_t + y cos θ cos θ_t) / (ñ cos θ + cos θ_t + y cos θ cos θ_t)

with y = Z₀·Δσ·d and sin θ_t = sin θ / ñ. The detected reference is the unexcited
reflection, the pumped trace the excited one; both on the same pulse
(:class:`~labctl.simulators.physics.thz.THzPulse`), so causality and the finite band
behave as in the transmission world.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from labctl.simulators.physics.thz import Z0_OHM, THzPulse


class ReflectionSetup:
    """Reflected traces E(t) and E*(t) of a layer of conductivity ``sigma(freq_hz)``."""

    def __init__(
        self,
        pulse: THzPulse,
        substrate_index: complex | Callable[[np.ndarray], np.ndarray] = 3.42,
        angle_deg: float = 0.0,
        polarization: str = "s",
    ) -> None:
        self.pulse = pulse
        f = pulse.freq_hz
        self.n = np.asarray(
            substrate_index(f) if callable(substrate_index) else np.full(f.shape, substrate_index),
            complex,
        )
        th = np.radians(angle_deg)
        self.cos_i = np.cos(th)
        self.cos_t = np.sqrt(1.0 - (np.sin(th) / self.n) ** 2 + 0j)
        if polarization not in ("s", "p"):
            raise ValueError("polarization must be s or p")
        self.polarization = polarization

    def r(self, sheet) -> np.ndarray:
        """Reflection coefficient per frequency for sheet admittance ``sheet`` = Z₀Δσd."""
        y = np.asarray(sheet, complex)
        ci, ct, n = self.cos_i, self.cos_t, self.n
        if self.polarization == "s":
            return (ci - n * ct - y) / (ci + n * ct + y)
        return (n * ci - ct + y * ci * ct) / (n * ci + ct + y * ci * ct)

    def traces(
        self, time_ps, sigma_s_per_m: Callable[[np.ndarray], np.ndarray], depth_nm: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(E(t), E*(t)): the unexcited and excited reflected fields at delays ``time_ps``."""
        sheet = Z0_OHM * depth_nm * 1e-9 * np.asarray(sigma_s_per_m(self.pulse.freq_hz))
        phase = np.exp(-1j * np.outer(np.asarray(time_ps, float), self.pulse._omega_ps))
        ref = 2.0 * np.real(phase @ (self.pulse.spectrum * self.r(0.0)))
        pumped = 2.0 * np.real(phase @ (self.pulse.spectrum * self.r(sheet)))
        return ref, pumped
