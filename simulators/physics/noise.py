"""Noise and drift of a real amplified OPTP table, on the world's virtual time.

The lock-in simulators add white input noise (``noise_*_per_rthz`` in the table
parameters: detector and electronics noise, independent in the two channels).
This module adds what a real table has on top (``params.noise``, sources in
``docs/physics.md``), all evaluated at the world's virtual time ``t`` so a run
looks the same at any time scale:

* probe (THz) intensity: a multiplicative factor on the whole detected field,
  the same for both lock-ins (one detector): 1/f noise from Ornstein-Uhlenbeck
  components with log-spaced correlation times (per point) plus slower drift
  (scan to scan);
* pump pulse energy: a factor on ΔE only (per point and per sweep);
* gate timebase: jitter drawn at every move of the sampling stage plus a slow
  drift of the THz-vs-gate path (delay drift);
* pump–probe overlap: stage repeatability drawn at every move of the pump
  stage plus a slow drift of the pump delay;
* the pump lock-in's gain and phase relative to the reference lock-in (drawn
  once per world): ΔE comes out scaled by (1 + g)·cos φ.

:class:`TableNoise` is used by the world (through :class:`OpticalTable`) and,
sample by sample, by :mod:`labctl.simulators.physics.scan` — the cheap path that
draws per-sweep waveforms from the same physics and noise without the
instrument simulators.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter

#: ``simulation.noise`` values: realistic (default), white (lock-in white noise
#: only, the pre-1.2 model) or off
NOISE_MODES = ("realistic", "white", "off")


def noise_mode(value) -> str:
    """Normalise ``simulation.noise``: True/"realistic", "white", False/"off"."""
    if value is True or value == "realistic":
        return "realistic"
    if value is False or value is None or value == "off":
        return "off"
    if value == "white":
        return "white"
    raise ValueError(f"noise must be true/'realistic', 'white' or false, got {value!r}")


def ar1_recursion(x0: float, decay: np.ndarray, kicks: np.ndarray) -> np.ndarray:
    """x_i = x_{i-1}·decay_i + kicks_i from x0. A scan's points are evenly spaced in time
    (one decay after the first): then a first-order filter (scipy's lfilter) runs the
    recursion, 30× faster than Python's loop, which stays for uneven spacing."""
    first = x0 * decay[0] + kicks[0]
    rest_decay = decay[1:]
    if rest_decay.size and np.all(rest_decay == rest_decay[0]):
        d = float(rest_decay[0])
        rest = lfilter([1.0], [1.0, -d], kicks[1:], zi=[d * first])[0]
        return np.concatenate([[first], rest])
    values = np.empty(decay.size)
    x = first
    values[0] = x
    for i, (d, k) in enumerate(zip(rest_decay.tolist(), kicks[1:].tolist(), strict=True), 1):
        x = x * d + k
        values[i] = x
    return values


class OUSum:
    """Sum of independent Ornstein-Uhlenbeck processes, advanced exactly and lazily.

    ``rms`` is the total standard deviation, shared equally among the components
    (log-spaced ``tau_s``: a 1/f spectrum between 1/(2π·max τ) and 1/(2π·min τ)).
    Time only moves forward; asking for an earlier time returns the last value.
    """

    def __init__(self, rms: float, tau_s, rng: np.random.Generator, t0: float = 0.0) -> None:
        self.tau = np.atleast_1d(np.asarray(tau_s, float))
        self.sd = float(rms) / math.sqrt(self.tau.size) if self.tau.size else 0.0
        self.rng = rng
        self.t = float(t0)
        self.state = (
            self.sd * rng.standard_normal(self.tau.size) if self.sd > 0 else np.zeros(self.tau.size)
        )

    def path(self, times) -> np.ndarray:
        """Values at increasing ``times`` (≥ the current time), advancing the state."""
        times = np.asarray(times, float)
        out = np.zeros(times.size)
        if self.sd <= 0 or times.size == 0:
            return out
        dts = np.maximum(np.diff(np.concatenate([[self.t], times])), 0.0)
        new_state = []
        for j, tau in enumerate(self.tau):
            decay = np.exp(-dts / tau)
            kicks = self.sd * np.sqrt(1.0 - decay**2) * self.rng.standard_normal(dts.size)
            values = ar1_recursion(float(self.state[j]), decay, kicks)
            out += values
            new_state.append(float(values[-1]))
        self.state, self.t = np.array(new_state), float(times[-1])
        return out

    def value(self, t: float) -> float:
        if self.sd > 0 and t > self.t:
            decay = np.exp(-(t - self.t) / self.tau)
            self.state = self.state * decay + self.sd * np.sqrt(
                1.0 - decay**2
            ) * self.rng.standard_normal(self.tau.size)
            self.t = float(t)
        return float(self.state.sum())


class TableNoise:
    """The table's noise and drift processes (see the module docstring).

    ``params`` is ``WorldParams.noise``; ``rng`` the world's generator. With
    ``enabled`` False every factor is 1 and every offset 0.
    """

    def __init__(self, params: dict, rng: np.random.Generator, enabled: bool, t0: float = 0.0):
        self.p = params
        self.enabled = enabled
        self.rng = rng
        p = params
        on = 1.0 if enabled else 0.0
        self.probe = OUSum(on * p["probe_point_rms"], p["point_tau_s"], rng, t0)
        self.probe_drift = OUSum(on * p["probe_drift_rms"], p["drift_tau_s"], rng, t0)
        self.pump = OUSum(on * p["pump_point_rms"], p["point_tau_s"], rng, t0)
        self.pump_drift = OUSum(on * p["pump_drift_rms"], p["drift_tau_s"], rng, t0)
        self.delay_drift = OUSum(on * p["delay_drift_fs"] * 1e-3, p["drift_tau_s"], rng, t0)
        self.overlap_drift = OUSum(on * p["overlap_drift_fs"] * 1e-3, p["drift_tau_s"], rng, t0)
        if enabled:
            gain = 1.0 + p["pump_channel_gain_error_rms"] * rng.standard_normal()
            phase = math.radians(p["pump_channel_phase_error_deg_rms"]) * rng.standard_normal()
            self.pump_channel_gain = gain * math.cos(phase)
        else:
            self.pump_channel_gain = 1.0
        self._moves: dict[int, tuple] = {}

    # --- multiplicative factors ------------------------------------------------
    def probe_factor(self, t: float) -> float:
        """Relative THz field amplitude at virtual time ``t`` (both lock-ins)."""
        return 1.0 + self.probe.value(t) + self.probe_drift.value(t)

    def pump_factor(self, t: float) -> float:
        """Relative pump pulse energy (ΔE ∝ it) at virtual time ``t``."""
        return 1.0 + self.pump.value(t) + self.pump_drift.value(t)

    # --- delays ------------------------------------------------------------------
    def gate_jitter_ps(self) -> float:
        return 1e-3 * float(self.p["gate_jitter_fs"]) * self.rng.standard_normal()

    def pump_repeatability_ps(self) -> float:
        """Pump-stage repeatability as double-pass delay (1 µm = 6.67 fs)."""
        return 6.671e-3 * float(self.p["stage_repeatability_um"]) * self.rng.standard_normal()

    def _per_move(self, axis: int, stage, draw) -> float:
        """An offset drawn once per move of ``stage`` (keyed on its target and start)."""
        key = (stage.target_mm, stage.t_start)
        old = self._moves.get(axis)
        if old is None or old[0] != key:
            old = (key, draw() if self.enabled else 0.0)
            self._moves[axis] = old
        return old[1]

    def sampling_offset_ps(self, t: float, stage) -> float:
        """Gate delay error: per-move jitter plus the slow THz-vs-gate path drift."""
        return self._per_move(1, stage, self.gate_jitter_ps) + self.delay_drift.value(t)

    def pump_offset_ps(self, t: float, stage) -> float:
        """Pump delay error: stage repeatability per move plus pump–probe overlap drift."""
        return self._per_move(2, stage, self.pump_repeatability_ps) + self.overlap_drift.value(t)


def vary_films(films, params: dict, rng: np.random.Generator) -> None:
    """Batch variation: each film's thickness and free-carrier yield scaled by
    (1 + N(0, sd)) with the ``film_*_rel_sd`` of ``params`` (the ``noise`` section)."""
    for film in films:
        film.thickness_nm *= max(0.5, 1.0 + params["film_thickness_rel_sd"] * rng.standard_normal())
        film.yield_scale = max(0.5, 1.0 + params["film_yield_rel_sd"] * rng.standard_normal())
