"""Sheet conductance of a thin photoexcited layer from the field ratio, in transmission or
reflection, at normal or oblique incidence (s or p), on a substrate of complex and
possibly frequency-dependent index.

Rule: one relation for both geometries, in the admittance form of the Fresnel
equations. With a = η(incidence medium, air) and b = η(substrate), η = ñ·cos θ for s
and ñ/cos θ for p polarization (θ in that medium, Snell: sin θ_b = sin θ / ñ), and
y = Z₀·Δσ·d the layer's sheet admittance at the interface, the fields relative to the
unexcited sample are (physics convention, ñ = n + iκ, κ > 0 absorbs):

    transmission  T = E*/E = (a + b)/(a + b + y)      →  y = (a + b)(1/T − 1)
    reflection    ρ = E*/E = r(y)/r(0),  r(y) = (a − b − y)/(a + b + y)
                  →  y = (a² − b²)(1 − ρ) / ((a + b) + ρ(a − b))

At normal incidence (a = 1, b = ñ) the reflection form is Z₀Δσd = (1 − ñ²)(1 − ρ) /
((1 + ñ) + ρ(1 − ñ)) (Ulbricht, Hendry, Shan, Heinz & Bonn, Rev. Mod. Phys. 83, 543
(2011)); small signal ≈ (ñ² − 1)/2 · ΔE/E. Transmission at normal incidence is
Tinkham's (1 + n)(E/E* − 1) of :mod:`labctl.analysis.tds`.

Why the sheet conductance: reflection sees the excited layer through the interface, not
its thickness, so Δσ·d (S) is what the data give; a carrier density per volume needs
the excitation depth (``--excitation-depth-nm``), which the output then states.
A :class:`Geometry` is a callable ``(freq_hz, E(ω), ΔE(ω)) → y`` that
:func:`labctl.analysis.tds.photoconductivity` accepts as its ``method``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labctl.errors import AnalysisError

GEOMETRIES = ("transmission", "reflection")
POLARIZATIONS = ("s", "p")


@dataclass(frozen=True)
class SubstrateIndex:
    """Complex THz index ñ = n + iκ: one value, or a table over frequency (THz)."""

    n: complex = 1.95
    table_thz: tuple | None = None  # (freq_THz, n, kappa) arrays, freq increasing
    source: str = "--substrate-index"

    def at(self, freq_hz) -> np.ndarray:
        f = np.asarray(freq_hz, float)
        if self.table_thz is None:
            return np.full(f.shape, complex(self.n))
        ft, n, k = self.table_thz
        x = f / 1e12
        out = np.interp(x, ft, n) + 1j * np.interp(x, ft, k)
        return np.where((x >= ft[0]) & (x <= ft[-1]), out, np.nan)  # never extrapolated

    def check_covers(self, fmin_hz: float, fmax_hz: float) -> None:
        """A table must cover the fitted window (it is never extrapolated)."""
        if self.table_thz is None:
            return
        ft = self.table_thz[0]
        if fmin_hz / 1e12 < ft[0] or fmax_hz / 1e12 > ft[-1]:
            raise AnalysisError(
                f"{self.source}: the index table covers {ft[0]:g}–{ft[-1]:g} THz, the window is "
                f"{fmin_hz / 1e12:g}–{fmax_hz / 1e12:g} THz (narrow --fmin/--fmax)"
            )

    def describe(self) -> str:
        if self.table_thz is None:
            z = complex(self.n)
            return f"{z.real:g}" if z.imag == 0 else f"{z.real:g}{z.imag:+g}i"
        ft = self.table_thz[0]
        return f"table {self.source} ({ft.size} points, {ft[0]:g}–{ft[-1]:g} THz)"


def parse_complex_index(text: str) -> complex:
    """``1.95``, ``3.42+0.01i`` or ``3.42+0.01j`` → complex; κ < 0 (gain) is refused."""
    try:
        z = complex(text.strip().replace("i", "j").replace(" ", ""))
    except ValueError:
        raise AnalysisError(
            f"--substrate-index {text!r}: a number such as 1.95 or 3.42+0.01i"
        ) from None
    if not (np.isfinite(z.real) and np.isfinite(z.imag) and z.real > 0 and z.imag >= 0):
        raise AnalysisError(
            f"--substrate-index {text!r}: needs Re > 0 and Im ≥ 0 (ñ = n + iκ, κ ≥ 0 absorbs)"
        )
    return z


@dataclass(frozen=True)
class Geometry:
    """How the probe meets the layer: transmission or reflection, angle, polarization."""

    kind: str = "transmission"
    substrate: SubstrateIndex = SubstrateIndex()
    angle_deg: float = 0.0
    polarization: str = "s"

    def __post_init__(self):
        if self.kind not in GEOMETRIES:
            raise AnalysisError(f"geometry must be one of {', '.join(GEOMETRIES)}")
        if self.polarization not in POLARIZATIONS:
            raise AnalysisError("polarization must be s or p")
        if not (np.isfinite(self.angle_deg) and 0 <= self.angle_deg < 90):
            raise AnalysisError(f"angle of incidence must be in [0, 90) °, got {self.angle_deg}")

    def admittances(self, freq_hz) -> tuple[np.ndarray, np.ndarray]:
        """(a, b): the incidence medium's (air) and the substrate's η at each frequency."""
        nb = self.substrate.at(freq_hz)
        s = np.sin(np.radians(self.angle_deg))
        cos_a = np.sqrt(1.0 - s**2)
        with np.errstate(invalid="ignore"):  # NaN outside an index table
            cos_b = np.sqrt(1.0 - (s / nb) ** 2 + 0j)
        if self.polarization == "s":
            return np.full(nb.shape, cos_a, complex), nb * cos_b
        return np.full(nb.shape, 1.0 / cos_a, complex), nb / cos_b

    def __call__(self, freq_hz, e_w, delta_e_w) -> np.ndarray:
        """y = Z₀·Δσ·d from E(ω) (unexcited) and ΔE(ω) = E*(ω) − E(ω)."""
        a, b = self.admittances(freq_hz)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (e_w + delta_e_w) / e_w
            if self.kind == "transmission":
                return (a + b) * (1.0 / ratio - 1.0)
            return (a * a - b * b) * (1.0 - ratio) / ((a + b) + ratio * (a - b))

    def describe(self) -> str:
        where = "normal incidence" if self.angle_deg == 0 else (
            f"{self.angle_deg:g}° incidence, {self.polarization}-polarized"
        )  # fmt: skip
        return f"{self.kind}, {where}, substrate ñ = {self.substrate.describe()}"

    def small_signal_gain(self, freq_hz) -> np.ndarray:
        """|∂y/∂(ΔE/E)| at ΔE = 0: how a field ratio error maps into y."""
        a, b = self.admittances(freq_hz)
        if self.kind == "transmission":
            return np.abs(a + b)
        return np.abs((a * a - b * b) / (2 * a))


def negative_real_message(geometry: Geometry, re_mean: float, fraction: float) -> str:
    """Why a transmission spectrum with Re Δσ < 0 across the band is refused."""
    return (
        f"Re Δσ is negative across the band ({100 * fraction:.0f} % of frequencies, band "
        f"mean {re_mean:.3g} S/m) in {geometry.kind}: a photoexcited layer in transmission "
        "absorbs (Re Δσ > 0). Check the sign of dE (pump-on minus pump-off), the lock-in "
        "phase (180° off?) and the geometry (reflection data need --geometry reflection)"
    )
