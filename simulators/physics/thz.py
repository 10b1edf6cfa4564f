"""The THz pulse (EO sampling in ZnTe) and its transmission through a film on fused silica.

Physics convention: E(t) = Re Σ_k 2·E_k·e^{−iω_k t}·Δf over f_k = kΔf > 0 (a
band-limited, 1/Δf-periodic pulse; Δf = 10 GHz gives a 100 ps period, far
longer than any scan). The detected reference spectrum is
``E_k ∝ f² exp(−(f/f_c)²) / (1 + (f/f_ZnTe)⁴) · exp(i·chirp·ω²/2)``: a
single-cycle pulse, usable ~0.3–2.5 THz, its peak at sampling delay 0 (the
calibrated zero of stage 1) when the pulse has crossed a substrate.

Thin film (thickness d ≪ λ) on a substrate of index n, excited with
photoconductivity Δσ (Tinkham, exact — not linearised)::

    E_pumped/E_ref = (1 + n)/(1 + n + Z₀ d Δσ)                       main pulse
    echo: two internal reflections, the second at the film-loaded face:
    r(Δσ) = (n − 1 − Z₀ d Δσ)/(n + 1 + Z₀ d Δσ),  echo_ref ∝ r(0)² e^{iω·2nL/c}

The echo meets the film a second time 2nL/c later (13.0 ps for 1 mm), when
the photoconductivity has decayed: it sees Δσ at pump delay + 2nL/c.
"""

from __future__ import annotations

import functools
import math

import numpy as np

Z0_OHM = 376.730313668
C_MM_PER_PS = 0.299792458


def _synth(omega_ps: np.ndarray, spec: np.ndarray, t_ps: np.ndarray) -> np.ndarray:
    phase = np.exp(-1j * np.outer(np.atleast_1d(t_ps), omega_ps))
    return 2.0 * np.real(phase @ spec)


@functools.lru_cache(maxsize=16)
def _pulse_spectrum(
    df_thz: float, fmax_thz: float, center_thz: float, cutoff_thz: float, chirp_ps2: float,
    peak_v: float,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(frequencies in THz, complex spectrum in V per bin) of the emitted pulse, its peak
    at t = 0 scaled to ``peak_v``. Cached: every simulated world builds its pulse, and
    locating the peak takes an 801 × bins complex exponential (11 ms); read-only arrays."""
    freq_thz = np.arange(1, int(fmax_thz / df_thz) + 1) * df_thz
    omega_ps = 2.0 * math.pi * freq_thz
    f = freq_thz
    amp = (f / center_thz) ** 2 * np.exp(-((f / center_thz) ** 2)) / (1.0 + (f / cutoff_thz) ** 4)
    spec = amp * np.exp(0.5j * chirp_ps2 * omega_ps**2)
    # put the peak at t = 0 and scale it to peak_v
    t = np.linspace(-1.0, 1.0, 801)
    t0 = t[int(np.argmax(_synth(omega_ps, spec, t)))]
    spec = spec * np.exp(-1j * omega_ps * t0)
    spec = spec * (peak_v / _synth(omega_ps, spec, np.array([0.0]))[0])
    freq_thz.flags.writeable = False
    spec.flags.writeable = False
    return freq_thz, spec


class THzPulse:
    def __init__(self, table: dict) -> None:
        self.p = table
        self.freq_thz, self.spectrum = _pulse_spectrum(  # spectrum: complex, V per bin
            float(table["thz_df_thz"]),
            float(table["thz_fmax_thz"]),
            float(table["thz_center_thz"]),
            float(table["zno_cutoff_thz"]),
            float(table["thz_chirp_ps2"]),
            float(table["thz_peak_v"]),
        )
        self.freq_hz = self.freq_thz * 1e12
        self._omega_ps = 2.0 * math.pi * self.freq_thz  # rad/ps
        n = float(table["substrate_index"])
        self.substrate_index = n
        self.echo_delay_ps = 2.0 * n * float(table["substrate_thickness_mm"]) / C_MM_PER_PS
        self.free_space_advance_ps = (
            (n - 1.0) * float(table["substrate_thickness_mm"]) / C_MM_PER_PS
        )
        r0 = (n - 1.0) / (n + 1.0)
        self._echo0 = r0 * r0 * np.exp(1j * self._omega_ps * self.echo_delay_ps)

    def phase(self, t_ps: float) -> np.ndarray:
        """e^{−iω_k t} at sampling delay ``t_ps``."""
        return np.exp(-1j * self._omega_ps * t_ps)

    @staticmethod
    def field_from(phase: np.ndarray, spec: np.ndarray) -> float:
        return float(2.0 * np.real(np.dot(phase, spec)))

    def field(self, t_ps: float, transfer: np.ndarray | None = None) -> float:
        """Detected field (V) at sampling delay ``t_ps`` for a spectral transfer function."""
        spec = self.spectrum if transfer is None else self.spectrum * transfer
        return float(2.0 * np.real(np.dot(np.exp(-1j * self._omega_ps * t_ps), spec)))

    # --- transfer functions relative to the un-pumped sample's main pulse -------------
    def sample_transfer(self, sheet_main=None, sheet_echo=None) -> np.ndarray:
        """Main pulse + echo through film/substrate, relative to the unexcited main pulse.

        ``sheet_*`` = Z₀·d·Δσ(ω) (dimensionless) when the main pulse / the echo
        crosses the film, or None for an unexcited film (or a blank substrate).
        """
        n = self.substrate_index
        if sheet_main is None:
            main = 1.0
        else:
            main = (1.0 + n) / (1.0 + n + sheet_main)
        if sheet_echo is None:
            r_ratio = 1.0
        else:
            r_ratio = (n - 1.0 - sheet_echo) / (n + 1.0 + sheet_echo) / ((n - 1.0) / (n + 1.0))
        return main * (1.0 + self._echo0 * r_ratio)

    def free_space_transfer(self) -> np.ndarray:
        """Nothing in the beam: no substrate loss (÷ 4n/(1+n)²), arrives earlier, no echo."""
        n = self.substrate_index
        return (
            (1.0 + n) ** 2 / (4.0 * n) * np.exp(-1j * self._omega_ps * self.free_space_advance_ps)
        )

    def sheet(self, sigma_s_per_m: np.ndarray, thickness_nm: float) -> np.ndarray:
        return Z0_OHM * thickness_nm * 1e-9 * sigma_s_per_m
