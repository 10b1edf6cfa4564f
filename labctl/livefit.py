"""Live Drude-Smith (or other model) fit of THz-TDS data while they are acquired.

Design — acquisition never waits for analysis:

- ``add_point``/``add_sweep``/``end_sweep`` only add numbers into running sums under a
  lock (a point: microseconds; a complete sweep: one FFT and one outer product into
  :class:`~labctl.analysis.tds.SweepSums`, ~0.1 ms) and, when a refit is due, set a flag
  and notify a worker thread.
- No sweep is kept after the second: from the third on, the running sums (Welford
  means, per-point variances and the covariance of the per-sweep Δσ) are all the
  analysis needs, so an update costs the same after 3 000 sweeps as after 3, and its
  result equals the batch analysis of every sweep to rounding.
- The worker snapshots the data and hands them to the one TDS analysis every front
  end uses (:func:`labctl.analysis.tds_analysis.analyze_tds`): Δσ(ω) with errors from
  the scatter of the complete sweeps (≥ 3), the time-domain noise model (2) or the
  pre-pulse baseline of the running average (1); significance first, then the model
  (selected as ``labctl analyze tds`` selects it), warm-started from the last result
  with a capped number of evaluations (``max_nfev``). Requests that arrive while it
  works are coalesced: it then runs once more on the newest data, so work never
  queues up behind a slow fit.
- Every outcome — a fit, or an error — is published as a :class:`LiveFitUpdate` to the
  subscribers (callables, called in the worker thread; the GUI marshals to its own
  thread). Exceptions in the analysis or in a subscriber are logged and never reach the
  acquisition thread.

With ``threaded=False`` the same work runs inline in the caller (deterministic, for
scripts and tests); its cost is one update (~2 ms for a 400-point sweep).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from labctl.analysis.constants import (
    DEFAULT_EFFECTIVE_MASS,
    DEFAULT_FMAX_THZ,
    DEFAULT_FMIN_THZ,
)

log = logging.getLogger(__name__)

MIN_POINTS_PER_SWEEP = 16


@dataclass
class LiveFitUpdate:
    """One published state of the live fit (arrays are copies the subscriber may keep)."""

    sequence: int
    n_sweeps: int
    n_points: int
    fit: object | None  # labctl.analysis.fitting.FitResult
    freq_hz: np.ndarray | None
    sigma: np.ndarray | None
    sigma_err: np.ndarray | None
    model_sigma: np.ndarray | None
    noise_source: str | None  # "sweep-scatter", "noise-model" or "baseline"
    compute_ms: float
    error: str | None = None
    significant: bool | None = None  # ΔE distinguishable from zero against the noise
    warnings: tuple[str, ...] = ()
    #: the :class:`~labctl.analysis.tds_analysis.TDSAnalysis` behind this update
    analysis: object | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.analysis is not None

    @property
    def p_value(self) -> float | None:
        """The significance test's p-value for Re Δσ = 0 (None when not assessed)."""
        return None if self.analysis is None else self.analysis.test.p_value

    @property
    def params(self) -> dict | None:
        """The analysis result (``labctl analyze tds``'s keys; null values when ΔE is
        not significant), or None."""
        return None if self.analysis is None else self.analysis.to_dict()

    def to_dict(self) -> dict:
        """JSON-ready summary (no arrays) for a run file."""
        return {
            "sequence": self.sequence,
            "n_sweeps": self.n_sweeps,
            "n_points": self.n_points,
            "noise_source": self.noise_source,
            "significant": self.significant,
            "warnings": list(self.warnings),
            "compute_ms": self.compute_ms,
            "error": self.error,
            "fit": self.params,
        }


Subscriber = Callable[[LiveFitUpdate], None]


def update_from_analysis(
    analysis, *, sequence: int = 0, n_sweeps: int, n_points: int, compute_ms: float = 0.0
) -> LiveFitUpdate:
    """A :class:`LiveFitUpdate` showing a :class:`~labctl.analysis.tds_analysis.TDSAnalysis`
    (the live fit's, or a reopened run's in the GUI)."""
    spec = analysis.spectrum
    fit = analysis.fit
    return LiveFitUpdate(
        sequence=sequence,
        n_sweeps=n_sweeps,
        n_points=n_points,
        fit=fit,
        freq_hz=spec.freq_hz,
        sigma=spec.sigma,
        sigma_err=spec.sigma_err,
        model_sigma=None if fit is None else fit.evaluate(spec.freq_hz),
        noise_source=spec.noise_source,
        compute_ms=compute_ms,
        significant=analysis.significant,
        warnings=tuple(analysis.to_dict()["warnings"]),
        analysis=analysis,
    )


class LiveTDSFit:
    """Accumulates THz-TDS sweeps and keeps a warm-started conductivity fit up to date.

    Parameters
    ----------
    thickness_m, substrate_index : film thickness (m) and substrate THz index.
    model, effective_mass : conductivity model and m*/mₑ.
    fmin_hz, fmax_hz : fitted frequency window.
    refit_every_points : also refit after this many new points within a sweep
        (after the first complete sweep); default: refit at the end of each sweep only.
    threaded : run updates in a worker thread (default) or inline.
    max_nfev : cap on model evaluations per fit (bounds the time of one update).
    """

    def __init__(
        self,
        thickness_m: float,
        substrate_index: float,
        *,
        model: str = "auto",
        effective_mass: float = DEFAULT_EFFECTIVE_MASS,
        fmin_hz: float = DEFAULT_FMIN_THZ * 1e12,
        fmax_hz: float = DEFAULT_FMAX_THZ * 1e12,
        window: str | tuple | None = None,
        refit_every_points: int | None = None,
        threaded: bool = True,
        max_nfev: int = 60,
    ):
        from labctl.analysis.models import get_model
        from labctl.analysis.tds_analysis import AUTO_MODEL

        if model != AUTO_MODEL:
            get_model(model)  # fail early on a bad name (construction, not acquisition)

        self.thickness_m = float(thickness_m)
        self.substrate_index = float(substrate_index)
        self.model = model
        self.effective_mass = float(effective_mass)
        self.fmin_hz = float(fmin_hz)
        self.fmax_hz = float(fmax_hz)
        self.window = window
        self.refit_every_points = refit_every_points
        self.max_nfev = int(max_nfev)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._compute_lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._latest: LiveFitUpdate | None = None
        self._sequence = 0
        self._closed = False
        self._dirty = False
        self._busy = False
        self._errors: list[str] = []
        self._reset_data()
        self._thread = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="LiveTDSFit", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------ data state
    def _reset_data(self) -> None:
        self._grid: np.ndarray | None = None
        self._sum_ref = self._sum_de = self._count = None
        self._cur_t: list[float] = []
        self._cur_ref: list[float] = []
        self._cur_de: list[float] = []
        # the first two complete sweeps (the noise model at 2 sweeps); from the third on,
        # running sums only (SweepSums: an update costs the same after 3 000 sweeps as after 3)
        self._sweeps: list[tuple[np.ndarray, np.ndarray]] = []
        self._sums = None  # labctl.analysis.tds.SweepSums of the complete sweeps
        self._n_sweeps = 0
        self._n_points = 0
        self._points_since_fit = 0
        self._warm: dict | None = None  # model name → fit-unit values of the last fit

    def reset(self) -> None:
        """Forget all data (e.g. a new sample or pump delay)."""
        with self._lock:
            self._reset_data()

    # ------------------------------------------------------------ subscribers
    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register ``callback(update)``; returns a function that unsubscribes it."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    @property
    def latest(self) -> LiveFitUpdate | None:
        return self._latest

    @property
    def n_sweeps(self) -> int:
        return self._n_sweeps

    # ------------------------------------------------------------ feeding (acquisition side)
    def add_point(self, time_ps: float, e_ref: float, de: float) -> None:
        """One sampled delay of the current sweep. A delay not larger than the previous one
        starts a new sweep (or call :meth:`end_sweep`)."""
        with self._lock:
            problem = None
            if self._cur_t and time_ps <= self._cur_t[-1]:
                problem = self._finish_sweep_locked()
            self._cur_t.append(float(time_ps))
            self._cur_ref.append(float(e_ref))
            self._cur_de.append(float(de))
            self._n_points += 1
            if self._grid is not None:
                grid = self._grid
                i = int(np.clip(np.searchsorted(grid, time_ps), 1, grid.size - 1))
                i = i if abs(grid[i] - time_ps) < abs(grid[i - 1] - time_ps) else i - 1
                if abs(grid[i] - time_ps) <= 0.5 * (grid[1] - grid[0]):
                    self._sum_ref[i] += e_ref
                    self._sum_de[i] += de
                    self._count[i] += 1
                    self._points_since_fit += 1
                if self.refit_every_points and self._points_since_fit >= self.refit_every_points:
                    self._request_locked()
        if problem:
            self._report(problem)
        self._maybe_inline()

    def end_sweep(self) -> None:
        """Mark the current sweep (fed by :meth:`add_point`) complete."""
        problem = None
        with self._lock:
            if self._cur_t:
                problem = self._finish_sweep_locked()
        if problem:
            self._report(problem)
        self._maybe_inline()

    def add_sweep(self, time_ps, e_ref, de) -> None:
        """A complete sweep at once (arrays on the same equally spaced grid every time)."""
        t = np.asarray(time_ps, float).copy()
        ref = np.asarray(e_ref, float).copy()
        d = np.asarray(de, float).copy()
        with self._lock:
            earlier = self._finish_sweep_locked() if self._cur_t else None
            problem = self._accept_locked(t, ref, d, already_summed=False)
            if not problem:
                self._n_points += t.size
        if earlier:
            self._report(earlier)
        if problem:
            self._report(problem)
            return
        self._maybe_inline()

    def _finish_sweep_locked(self) -> str | None:
        t = np.array(self._cur_t)
        ref = np.array(self._cur_ref)
        d = np.array(self._cur_de)
        self._cur_t, self._cur_ref, self._cur_de = [], [], []
        problem = self._accept_locked(t, ref, d, already_summed=self._grid is not None)
        if problem:
            log.warning("live fit: %s", problem)
        return problem

    def _accept_locked(self, t, ref, d, already_summed: bool) -> str | None:
        if self._grid is None:
            if t.size < MIN_POINTS_PER_SWEEP:
                return f"first sweep has {t.size} points (need {MIN_POINTS_PER_SWEEP})"
            steps = np.diff(t)
            if np.any(steps <= 0) or np.ptp(steps) > 0.01 * np.median(steps):
                return "first sweep's delays are not increasing and equally spaced"
            from labctl.analysis.tds import SweepSums

            self._sums = SweepSums(
                t, thickness_m=self.thickness_m, substrate_index=self.substrate_index,
                fmin_hz=self.fmin_hz, fmax_hz=self.fmax_hz, window=self.window,
            )  # fmt: skip
            self._grid = t
            self._sum_ref = np.zeros(t.size)
            self._sum_de = np.zeros(t.size)
            self._count = np.zeros(t.size)
            already_summed = False
        full = t.size == self._grid.size and np.allclose(
            t, self._grid, atol=0.5 * (self._grid[1] - self._grid[0])
        )
        if full and not (np.all(np.isfinite(ref)) and np.all(np.isfinite(d))):
            return f"sweep {self._n_sweeps + 1}: E_ref or dE contains NaN or infinite values"
        if not already_summed:
            if not full:
                return (
                    f"sweep of {t.size} points does not match the grid of "
                    f"{self._grid.size} points ({self._grid[0]:g}–{self._grid[-1]:g} ps)"
                )
            self._sum_ref += ref
            self._sum_de += d
            self._count += 1
        if full:
            if len(self._sweeps) < 2:
                self._sweeps.append((ref, d))
            self._sums.add(ref, d)
        self._n_sweeps += 1
        self._request_locked()
        return None

    def _report(self, problem: str) -> None:
        """Publish a data problem: from the worker when threaded (never in the caller)."""
        if self._thread is None:
            self._publish_error(problem)
            return
        with self._cond:
            self._errors.append(problem)
            self._cond.notify_all()

    def _request_locked(self) -> None:
        self._points_since_fit = 0
        self._dirty = True
        self._cond.notify_all()

    def _maybe_inline(self) -> None:
        if self._thread is None and self._dirty:
            self._dirty = False
            self._update()

    # ------------------------------------------------------------ worker
    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._dirty or self._errors or self._closed):
                    self._cond.wait()
                if self._closed:
                    return
                errors, self._errors = self._errors, []
                run, self._dirty = self._dirty, False
                self._busy = True
            try:
                for problem in errors:
                    self._publish_error(problem)
                if run:
                    self._update()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def update_now(self) -> LiveFitUpdate:
        """Compute and publish an update synchronously (in the caller's thread)."""
        return self._update()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until no update is pending or running (for tests and end of scan)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._dirty or self._busy or self._errors:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def __enter__(self) -> LiveTDSFit:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ the analysis
    def _update(self) -> LiveFitUpdate:
        with self._compute_lock:  # one update at a time (worker or update_now)
            return self._update_locked()

    def _update_locked(self) -> LiveFitUpdate:
        t_start = time.perf_counter()
        with self._lock:
            grid = self._grid
            if grid is not None:
                ref = self._sum_ref / np.maximum(self._count, 1)
                de = self._sum_de / np.maximum(self._count, 1)
            sweeps = list(self._sweeps)
            sums = self._sums.copy() if self._sums is not None and self._sums.n >= 3 else None
            n_sweeps, n_points = self._n_sweeps, self._n_points
            warm = self._warm
        if grid is None:
            return self._publish_error("no complete sweep yet", n_sweeps, n_points)
        try:
            from labctl.analysis.tds_analysis import analyze_tds, warm_start

            if sums is not None:  # ≥ 3 sweeps: their running sums (scatter, noise model)
                ref, de = sums.ref.mean, sums.de.mean
            elif len(sweeps) >= 2:  # two sweeps: the noise model
                ref = np.array([r for r, _ in sweeps])
                de = np.array([d for _, d in sweeps])
            analysis = analyze_tds(
                grid,
                ref,
                de,
                thickness_m=self.thickness_m,
                substrate_index=self.substrate_index,
                effective_mass=self.effective_mass,
                fmin_hz=self.fmin_hz,
                fmax_hz=self.fmax_hz,
                model=self.model,
                window=self.window,
                initial=warm,
                max_nfev=self.max_nfev,
                sums=sums,
            )
            with self._lock:
                self._warm = warm_start(analysis)
            update = update_from_analysis(
                analysis,
                sequence=self._next_sequence(),
                n_sweeps=n_sweeps,
                n_points=n_points,
                compute_ms=(time.perf_counter() - t_start) * 1e3,
            )
        except Exception as exc:  # never into the scan: report instead
            log.warning("live fit failed: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
            with self._lock:
                self._warm = None
            return self._publish_error(f"{type(exc).__name__}: {exc}", n_sweeps, n_points, t_start)
        self._publish(update)
        return update

    def _next_sequence(self) -> int:
        with self._lock:
            self._sequence += 1
            return self._sequence

    def _publish_error(self, message, n_sweeps=None, n_points=None, t_start=None):
        update = LiveFitUpdate(
            sequence=self._next_sequence(),
            n_sweeps=self._n_sweeps if n_sweeps is None else n_sweeps,
            n_points=self._n_points if n_points is None else n_points,
            fit=None,
            freq_hz=None,
            sigma=None,
            sigma_err=None,
            model_sigma=None,
            noise_source=None,
            compute_ms=0.0 if t_start is None else (time.perf_counter() - t_start) * 1e3,
            error=message,
        )
        self._publish(update)
        return update

    def _publish(self, update: LiveFitUpdate) -> None:
        self._latest = update
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(update)
            except Exception:
                log.exception("live fit subscriber %r failed", callback)
