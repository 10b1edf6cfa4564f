"""OPTP: −ΔE/E at the THz peak versus pump delay, sweeps averaged, live decay fit.

The gate is parked on the THz peak (found by :func:`~labctl.procedures.alignment.find_thz_peak`
unless given); the pump delay is scanned from ``start_ps`` to ``stop_ps``, with
``step_near_ps`` up to ``near_until_ps`` (the rise and the fast decay) and
``step_far_ps`` after. Each point is read after ``settle_tau`` time constants of
the output filter (slope-aware, :meth:`LockIn.settle`); sweeps alternate direction,
so the lock-in's lag cancels in their mean. E_ref = X_ref − X_pump and
ΔE = 2·X_pump (the pump lock-in sees ΔE/2 of the doubly chopped signal).

After every sweep the mean trace is fitted by a bi-exponential decay and a
long-lived step convolved with a Gaussian instrument response
(:func:`labctl.analysis.optp.fit_decay`), all points weighted equally
(:func:`pooled_error`), and the fit is emitted (``emit('fit', …)``); the OPTP
peak is the fit's maximum (docs/procedures/optp.md: how accurate). With the pump fluence (given, or from
the power meter and the spot size) and the film's absorptance at 400 nm, the
peak −ΔE/E is also given per absorbed photon density (m⁻³).
"""

from __future__ import annotations

import math

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter

from labctl.analysis.optp_analysis import absorptance_from, analyze_optp, pooled_error
from labctl.checking import Rule
from labctl.errors import LabctlError
from labctl.procedures.alignment import AlignedProcedure, OptionalFloatParameter
from labctl.procedures.ranging import (
    RANGING_COLUMNS,
    RangedPair,
    overload_note,
    overload_summary,
    record_point,
)

__all__ = ["OPTP", "pooled_error", "pump_delays"]

#: Pump delay where the OPTP signal is near its largest: the pump lock-in is ranged there.
RANGE_AT_PS = 1.0


def pump_delays(
    start_ps: float, stop_ps: float, step_near_ps: float, near_until_ps: float, step_far_ps: float
) -> np.ndarray:
    """Pump delays: ``step_near_ps`` from start to ``near_until_ps``, ``step_far_ps`` after."""
    if not (step_near_ps > 0 and step_far_ps > 0 and stop_ps > start_ps):
        raise LabctlError(
            f"optp: need steps > 0 and stop > start (start {start_ps}, stop {stop_ps}, "
            f"steps {step_near_ps}/{step_far_ps} ps)"
        )
    split = min(max(near_until_ps, start_ps), stop_ps)
    near = np.arange(start_ps, split, step_near_ps)
    far = np.arange(split, stop_ps + 0.5 * step_far_ps, step_far_ps)
    return np.round(np.concatenate([near, far]), 6)


class OPTP(AlignedProcedure):
    """Optical-pump THz-probe trace at the THz peak with a live decay fit."""

    KIND = "optp"
    OPTIONAL_ROLES = ("power_meter",)
    DATA_COLUMNS = [
        "sweep",
        "pump_delay_ps",
        "X_ref_V",
        "X_pump_V",
        "E_ref",
        "dE",
        "minus_dE_over_E",
        *RANGING_COLUMNS,
    ]

    start_ps = FloatParameter("Pump delay start", units="ps", default=-2.0)
    stop_ps = FloatParameter("Pump delay stop", units="ps", default=10.0)
    step_near_ps = FloatParameter("Step near zero", units="ps", minimum=1e-3, default=0.05)
    near_until_ps = FloatParameter("Fine steps until", units="ps", default=2.0)
    step_far_ps = FloatParameter("Step after", units="ps", minimum=1e-3, default=0.25)
    settle_tau = FloatParameter(
        "Settling before each reading", units="tau", minimum=0.0, maximum=50.0, default=5.0
    )
    sweeps = IntegerParameter("Sweeps", minimum=1, maximum=1000, default=4)
    n_exp = IntegerParameter("Decay exponentials", minimum=1, maximum=4, default=2)
    fluence_uj_cm2 = OptionalFloatParameter(
        "Pump fluence", units="uJ/cm2", minimum=0.0, default=None
    )
    spot_diameter_mm = FloatParameter(
        "Pump spot diameter", units="mm", minimum=0.01, maximum=100.0, default=5.0
    )
    rep_rate_khz = FloatParameter("Repetition rate", units="kHz", minimum=1e-3, default=1.0)
    absorptance_400nm = OptionalFloatParameter(
        "Absorptance at 400 nm", minimum=0.0, maximum=1.0, default=None
    )
    absorbance_400nm = OptionalFloatParameter("Absorbance at 400 nm", minimum=0.0, default=None)

    RULES = (
        Rule(
            ("start_ps", "stop_ps"),
            lambda v: v["start_ps"] < v["stop_ps"],
            "the pump delay scan needs stop > start",
        ),  # fmt: skip
    )

    def execute(self) -> None:
        delays = pump_delays(
            self.start_ps, self.stop_ps, self.step_near_ps, self.near_until_ps, self.step_far_ps
        )
        self.run_results["points_per_sweep"] = int(delays.size)
        pump = self._pump_fluence_and_absorptance()
        self.bring_sample_in()
        self.park_on_thz_peak()
        pump_stage = self.stages.pump
        # range where the signal is near its largest (just after zero delay), with headroom
        pump_stage.move_to_ps(float(np.clip(RANGE_AT_PS, delays[0], delays[-1])))
        self.lockin_pump.range_with_headroom()
        ranged = RangedPair(self.lockin_ref, self.lockin_pump, self.settle_tau)
        ranged.forget()  # what ranging latched
        try:
            self._sweeps(delays, pump, ranged)
        finally:
            overload_summary(self.run_results)

    def _sweeps(
        self, delays: np.ndarray, pump: tuple[float | None, float | None], ranged: RangedPair
    ) -> None:
        pump_stage = self.stages.pump
        signal = np.full((self.sweeps, delays.size), np.nan)
        total = self.sweeps * delays.size
        for s in range(self.sweeps):
            order = range(delays.size) if s % 2 == 0 else range(delays.size - 1, -1, -1)
            pump_stage.move_to_ps(float(delays[order[0]]))
            self.lockin_pump.settle(10.0)
            for k, i in enumerate(order):
                self.check_stop()
                pump_stage.move_to_ps(float(delays[i]))
                reading = ranged.read()
                record_point(self.run_results, reading, s + 1, f"{delays[i]:g} ps")
                x_ref, x_pump = reading.x_ref_v, reading.x_pump_v
                e_ref, de = x_ref - x_pump, 2.0 * x_pump
                signal[s, i] = -de / e_ref if e_ref else math.nan
                self.emit(
                    "results",
                    {
                        "sweep": s + 1,
                        "pump_delay_ps": float(delays[i]),
                        "X_ref_V": x_ref,
                        "X_pump_V": x_pump,
                        "E_ref": e_ref,
                        "dE": de,
                        "minus_dE_over_E": signal[s, i],
                        **reading.columns(),
                    },
                )
                self.progress((s * delays.size + k + 1) / total)
            self._update_fit(delays, signal[: s + 1], *pump)

    # ------------------------------------------------------------------ analysis
    def _update_fit(
        self,
        delays: np.ndarray,
        signal: np.ndarray,
        fluence_j_m2: float | None,
        absorptance: float | None,
    ) -> None:
        """The one OPTP analysis (:func:`~labctl.analysis.optp_analysis.analyze_optp`) of
        the sweeps so far, emitted and kept. Cold-started (one fit per sweep costs a few
        ms), so the run's result is what ``labctl analyze optp`` gives for its file."""
        analysis = analyze_optp(
            delays,
            signal,
            fluence_j_m2=fluence_j_m2,
            absorptance=absorptance,
            substrate_index=self.substrate_index,
            n_exp=self.n_exp,
        )
        result = analysis.to_dict()
        n = analysis.n_sweeps
        record: dict = {
            "sweeps": n,
            "optp_peak": result["optp_peak"],
            "absorbed_photons_m2": result["absorbed_photons_m2"],
        }
        if analysis.decay is not None:
            record["decay"] = result["decay"]
            self.run_results["fit"] = result["decay"]
            self.run_results.pop("fit_error", None)
        else:
            record["error"] = analysis.decay_error
            self.run_results["fit_error"] = analysis.decay_error
        for key in (
            "optp_peak",
            "absorbed_photons_m2",
            "phi_mu_cm2_Vs",
            "phi_mu_cm2_Vs_err",
            "significant",
            "peak_z",
            "peak_p_value",
            "peak_of_noise",
        ):
            self.run_results[key] = result[key]
        self.run_results["sweeps"] = n
        self.run_results["trace"] = {
            "pump_delay_ps": delays.tolist(),
            "minus_dE_over_E": analysis.mean.tolist(),
        }
        self.emit("fit", record)

    def _pump_fluence_and_absorptance(self) -> tuple[float | None, float | None]:
        """Pump fluence (J/m², given or from the power meter and the spot) and the film's
        absorptance at 400 nm (given, or from its absorbance); None where unknown."""
        from labctl.analysis.optp import fluence_j_m2

        absorptance = absorptance_from(self.absorptance_400nm, self.absorbance_400nm)
        if fluence_uj := self.fluence_uj_cm2:
            fluence = fluence_uj * 1e-2  # µJ/cm² → J/m²
        else:
            meter = self.instrument("power_meter")
            if meter is None or not self.spot_diameter_mm:
                fluence = None
            else:
                power_w = meter.power_w
                self.run_results["pump_power_w"] = power_w
                fluence = fluence_j_m2(
                    power_w, self.rep_rate_khz * 1e3, self.spot_diameter_mm * 1e-3
                )
        if fluence is not None:
            self.run_results["fluence_uj_cm2"] = fluence * 1e2
        return fluence, absorptance or None

    # ------------------------------------------------------------------ summary
    @classmethod
    def summary_line(cls, run_results: dict) -> str:
        """One line: ``OPTP: peak at 0.42 ps, −ΔE/E 1.1e-3, decay 0.8/4.1 ps``."""
        peak = run_results.get("optp_peak") or {}
        if not peak:
            return "OPTP: no complete sweep"
        if peak.get("minus_dE_over_E") is None:  # not significant: noise is no peak
            z = run_results.get("peak_z")
            parts = ["peak not significant" + (f" ({z:.2g}σ)" if z is not None else "")]
        else:
            parts = [
                f"peak at {peak['pump_delay_ps']:.2f} ps",
                f"−ΔE/E {peak['minus_dE_over_E']:.2g}",
            ]
        fit = run_results.get("fit") if peak.get("minus_dE_over_E") is not None else None
        if fit:
            parts.append("decay " + "/".join(f"{t:.2g}" for t in fit["lifetimes_ps"]) + " ps")
        elif run_results.get("fit_error"):
            parts.append(f"no decay fit ({run_results['fit_error']})")
        return (
            "OPTP: " + ", ".join(parts) + f", {peak['sweeps']} sweeps" + overload_note(run_results)
        )
