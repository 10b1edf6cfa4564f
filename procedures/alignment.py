"""Alignment steps every THz procedure shares: the THz peak and the OPTP peak.

Plain functions over drivers, callable from any procedure (OPTP, TDS, a series):

* :func:`find_thz_peak` — the gate (sampling stage) delay of the THz field's
  maximum, with the pump far before zero delay: a coarse scan over the window,
  then a fine one around its maximum, each located by
  :func:`~labctl.analysis.peaks.parabolic_peak`;
* :func:`find_optp_peak` — with the gate parked on the THz peak, the pump delay
  where −ΔE is largest: a scan over the rise and the fast decay, run forth and
  back with the two passes added (the lock-in's lag, which shifts a one-way scan
  by about one time constant, cancels), located as the maximum of a decay fit
  (a bi-exponential ⊗ a Gaussian IRF, as the OPTP procedure's fit).

``between_points()`` (optional) is called before every point: a procedure passes
its stop check there, so an abort ends alignment within one point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pymeasure.experiment import FloatParameter

from labctl.analysis.peaks import parabolic_peak, spline_vertex
from labctl.errors import AnalysisError, InstrumentError
from labctl.procedures.base import StationProcedure

#: The pump well after the THz probe: no photoexcitation seen while finding the THz peak.
PUMP_BLOCKED_PS = -5.0


@dataclass
class PeakScan:
    """Where a peak search ended and what it saw (for run results and plots)."""

    peak_ps: float
    coarse_ps: float
    positions_ps: list[float] = field(default_factory=list)
    values_v: list[float] = field(default_factory=list)
    #: what the search had to do (e.g. a repeated scan around a peak at an edge)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {
            "peak_ps": self.peak_ps,
            "coarse_ps": self.coarse_ps,
            "positions_ps": list(self.positions_ps),
            "values_V": list(self.values_v),
        }
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def _grid(start: float, stop: float, step: float) -> np.ndarray:
    return np.arange(start, stop + 0.5 * step, step)


def _tick(between_points: Callable[[], None] | None) -> None:
    if between_points is not None:
        between_points()


def read_x(lockin, n_tau: float = 3.0) -> float:
    """X after the output filter has settled ``n_tau`` time constants (slope-aware)."""
    lockin.settle(n_tau)
    return lockin.read_xy()[0]


def gate_scan(sampling, lockin, delays_ps, n_tau: float = 3.0, between_points=None) -> np.ndarray:
    """X of ``lockin`` at each gate delay, one way."""
    values = np.empty(len(delays_ps))
    for i, delay in enumerate(delays_ps):
        _tick(between_points)
        sampling.move_to_ps(float(delay))
        values[i] = read_x(lockin, n_tau)
    return values


def _less_sensitive(lockin) -> None:
    full_scales = list(lockin.SENSITIVITIES)
    i = full_scales.index(lockin.sensitivity)
    if i == len(full_scales) - 1:
        raise InstrumentError(lockin.name, "the signal overloads the least sensitive range")
    lockin.sensitivity = full_scales[i + 1]


def find_thz_peak(
    stages,
    lockin_ref,
    *,
    coarse: tuple[float, float, float] = (-1.0, 1.0, 0.1),
    fine_half_width_ps: float = 0.2,
    fine_step_ps: float = 0.02,
    n_tau: float = 3.0,
    between_points: Callable[[], None] | None = None,
) -> PeakScan:
    """Gate delay of the THz peak: coarse ``(start, stop, step)`` scan, then a fine one."""
    stages.pump.move_to_ps(PUMP_BLOCKED_PS)
    coarse_delays = _grid(*coarse)
    # range at the nominal zero with headroom; a clipped (overloaded) scan is repeated less
    # sensitive, since a clipped top has no peak to find
    stages.sampling.move_to_ps(float(np.clip(0.0, coarse_delays[0], coarse_delays[-1])))
    lockin_ref.range_with_headroom(steps=1)
    for _ in range(len(lockin_ref.SENSITIVITIES)):
        lockin_ref.read_overload()
        coarse_x = gate_scan(stages.sampling, lockin_ref, coarse_delays, n_tau, between_points)
        if not lockin_ref.read_overload():
            break
        _less_sensitive(lockin_ref)
    coarse_peak = float(coarse_delays[int(np.argmax(coarse_x))])
    fine = _grid(coarse_peak - fine_half_width_ps, coarse_peak + fine_half_width_ps, fine_step_ps)
    stages.sampling.move_to_ps(coarse_peak)
    lockin_ref.range_with_headroom(steps=0)
    stages.sampling.move_to_ps(float(fine[0]))
    lockin_ref.settle(5.0)
    fine_x = gate_scan(stages.sampling, lockin_ref, fine, n_tau, between_points)
    return PeakScan(parabolic_peak(fine, fine_x), coarse_peak, fine.tolist(), fine_x.tolist())


def optp_scan_passes(
    pump_stage, lockin_pump, delays_ps, n_tau: float = 5.0, between_points=None
) -> np.ndarray:
    """−X of the pump lock-in (−ΔE/2) vs pump delay: (2, n), the forth and the back pass."""
    delays = np.asarray(delays_ps, float)
    minus_x = np.zeros((2, delays.size))
    for k, order in enumerate((range(delays.size), range(delays.size - 1, -1, -1))):
        pump_stage.move_to_ps(float(delays[order[0]]))
        lockin_pump.settle(10.0)
        for i in order:
            _tick(between_points)
            pump_stage.move_to_ps(float(delays[i]))
            minus_x[k, i] = -read_x(lockin_pump, n_tau)
    return minus_x


def optp_scan(
    pump_stage, lockin_pump, delays_ps, n_tau: float = 5.0, between_points=None
) -> np.ndarray:
    """−X of the pump lock-in (−ΔE/2) vs pump delay, forth and back, summed (lag cancels)."""
    return optp_scan_passes(pump_stage, lockin_pump, delays_ps, n_tau, between_points).sum(0)


#: A peak within this many steps of an end of its scan window may lie outside it.
EDGE_STEPS = 2
#: OPTP peak searches before a peak that stays at a window's edge fails the alignment.
OPTP_SEARCHES = 3
#: forth-and-back scans averaged, at most, before a peak not above the noise fails alignment
OPTP_AVERAGED_SCANS = 2


def _scan_until_significant(stages, lockin_pump, delays, notes, between_points):
    """Forth-and-back scans of ``delays`` (each repeated less sensitive if it overloads),
    averaged until the largest −X is significantly above the pass-to-pass scatter
    (:func:`~labctl.analysis.optp_significance.optp_peak_significance`), at most
    :data:`OPTP_AVERAGED_SCANS` scans; returns (summed −X of one forth-and-back scan, test)."""
    from labctl.analysis.optp_significance import optp_peak_significance

    passes: list[np.ndarray] = []
    for n_scan in range(OPTP_AVERAGED_SCANS):
        lockin_pump.range_with_headroom()
        # a clipped (overloaded) scan is repeated less sensitive: a clipped top has no peak
        for _ in range(len(lockin_pump.SENSITIVITIES)):
            lockin_pump.read_overload()
            scan = optp_scan_passes(stages.pump, lockin_pump, delays, between_points=between_points)
            if not (overloads := lockin_pump.read_overload()):
                break
            notes.append(
                f"OPTP peak scan overloaded the pump lock-in ({', '.join(overloads)}) at "
                f"{lockin_pump.sensitivity:g} V: scanned again less sensitive"
            )
            _less_sensitive(lockin_pump)
        passes.extend(scan)
        test = optp_peak_significance(delays, np.array(passes))
        if test.significant:
            break
        if n_scan + 1 < OPTP_AVERAGED_SCANS:
            notes.append(
                f"OPTP peak in {delays[0]:g}…{delays[-1]:g} ps only {test.z:.2g}σ above the "
                "noise: scanned again and averaged"
            )
    return 2.0 * np.mean(passes, axis=0), test


def find_optp_peak(
    stages,
    lockin_pump,
    *,
    coarse: tuple[float, float, float] = (-0.6, 1.2, 0.025),
    between_points: Callable[[], None] | None = None,
    searches: int = OPTP_SEARCHES,
) -> PeakScan:
    """Pump delay of the OPTP peak (the gate must already be on the THz peak).

    One forth-and-back scan over ``coarse`` = ``(start, stop, step)``, fitted by a decay
    ⊗ Gaussian IRF (:func:`optp_peak_of_scan`); the peak is the fit's maximum. A peak
    within :data:`EDGE_STEPS` steps of an end of the window may lie outside it (the
    fit's maximum is then an extrapolation, or the rise was never scanned): the window
    is moved to centre on it and the scan repeated, said in ``PeakScan.notes``; still
    at an edge after ``searches`` scans, :class:`AnalysisError` — never a silent TDS
    before the pump arrived (2 of 10 as-made seeds did that, issue 16). A largest −ΔE not
    significantly above the pass-to-pass noise is scanned once more and averaged; still
    not significant, :class:`AnalysisError` naming the window and z — never parked on a
    noise peak (:mod:`labctl.analysis.optp_significance`).
    """
    start, stop, step = coarse
    notes: list[str] = []
    for _ in range(max(1, int(searches))):
        stages.pump.move_to_ps(stop)
        delays = _grid(start, stop, step)
        minus, test = _scan_until_significant(stages, lockin_pump, delays, notes, between_points)
        if not test.significant:
            raise AnalysisError(
                f"OPTP peak search: no peak above the noise in {delays[0]:g}…{delays[-1]:g} ps "
                f"after {OPTP_AVERAGED_SCANS} averaged scans (largest −ΔE {test.z:.2g}σ above "
                f"zero, p = {test.p_value:.2g}): the pump-induced signal is below this table's "
                "floor; give the pump delay (optp_peak_ps), raise the pump fluence or the "
                "lock-in time constant — not parked on noise"
            )
        spline = spline_vertex(delays, minus)
        peak = optp_peak_of_scan(delays, minus)
        scan = PeakScan(peak, spline, delays.tolist(), (0.5 * minus).tolist(), notes)
        margin = EDGE_STEPS * step
        if delays[0] + margin < peak < delays[-1] - margin:
            return scan
        notes.append(
            f"OPTP peak at {peak:.3f} ps is at the edge of the scan {delays[0]:g}…"
            f"{delays[-1]:g} ps: searched again around it"
        )
        shift = peak - 0.5 * (start + stop)
        start, stop = start + shift, stop + shift
    raise AnalysisError(
        f"OPTP peak search: the peak stayed at the edge of its window after {searches} "
        f"scans (last at {peak:.3f} ps in {delays[0]:g}…{delays[-1]:g} ps): no rise of the "
        "pump-induced signal was found; check the pump-probe overlap (stage zero) and the pump"
    )


def optp_peak_of_scan(delays_ps, minus_x) -> float:
    """The OPTP peak of a short scan around it: maximum of a bi-exponential decay ⊗ a
    Gaussian IRF (:func:`~labctl.analysis.optp.fit_decay`).

    The fit uses the whole rise, which pins the peak far better than the few points
    on its flat top: on the simulated table (realistic noise) 3.7 fs rms, where a quartic
    through a fine scan of the top scattered by 12–20 fs (slow intensity drift tilts a
    flat top) and was 2 fs late even without noise (the top is asymmetric). Falls
    back to a spline through the points around the largest if the fit fails. Two
    exponentials, not one plus a step: on a scan reaching ~1 ps past the peak the
    step model mistook the fast decay of a 250 °C film for the rise (−20 fs noise-free,
    +270 fs with white noise); the bi-exponential stays within 3 fs at 250–350 °C.
    """
    from labctl.analysis.optp import fit_decay

    delays = np.asarray(delays_ps, float)
    minus = np.asarray(minus_x, float)
    spline = spline_vertex(delays, minus)
    try:
        fit = fit_decay(delays, minus, n_exp=2)
        peak, _value = fit.peak(max(delays[0], spline - 0.3), min(delays[-1], spline + 0.3))
    except (AnalysisError, ValueError, RuntimeError):
        return spline
    return peak


# --------------------------------------------------------------------------- procedure glue
class OptionalFloatParameter(FloatParameter):
    """A FloatParameter that may be left unset ("find it"): written empty in the header,
    and read back from it as unset by ``Results.load``."""

    @property
    def value(self):
        return self._value  # None when unset (pymeasure's raises)

    @value.setter
    def value(self, value):
        self._value = self.convert(value)

    def convert(self, value):
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return super().convert(value)


class AlignedProcedure(StationProcedure):
    """A THz procedure that parks the gate on the THz peak (found, or given) first.

    Shared Parameters: the lock-ins' time constant and settling, the THz peak if
    known, and the sample (thickness, the substrate's THz index) the operator enters.
    """

    ROLES = ("lockin_ref", "lockin_pump", "stages")

    time_constant_s = FloatParameter(
        "Lock-in time constant", units="s", minimum=1e-5, maximum=30.0, default=0.1
    )
    settle_tau = FloatParameter(
        "Settling before each reading", units="tau", minimum=0.0, maximum=50.0, default=3.0
    )
    thz_peak_ps = OptionalFloatParameter(
        "THz peak gate delay", units="ps", minimum=-1e3, maximum=1e3, default=None
    )
    film_thickness_nm = FloatParameter(
        "Film thickness", units="nm", minimum=0.1, maximum=1e6, default=100.0
    )
    substrate_index = FloatParameter("Substrate index", minimum=1.0, maximum=10.0, default=1.95)

    def startup(self) -> None:
        super().startup()
        self.stages = self.instrument("stages")
        self.lockin_ref = self.instrument("lockin_ref")
        self.lockin_pump = self.instrument("lockin_pump")
        for lockin in (self.lockin_ref, self.lockin_pump):
            lockin.time_constant = self.time_constant_s

    def make_safe(self) -> None:
        """Stages stopped (they hold position); nothing else here is hazardous."""
        stages = getattr(self, "stages", None)
        if stages is not None:
            stages.stop()

    def bring_sample_in(self) -> None:
        """Put the film of ``slot`` in the beams (when the stages have a sample axis)."""
        if "sample" in self.stages:
            self.stages.sample.move_to_slot(int(self.slot))

    def park_on_thz_peak(self) -> float:
        """Find the THz peak unless given; park the gate there; returns its delay (ps)."""
        if self.thz_peak_ps is None:
            scan = find_thz_peak(self.stages, self.lockin_ref, between_points=self.check_stop)
            self.run_results["thz_peak"] = scan.to_dict()
            peak = scan.peak_ps
        else:
            peak = float(self.thz_peak_ps)
            self.run_results["thz_peak"] = {"peak_ps": peak, "given": True}
        self.run_results["thz_peak_ps"] = peak
        self.stages.sampling.move_to_ps(peak)
        return peak

    def read_pair(self) -> tuple[float, float]:
        """X of both lock-ins after settling: (X_ref, X_pump) in V."""
        self.lockin_pump.settle(self.settle_tau)
        return self.lockin_ref.read_xy()[0], self.lockin_pump.read_xy()[0]
