"""One UV-Vis analysis for every front end: absorbance → exciton peaks, or a Tauc gap.

``labctl analyze absorption``, the Absorption procedure's run results and the series
report call :func:`analyze_absorption`. Its rule for the gap: a Tauc fit assumes
band-to-band absorption. On an excitonic spectrum (a heavy-hole exciton found) it lands
above the exciton — not a gap — so ``tauc_gap_ev`` is null there and the fit is kept
only as ``tauc`` with ``is_gap: false`` and the caveat in ``warnings``; the film's
optical transition is then the exciton (``hh_nm``). A bulk-like edge (no exciton) gets
``tauc_gap_ev``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from labctl.errors import AnalysisError

from . import uvvis


@dataclass
class AbsorptionAnalysis:
    peaks: uvvis.ExcitonPeaks | None
    tauc: uvvis.TaucResult | None
    warnings: list[str] = field(default_factory=list)

    @property
    def excitonic(self) -> bool:
        return self.peaks is not None and self.peaks.heavy_hole is not None

    def to_dict(self) -> dict:
        out: dict = {"excitonic": self.excitonic, "hh_nm": None, "lh_nm": None}
        out["peaks"] = None if self.peaks is None else self.peaks.to_dict()
        if self.peaks is not None:
            for key, pk in (("hh", self.peaks.heavy_hole), ("lh", self.peaks.light_hole)):
                if pk is not None:
                    out[f"{key}_nm"] = pk.wavelength_nm
                    out[f"{key}_nm_err"] = pk.wavelength_nm_err
        tauc = None
        if self.tauc is not None:
            tauc = self.tauc.to_dict() | {"is_gap": not self.excitonic}
        out["tauc"] = tauc
        is_gap = self.tauc is not None and not self.excitonic
        out["tauc_gap_ev"] = self.tauc.gap_ev if is_gap else None
        out["tauc_gap_ev_err"] = self.tauc.gap_ev_err if is_gap else None
        out["warnings"] = list(self.warnings)
        return out


def analyze_absorption(
    wavelength_nm,
    absorbance,
    *,
    search_nm: tuple[float, float] = (400.0, 700.0),
    tauc_range_ev: tuple[float, float] | None = None,
    tauc_max_ev: float | None = None,
    thickness_m: float | None = None,
) -> AbsorptionAnalysis:
    """Exciton peaks and the Tauc fit of one absorbance spectrum (NaN points skipped by the
    estimators); a part that cannot be found is a warning, not an error."""
    wl = np.asarray(wavelength_nm, float)
    a = np.asarray(absorbance, float)
    warnings: list[str] = []
    peaks = None
    try:
        peaks = uvvis.find_exciton_peaks(wl, a, search_nm=tuple(search_nm))
        warnings += peaks.warnings
    except AnalysisError as exc:
        warnings.append(f"exciton peaks: {exc}")
    tauc = None
    try:
        tauc = uvvis.tauc_gap(
            wl,
            a,
            fit_range_ev=tuple(tauc_range_ev) if tauc_range_ev else None,
            max_ev=tauc_max_ev,
            thickness_m=thickness_m,
        )
    except AnalysisError as exc:
        warnings.append(f"Tauc gap: {exc}")
    result = AbsorptionAnalysis(peaks, tauc, warnings)
    if tauc is not None and peaks is not None:
        caveat = uvvis.excitonic_tauc_warning(peaks)
        if caveat:
            warnings.append(caveat + " (so no tauc_gap_ev is reported)")
    return result
