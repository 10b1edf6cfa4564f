"""UV-Vis absorbance of a film: dark, reference (the blank slot) and sample spectra.

``A = −log₁₀((S − D)/(R − D))`` (Chen et al., Small 2023, Fig. 2: the heavy-
and light-hole excitons of the as-made platelets, the bulk-like edge after
350 °C). The dark spectrum is taken with the light source's shutter closed
(the spectrometer's Lamp Enable line), the reference through the blank
substrate in ``reference_slot``, all at the same integration time and number
of averages. One row per wavelength is recorded; the exciton peaks (or, for a
featureless edge, the direct Tauc gap) go to the run results, with a warning
for every saturated pixel range. ``docs/procedures/absorption.md`` is the
reference.
"""

from __future__ import annotations

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter

from labctl.analysis import uvvis
from labctl.checking import Rule
from labctl.errors import LabctlError

from .base import StationProcedure


class Absorption(StationProcedure):
    """Dark, blank and film spectra → absorbance, exciton peaks or Tauc gap."""

    KIND = "absorption"
    ROLES = ("spectrometer", "stages")

    integration_time_ms = FloatParameter(
        "Integration time", units="ms", minimum=1, maximum=65535, default=100
    )
    averages = IntegerParameter("Scans averaged per spectrum", minimum=1, maximum=1000, default=10)
    reference_slot = IntegerParameter("Reference (blank) slot", minimum=0, maximum=64, default=0)
    wavelength_min_nm = FloatParameter(
        "Shortest wavelength recorded", units="nm", minimum=0, maximum=3000, default=380
    )
    wavelength_max_nm = FloatParameter(
        "Longest wavelength recorded", units="nm", minimum=0, maximum=3000, default=850
    )

    RULES = (
        Rule(
            ("wavelength_min_nm", "wavelength_max_nm"),
            lambda v: v["wavelength_min_nm"] < v["wavelength_max_nm"],
            "the wavelength range must have its minimum below its maximum",
        ),  # fmt: skip
    )

    DATA_COLUMNS = [
        "wavelength_nm",
        "dark_counts",
        "reference_counts",
        "sample_counts",
        "absorbance",
    ]

    def __init__(self, station=None, **kwargs) -> None:
        self._spectrometer = None
        self._sample_stage = None
        super().__init__(station, **kwargs)

    def execute(self) -> None:
        spec = self.station["spectrometer"]
        sample_stage = self.station["stages"].sample
        if self.slot == self.reference_slot:
            raise LabctlError(
                f"absorption: the sample slot {self.slot} is the reference slot; "
                "choose a film's slot or another --reference-slot"
            )
        if not self.wavelength_min_nm < self.wavelength_max_nm:
            raise LabctlError(
                f"absorption: wavelength range {self.wavelength_min_nm:g}–"
                f"{self.wavelength_max_nm:g} nm is empty"
            )
        wl = spec.wavelengths_nm()
        keep = (wl >= self.wavelength_min_nm) & (wl <= self.wavelength_max_nm)
        if keep.sum() < 2:
            raise LabctlError(
                f"absorption: {spec.model} covers {wl.min():.0f}–{wl.max():.0f} nm, "
                f"not {self.wavelength_min_nm:g}–{self.wavelength_max_nm:g} nm"
            )
        it = self.integration_time_ms / 1000.0
        n = int(self.averages)
        self._spectrometer = spec
        masks: dict[str, np.ndarray] = {}

        def take(what: str, acquire) -> np.ndarray:
            self.check_stop()
            self.phase(f"{what} spectrum: {n} × {self.integration_time_ms:g} ms")
            counts = acquire()
            masks[what] = spec.saturated(counts)
            return counts

        dark = take("dark", lambda: spec.acquire_dark(it, averages=n))
        self.progress(1 / 3)
        self._sample_stage = sample_stage
        sample_stage.move_to_slot(int(self.reference_slot))
        reference = take("reference", lambda: spec.acquire(it, averages=n))
        self.progress(2 / 3)
        sample_stage.move_to_slot(int(self.slot))
        sample = take("sample", lambda: spec.acquire(it, averages=n))
        a = uvvis.absorbance(sample, reference, dark)
        a[masks["reference"] | masks["sample"]] = np.nan  # a clipped pixel has no absorbance
        saturated = {what: int(np.count_nonzero(mask[keep])) for what, mask in masks.items()}
        self.emit(
            "batch results",
            {
                "wavelength_nm": wl[keep],
                "dark_counts": dark[keep],
                "reference_counts": reference[keep],
                "sample_counts": sample[keep],
                "absorbance": a[keep],
            },
        )
        self.progress(1.0)
        self.run_results.update(self.analyse(wl[keep], a[keep], saturated))

    def analyse(self, wl: np.ndarray, a: np.ndarray, saturated: dict[str, int]) -> dict:
        """The one absorption analysis (:func:`~labctl.analysis.absorption_analysis.
        analyze_absorption`: exciton peaks, a Tauc gap only for a bulk-like edge) and
        every warning (saturation, invalid points)."""
        warnings = [
            f"{what} spectrum: {count} saturated pixels, absorbance not valid there "
            "(shorten the integration time)"
            for what, count in saturated.items()
            if count
        ]
        invalid = int(np.count_nonzero(~np.isfinite(a)))
        if invalid:
            warnings.append(
                f"{invalid} points without valid absorbance (saturated, S ≤ D or R ≤ D)"
            )
        from labctl.analysis.absorption_analysis import analyze_absorption

        analysis = analyze_absorption(wl, a)
        out: dict = {
            "slot": int(self.slot),
            "reference_slot": int(self.reference_slot),
            "saturated_pixels": saturated,
        }
        out |= analysis.to_dict()
        out["warnings"] = warnings + out["warnings"]
        return out

    def make_safe(self) -> None:
        """Sample stage stopped; light-source shutter open again (``acquire_dark`` reopens it;
        this is the backstop). Both are tried; what failed is reported together."""
        problems: list[str] = []
        if self._sample_stage is not None:
            try:
                self._sample_stage.stop()
            except LabctlError as exc:
                problems.append(f"sample stage not stopped: {exc}")
        spec = self._spectrometer
        if spec is not None and spec.lamp_shutter and spec.shutter_open is not True:
            try:
                spec.shutter_open = True
            except LabctlError as exc:
                problems.append(f"lamp shutter not reopened: {exc}")
        if problems:  # each names its instrument (the drivers' errors do)
            raise LabctlError("; ".join(problems))

    @classmethod
    def summary_line(cls, run_results: dict) -> str:
        head = f"absorption slot {run_results.get('slot', '?')}"
        hh, lh = run_results.get("hh_nm"), run_results.get("lh_nm")
        if hh is not None:
            line = f"{head}: HH exciton {hh:.1f} ± {run_results.get('hh_nm_err', 0.0):.2f} nm"
            if lh is not None:
                line += f", LH {lh:.1f} ± {run_results.get('lh_nm_err', 0.0):.2f} nm"
        elif run_results.get("tauc_gap_ev") is not None:
            line = (
                f"{head}: no exciton (bulk-like edge), Tauc gap "
                f"{run_results['tauc_gap_ev']:.3f} ± {run_results.get('tauc_gap_ev_err', 0.0):.3f} eV"
            )
        else:
            line = f"{head}: neither exciton peaks nor a Tauc gap found"
        n_warn = len(run_results.get("warnings") or [])
        return line + (f" ({n_warn} warnings in the run summary)" if n_warn else "")
