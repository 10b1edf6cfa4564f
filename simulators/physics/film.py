"""A CdSe nanoplatelet film whose state integrates its own thermal history.

Populations (fractions of what the as-made film carries), all first order,
integrated over the film's actual temperature T(t) (kelvin, R gas constant):

* loosely bound ligand / trapped solvent:  θ_l = exp(−∫k_l dt),
  k_l = A_l exp(−E_l/RT)  (gone by ~80 °C; hexane boils at 69 °C);
* bound Cd-myristate, decomposing oxidatively in air with a Gaussian
  distribution of activation energies (DAEM, the standard model of
  thermogravimetry of organics):  θ_b = Σ_j w_j exp(−A_b ∫exp(−E_j/RT) dt);
* carbonaceous residue (TGA step 2):  ρ = Σ_j w_j exp(−A_r ∫exp(−E_j/RT) dt);
* fusion into bulk-like CdSe (necking, CdO at the surface), JMAK kinetics:
  φ = 1 − exp(−Θⁿ),  Θ = ∫A_f exp(−E_f/RT) dt.

Nothing is looked up by set temperature: each film keeps the integrals, so a
film annealed at 300 °C and then at 340 °C ends in the 340 °C state, and
cooling restores nothing (every integral only grows).

Derived: face-to-face distance
``d = (1−φ)[d_res·ρ + (d_p − d_res)·θ_b + d_l·θ_l]`` (3.8 nm as made), TGA-like
ligand mass loss, EDX carbon, and the *anneal-equivalent temperature* T_eq:
the set temperature of the paper's program (10 °C/min, 30 min dwell, 120 min
cooling) that leaves the same bound-ligand removal. T_eq is the coordinate on
which the photoconductivity is interpolated between Table 2's anneals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

R_GAS = 8.314462618  #: J/(mol K)
KELVIN = 273.15
#: below these temperatures a process is too slow to integrate (saves work; rates < 1e-9/s)
_BOUND_ACTIVE_C = 110.0
_FUSION_ACTIVE_C = 230.0
_REVISION_STEP = 1e-4


def _daem(mean: float, sd: float, bins: int) -> tuple[np.ndarray, np.ndarray]:
    if sd <= 0 or bins <= 1:
        return np.array([mean]), np.array([1.0])
    x = np.linspace(-3.0, 3.0, int(bins))
    w = np.exp(-0.5 * x * x)
    return mean + sd * x, w / w.sum()


@dataclass(frozen=True)
class Kinetics:
    """Immutable kinetic constants of one film type (built from ``params.film``)."""

    a_loose: float
    e_loose: float
    a_bound: float
    e_bound: tuple
    w_bound: tuple
    a_residue: float
    e_residue: tuple
    w_residue: tuple
    e_fusion: float
    avrami_n: float
    fusion_extent_350: float
    ramp_c_per_min: float
    dwell_min: float
    cool_min: float

    @classmethod
    def from_params(cls, p: dict) -> Kinetics:
        eb, wb = _daem(
            p["bound_activation_mean_j_per_mol"],
            p["bound_activation_sd_j_per_mol"],
            p["bound_activation_bins"],
        )
        er, wr = _daem(
            p["residue_activation_mean_j_per_mol"],
            p["residue_activation_sd_j_per_mol"],
            p["residue_activation_bins"],
        )
        return cls(
            float(p["loose_prefactor_per_s"]),
            float(p["loose_activation_j_per_mol"]),
            float(p["bound_prefactor_per_s"]),
            tuple(eb),
            tuple(wb),
            float(p["residue_prefactor_per_s"]),
            tuple(er),
            tuple(wr),
            float(p["fusion_activation_j_per_mol"]),
            float(p["fusion_avrami_n"]),
            float(p["fusion_extent_350"]),
            float(p["nominal_ramp_c_per_min"]),
            float(p["nominal_dwell_min"]),
            float(p["nominal_cool_min"]),
        )

    @property
    def fusion_prefactor_per_s(self) -> float:
        return _fusion_prefactor(self)

    def nominal_program(
        self, anneal_c: float, ambient_c: float = 25.0, dt: float = 5.0
    ) -> np.ndarray:
        """Sample temperatures (°C) of the paper's program, at ``dt`` intervals (ideal furnace)."""
        return _nominal_program(
            anneal_c, ambient_c, dt, self.ramp_c_per_min, self.dwell_min, self.cool_min
        )


def _nominal_program(anneal_c, ambient_c, dt, ramp, dwell, cool) -> np.ndarray:
    n_ramp = max(1, int(round((anneal_c - ambient_c) / ramp * 60.0 / dt)))
    n_dwell = int(round(dwell * 60.0 / dt))
    n_cool = int(round(cool * 60.0 / dt))
    ramp_t = ambient_c + (anneal_c - ambient_c) * (np.arange(n_ramp) + 0.5) / n_ramp
    cool_t = anneal_c - (anneal_c - ambient_c) * (np.arange(n_cool) + 0.5) / n_cool
    return np.concatenate([ramp_t, np.full(n_dwell, float(anneal_c)), cool_t])


@lru_cache(maxsize=8)
def _fusion_prefactor(kin: Kinetics) -> float:
    dt = 5.0
    temps = kin.nominal_program(350.0, dt=dt) + KELVIN
    integral = float(np.sum(np.exp(-kin.e_fusion / (R_GAS * temps)))) * dt
    return kin.fusion_extent_350 / integral


@lru_cache(maxsize=8)
def equivalence_table(kin: Kinetics) -> tuple[np.ndarray, np.ndarray]:
    """(anneal °C, ln removed bound fraction) after the paper's program, 25…345 °C.

    Strictly increasing; inverted by :meth:`Film.anneal_equivalent_c`.
    """
    set_c = np.arange(25.0, 345.01, 2.5)
    dt = 5.0
    e = np.asarray(kin.e_bound)
    w = np.asarray(kin.w_bound)
    log_removed = np.empty_like(set_c)
    for i, tset in enumerate(set_c):
        temps = kin.nominal_program(tset, dt=dt) + KELVIN
        integ = np.exp(-np.outer(1.0 / (R_GAS * temps), e)).sum(axis=0) * dt
        removed = float(np.sum(w * -np.expm1(-kin.a_bound * integ)))
        log_removed[i] = math.log(max(removed, 1e-300))
    return set_c, log_removed


class Film:
    """One NPL film on a fused-silica substrate (state + derived properties)."""

    is_blank = False

    def __init__(self, film_params: dict, label: str = "", ambient_c: float = 25.0) -> None:
        self.p = film_params
        self.kin = Kinetics.from_params(film_params)
        self.label = label
        self.thickness_nm = float(film_params["thickness_nm"])
        self.temperature_c = float(ambient_c)
        self.max_temperature_c = float(ambient_c)
        self.heating = HeatingEpisodes(float(ambient_c))
        self._e_bound = np.asarray(self.kin.e_bound)
        self._w_bound = np.asarray(self.kin.w_bound)
        self._e_res = np.asarray(self.kin.e_residue)
        self._w_res = np.asarray(self.kin.w_residue)
        self._a_fusion = self.kin.fusion_prefactor_per_s
        # history integrals (only ever grow)
        self.loose_integral = 0.0  # ∫k_l dt
        self.bound_integrals = np.zeros_like(self._e_bound)  # ∫exp(-E_j/RT) dt, s
        self.residue_integrals = np.zeros_like(self._e_res)
        self.fusion_integral = 0.0  # Θ
        self.revision = 0  # bumped whenever the state changes noticeably (caches key on it)
        self._marker = (1.0, 0.0, 1.0, 0.0)  # loose, removed, residue, fused at last revision
        self._derived: dict | None = None

    # --- time evolution ------------------------------------------------------
    def step(self, dt: float, environment_c: float, lag_s: float = 0.0) -> None:
        """Relax towards ``environment_c`` with time constant ``lag_s``, then react for ``dt``."""
        if dt <= 0:
            return
        t0 = self.temperature_c
        if lag_s > 0:
            t1 = t0 + (environment_c - t0) * -math.expm1(-dt / lag_s)
        else:
            t1 = float(environment_c)
        self.temperature_c = t1
        self.heating.observe(t1)
        tm = 0.5 * (t0 + t1)  # midpoint temperature of the step
        if tm > self.max_temperature_c:
            self.max_temperature_c = tm
        beta = 1.0 / (R_GAS * (tm + KELVIN))
        k = self.kin
        dl = dt * k.a_loose * math.exp(-k.e_loose * beta)
        self.loose_integral += dl
        if tm <= _BOUND_ACTIVE_C:
            # cold: only the loose population moves (slowly, or not at all)
            if dl > 0.0:
                self._derived = None
                loose = math.exp(-self.loose_integral)
                if abs(loose - self._marker[0]) > _REVISION_STEP:
                    self._marker = (loose, *self._marker[1:])
                    self.revision += 1
            return
        self.bound_integrals += dt * np.exp(-self._e_bound * beta)
        if tm > _FUSION_ACTIVE_C:
            self.residue_integrals += dt * np.exp(-self._e_res * beta)
            self.fusion_integral += dt * self._a_fusion * math.exp(-k.e_fusion * beta)
        self._derived = None
        s = self._state()
        # ``revision`` marks a noticeable change (> 1e-4 in any extent): caches of
        # derived optics key on it, so a slowly evolving film is not recomputed every step
        marker = (s["loose"], s["removed"], s["residue"], s["fused"])
        if any(abs(a - b) > _REVISION_STEP for a, b in zip(marker, self._marker, strict=True)):
            self._marker = marker
            self.revision += 1

    # --- state -------------------------------------------------------------
    def _state(self) -> dict:
        if self._derived is None:
            k = self.kin
            loose = math.exp(-self.loose_integral)
            bound_each = np.exp(-k.a_bound * self.bound_integrals)
            bound = float(np.dot(self._w_bound, bound_each))
            removed = float(np.dot(self._w_bound, -np.expm1(-k.a_bound * self.bound_integrals)))
            residue = float(np.dot(self._w_res, np.exp(-k.a_residue * self.residue_integrals)))
            fused = -math.expm1(-(self.fusion_integral**k.avrami_n))
            self._derived = {
                "loose": loose,
                "bound": bound,
                "removed": removed,
                "residue": residue,
                "fused": fused,
            }
        return self._derived

    @property
    def loose_fraction(self) -> float:
        """Loosely bound ligand / solvent left (1 as made)."""
        return self._state()["loose"]

    @property
    def bound_fraction(self) -> float:
        """Bound Cd-myristate left (1 as made)."""
        return self._state()["bound"]

    @property
    def residue_fraction(self) -> float:
        """Decomposed-ligand residue left (1 until TGA step 2)."""
        return self._state()["residue"]

    @property
    def fused_fraction(self) -> float:
        """Fraction of the film fused into bulk-like CdSe (0 as made)."""
        return self._state()["fused"]

    @property
    def cdo_fraction(self) -> float:
        """CdO share of the solid (forms at the surface of the fused aggregates)."""
        return float(self.p["cdo_fraction_fused"]) * self.fused_fraction

    @property
    def distance_nm(self) -> float:
        """Mean face-to-face inter-NPL distance (TEM); 0 when fully fused."""
        s = self._state()
        p = self.p
        d_res = float(p["gap_residue_nm"])
        gap = (
            d_res * s["residue"]
            + (float(p["gap_bound_nm"]) - d_res) * s["bound"]
            + float(p["gap_loose_nm"]) * s["loose"]
        )
        return (1.0 - s["fused"]) * gap

    @property
    def ligand_mass_loss_fraction(self) -> float:
        """Mass lost by the ligand shell so far, as a Cd(myristate)₂ TGA would weigh it."""
        s = self._state()
        return float(self.p["tga_step1_wt"]) * (1.0 - s["bound"]) + float(
            self.p["tga_step2_wt"]
        ) * (1.0 - s["residue"])

    @property
    def carbon_wt_percent(self) -> float:
        """EDX carbon content (wt %) of the film (paper Table 1: 75.7 / 58.9 / 33.7)."""
        s = self._state()
        p = self.p
        c = (
            float(p["carbon_per_cdse_loose"]) * s["loose"]
            + float(p["carbon_per_cdse_bound"]) * s["bound"]
        )
        return 100.0 * c / (1.0 + c)

    def anneal_equivalent_c(self) -> float:
        """Set temperature of the paper's program that leaves the same bound-ligand removal."""
        removed = self._state()["removed"]
        set_c, log_removed = equivalence_table(self.kin)
        x = math.log(max(removed, 1e-300))
        if x <= log_removed[0]:
            return float(set_c[0])
        return float(np.interp(x, log_removed, set_c))

    def snapshot(self) -> dict:
        """The state as plain numbers (for JSON beside synthetic data)."""
        return {
            "label": self.label,
            "distance_nm": self.distance_nm,
            "loose_fraction": self.loose_fraction,
            "bound_fraction": self.bound_fraction,
            "residue_fraction": self.residue_fraction,
            "fused_fraction": self.fused_fraction,
            "cdo_fraction": self.cdo_fraction,
            "ligand_mass_loss_fraction": self.ligand_mass_loss_fraction,
            "carbon_wt_percent": self.carbon_wt_percent,
            "anneal_equivalent_c": self.anneal_equivalent_c(),
            "max_temperature_c": self.max_temperature_c,
            "heating_episodes": self.heating.count,
            "thickness_nm": self.thickness_nm,
        }

    def __repr__(self) -> str:
        return f"<Film {self.label} d={self.distance_nm:.2f} nm φ={self.fused_fraction:.2f}>"


class BlankSubstrate:
    """A bare fused-silica slide (UV-Vis reference); has a temperature, no chemistry."""

    is_blank = True
    revision = 0

    def __init__(self, label: str = "blank", ambient_c: float = 25.0) -> None:
        self.label = label
        self.temperature_c = float(ambient_c)

    def step(self, dt: float, environment_c: float, lag_s: float = 0.0) -> None:
        if lag_s > 0:
            self.temperature_c += (environment_c - self.temperature_c) * -math.expm1(-dt / lag_s)
        else:
            self.temperature_c = float(environment_c)

    def snapshot(self) -> dict:
        return {"label": self.label, "blank": True}

    def __repr__(self) -> str:
        return f"<BlankSubstrate {self.label}>"


def simulate_tga(
    film_params: dict,
    rate_c_per_min: float | None = None,
    start_c: float = 25.0,
    end_c: float = 600.0,
) -> tuple[np.ndarray, np.ndarray]:
    """TGA of Cd(myristate)₂ with the film's ligand kinetics: (T °C, remaining mass fraction).

    Step 1 (bound-ligand DAEM) weighs ``tga_step1_wt``, step 2 (residue) ``tga_step2_wt``.
    """
    rate = float(film_params["tga_rate_c_per_min"] if rate_c_per_min is None else rate_c_per_min)
    kin = Kinetics.from_params(film_params)
    dt = 2.0
    temps = np.arange(start_c, end_c, rate / 60.0 * dt)
    beta = 1.0 / (R_GAS * (temps + KELVIN))
    ib = np.cumsum(np.exp(-np.outer(beta, kin.e_bound)), axis=0) * dt
    ir = np.cumsum(np.exp(-np.outer(beta, kin.e_residue)), axis=0) * dt
    bound = np.exp(-kin.a_bound * ib) @ np.asarray(kin.w_bound)
    residue = np.exp(-kin.a_residue * ir) @ np.asarray(kin.w_residue)
    mass = (
        1.0
        - film_params["tga_step1_wt"] * (1 - bound)
        - film_params["tga_step2_wt"] * (1 - residue)
    )
    return temps, mass


class HeatingEpisodes:
    """How many times a film was heated: rises of more than ``rise_c`` from a trough that
    reach ``above_c`` (hysteresis on the extremes, so PID overshoot and ripple are no
    new episode). An anneal interrupted and heated again shows 2; the physics, not a
    catalog, says whether a film was annealed once."""

    def __init__(self, start_c: float, rise_c: float = 20.0, above_c: float = 100.0) -> None:
        self.rise_c, self.above_c = rise_c, above_c
        self.count = 0
        self._rising = False
        self._counted = False
        self._extreme = start_c

    def observe(self, t_c: float) -> None:
        if self._rising:
            if t_c > self._extreme:
                self._extreme = t_c
            elif t_c < self._extreme - self.rise_c:
                self._rising, self._extreme = False, t_c
        elif t_c < self._extreme:
            self._extreme = t_c
        elif t_c > self._extreme + self.rise_c:
            self._rising, self._counted, self._extreme = True, False, t_c
        if self._rising and not self._counted and t_c >= self.above_c:
            self.count += 1
            self._counted = True
