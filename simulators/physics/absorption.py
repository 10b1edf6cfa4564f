"""UV-Vis absorbance of a film from its state, and the light the spectrometer sees.

Energies in eV (E = hc/λ). For a film with distance d, fused fraction φ and
temperature T (°C)::

    A(E) = (1−φ)·A_NPL(E; d, T) + φ·A_bulk(E; T) + A_scatter(λ; φ)

* A_NPL: pseudo-Voigt heavy-hole and light-hole excitons plus a 2D continuum step
  rising towards the UV. The HH energy follows the coupling through the gap:
  ``E_HH(d) = E_bulk + (E_iso − E_bulk)(1 − e^{−κd})/(1 − e^{−κ·3.8 nm})``
  (512 nm as made, red shift once d falls past ~2.5 nm), LH = HH + 0.161 eV,
  widths grow with the shift; every line moves with dE/dT (T − 25 °C).
* A_bulk: direct-gap bulk CdSe, A ∝ sqrt(E − E_g)/E above E_g = 1.70 eV
  (so a Tauc plot (A·E)² vs E is linear and extrapolates to E_g), an Urbach
  tail below, joined continuously at E_g + E_u/2.
* A_scatter ∝ (400 nm/λ)⁴, larger once fused (clusters).

Absorbance scales with film thickness (reference 100 nm).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

HC_EV_NM = 1239.841984
H_PLANCK = 6.62607015e-34
C_LIGHT = 299792458.0
K_BOLTZMANN = 1.380649e-23
REFERENCE_THICKNESS_NM = 100.0
AS_MADE_DISTANCE_NM = 3.8


def _pseudo_voigt(x: np.ndarray, sigma: float, eta: float) -> np.ndarray:
    """Unit-height pseudo-Voigt line: (1−η)·Gaussian + η·Lorentzian of the same FWHM."""
    hwhm = 1.17741 * sigma
    return (1.0 - eta) * np.exp(-0.5 * (x / sigma) ** 2) + eta / (1.0 + (x / hwhm) ** 2)


class AbsorptionModel:
    def __init__(self, optics: dict) -> None:
        self.p = optics

    # --- exciton energies ----------------------------------------------------
    def coupling(self, distance_nm: float) -> float:
        """0 for isolated platelets (as made) → 1 for touching ones."""
        k = float(self.p["coupling_decay_per_nm"])
        return 1.0 - (-math.expm1(-k * max(distance_nm, 0.0))) / (
            -math.expm1(-k * AS_MADE_DISTANCE_NM)
        )

    def hh_energy_ev(self, distance_nm: float, temperature_c: float = 25.0) -> float:
        p = self.p
        e_iso, e_bulk = float(p["hh_isolated_ev"]), float(p["bulk_gap_ev"])
        return (
            e_iso
            - (e_iso - e_bulk) * self.coupling(distance_nm)
            + float(p["bandgap_shift_ev_per_k"]) * (temperature_c - 25.0)
        )

    def lh_energy_ev(self, distance_nm: float, temperature_c: float = 25.0) -> float:
        return self.hh_energy_ev(distance_nm, temperature_c) + float(self.p["hh_lh_split_ev"])

    # --- absorbance ------------------------------------------------------------
    def npl_absorbance(
        self, e_ev: np.ndarray, distance_nm: float, temperature_c: float
    ) -> np.ndarray:
        p = self.p
        u = self.coupling(distance_nm)
        e_hh = self.hh_energy_ev(distance_nm, temperature_c)
        e_lh = e_hh + float(p["hh_lh_split_ev"])
        grow = float(p["fwhm_growth_ev"]) * u
        s_hh = (float(p["hh_fwhm_ev"]) + grow) / 2.3548
        s_lh = (float(p["lh_fwhm_ev"]) + grow) / 2.3548
        # oscillator strength is conserved: peak heights fall as lines broaden
        a_hh = (
            float(p["hh_peak_absorbance"])
            * float(p["hh_fwhm_ev"])
            / (float(p["hh_fwhm_ev"]) + grow)
        )
        a_lh = (
            float(p["lh_peak_absorbance"])
            * float(p["lh_fwhm_ev"])
            / (float(p["lh_fwhm_ev"]) + grow)
        )
        eta = float(p["lorentz_share"])
        hh = a_hh * _pseudo_voigt(e_ev - e_hh, s_hh, eta)
        lh = a_lh * _pseudo_voigt(e_ev - e_lh, s_lh, eta)
        e_step = e_lh + 0.06
        w = float(p["continuum_width_ev"]) + grow
        step = 0.5 * (1.0 + erf((e_ev - e_step) / w))
        cont = (
            float(p["continuum_absorbance"])
            * (1.0 + float(p["continuum_slope_per_ev"]) * (e_ev - e_step))
            * step
        )
        return hh + lh + np.clip(cont, 0.0, None)

    def bulk_absorbance(self, e_ev: np.ndarray, temperature_c: float) -> np.ndarray:
        p = self.p
        eg = float(p["bulk_gap_ev"]) + float(p["bandgap_shift_ev_per_k"]) * (temperature_c - 25.0)
        eu = float(p["urbach_energy_ev"])
        scale = float(p["bulk_absorbance_scale"]) * (eg + 1.0)

        def direct(e):
            return scale * np.sqrt(np.clip(e - eg, 0.0, None)) / e

        e_join = eg + 0.5 * eu
        a_join = direct(np.asarray(e_join))
        tail = a_join * np.exp(np.clip((e_ev - e_join) / eu, -200.0, 0.0))
        return np.where(e_ev >= e_join, direct(e_ev), tail)

    def scatter_absorbance(self, wavelengths_nm: np.ndarray, fused: float) -> np.ndarray:
        p = self.p
        s = (1.0 - fused) * float(p["scatter_absorbance_400nm"]) + fused * float(
            p["scatter_absorbance_400nm_fused"]
        )
        return s * (400.0 / wavelengths_nm) ** 4

    def absorbance(
        self,
        wavelengths_nm,
        distance_nm: float,
        fused: float,
        temperature_c: float = 25.0,
        thickness_nm: float = REFERENCE_THICKNESS_NM,
    ) -> np.ndarray:
        """Film absorbance −log₁₀(T_film/T_substrate) at each wavelength (noise-free truth)."""
        wl = np.asarray(wavelengths_nm, dtype=float)
        e = HC_EV_NM / np.clip(wl, 1.0, None)
        a = (1.0 - fused) * self.npl_absorbance(e, distance_nm, temperature_c)
        if fused > 0:
            a = a + fused * self.bulk_absorbance(e, temperature_c)
        a = a + self.scatter_absorbance(wl, fused)
        return a * (thickness_nm / REFERENCE_THICKNESS_NM)

    def film_absorbance(self, film, wavelengths_nm) -> np.ndarray:
        return self.absorbance(
            wavelengths_nm,
            film.distance_nm,
            film.fused_fraction,
            film.temperature_c,
            film.thickness_nm,
        )

    def absorptance(self, film, wavelength_nm: float) -> float:
        """Fraction of light absorbed by the film (1 − 10^−A; reflection and scattering aside)."""
        wl = np.array([wavelength_nm], dtype=float)
        e = HC_EV_NM / wl
        a = (1.0 - film.fused_fraction) * self.npl_absorbance(
            e, film.distance_nm, film.temperature_c
        )
        if film.fused_fraction > 0:
            a = a + film.fused_fraction * self.bulk_absorbance(e, film.temperature_c)
        a = float(a[0]) * film.thickness_nm / REFERENCE_THICKNESS_NM
        return 1.0 - 10.0 ** (-a)

    # --- light source ------------------------------------------------------------
    def lamp_counts_per_s(self, wavelengths_nm) -> np.ndarray:
        """Counts per second per pixel with nothing in the beam (halogen × spectrometer response)."""
        p = self.p
        wl = np.asarray(wavelengths_nm, dtype=float)
        return float(p["lamp_peak_counts_per_s"]) * self._lamp_shape(wl) / self._lamp_peak()

    def _lamp_shape(self, wl: np.ndarray) -> np.ndarray:
        p = self.p
        lam = np.clip(wl, 150.0, None) * 1e-9
        x = H_PLANCK * C_LIGHT / (lam * K_BOLTZMANN * float(p["lamp_color_temperature_k"]))
        planck = 1.0 / (lam**5 * np.expm1(np.clip(x, 1e-6, 700.0)))
        resp = np.exp(
            -0.5 * ((wl - float(p["response_center_nm"])) / float(p["response_width_nm"])) ** 2
        )
        return planck * resp

    def _lamp_peak(self) -> float:
        if not hasattr(self, "_peak"):
            self._peak = float(self._lamp_shape(np.linspace(180.0, 1100.0, 921)).max())
        return self._peak
