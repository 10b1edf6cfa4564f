"""Per-sweep THz-TDS waveforms straight from the world's physics and noise.

The cheap path for calibrations and tests: it evaluates the same fields
(the spectra of :class:`~labctl.simulators.physics.table.OpticalTable`), the same
table noise and drift (:class:`~labctl.simulators.physics.noise.TableNoise`, on
the world's virtual time) and the same white lock-in noise densities as a scan
through the instrument simulators, without the stage and lock-in simulators.
Fields are exact on the nominal gate grid (tested against the table to 1e-13);
the few-fs jitter and drift offsets enter through a 4th-order Taylor series of
e^{−iωδ}, and the fs changes of the pump delay linearly through the Tinkham
transfer (both errors far below the noise). What it leaves out is the lock-in's
output filter: a reading is the input at that moment plus white noise of
standard deviation ``density·√ENBW`` (12 dB/oct: ENBW = 1/(8τ)), so
point-to-point correlations shorter than a few time constants are absent.

Timing follows ``labctl sim measure tds``: 3 τ of settling per point, 10 τ
before each sweep, alternate sweep directions; the pump parked at the world's
TDS delay. Readings: E_ref = X_ref − X_pump, ΔE = 2·X_pump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from labctl.simulators.physics.table import detector_floor_v_per_rthz

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
    n = times.size
    # virtual time of each reading: 10 τ before a sweep, 3 τ per point, alternate directions
    order = np.array([np.arange(n) if s % 2 == 0 else np.arange(n)[::-1] for s in range(n_sweeps)])
    steps = np.full((n_sweeps, n), 3.0 * time_constant_s)
    steps[:, 0] += 10.0 * time_constant_s
    t_read = world.t + np.cumsum(steps).reshape(n_sweeps, n)
    flat_t = t_read.ravel()
    gate = times[order].ravel()
    # the pump stage is parked once for the scan: its repeatability error stays
    parked = world.tds_pump_delay_ps()
    if noise.enabled:
        parked += noise.pump_repeatability_ps()
        gate = gate + np.array([noise.gate_jitter_ps() for _ in range(gate.size)])
    gate = gate + noise.delay_drift.path(flat_t)
    tp = parked + noise.overlap_drift.path(flat_t)
    probe = 1.0 + noise.probe.path(flat_t) + noise.probe_drift.path(flat_t)
    pump = 1.0 + noise.pump.path(flat_t) + noise.pump_drift.path(flat_t)
    # fields at the jittered gate delays: exact spectra on the nominal grid, the few-fs
    # offsets δ by a Taylor series of e^{−iωδ} to 4th order (error < 1e-5 for |ωδ| < 0.2)
    nominal = times[order].ravel()
    delta = gate - nominal
    arg = np.outer(times, pulse._omega_ps)
    grid = (np.cos(arg), np.sin(arg), pulse._omega_ps)
    e_ref = _fields_at(grid, order, delta, table.sample_spectrum)
    de = np.zeros(gate.size)
    if not pump_blocked:
        # Tinkham transfer, linear in the small change of g(t_pump) about the parked delay
        sheet = table._sheet(film)
        n_sub = pulse.substrate_index
        r0 = (n_sub - 1.0) / (n_sub + 1.0)
        g0_main = world.photo.transient(parked)
        g0_echo = world.photo.transient(parked + pulse.echo_delay_ps)
        main = (1.0 + n_sub) / (1.0 + n_sub + g0_main * sheet)
        d_main = -main * sheet / (1.0 + n_sub + g0_main * sheet)
        s_e = g0_echo * sheet
        r_ratio = (n_sub - 1.0 - s_e) / (n_sub + 1.0 + s_e) / r0
        d_r_ratio = -2.0 * n_sub * sheet / (n_sub + 1.0 + s_e) ** 2 / r0
        echo = 1.0 + pulse._echo0 * r_ratio
        spec0 = pulse.spectrum * main * echo - table.sample_spectrum
        spec_main = pulse.spectrum * d_main * echo
        spec_echo = pulse.spectrum * main * pulse._echo0 * d_r_ratio
        photo = world.photo
        g_main = photo._g(tp) / photo._g_ref - g0_main  # the pump sits after zero delay
        g_echo = photo._g(tp + pulse.echo_delay_ps) / photo._g_ref - g0_echo
        de = (
            _fields_at(grid, order, delta, spec0)
            + g_main * _fields_at(grid, order, delta, spec_main)
            + g_echo * _fields_at(grid, order, delta, spec_echo)
        )
    de = de * pump
    x_ref = probe * (e_ref + 0.5 * de)
    x_pump = probe * noise.pump_channel_gain * 0.5 * de
    if world.noise:
        mag = np.abs(e_ref)
        floor = detector_floor_v_per_rthz(p)
        sd_ref = floor + float(p["noise_ref_relative_per_rthz"]) * mag
        sd_pump = floor + float(p["noise_pump_relative_per_rthz"]) * mag
        root_enbw = math.sqrt(_ENBW_TIMES_TAU / time_constant_s)
        x_ref = x_ref + sd_ref * root_enbw * world.rng.standard_normal(x_ref.size)
        x_pump = x_pump + sd_pump * root_enbw * world.rng.standard_normal(x_pump.size)
    out_ref = np.zeros((n_sweeps, n))
    out_de = np.zeros((n_sweeps, n))
    rows = np.repeat(np.arange(n_sweeps), n)
    out_ref[rows, order.ravel()] = x_ref - x_pump
    out_de[rows, order.ravel()] = 2.0 * x_pump
    world.t = float(flat_t[-1])
    return SweepScan(times, out_ref, out_de, parked, world.photo.transient(parked))


def _fields_at(grid, order, delta, spec) -> np.ndarray:
    """2·Re Σ_k spec_k e^{−iω_k(t + δ)} for readings at grid points ``times[order]`` with
    small offsets ``delta`` (ps): Taylor series of e^{−iωδ} on the grid's exact traces.
    ``grid`` = (cos ωt, sin ωt, ω) on the nominal grid (elementwise sums: no BLAS threads)."""
    cos_m, sin_m, omega = grid
    idx = order.ravel()
    out = np.zeros(idx.size)
    term = np.ones(idx.size)
    for m in range(5):
        weighted = spec * (-1j * omega) ** m
        trace = 2.0 * (cos_m * weighted.real + sin_m * weighted.imag).sum(axis=1)
        out += term * trace[idx]
        term = term * delta / (m + 1)
    return out
