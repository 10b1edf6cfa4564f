"""Synthetic THz-TDS data from known conductivity: for tests, the simulator and benchmarks.

The pumped field is made with the EXACT thin-film transfer applied in the frequency
domain (physics convention, see :mod:`labctl.analysis.tds`) on a zero-padded grid,
then truncated to the scan window, so causality and truncation behave as in a real
scan. Table 2 of Chen et al. (Small 2023) is :data:`labctl.paper.TABLE2`; the paper gives no
film thickness, so :data:`FILM_THICKNESS_M` (100 nm, see docs/physics.md) is an assumption.

It sits beside the simulators, not in :mod:`labctl.analysis`: its pull study
runs the simulated world, and the analysis is pure (it imports no simulator,
driver, procedure or front end; the layers contract in ``pyproject.toml``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from labctl.analysis.constants import DEFAULT_EFFECTIVE_MASS, DEFAULT_SUBSTRATE_INDEX, Z0_OHM
from labctl.analysis.models import drude_smith

FILM_THICKNESS_M = 100e-9

#: Drude-Smith parameters of Table 2 (annealing temperature °C → τ, c, N and their errors).


def thz_pulse(time_ps, center_ps: float = 5.0, width_ps: float = 0.25, amplitude: float = 1.0):
    """Single-cycle THz field E(t) = −A·√(2e)·x·exp(−x²), x = (t − t₀)/width.

    Its amplitude spectrum ∝ f·exp(−(π f width)²) peaks near 0.9 THz for width 0.25 ps
    and stays above 10 % of the peak from 0.3 to 2.5 THz. Peak |E| = ``amplitude``.
    """
    x = (np.asarray(time_ps, float) - center_ps) / width_ps
    return -amplitude * np.sqrt(2 * np.e) * x * np.exp(-(x**2))


def transmit_film(
    time_ps,
    e_ref,
    sigma_of_freq: Callable[[np.ndarray], np.ndarray],
    thickness_m: float = FILM_THICKNESS_M,
    substrate_index: float = DEFAULT_SUBSTRATE_INDEX,
    pad_factor: int = 4,
) -> np.ndarray:
    """E_pumped(t) from E_ref(t) through E_p/E_ref = (1+n)/(1+n+Z₀dσ(ω)) (exact, causal).

    ``sigma_of_freq`` maps frequency (Hz, ≥ 0) to complex σ (S/m, physics convention).
    """
    t = np.asarray(time_ps, float)
    x = np.asarray(e_ref, float)
    n = t.size
    n_fft = n * pad_factor
    dt_s = (t[1] - t[0]) * 1e-12
    freq = np.fft.rfftfreq(n_fft, dt_s)
    sig = np.asarray(sigma_of_freq(freq), complex)
    transfer = (1 + substrate_index) / (1 + substrate_index + Z0_OHM * thickness_m * sig)
    # numpy's spectrum is the conjugate of the physics one: multiply by conj(transfer).
    out = np.fft.irfft(np.fft.rfft(x, n_fft) * np.conj(transfer), n_fft)
    return out[..., :n]


@dataclass
class SyntheticTDS:
    """A synthetic scan: ``e_ref``/``delta_e`` are (n,) or (n_sweeps, n)."""

    time_ps: np.ndarray
    e_ref: np.ndarray
    delta_e: np.ndarray
    thickness_m: float
    substrate_index: float
    truth: dict = field(default_factory=dict)


def synthetic_tds(
    sigma_of_freq: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    tau_fs: float = 44.0,
    c: float = -0.87,
    n_m3: float = 8.35e21,
    effective_mass: float = DEFAULT_EFFECTIVE_MASS,
    thickness_m: float = FILM_THICKNESS_M,
    substrate_index: float = DEFAULT_SUBSTRATE_INDEX,
    duration_ps: float = 25.0,
    step_ps: float = 0.05,
    t_start_ps: float = 0.0,
    pulse_center_ps: float = 5.0,
    pulse_width_ps: float = 0.25,
    amplitude: float = 1.0,
    n_sweeps: int = 1,
    noise_de: float = 0.0,
    noise_ref: float = 0.0,
    rng: np.random.Generator | int | None = None,
) -> SyntheticTDS:
    """A THz-TDS scan of a photoexcited film with conductivity ``sigma_of_freq``.

    Without ``sigma_of_freq`` a Drude-Smith film (τ, c, N, m*) is used. ``noise_de`` and
    ``noise_ref`` are white-noise standard deviations (field units, pulse peak =
    ``amplitude``) added independently to every point of every sweep.
    """
    if sigma_of_freq is None:

        def sigma_of_freq(f):
            return drude_smith(f, tau_fs * 1e-15, c, n_m3, effective_mass)

        truth = {"model": "drude-smith", "tau_fs": tau_fs, "c": c, "N_m3": n_m3}
    else:
        truth = {"model": "custom"}
    n = int(round(duration_ps / step_ps))
    time_ps = t_start_ps + step_ps * np.arange(n)
    e_ref = thz_pulse(time_ps, pulse_center_ps, pulse_width_ps, amplitude)
    e_pumped = transmit_film(time_ps, e_ref, sigma_of_freq, thickness_m, substrate_index)
    delta_e = e_pumped - e_ref
    gen = np.random.default_rng(rng)
    if n_sweeps > 1 or noise_de or noise_ref:
        shape = (n_sweeps, n) if n_sweeps > 1 else (n,)
        e_ref_out = e_ref + noise_ref * gen.standard_normal(shape)
        de_out = delta_e + noise_de * gen.standard_normal(shape)
    else:
        e_ref_out, de_out = e_ref, delta_e
    truth.update(thickness_m=thickness_m, substrate_index=substrate_index)
    return SyntheticTDS(time_ps, e_ref_out, de_out, thickness_m, substrate_index, truth)


def table2_sweeps(
    n_sweeps: int,
    rng: np.random.Generator | int | None,
    *,
    anneal_c: int = 300,
    density_scale: float = 1.0,
) -> SyntheticTDS:
    """``n_sweeps`` 400-point sweeps (0–20 ps, 0.05 ps) of the film of Table 2 annealed at
    ``anneal_c`` (carrier density × ``density_scale``), white noise 10⁻⁵ on ΔE and 10⁻⁴ on
    E_ref (pulse peak 1): the sweeps the live-fit tests and ``benchmarks/fit_speed.py`` feed."""
    from labctl.paper import TABLE2

    p = TABLE2[anneal_c]
    return synthetic_tds(
        tau_fs=p["tau_fs"],
        c=p["c"],
        n_m3=p["N_m3"] * density_scale,
        duration_ps=20.0,
        n_sweeps=n_sweeps,
        noise_de=1e-5,
        noise_ref=1e-4,
        rng=rng,
    )


def write_tds_csv(path, data: SyntheticTDS) -> None:
    """Write a single-sweep scan in the ``time_ps,E_ref,dE`` format of ``labctl analyze tds``."""
    from labctl.analysis.io import write_tds_csv as write

    write(path, data.time_ps, data.e_ref, data.delta_e)


# ---------------------------------------------------------------- calibration of errors

#: the table's noise sources (``params.noise`` keys of the simulated world), each can be
#: switched on alone on top of the lock-ins' white noise (:func:`world_pull_study`)
NOISE_SOURCES = {
    "probe-intensity": ("probe_point_rms",),
    "probe-drift": ("probe_drift_rms",),
    "pump-energy": ("pump_point_rms",),
    "pump-drift": ("pump_drift_rms",),
    "gate-jitter": ("gate_jitter_fs",),
    "delay-drift": ("delay_drift_fs",),
    "overlap-drift": ("overlap_drift_fs",),
}
#: systematic offsets of one run, not in any error bar (see docs/analysis.md)
SYSTEMATIC_SOURCES = ("stage_repeatability_um", "pump_channel_gain_error_rms")
PULL_KEYS = ("tau_fs", "c", "N_m3", "mobility_cm2_Vs")


def _finite_positive(x) -> bool:
    return x is not None and np.isfinite(x) and x > 0


def world_pull_study(
    noise: str = "realistic",
    seeds=range(20),
    *,
    only: str | None = None,
    n_sweeps: int = 8,
    anneal_c: float = 300.0,
    time_ps=None,
    time_constant_s: float = 0.1,
    noise_floor_v_per_rthz: float | None = None,
    nominal_truth: bool = False,
) -> dict:
    """Pulls (fit − truth)/error of τ, c, N, μ over ``seeds`` for per-sweep scans drawn
    from the simulated world's physics and noise (:mod:`labctl.simulators.physics.scan`),
    analysed as ``labctl analyze tds`` does (errors from the sweep scatter).

    ``noise``: the world's mode ("realistic" or "white"); ``only``: one of
    :data:`NOISE_SOURCES` alone (with the lock-ins' white noise), the other table
    sources off. The truth is the film's own, with N at the pump delay where the stage
    was actually parked (its repeatability offsets a whole run: a systematic).

    ``noise_floor_v_per_rthz``: the detector floor common to both lock-ins (None: the
    world's default, a real table's). ``time_constant_s``: the lock-ins' (3 τ per point). ``nominal_truth``: N's truth at the nominal TDS delay, and N's
    error including the stage's parking uncertainty (:mod:`labctl.analysis.parking`, with
    the stage repeatability only: this path parks at the nominal delay, no peak search).

    Returns ``{"pulls": {key: array}, "chi2_red": array, "rel_err": {key: mean},
    "failed": seeds whose signal was too weak to analyse}``.
    """
    import copy

    from labctl.analysis import parking
    from labctl.analysis.fitting import fit_spectrum
    from labctl.analysis.tds import photoconductivity
    from labctl.clock import VirtualClock
    from labctl.errors import AnalysisError
    from labctl.simulators.physics.params import default_params
    from labctl.simulators.physics.scan import anneal_nominal, simulate_sweeps
    from labctl.simulators.world import World

    params = default_params()
    if noise_floor_v_per_rthz is not None:
        params.table["noise_floor_v_per_rthz"] = float(noise_floor_v_per_rthz)
    if only is not None:
        if only not in NOISE_SOURCES:
            raise ValueError(f"unknown noise source {only!r} (known: {', '.join(NOISE_SOURCES)})")
        for name, keys in NOISE_SOURCES.items():
            if name != only:
                for k in keys:
                    params.noise[k] = 0.0
        for k in SYSTEMATIC_SOURCES:
            params.noise[k] = 0.0
        noise = "realistic"
    times = np.arange(-4.0, 12.0001, 0.05) if time_ps is None else np.asarray(time_ps, float)
    template = World(VirtualClock(), seed=0, noise=False, params=params)
    film = copy.deepcopy(template.films[0])
    anneal_nominal(film, anneal_c)
    pulls = {k: [] for k in PULL_KEYS}
    rel = {k: [] for k in PULL_KEYS}
    chi2 = []
    failed = 0
    for seed in seeds:
        world = World(VirtualClock(), seed=seed, noise=noise, params=params)
        truth = world.true_parameters(film)
        scan = simulate_sweeps(world, film, times, n_sweeps, time_constant_s=time_constant_s)
        if not nominal_truth:
            truth["N_m3"] *= scan.transient_at_parked
        try:  # a noise floor may bury the signal: counted, not a crash
            spec = photoconductivity(
                times,
                scan.e_ref,
                scan.delta_e,
                thickness_m=film.thickness_nm * 1e-9,
                substrate_index=float(params.table["substrate_index"]),
                fmin_hz=0.3e12,
                fmax_hz=2.2e12,
            )
            r = fit_spectrum(spec, effective_mass=float(params.photo["effective_mass"])).to_dict()
        except AnalysisError:
            failed += 1
            continue
        if not all(_finite_positive(r.get(f"{k}_err")) and r.get(k) for k in PULL_KEYS):
            failed += 1  # a fit at the bounds of a buried signal has no error to pull against
            continue
        if nominal_truth:
            photo = world.photo
            slope = parking.log_slope_per_ps(
                lambda t, photo=photo: [photo.transient(float(x)) for x in t],
                world.tds_pump_delay_ps(),
            )
            stage_fs = 6.671 * params.noise["stage_repeatability_um"]  # 1 µm: 6.67 fs
            sd_ps = parking.parking_delay_sd_ps(0.0, stage_fs)
            r = parking.with_parking_uncertainty(r, parking.density_rel_sd(slope, sd_ps))
        for k in PULL_KEYS:
            pulls[k].append((r[k] - truth[k]) / r[f"{k}_err"])
            rel[k].append(r[f"{k}_err"] / abs(r[k]))
        chi2.append(r["chi2_red"])
    return {
        "pulls": {k: np.array(v) for k, v in pulls.items()},
        "chi2_red": np.array(chi2),
        "rel_err": {k: float(np.mean(v)) if v else float("nan") for k, v in rel.items()},
        "failed": failed,
    }
