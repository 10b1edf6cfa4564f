"""THz-TDS of a photoexcited film with a live Drude-Smith fit and precision-driven averaging.

As the experimenter does it: the gate parked on the THz peak, the OPTP peak found
on the pump stage (:mod:`~labctl.procedures.alignment`; either may be given as a
Parameter instead), the pump parked ``pump_offset_ps`` after it (the paper's
THz-TDS: 0.2 ps after the OPTP peak), then the gate scanned over the THz window,
sweeps alternating direction (the grid: the Parameters, else :data:`FULL_GATE_PS`, or
the coarser :data:`TARGET_GATE_PS` with a target). Each point is read after
``settle_tau`` time constants, re-ranged and read again on a lock-in overload
(:mod:`~labctl.procedures.ranging`); E_ref = X_ref − X_pump and ΔE = 2·X_pump (the pump
lock-in sees ΔE/2 of the doubly chopped signal). One row per gate point per sweep:
``sweep,time_ps,X_ref_V,X_pump_V,E_ref,dE,sens_ref_V,sens_pump_V,overloaded`` — what
``labctl analyze tds`` reads. N's error includes where the pump is parked
(:mod:`labctl.analysis.parking`): the same offset in every sweep, which no averaging removes.

Every complete sweep goes to a :class:`~labctl.livefit.LiveTDSFit`; its updates
(parameters and errors) are emitted as ``fit`` and kept in ``run_results``.

Precision-driven averaging: ``target`` names fitted parameters' errors
(``tau_fs_err=2``, several comma-separated: all must be met). After at least
``min_sweeps`` (and 2) the run stops once the target is met, or after ``max_sweeps``
whichever comes first; ``run_results['stopped_because']`` says which. A target is judged
on the errors of the time-domain noise model of the sweeps kept so far
(:data:`TARGET_NOISE`: :func:`~labctl.analysis.tds_analysis.analyze_tds` with
``noise="model"``), and those are the errors the run reports. Why not the scatter of
the sweeps: from n sweeps τ's error has n − 1 degrees of freedom — from 3 it is
Student-t with 2, a tenth of the truth now and then — and a rule that stops on the first
small one stops on the underestimates (measured: stopped-τ pull std 1.65, a pull of 6.5
over 40 seeds; an 84 % χ² bound on top cost sweeps and did not cure it). The noise
model's few parameters are fitted to every point of every sweep (many degrees of
freedom), E_ref's and ΔE's shared noise included, so its error neither scatters like that
nor needs a confidence factor: 300 °C, τ ± 2 fs, 40 seeds — 3 sweeps in 0.30 of the full
4-sweep scan's time, stopped-τ pull std 0.95, max 2.5 (benchmarks/precision_time.py,
docs/procedures/tds.md).
One sweep has only a baseline error (no drift, no jitter): a run never stops on it.
"""

from __future__ import annotations

import math

import numpy as np
from pymeasure.experiment import BooleanParameter, FloatParameter, IntegerParameter, Parameter

from labctl.analysis.parking import with_parking_uncertainty
from labctl.analysis.tds_analysis import TARGET_RUN_NOISE
from labctl.checking import Rule
from labctl.errors import LabctlError
from labctl.procedures.alignment import AlignedProcedure, OptionalFloatParameter, find_optp_peak
from labctl.procedures.ranging import (
    RANGING_COLUMNS,
    RangedPair,
    overload_note,
    overload_summary,
    record_point,
)

#: Fitted quantities a target may name (as ``NAME_err``), from ``FitResult.to_dict()``.
TARGET_PARAMETERS = ("tau_fs", "c", "N_m3", "mobility_cm2_Vs", "N_X_m3", "f0_THz", "gamma_THz")
#: Longest wall time the scan waits at a sweep's end for the live fit of that sweep.
FIT_WAIT_S = 30.0
#: Confidence (one-sided) with which an error from the scatter of n sweeps lies below a
#: target in :func:`target_shortfall` given ``n_sweeps`` (not the procedure's rule, which
#: judges the noise model's errors: many degrees of freedom, no factor)
TARGET_CONFIDENCE = 0.84
#: Where the errors a target is judged on (and a target run reports) come from:
#: :func:`labctl.analysis.tds.photoconductivity`'s ``noise`` (every front end reading the
#: run file uses the same, :func:`labctl.analysis.tds_analysis.noise_for_run`)
TARGET_NOISE = TARGET_RUN_NOISE
#: The gate grid (start, stop, step) in ps when the Parameters leave it unset: the lab's
#: full scan (the science's "0.05 ps steps over 15–30 ps"; the 13 ps substrate echo in)
FULL_GATE_PS = (-4.0, 12.0, 0.05)
#: ... and with a precision target: the pulse and its ringing only, sampled to 3.3 THz
#: (above ZnTe's 2.6 THz cut-off; the fit uses 0.3–2.2 THz). A third of the points per
#: sweep: the 300 °C film reaches τ ± 2 fs in 0.30 of the full 4-sweep scan's virtual
#: time (benchmarks/precision_time.py, docs/procedures/tds.md)
TARGET_GATE_PS = (-2.0, 8.0, 0.15)
#: Error sources a target may be judged on: the time-domain noise model of ≥ 2 sweeps; a
#: baseline error (one sweep) is 3.5–6.3× too small (issue 16) — a run never stops on it.
STOP_ON_NOISE_SOURCES = ("noise-model",)


def parse_target(text: str | dict | None) -> dict[str, float]:
    """``"tau_fs_err=2, c_err=0.01"`` → ``{"tau_fs_err": 2.0, "c_err": 0.01}``; clear errors.
    A plan may write the same as a YAML mapping (``{tau_fs_err: 2}``)."""
    if isinstance(text, dict):
        text = ", ".join(f"{name}={value}" for name, value in text.items())
    elif text is not None and not isinstance(text, str):
        raise LabctlError(f"tds: target {text!r}: expected text like 'tau_fs_err=2'")
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
    DATA_COLUMNS = ["sweep", "time_ps", "X_ref_V", "X_pump_V", "E_ref", "dE", *RANGING_COLUMNS]
    #: The running :class:`~labctl.livefit.LiveTDSFit` (set when the gate scan starts): a
    #: display subscribes to it for the Δσ(ω) arrays the ``fit`` emits leave out.
    live_fit = None

    optp_peak_ps = OptionalFloatParameter(
        "OPTP peak pump delay", units="ps", minimum=-1e3, maximum=1e3, default=None
    )
    pump_offset_ps = FloatParameter("Pump delay after the OPTP peak", units="ps", default=0.2)
    # unset: FULL_GATE_PS, or TARGET_GATE_PS when a precision target is given
    t_start_ps = OptionalFloatParameter("Gate start", units="ps", default=None)
    t_stop_ps = OptionalFloatParameter("Gate stop", units="ps", default=None)
    step_ps = OptionalFloatParameter("Gate step", units="ps", minimum=1e-3, default=None)
    target = Parameter("Precision target", default="")
    max_sweeps = IntegerParameter("Maximum sweeps", minimum=1, maximum=10000, default=10)
    min_sweeps = IntegerParameter("Minimum sweeps", minimum=1, maximum=10000, default=3)
    effective_mass = FloatParameter("Effective mass", units="m_e", minimum=0.01, default=0.13)
    #: both stages move together: every gate point probes the same pump-probe delay
    #: (pump delay + gate delay constant, gate zero at the THz peak), the scan of
    #: Kindt & Schmuttenmaer (1999) for a Δσ that changes within the THz pulse
    pump_locked_to_gate = BooleanParameter("Pump locked to the gate", default=False)

    RULES = (
        Rule(
            ("t_start_ps", "t_stop_ps"),
            lambda v: v["t_start_ps"] < v["t_stop_ps"],
            "the gate stop must be after the gate start",
        ),  # fmt: skip
        Rule(
            ("min_sweeps", "max_sweeps"),
            lambda v: v["min_sweeps"] <= v["max_sweeps"],
            "min_sweeps must not exceed max_sweeps",
            when_all_given=True,
        ),  # fmt: skip
        Rule(
            ("target",),
            lambda v: parse_target(v["target"]) is not None,
            "a precision target like tau_fs_err=3",
        ),  # fmt: skip
    )

    def execute(self) -> None:
        from labctl.livefit import LiveTDSFit

        target = parse_target(self.target)
        times = self.gate_delays_ps(target)
        self.run_results["target"] = target
        self.bring_sample_in()
        gate_zero = self.park_on_thz_peak()
        pump_delay = self._park_pump()
        self.run_results["scan_mode"] = (
            "pump locked to the gate (constant pump-probe delay)"
            if self.pump_locked_to_gate
            else "gate scanned, pump parked (quasi-static assumption)"
        )
        self.lockin_pump.range_with_headroom()
        self._ranged = RangedPair(self.lockin_ref, self.lockin_pump, self.settle_tau)
        self._ranged.forget()  # what ranging latched
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
            self._scan(times, target, pump_delay, gate_zero)
        finally:
            overload_summary(self.run_results)
            live.wait_idle(FIT_WAIT_S)
            self._emit_fit_updates()
            live.close()
            self._final_analysis(times)

    def _final_analysis(self, times: np.ndarray) -> None:
        """The run's result: :func:`~labctl.analysis.tds_analysis.analyze_tds` of the
        complete sweeps, cold-started and uncapped — what ``labctl analyze tds`` gives
        for the run file (``--noise model`` for a target run: the errors its target was
        judged on; the live fit's last update was warm-started and capped)."""
        from labctl.errors import AnalysisError

        if not self._complete_sweeps:
            return
        noise = self._errors_from(len(self._complete_sweeps))
        try:
            analysis = self._analysis(times, noise)
        except AnalysisError as exc:
            self.run_results["fit_error"] = str(exc)
            return
        # N's error: the pump's parking too (labctl.analysis.parking), as in the live fit
        record = with_parking_uncertainty(analysis.to_dict(), getattr(self, "_parking_rel_sd", 0.0))
        self.run_results["fit"] = record
        self.run_results["fit_sweeps"] = len(self._complete_sweeps)
        self.run_results["noise_source"] = analysis.noise_source
        self.run_results["significant"] = analysis.significant
        self.run_results.pop("fit_error", None)

    def _errors_from(self, n_sweeps: int) -> str:
        """The analysis's ``noise``: :data:`TARGET_NOISE` for a target run with ≥ 2 sweeps."""
        return TARGET_NOISE if parse_target(self.target) and n_sweeps >= 2 else "auto"

    def _analysis(self, times: np.ndarray, noise: str):
        """:func:`~labctl.analysis.tds_analysis.analyze_tds` of the complete sweeps."""
        from labctl.analysis.tds_analysis import analyze_tds

        ref = np.array([r for r, _ in self._complete_sweeps])
        de = np.array([d for _, d in self._complete_sweeps])
        return analyze_tds(
            times,
            ref if len(ref) > 1 else ref[0],
            de if len(de) > 1 else de[0],
            thickness_m=self.film_thickness_nm * 1e-9,
            substrate_index=self.substrate_index,
            effective_mass=self.effective_mass,
            noise=noise,
        )

    def gate_delays_ps(self, target: dict | None = None) -> np.ndarray:
        """The gate grid: the Parameters where set, else :data:`TARGET_GATE_PS` with a
        precision target and :data:`FULL_GATE_PS` without (recorded in run results)."""
        grid = TARGET_GATE_PS if target else FULL_GATE_PS
        start, stop, step = (
            grid[k] if value is None else float(value)
            for k, value in enumerate((self.t_start_ps, self.t_stop_ps, self.step_ps))
        )
        if not stop > start:
            raise LabctlError(f"tds: gate stop {stop} ps must be after start {start} ps")
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        self.run_results["gate_ps"] = {"start": start, "stop": stop, "step": step, "points": n}
        return np.round(start + step * np.arange(n), 9)

    def _park_pump(self) -> float:
        if self.optp_peak_ps is None:
            scan = find_optp_peak(self.stages, self.lockin_pump, between_points=self.check_stop)
            for note in scan.notes:  # a peak at a window's edge was searched again: say so
                self.phase(note)
            self.run_results["optp_peak_search"] = scan.to_dict()
            peak = scan.peak_ps
        else:
            peak = float(self.optp_peak_ps)
            self.run_results["optp_peak_search"] = {"peak_ps": peak, "given": True}
        self.run_results["optp_peak_ps"] = peak
        delay = peak + self.pump_offset_ps
        self.run_results["tds_pump_delay_ps"] = delay
        self._parking_rel_sd = self._parking_uncertainty(delay)
        self.stages.pump.move_to_ps(delay)
        return delay

    def _parking_uncertainty(self, delay_ps: float) -> float:
        """σ_N/N from where the pump is parked (:mod:`labctl.analysis.parking`), with
        d ln g/dt from a decay fit of this run's OPTP peak scan (else the default)."""
        from labctl.analysis import parking
        from labctl.analysis.optp import fit_decay
        from labctl.errors import AnalysisError

        scan = self.run_results.get("optp_peak_search") or {}
        slope = parking.DEFAULT_LOG_SLOPE_PER_PS
        source = "default"
        if scan.get("positions_ps"):
            try:
                fit = fit_decay(
                    np.asarray(scan["positions_ps"]), 2.0 * np.asarray(scan["values_V"]), n_exp=2
                )
                slope, source = parking.log_slope_per_ps(fit.evaluate, delay_ps), "OPTP scan fit"
            except (AnalysisError, ValueError, RuntimeError):
                pass
        sd_ps = parking.parking_delay_sd_ps()
        rel = parking.density_rel_sd(slope, sd_ps)
        self.run_results["pump_parking"] = {
            "delay_sd_fs": 1e3 * sd_ps,
            "log_slope_per_ps": slope,
            "log_slope_from": source,
            "N_rel_sd": rel,
        }
        return rel

    def _scan(
        self, times: np.ndarray, target: dict[str, float], pump_delay: float, gate_zero: float
    ) -> None:
        sampling = self.stages.sampling
        locked = bool(self.pump_locked_to_gate)
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
                if locked:  # pump delay + (gate − gate zero) stays pump_delay
                    self.stages.pump.move_to_ps(pump_delay - (float(times[i]) - gate_zero))
                sampling.move_to_ps(float(times[i]))
                reading = self._ranged.read()
                record_point(self.run_results, reading, s + 1, f"{times[i]:g} ps")
                x_ref, x_pump = reading.x_ref_v, reading.x_pump_v
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
                        **reading.columns(),
                    },
                )
                self.progress((s + (k + 1) / times.size) / self.max_sweeps)
            self._complete_sweeps.append((e_ref.copy(), de.copy()))
            self.live_fit.add_sweep(times, e_ref, de)
            self.run_results["sweeps"] = s + 1
            if self._target_met(target, times, s + 1):
                return
        if not target:
            self.run_results["stopped_because"] = f"max_sweeps {self.max_sweeps} done (no target)"
            return
        judged = self.run_results.get("target_fit")
        if judged is None:
            self.run_results["stopped_because"] = (
                f"max_sweeps {self.max_sweeps} reached, target not assessable: "
                + self.run_results.get(
                    "target_error",
                    "one sweep's errors come from its baseline and leave out drift and "
                    "jitter (a target is judged on the noise model of ≥ 2 sweeps)",
                )
            )
            return
        if judged.get("significant") is False:
            self.run_results["stopped_because"] = (
                f"max_sweeps {self.max_sweeps} reached, target not reached: no significant "
                f"photoconductivity in {judged['sweeps']} sweeps "
                f"(p = {_g(judged.get('significance_p_value'))}): the values are null"
            )
            return
        missing = target_shortfall(target, judged)
        detail = ", ".join(
            f"{name} {_g(err)} > {_g(target[name])}" for name, err in missing.items()
        )
        self.run_results["stopped_because"] = (
            f"max_sweeps {self.max_sweeps} reached, {detail}"
            if missing
            else f"max_sweeps {self.max_sweeps} reached, target met"
        )

    def _target_met(self, target: dict[str, float], times: np.ndarray, sweeps: int) -> bool:
        """Wait (bounded) for the live fit of these sweeps and publish it; then judge the
        target on the noise model's errors of the sweeps so far (``target_fit``): True
        once it is met (at least ``min_sweeps`` and 2 sweeps)."""
        from labctl.errors import AnalysisError

        self.live_fit.wait_idle(FIT_WAIT_S)
        self._emit_fit_updates()
        if not target or sweeps < max(2, self.min_sweeps):
            return False
        try:
            analysis = self._analysis(times, TARGET_NOISE)
        except AnalysisError as exc:
            self.run_results["target_error"] = f"no fit of {sweeps} sweeps ({exc})"
            return False
        judged = with_parking_uncertainty(analysis.to_dict(), getattr(self, "_parking_rel_sd", 0.0))
        self.run_results["target_fit"] = {
            "sweeps": sweeps,
            "noise_source": analysis.noise_source,
            "significant": judged.get("significant"),
            "significance_p_value": judged.get("significance_p_value"),
            **{name: judged.get(name) for name in target},
        }
        if analysis.noise_source not in STOP_ON_NOISE_SOURCES or target_shortfall(target, judged):
            return False
        got = ", ".join(f"{name} {_g(judged[name])}" for name in target)
        wanted = ", ".join(f"{name}={_g(v)}" for name, v in target.items())
        self.run_results["stopped_because"] = (
            f"target {wanted} reached after {sweeps} sweeps: {got}"
        )
        return True

    def _emit_fit_updates(self) -> None:
        """Emit (in this thread) the live fit's updates published since the last call."""
        updates = getattr(self, "_updates", None)
        while updates:
            update = updates.pop(0)
            record = update.to_dict()
            if update.ok and record.get("fit"):  # N's error: the pump's parking too
                record["fit"] = with_parking_uncertainty(
                    record["fit"], getattr(self, "_parking_rel_sd", 0.0)
                )
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
        tail = f"{sweeps} sweeps" + (f" ({how})" if how else "") + overload_note(run_results)
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
