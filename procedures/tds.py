"""THz-TDS of a photoexcited film with a live Drude-Smith fit and precision-driven averaging.

As the experimenter does it: the gate parked on the THz peak, the OPTP peak found
on the pump stage (:mod:`~labctl.procedures.alignment`; either may be given as a
Parameter instead), the pump parked ``pump_offset_ps`` after it (the paper's
THz-TDS: 0.2 ps after the OPTP peak), then the gate scanned over the THz window,
sweeps alternating direction. Each point is read after ``settle_tau`` time
constants; E_ref = X_ref − X_pump and ΔE = 2·X_pump (the pump lock-in sees ΔE/2
of the doubly chopped signal). One row per gate point per sweep:
``sweep,time_ps,X_ref_V,X_pump_V,E_ref,dE`` — what ``labctl analyze tds`` reads.

Every complete sweep goes to a :class:`~labctl.livefit.LiveTDSFit`; its updates
(parameters and errors) are emitted as ``fit`` and kept in ``run_results``.

Precision-driven averaging: ``target`` names fitted parameters' errors
(``tau_fs_err=2``, several comma-separated: all must be met). After at least
``min_sweeps`` the run stops once the live fit meets the target, or after
``max_sweeps`` whichever comes first; ``run_results['stopped_because']`` says which.
An error estimated from the scatter of n sweeps is itself uncertain (ν = n − 1
degrees of freedom: from 3 sweeps it is below a third of the truth one time in 30), and a
rule that stops on the first small one stops on the underestimates; so the target
is met when the error is below it with :data:`TARGET_CONFIDENCE` (the one-sided
χ² bound, :func:`error_upper_factor`).
"""

from __future__ import annotations

import math

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter, Parameter

from labctl.errors import LabctlError
from labctl.procedures.alignment import AlignedProcedure, OptionalFloatParameter, find_optp_peak

#: Fitted quantities a target may name (as ``NAME_err``), from ``FitResult.to_dict()``.
TARGET_PARAMETERS = ("tau_fs", "c", "N_m3", "mobility_cm2_Vs", "N_X_m3", "f0_THz", "gamma_THz")
#: Longest wall time the scan waits at a sweep's end for the live fit of that sweep.
FIT_WAIT_S = 30.0
#: Confidence (one-sided) with which a sweep-scatter error must lie below the target.
TARGET_CONFIDENCE = 0.84


def parse_target(text: str | None) -> dict[str, float]:
    """``"tau_fs_err=2, c_err=0.01"`` → ``{"tau_fs_err": 2.0, "c_err": 0.01}``; clear errors."""
    target: dict[str, float] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = (s.strip() for s in part.partition("="))
        known = ", ".join(f"{p}_err" for p in TARGET_PARAMETERS)
        if not sep or not name.endswith("_err") or name[:-4] not in TARGET_PARAMETERS:
            raise LabctlError(
                f"tds: target {part!r}: expected NAME_err=VALUE with NAME_err one of {known}"
            )
        try:
            limit = float(value)
        except ValueError:
            raise LabctlError(f"tds: target {part!r}: {value!r} is not a number") from None
        if not (math.isfinite(limit) and limit > 0):
            raise LabctlError(f"tds: target {part!r}: the error must be a positive number")
        target[name] = limit
    return target


def error_upper_factor(n_sweeps: int | None, confidence: float = TARGET_CONFIDENCE) -> float:
    """How much larger the true error may be than one estimated from the scatter of
    ``n_sweeps`` sweeps, at ``confidence``: √(ν/χ²_{1−confidence}(ν)), ν = n − 1
    (1 for a single sweep or none: no scatter to doubt)."""
    if n_sweeps is None or n_sweeps < 2:
        return 1.0
    from scipy.stats import chi2

    nu = int(n_sweeps) - 1
    return math.sqrt(nu / float(chi2.ppf(1.0 - confidence, nu)))


def target_shortfall(
    target: dict[str, float], fit: dict | None, n_sweeps: int | None = None
) -> dict[str, float | None]:
    """The target errors not met by ``fit`` (name → the fit's error, None if it has none).

    With ``n_sweeps`` (errors from the scatter of that many sweeps), an error meets its
    target only if ``error_upper_factor(n_sweeps)`` times it does.
    """
    factor = error_upper_factor(n_sweeps)
    missing: dict[str, float | None] = {}
    for name, limit in target.items():
        err = None if fit is None else fit.get(name)
        if err is None or not math.isfinite(err) or err * factor > limit:
            missing[name] = err
    return missing


class TDS(AlignedProcedure):
    """THz-TDS pair (E_ref, ΔE) with a live conductivity fit; stops at a target precision."""

    KIND = "tds"
    DATA_COLUMNS = ["sweep", "time_ps", "X_ref_V", "X_pump_V", "E_ref", "dE"]
    #: The running :class:`~labctl.livefit.LiveTDSFit` (set when the gate scan starts): a
    #: display subscribes to it for the Δσ(ω) arrays the ``fit`` emits leave out.
    live_fit = None

    optp_peak_ps = OptionalFloatParameter(
        "OPTP peak pump delay", units="ps", minimum=-1e3, maximum=1e3, default=None
    )
    pump_offset_ps = FloatParameter("Pump delay after the OPTP peak", units="ps", default=0.2)
    t_start_ps = FloatParameter("Gate start", units="ps", default=-4.0)
    t_stop_ps = FloatParameter("Gate stop", units="ps", default=12.0)
    step_ps = FloatParameter("Gate step", units="ps", minimum=1e-3, default=0.05)
    target = Parameter("Precision target", default="")
    max_sweeps = IntegerParameter("Maximum sweeps", minimum=1, maximum=10000, default=10)
    min_sweeps = IntegerParameter("Minimum sweeps", minimum=1, maximum=10000, default=3)
    effective_mass = FloatParameter("Effective mass", units="m_e", minimum=0.01, default=0.13)

    def execute(self) -> None:
        from labctl.livefit import LiveTDSFit

        target = parse_target(self.target)
        if not self.t_stop_ps > self.t_start_ps:
            raise LabctlError(
                f"tds: gate stop {self.t_stop_ps} ps must be after start {self.t_start_ps} ps"
            )
        n = int(math.floor((self.t_stop_ps - self.t_start_ps) / self.step_ps + 1e-9)) + 1
        times = np.round(self.t_start_ps + self.step_ps * np.arange(n), 9)
        self.run_results["target"] = target
        self.bring_sample_in()
        self.park_on_thz_peak()
        pump_delay = self._park_pump()
        self.lockin_pump.range_with_headroom()
        for lockin in (self.lockin_ref, self.lockin_pump):
            lockin.read_overload()  # forget what ranging latched
        self._updates: list = []
        live = LiveTDSFit(
            self.film_thickness_nm * 1e-9,
            self.substrate_index,
            effective_mass=self.effective_mass,
        )
        live.subscribe(self._updates.append)  # list.append is atomic; emitted from this thread
        self.live_fit = live
        self._complete_sweeps: list[tuple[np.ndarray, np.ndarray]] = []
        try:
            self._scan(times, target, pump_delay)
        finally:
            live.wait_idle(FIT_WAIT_S)
            self._emit_fit_updates()
            live.close()
            self._final_analysis(times)

    def _final_analysis(self, times: np.ndarray) -> None:
        """The run's result: :func:`~labctl.analysis.tds_analysis.analyze_tds` of the
        complete sweeps, cold-started and uncapped — what ``labctl analyze tds`` gives
        for the run file (the live fit's last update was warm-started and capped)."""
        from labctl.analysis.tds_analysis import analyze_tds
        from labctl.errors import AnalysisError

        if not self._complete_sweeps:
            return
        ref = np.array([r for r, _ in self._complete_sweeps])
        de = np.array([d for _, d in self._complete_sweeps])
        try:
            analysis = analyze_tds(
                times,
                ref if len(ref) > 1 else ref[0],
                de if len(de) > 1 else de[0],
                thickness_m=self.film_thickness_nm * 1e-9,
                substrate_index=self.substrate_index,
                effective_mass=self.effective_mass,
            )
        except AnalysisError as exc:
            self.run_results["fit_error"] = str(exc)
            return
        record = analysis.to_dict()
        self.run_results["fit"] = record
        self.run_results["fit_sweeps"] = len(self._complete_sweeps)
        self.run_results["noise_source"] = analysis.noise_source
        self.run_results["significant"] = analysis.significant
        self.run_results.pop("fit_error", None)

    def _park_pump(self) -> float:
        if self.optp_peak_ps is None:
            scan = find_optp_peak(self.stages, self.lockin_pump, between_points=self.check_stop)
            self.run_results["optp_peak_search"] = scan.to_dict()
            peak = scan.peak_ps
        else:
            peak = float(self.optp_peak_ps)
            self.run_results["optp_peak_search"] = {"peak_ps": peak, "given": True}
        self.run_results["optp_peak_ps"] = peak
        delay = peak + self.pump_offset_ps
        self.run_results["tds_pump_delay_ps"] = delay
        self.stages.pump.move_to_ps(delay)
        return delay

    def _scan(self, times: np.ndarray, target: dict[str, float], pump_delay: float) -> None:
        sampling = self.stages.sampling
        e_ref = np.empty(times.size)
        de = np.empty(times.size)
        self.run_results["stopped_because"] = "stopped before the first sweep ended"
        for s in range(self.max_sweeps):
            order = range(times.size) if s % 2 == 0 else range(times.size - 1, -1, -1)
            sampling.move_to_ps(float(times[order[0]]))
            self.lockin_ref.settle(10.0)
            for k, i in enumerate(order):
                self.check_stop()
                self._emit_fit_updates()
                sampling.move_to_ps(float(times[i]))
                x_ref, x_pump = self.read_pair()
                e_ref[i], de[i] = x_ref - x_pump, 2.0 * x_pump
                self.emit(
                    "results",
                    {
                        "sweep": s + 1,
                        "time_ps": float(times[i]),
                        "X_ref_V": x_ref,
                        "X_pump_V": x_pump,
                        "E_ref": e_ref[i],
                        "dE": de[i],
                    },
                )
                self.progress((s + (k + 1) / times.size) / self.max_sweeps)
            self._check_overloads(s + 1)
            self._complete_sweeps.append((e_ref.copy(), de.copy()))
            self.live_fit.add_sweep(times, e_ref, de)
            self.run_results["sweeps"] = s + 1
            if self._target_met(target, s + 1):
                return
        fit = self.run_results.get("fit")
        scatter_sweeps = self._scatter_sweeps()
        missing = target_shortfall(target, fit, scatter_sweeps)
        factor = error_upper_factor(scatter_sweeps)
        if target:
            detail = ", ".join(
                f"{name} {_g(err)}"
                + (
                    f" (at {TARGET_CONFIDENCE:.0%} confidence up to {_g(err * factor)})"
                    if err is not None and err <= target[name] < err * factor
                    else ""
                )
                + f" > {_g(target[name])}"
                for name, err in missing.items()
            )
            self.run_results["stopped_because"] = (
                f"max_sweeps {self.max_sweeps} reached, {detail}"
                if missing
                else f"max_sweeps {self.max_sweeps} reached, target met"
            )
        else:
            self.run_results["stopped_because"] = f"max_sweeps {self.max_sweeps} done (no target)"

    def _target_met(self, target: dict[str, float], sweeps: int) -> bool:
        """Wait (bounded) for the fit of these sweeps, publish it; True once the target is met."""
        self.live_fit.wait_idle(FIT_WAIT_S)
        self._emit_fit_updates()
        if not target or sweeps < self.min_sweeps:
            return False
        fit = self.run_results.get("fit")
        if fit is None or self.run_results.get("fit_sweeps") != sweeps:
            return False  # no fit of these sweeps yet: decide after the next one
        if target_shortfall(target, fit, self._scatter_sweeps()):
            return False
        got = ", ".join(f"{name} {_g(fit[name])}" for name in target)
        wanted = ", ".join(f"{name}={_g(v)}" for name, v in target.items())
        self.run_results["stopped_because"] = (
            f"target {wanted} reached after {sweeps} sweeps: {got}"
        )
        return True

    def _scatter_sweeps(self) -> int | None:
        """The sweeps the live fit's errors come from when they are their scatter."""
        if self.run_results.get("noise_source") == "sweep-scatter":
            return self.run_results.get("fit_sweeps")
        return None

    def _emit_fit_updates(self) -> None:
        """Emit (in this thread) the live fit's updates published since the last call."""
        updates = getattr(self, "_updates", None)
        while updates:
            update = updates.pop(0)
            record = update.to_dict()
            self.emit("fit", record)
            if update.ok:
                self.run_results["fit"] = record["fit"]
                self.run_results["fit_sweeps"] = update.n_sweeps
                self.run_results["noise_source"] = update.noise_source
                if update.freq_hz is not None and update.sigma is not None:
                    self.run_results["spectrum"] = _compact_spectrum(update)
                history = self.run_results.setdefault("fit_history", [])
                history.append(
                    {
                        "sweeps": update.n_sweeps,
                        **{
                            key: record["fit"].get(key)
                            for key in ("tau_fs", "tau_fs_err", "c", "c_err", "N_m3", "N_m3_err")
                        },
                    }
                )
            else:
                self.run_results["fit_error"] = update.error

    def _check_overloads(self, sweep: int) -> None:
        for lockin in (self.lockin_ref, self.lockin_pump):
            if overloads := lockin.read_overload():
                self.run_results.setdefault("overloads", []).append(
                    {"sweep": sweep, "lockin": lockin.name, "overloads": overloads}
                )

    # ------------------------------------------------------------------ summary
    @classmethod
    def summary_line(cls, run_results: dict) -> str:
        """``TDS: τ 44 ± 2 fs, c −0.87 ± 0.01, N 8.4e21 ± 2e19 m⁻³, 9 sweeps (target reached)``."""
        fit = run_results.get("fit")
        sweeps = run_results.get("sweeps", 0)
        why = run_results.get("stopped_because", "")
        if why.startswith("target"):
            how = "target reached"
        elif why.startswith("max_sweeps") and run_results.get("target"):
            how = "target not reached"
        else:
            how = ""
        tail = f"{sweeps} sweeps" + (f" ({how})" if how else "")
        if not fit:
            return f"TDS: no fit ({run_results.get('fit_error', 'no complete sweep')}), {tail}"
        if fit.get("significant") is False:
            p = fit.get("significance_p_value")
            return f"TDS: no significant photoconductivity (p = {_g(p)}), {tail}"

        def pm(key: str, fmt: str) -> str:
            value, err = fit.get(key), fit.get(f"{key}_err")
            if value is None:
                return "—"
            text = format(value, fmt).replace("-", "−")
            return text + (f" ± {err:.2g}" if err is not None else "")

        model = fit.get("model")
        extra = f", {model}" if model and model != "drude-smith" else ""
        return (
            f"TDS: τ {pm('tau_fs', '.3g')} fs, c {pm('c', '.2f')}, "
            f"N {pm('N_m3', '.3g')} m⁻³{extra}, {tail}"
        )


def _g(value) -> str:
    return "none" if value is None else f"{value:.3g}"


def _compact_spectrum(update) -> dict:
    """Δσ(ω) of the last fit for reports: THz, Re/Im, error and model, rounded lists."""

    def r(a):
        return [float(f"{x:.5g}") for x in np.asarray(a, dtype=float)]

    sigma = np.asarray(update.sigma)
    spectrum = {"freq_THz": r(np.asarray(update.freq_hz) / 1e12), "re": r(sigma.real)}
    spectrum["im"] = r(sigma.imag)
    if update.sigma_err is not None:
        spectrum["err"] = r(np.abs(update.sigma_err))
    if update.model_sigma is not None:
        model = np.asarray(update.model_sigma)
        spectrum["model_re"], spectrum["model_im"] = r(model.real), r(model.imag)
    return spectrum
