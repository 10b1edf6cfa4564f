"""One THz-TDS analysis for every front end: traces → Δσ(ω) → significance → model → result.

``labctl analyze tds``, the TDS procedure's run results, the live fit, the series
report and the GUI's run browser all call :func:`analyze_tds`, so the same data give
the same numbers everywhere. Its rules, in order:

1. Δσ(ω) of the thin film (:func:`labctl.analysis.tds.photoconductivity`) with errors
   from the sweeps' scatter (≥ 3), the time-domain noise model (2) or the pre-pulse
   baseline (1 trace: a lower bound, said in ``warnings`` and ``errors_are_lower_bounds``).
2. Significance first (:func:`labctl.analysis.tds.significance`): a film whose Re Δσ is
   not distinguishable from zero shows *no* fitted value (all ``null``; the fit of the
   noise is kept under ``fit_of_noise``) — never "τ 918 ± 16 738 fs". One trace that
   its lower-bound noise cannot reject is not assessable (``significant: null``).
3. Model: ``auto`` (the default) fits Drude-Smith and Drude-Smith + a bound-charge
   polarizability (σ = −iωε₀χ_b: an exciton resonance far above the band, purely
   inductive in it) and keeps the second only if χ_b is above zero beyond its error
   (p < :data:`SELECTION_P`, :func:`select_model`); the rule, both χ² and the p-value
   are in ``model_selection``. Drude-Smith alone on an excitonic film puts the
   exciton's Im σ into c and N (200 °C: N 3.7e21 against 1.2e21).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from labctl.errors import AnalysisError

from .constants import DEFAULT_EFFECTIVE_MASS, DEFAULT_FMAX_THZ, DEFAULT_FMIN_THZ
from .fitting import FitResult, fit_spectrum
from .tds import Significance, TDSSpectrum, photoconductivity, significance

#: ``model="auto"``: the nested candidates, simplest first
AUTO_MODEL = "auto"
AUTO_CANDIDATES = ("drude-smith", "drude-smith+polarizability")
#: the polarizability is kept when χ_b > 0 with a one-sided p below this
SELECTION_P = 1e-3
#: the fitted quantities of a TDS analysis (each with ``_err``)
FIT_KEYS = (
    "tau_fs",
    "c",
    "N_m3",
    "mobility_cm2_Vs",
    "chi_bound",
    "N_X_m3",
    "f0_THz",
    "gamma_THz",
)
#: the keys always present (``null`` when not measured)
CORE_KEYS = ("tau_fs", "c", "N_m3", "mobility_cm2_Vs")


@dataclass
class TDSAnalysis:
    """Everything one TDS analysis concluded; :meth:`to_dict` is what every front end shows."""

    spectrum: TDSSpectrum
    test: Significance
    fit: FitResult | None
    selection: dict | None
    thickness_m: float
    substrate_index: float
    fit_error: str | None = None
    notes: list[str] = field(default_factory=list)
    #: every candidate model's fit (the chosen one is ``fit``)
    candidates: dict[str, FitResult] = field(default_factory=dict)

    @property
    def significant(self) -> bool | None:
        return self.test.significant

    @property
    def noise_source(self) -> str | None:
        return self.spectrum.noise_source

    @property
    def errors_are_lower_bounds(self) -> bool:
        return self.spectrum.noise_source == "baseline"

    def to_dict(self) -> dict:
        """Flat JSON-ready result: the fit's keys (null when nothing was measured), the
        test, the noise source, the model selection and every warning."""
        spec = self.spectrum
        if self.fit is not None:
            out = self.fit.to_dict()
        else:
            out = {
                "model": None,
                "chi2": None,
                "chi2_red": None,
                "dof": None,
                "success": False,
                "converged": False,
                "warnings": list(spec.warnings),
                "fmin_THz": float(spec.freq_hz.min() / 1e12),
                "fmax_THz": float(spec.freq_hz.max() / 1e12),
            }
            for k in CORE_KEYS:
                out.setdefault(k, None)
                out.setdefault(f"{k}_err", None)
        out["warnings"] = list(self.notes) + list(out["warnings"]) + list(self.test.warnings)
        if self.fit_error:
            out["warnings"].append(f"fit: {self.fit_error}")
        if self.significant is False:
            measured = {k: out.get(k) for k in FIT_KEYS if out.get(k) is not None}
            measured |= {f"{k}_err": out.get(f"{k}_err") for k in list(measured)}
            for k in FIT_KEYS:
                if k in out or k in CORE_KEYS:
                    out[k] = None
                    out[f"{k}_err"] = None
            out["fit_of_noise"] = measured or None
            out["success"] = False
        else:
            out["fit_of_noise"] = None
        if self.test.negative_real:
            out["success"] = False
        out |= self.test.to_dict()
        out |= {
            "noise_source": spec.noise_source,
            "errors_are_lower_bounds": self.errors_are_lower_bounds,
            "n_sweeps": spec.n_sweeps,
            "model_selection": self.selection,
            "conductivity_method": spec.method,
            "thickness_nm": float(f"{self.thickness_m * 1e9:.12g}"),
            "substrate_index": self.substrate_index,
            "n_dropped_low_ref": spec.n_dropped_low_ref,
            "usable_band_THz": (
                [b / 1e12 for b in spec.usable_band_hz] if spec.usable_band_hz else None
            ),
            "echo": (
                {
                    "delay_ps": spec.echo.delay_ps,
                    "relative_amplitude": spec.echo.relative_amplitude,
                    "arrival_ps": spec.echo.arrival_ps,
                }
                if spec.echo
                else None
            ),
        }
        return out


def _fit_kwargs(effective_mass, fit_method, initial, max_nfev, model):
    kw: dict = {"model": model, "effective_mass": effective_mass, "method": fit_method}
    if initial is not None and initial.get(model) is not None:
        kw["initial"] = initial[model]
    if max_nfev is not None:
        kw["max_nfev"] = max_nfev
    return kw


def select_model(fits: dict[str, FitResult]) -> tuple[str, dict]:
    """Between :data:`AUTO_CANDIDATES`: keep the polarizability only if its χ_b is above
    zero beyond its error (one-sided p < :data:`SELECTION_P`, a Wald test on the nested
    parameter). Its error is the honest one (sweep scatter propagated through the fit,
    frequency correlations included); an F-test on χ², whose weights ignore those
    correlations, chose it on a 300 °C film without excitons (p 7.5e-6, χ_b ± err
    0.005 ± 0.005)."""
    small, big = AUTO_CANDIDATES
    a, b = fits.get(small), fits.get(big)
    report: dict = {
        "rule": f"Wald test of chi_bound > 0 (one-sided p < {SELECTION_P:g}) with its fit error",
        "candidates": {
            name: {"chi2": f.chi2, "dof": f.dof, "chi2_red": f.chi2_red, "success": f.success}
            for name, f in fits.items()
        },
        "chi_bound_z": None,
        "p_value": None,
    }
    if a is None or b is None:
        chosen = small if a is not None else big
        report["chosen"] = chosen
        return chosen, report
    chi, err = b.values["chi_bound"], b.errors["chi_bound"]
    z = chi / err if err > 0 and np.isfinite(err) else 0.0
    p = float(stats.norm.sf(z))
    report["chi_bound_z"], report["p_value"] = float(z), p
    keep_big = p < SELECTION_P and b.converged
    chosen = big if keep_big else small
    report["chosen"] = chosen
    return chosen, report


def analyze_tds(
    time_ps,
    e_ref,
    delta_e,
    *,
    thickness_m: float,
    substrate_index: float,
    effective_mass: float = DEFAULT_EFFECTIVE_MASS,
    fmin_hz: float = DEFAULT_FMIN_THZ * 1e12,
    fmax_hz: float = DEFAULT_FMAX_THZ * 1e12,
    model: str = AUTO_MODEL,
    window=None,
    pad_factor: float = 1.0,
    method: str = "exact",
    fit_method: str = "fast",
    initial: dict | None = None,
    max_nfev: int | None = None,
    notes=(),
    sums=None,
    noise: str = "auto",
) -> TDSAnalysis:
    """Analyse one TDS measurement: ``e_ref``/``delta_e`` (n,) one trace or
    (n_sweeps, n) sweeps on ``time_ps``. ``initial`` (model name → fit-unit values) warm
    starts the fits (the live fit). ``sums`` (:class:`labctl.analysis.tds.SweepSums`, ≥ 3
    sweeps) replaces the sweeps by their running sums: the same result to rounding (the
    live fit, which keeps no sweeps). ``noise``: where the errors come from
    (:func:`~labctl.analysis.tds.photoconductivity`'s ``noise``; ``"model"`` is what a TDS
    precision target is judged on). Raises AnalysisError when no answer is possible."""
    spec = photoconductivity(
        time_ps,
        e_ref,
        delta_e,
        thickness_m=thickness_m,
        substrate_index=substrate_index,
        fmin_hz=fmin_hz,
        fmax_hz=fmax_hz,
        window=window,
        pad_factor=pad_factor,
        method=method,
        require_signal=False,
        sums=sums,
        noise=noise,
    )
    test = significance(spec)
    candidates = AUTO_CANDIDATES if model == AUTO_MODEL else (model,)
    fits: dict[str, FitResult] = {}
    errors: dict[str, str] = {}
    for name in candidates:
        try:
            fits[name] = fit_spectrum(
                spec, **_fit_kwargs(effective_mass, fit_method, initial, max_nfev, name)
            )
        except AnalysisError as exc:
            errors[name] = str(exc)
    if not fits:
        message = "; ".join(errors.values())
        if test.significant is not False:
            raise AnalysisError(message)
        return TDSAnalysis(
            spec, test, None, None, thickness_m, substrate_index, message, list(notes)
        )
    selection = None
    if model == AUTO_MODEL:
        chosen, selection = select_model(fits)
    else:
        chosen = model
    return TDSAnalysis(
        spec, test, fits[chosen], selection, thickness_m, substrate_index, None, list(notes), fits
    )


def warm_start(analysis: TDSAnalysis | None) -> dict | None:
    """Fit-unit values of every converged candidate, to warm-start the next analysis."""
    if analysis is None:
        return None
    out = {
        name: np.array([fit.values[n] for n in fit.param_names])
        for name, fit in analysis.candidates.items()
        if fit.converged
    }
    return out or None


#: a run file's header names (the TDS procedure's Parameters) of the sample's numbers
HEADER_NAMES = {
    "thickness_nm": "Film thickness",
    "substrate_index": "Substrate index",
    "effective_mass": "Effective mass",
}


#: where a precision-target run's errors come from (``photoconductivity``'s ``noise``):
#: the time-domain noise model, many degrees of freedom (docs/procedures/tds.md)
TARGET_RUN_NOISE = "model"
#: a run file's header name of the TDS procedure's precision target
TARGET_HEADER = "Precision target"


def noise_for_run(header: dict[str, str], n_sweeps: int) -> str:
    """The ``noise`` a run file is analysed with: :data:`TARGET_RUN_NOISE` when its header
    names a precision target and it holds ≥ 2 sweeps (the errors its target was judged on
    and its run reported), else ``"auto"`` — so every front end reading the file gives the
    run's numbers."""
    targeted = bool(header.get(TARGET_HEADER, "").strip())
    return TARGET_RUN_NOISE if targeted and n_sweeps >= 2 else "auto"


def sample_from_header(header: dict[str, str]) -> dict[str, float | None]:
    """Film thickness (nm), substrate index and m*/mₑ from a run file's header (None where
    absent): every front end reads a run file's sample the same way, with no defaults
    of its own."""
    from .io import header_number

    return {key: header_number(header, name) for key, name in HEADER_NAMES.items()}


def analyze_tds_run_file(path, **options) -> TDSAnalysis:
    """:func:`analyze_tds` of a run file (or any file :func:`labctl.analysis.io.load_tds_csv`
    reads), its sweeps, with the sample (and, for a precision-target run, the noise:
    :func:`noise_for_run`) from its header; ``options`` (e.g. ``thickness_nm``, ``noise``)
    override the header. AnalysisError when a number is missing."""
    from .io import load_tds_csv

    data = load_tds_csv(path)
    sample = sample_from_header(data.header)
    for key in HEADER_NAMES:
        if options.get(key) is not None:
            sample[key] = options.pop(key)
        else:
            options.pop(key, None)
    if sample["effective_mass"] is None:
        sample["effective_mass"] = DEFAULT_EFFECTIVE_MASS
    for key in ("thickness_nm", "substrate_index"):
        if sample[key] is None:
            raise AnalysisError(f"{path}: its header has no '{HEADER_NAMES[key]}'")
    sweeps = data.e_ref_sweeps is not None
    n_sweeps = np.atleast_2d(data.e_ref_sweeps).shape[0] if sweeps else 1
    options.setdefault("noise", noise_for_run(data.header, n_sweeps))
    return analyze_tds(
        data.time_ps,
        data.e_ref_sweeps if sweeps else data.e_ref,
        data.delta_e_sweeps if sweeps else data.delta_e,
        thickness_m=sample["thickness_nm"] * 1e-9,
        substrate_index=sample["substrate_index"],
        effective_mass=sample["effective_mass"],
        notes=data.notes,
        **options,
    )
