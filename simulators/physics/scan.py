"""Per-sweep THz-TDS waveforms straight from the world's physics and noise.

The cheap path for calibrations and tests: it evaluates the same fields
(:class:`~labctl.simulators.physics.table.OpticalTable`), the same table noise
and drift (:class:`~labctl.simulators.physics.noise.TableNoise`, on the
world's virtual time) and the same white lock-in noise densities as a scan
through the instrument simulators, point by point, without the stage and
lock-in simulators. What it leaves out is the lock-in's output filter: a
reading here is the input at the moment of the reading plus white noise of
standard deviation ``density·√ENBW`` (12 dB/oct: ENBW = 1/(8τ)), so point-to-point
correlations shorter than a few time constants are absent.

Timing follows ``labctl sim measure tds``: 3 τ of settling per point, 10 τ
before each sweep, alternate sweep directions; the pump parked at the world's
TDS delay. Readings: E_ref = X_ref − X_pump, ΔE = 2·X_pump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: ENBW × τ of the SR830's 12 dB/oct filter
_ENBW_TIMES_TAU = 1.0 / 8.0


def anneal_nominal(film, anneal_c: float) -> None:
    """Step ``film`` through the paper's program (ramp, dwell, cooling) on an ideal furnace."""
    if anneal_c > 25.0:
        for temp in film.kin.nominal_program(anneal_c, dt=10.0):
            film.step(10.0, float(temp))


@dataclass
class SweepScan:
    """Per-sweep readings and what the film truly had at the delay where the pump sat."""

    time_ps: np.ndarray
    e_ref: np.ndarray  # (n_sweeps, n_points)
    delta_e: np.ndarray
    pump_delay_ps: float  # where the pump stage was parked (nominal + repeatability)
    #: g(parked)/g(TDS delay): N (and Δσ) at the parked delay relative to the nominal one
    transient_at_parked: float


def simulate_sweeps(
    world,
    film,
    time_ps,
    n_sweeps: int,
    *,
    time_constant_s: float = 0.1,
    pump_blocked: bool = False,
) -> SweepScan:
    """E_ref and ΔE, each (n_sweeps, n_points), of ``film`` in ``world``'s table.

    Advances ``world.t`` (not the clock) by the scan's duration; the world's
    noise mode decides what noise there is. ``pump_blocked``: no pump, ΔE is
    noise only.
    """
    table = world.table
    pulse = table.pulse
    noise = world.table_noise
    p = table.p
    times = np.asarray(time_ps, float)
    tp_nominal = world.tds_pump_delay_ps()
    white = bool(world.noise)
    enbw = _ENBW_TIMES_TAU / time_constant_s
    rng = world.rng
    out_ref = np.zeros((n_sweeps, times.size))
    out_de = np.zeros((n_sweeps, times.size))
    pump_stage = _FakeStage()
    gate_stage = _FakeStage()
    t = float(world.t)
    # the pump stage is parked once for the scan: its repeatability error stays
    parked = tp_nominal + noise.pump_offset_ps(t, pump_stage) - noise.overlap_drift.value(t)
    for s in range(n_sweeps):
        order = range(times.size) if s % 2 == 0 else range(times.size - 1, -1, -1)
        t += 10.0 * time_constant_s
        for i in order:
            t += 3.0 * time_constant_s
            gate_stage.move(t)
            ts = times[i] + noise.sampling_offset_ps(t, gate_stage)
            tp = tp_nominal + noise.pump_offset_ps(t, pump_stage)
            phase = pulse.phase(ts)
            e_ref = pulse.field_from(phase, table._sample_spec)
            de = 0.0
            if not pump_blocked:
                dspec = table._pumped_spec_change(film, tp)
                if dspec is not None:
                    de = pulse.field_from(phase, dspec)
            probe = noise.probe_factor(t)
            de *= noise.pump_factor(t)
            x_ref = probe * (e_ref + 0.5 * de)
            x_pump = probe * noise.pump_channel_gain * 0.5 * de
            if white:
                mag = abs(e_ref)
                sd_ref = (
                    float(p["noise_ref_floor_v_per_rthz"])
                    + float(p["noise_ref_relative_per_rthz"]) * mag
                )
                sd_pump = (
                    float(p["noise_pump_floor_v_per_rthz"])
                    + float(p["noise_pump_relative_per_rthz"]) * mag
                )
                x_ref += sd_ref * math.sqrt(enbw) * rng.standard_normal()
                x_pump += sd_pump * math.sqrt(enbw) * rng.standard_normal()
            out_ref[s, i] = x_ref - x_pump
            out_de[s, i] = 2.0 * x_pump
    world.t = t
    return SweepScan(times, out_ref, out_de, parked, world.photo.transient(parked))


class _FakeStage:
    """Stands in for a stage in :meth:`TableNoise._per_move`: one move per call to move()."""

    target_mm = 0.0
    t_start = 0.0

    def move(self, t: float) -> None:
        self.t_start = t
