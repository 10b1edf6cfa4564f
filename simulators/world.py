"""The simulated world every simulated instrument observes.

One :class:`World` holds the physical state: the furnace's thermal plant, the
films in the sample holder with their annealing history, the three motorised
axes of the optical table, and the OPTP/THz optics. Simulators (protocol
handlers) read and act on it; they never keep physics of their own. The
physics lives in :mod:`labctl.simulators.physics` and every parameter in
:mod:`labctl.simulators.physics.params`; ``docs/physics.md`` explains both.

Time: the world integrates lazily up to ``clock.now()`` whenever it is
observed (:meth:`World.advance`), in steps of at most ``max_step_s``; on each
step every registered controller (e.g. the Eurotherm's PID and programmer) is
called first, so control and plant evolve together over virtual time.

Rest costs O(1): when the world is *at rest* -- the furnace unheated and within
:data:`REST_C` of the room on every node, every controller saying that any step
leaves it as it is (its ``at_rest`` hook), every film cold and settled -- the
rest of the interval is one step (the plant's exact solution, the films' exact
constant-temperature step). Stepped second by second it would give the same
state to within :data:`REST_C`; in one step a served world left idle for days
of virtual time (hours at 10⁵× real time) answers its next request at once.

Unheated stretches cost O(temperature travel), not O(duration): while the
furnace *coasts* -- heater off and every controller saying it stays off while
the PV is above a floor it names (its ``coasts_above_c`` hook: the Eurotherm's
settled working setpoint, no program running), no stage moving -- a step is as
long as moves no furnace node and no film by more than :data:`COAST_TRAVEL_C`
(at most :data:`COAST_MAX_STEP_S`), and never lets the PV reach the floor
(an unheated plant never falls below the room). Natural cooling from 350 °C
to the room is then ~2 000 steps instead of ~30 000 (10 h of 1 s steps); the
furnace's nodes and the films stay within :data:`COAST_TRAVEL_C` of the 1 s
stepped trajectory (``tests/test_world_rest.py``), and a served world at 10⁵×
real time answers at once while it cools.

Geometry: an in-situ optical tube furnace. The holder (a rod with one slot
every ``holder.pitch_mm``) rides on stage 3 along the tube axis; the UV-Vis
and THz/pump beams cross the tube through side windows at the hot-zone
centre. Slot k is at the hot-zone centre — heated *and* in the beams — when
stage 3 reads ``k × pitch`` mm (:meth:`World.slot_position_mm`); the other
slots sit out in the tube's cool ends (axial profile: flat ±10 mm, Gaussian
roll-off 15 mm, so a neighbour 40 mm away warms by < 2 % of the rise). Slot 0
holds the blank fused-silica reference; slots 1…n hold fresh films. Between
slots the beams pass the holder's open gaps (nothing in the beam).

Interface contract (used by simulators in this package):

* ``world.lock`` — RLock; hold it while reading or acting on the world.
* ``world.advance()`` — integrate to now; call before every observation.
* ``world.add_controller(fn, at_rest=None, coasts_above_c=None)`` — ``fn(t_s, dt_s)``
  called every step; ``at_rest()`` (optional) is true when any step, however long,
  leaves the controller's output as it is while the plant is at rest (see "Rest"
  above); ``coasts_above_c()`` (optional) returns the PV (°C) above which any step
  leaves the controller heating nothing and integrating nothing it would not
  integrate exactly (``-inf``: any PV; ``None``: it needs 1 s steps now). A
  controller called for a long step acts on the time since its last call only
  (the step may be cut to 1 s after it has acted: when it turned the heater on).
* ``world.furnace`` — :class:`~labctl.simulators.physics.furnace.FurnacePlant`:
  ``heater_fraction`` (0..1, set by the controller), ``thermocouple_c``
  (reads ``range_max_c`` while ``sensor_broken``: upscale burnout),
  ``sensor_broken``, ``ambient_c``, ``sample_c`` (hot-zone centre).
* ``world.stages[i]`` — :class:`Stage` for axis ``i+1`` (1 THz sampling delay,
  2 pump delay, 3 sample translation), positions in mm.
* ``world.films`` — films in the holder (blank excluded);
  ``world.slots`` (:class:`FilmSlot`); ``world.slot_in_beam()``,
  ``world.film_in_beam()`` (a Film, the blank, or None);
  ``world.slot_position_mm(k)``, ``world.film_slots()``, ``world.blank_slot``.
* ``world.sampling_delay_ps()``, ``world.pump_delay_ps()``.
* ``world.lockin_input_v(channel)`` — demodulated input (volts, in-phase, rms)
  for lock-in ``channel`` ("ref" or "pump"): "ref" sees E_ref + ΔE/2, "pump"
  sees ΔE/2 (see :mod:`~labctl.simulators.physics.table`); with
  ``noise="realistic"`` it carries the table's intensity noise, drifts and
  delay errors (:mod:`~labctl.simulators.physics.noise`, ``world.table_noise``),
  otherwise it is noise-free.
* ``world.lockin_noise_v_per_rthz(channel)`` — white input noise density
  (0 when ``noise`` is False).
* ``world.lockin_reference_hz(channel)`` — chopper frequency it locks to.
* ``world.spectrum_counts(wavelengths_nm, integration_time_s, dark=False)`` —
  noise-free mean photo-signal counts (lamp × transmission of what is in the
  beam), no dark signal, offset or saturation; ``dark=True`` or
  ``world.lamp_shutter_open = False`` → zeros.
* ``world.pump_power_w(wavelength_nm)`` — average pump power at the meter head.
* ``world.configure(**opts)`` — the station's ``simulation:`` options.
* ``world.faults`` — :class:`~labctl.simulators.faults.FaultBoard`: injected faults by role
  (``inject(role, kind)``, ``clear(role=None, kind=None)``, ``active(role)``).
* Truth for tests and metadata: ``world.photoresponse(film)``,
  ``world.true_parameters(film)``, ``world.absorbance(film, wavelengths_nm)``,
  ``world.optp_peak_delay_ps()``, ``world.tds_pump_delay_ps()``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from labctl.clock import Clock, VirtualClock
from labctl.simulators.faults import FaultBoard
from labctl.simulators.physics.params import WorldParams, default_params

PS_PER_MM_DOUBLE_PASS = 6.671  # 2 mm of optical path per mm of travel / c
#: a film this cold and this close to its surroundings is stepped in one go (exact at constant T)
_QUIESCENT_BELOW_C = 60.0
_QUIESCENT_DT_C = 0.05
#: an unheated furnace this close to the room (°C, every node) is at rest: see "Rest" above
REST_C = 1e-3
#: a coasting step moves no furnace node and no film by more than this (°C; the PV shows 0.1)
COAST_TRAVEL_C = 0.1
#: and is at most this long (s): the tail of a cooling, below where any chemistry runs
COAST_MAX_STEP_S = 600.0
#: a heater fraction this small is off (a PID at its floor leaves ~1e-17)
_HEATER_OFF = 1e-11


@dataclass
class Stage:
    """One motorised axis with finite velocity (constant-velocity moves).

    Position is a function of virtual time; a move started at ``t_start``
    from ``start_mm`` reaches ``target_mm`` after ``|Δ|/velocity``.
    """

    axis: int
    min_mm: float = -25.0
    max_mm: float = 125.0
    velocity_mm_s: float = 2.0
    motor_on: bool = True
    start_mm: float = 0.0
    target_mm: float = 0.0
    t_start: float = 0.0
    stopped_at_mm: float | None = None

    def position_mm(self, t: float) -> float:
        dx = self.target_mm - self.start_mm
        if dx == 0 or self.velocity_mm_s <= 0:
            return self.target_mm
        travel = self.velocity_mm_s * max(0.0, t - self.t_start)
        if travel >= abs(dx):
            return self.target_mm
        return self.start_mm + math.copysign(travel, dx)

    def is_moving(self, t: float) -> bool:
        return self.position_mm(t) != self.target_mm

    def move_to(self, target_mm: float, t: float) -> None:
        self.start_mm = self.position_mm(t)
        self.target_mm = float(target_mm)
        self.t_start = t

    def stop(self, t: float) -> None:
        here = self.position_mm(t)
        self.start_mm = self.target_mm = here
        self.t_start = t


@dataclass
class FilmSlot:
    """A place in the holder; ``film`` is a Film, the BlankSubstrate, or None (empty)."""

    index: int
    position_mm: float
    film: object | None = None
    label: str = ""


#: ``simulation:`` options understood by :meth:`World.configure`.
CONFIG_OPTIONS = {
    "n_films": "number of fresh film slots after the blank (default 8)",
    "film_thickness_nm": "thickness of every film (default 100)",
    "pump_fluence_uj_cm2": "pump fluence at the sample (default 5)",
    "ambient_c": "room temperature (default 25)",
    "substrate_thickness_mm": "fused-silica substrate thickness (default 1.0; echo at 2nL/c)",
    "substrate_index": "THz refractive index of the substrate (default 1.95)",
    "slot_pitch_mm": "slot spacing on the holder (default 40)",
    "film_variation": "films of one batch differ in thickness and yield (default false)",
    "noise_floor_v_per_rthz": "detector noise floor of both lock-ins, V/√Hz (default 1.94e-5, "
    "a real table's; 2.5e-9 is the analysis-test table)",
}


class World:
    """Shared physical state of the simulated lab (see module docstring)."""

    max_step_s = 1.0
    #: integrate a stretch at rest in one step (False: second by second, for comparison)
    rest_in_one_step = True
    #: integrate an unheated stretch in long steps (False: second by second, for comparison)
    coast_in_long_steps = True

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        seed: int | None = 0,
        noise: bool | str = True,
        params: WorldParams | None = None,
    ) -> None:
        from labctl.simulators.physics.noise import noise_mode

        self.clock = clock if clock is not None else VirtualClock()
        self.params = params.copy() if params is not None else default_params()
        #: "realistic" (table noise and drift + lock-in white noise), "white" (lock-in
        #: white noise only) or False (none); truthy whenever there is any noise
        mode = noise_mode(noise)
        self.noise: str | bool = False if mode == "off" else mode
        self.film_variation = False
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.lock = threading.RLock()
        self._controllers: list[Callable[[float, float], None]] = []
        self._rest_checks: list[Callable[[], bool] | None] = []
        self._coast_floors: list[Callable[[], float | None] | None] = []
        self.t = self.clock.now()
        self.pump_fluence_uj_cm2 = float(self.params.table["pump_fluence_uj_cm2"])
        self.lamp_shutter_open = True  # UV-Vis light source shutter (closed: dark spectra)
        self._build()
        self.faults = FaultBoard(self)  # injected faults, by role; outlives configure()

    def _build(self) -> None:
        from labctl.simulators.physics.absorption import AbsorptionModel
        from labctl.simulators.physics.furnace import FurnacePlant
        from labctl.simulators.physics.noise import TableNoise, vary_films
        from labctl.simulators.physics.photoconductivity import PhotoModel
        from labctl.simulators.physics.table import OpticalTable

        p = self.params
        self.furnace = FurnacePlant(p.furnace)
        self.stages = [Stage(axis=i + 1, **p.stages[i]) for i in range(len(p.stages))]
        self.absorption = AbsorptionModel(p.optics)
        self.photo = PhotoModel(p.photo, p.film, self.absorption)
        self.table_noise = TableNoise(p.noise, self.rng, self.noise == "realistic", self.t)
        self.table = OpticalTable(self)
        self.slots = self._make_slots()
        if self.film_variation:
            vary_films(self.films, p.noise, self.rng)

    def _make_slots(self) -> list[FilmSlot]:
        from labctl.simulators.physics.film import BlankSubstrate, Film

        h = self.params.holder
        ambient = self.furnace.ambient_c
        slots = []
        n = int(h["n_film_slots"]) + 1
        blank = int(h["blank_slot"])
        k_film = 0
        for k in range(n):
            pos = k * float(h["pitch_mm"])
            if k == blank:
                slots.append(FilmSlot(k, pos, BlankSubstrate("blank", ambient), "blank"))
            else:
                k_film += 1
                label = f"film{k_film}"
                slots.append(FilmSlot(k, pos, Film(self.params.film, label, ambient), label))
        return slots

    def configure(self, **opts) -> None:
        """Apply a station's ``simulation:`` options (see :data:`CONFIG_OPTIONS`); resets the holder."""
        from labctl.errors import StationError
        from labctl.schema import Invalid
        from labctl.station_schema import SIMULATION

        unknown = set(opts) - set(CONFIG_OPTIONS)
        if unknown:
            known = "; ".join(f"{k}: {v}" for k, v in CONFIG_OPTIONS.items())
            raise StationError(f"simulation: unknown options {sorted(unknown)} (known: {known})")
        try:  # finite and within physical ranges (the station schema's table)
            SIMULATION.check(opts, ("simulation",))
        except Invalid as exc:
            raise StationError(str(exc)) from None
        p = self.params
        try:
            with self.lock:
                for key, value in opts.items():
                    if key == "n_films":
                        n = int(value)
                        if not 1 <= n <= 64:
                            raise ValueError("n_films must be 1…64")
                        p.holder["n_film_slots"] = n
                        pitch = float(p.holder["pitch_mm"])
                        p.stages[2]["max_mm"] = max(float(p.stages[2]["max_mm"]), n * pitch + 10.0)
                    elif key == "film_thickness_nm":
                        p.film["thickness_nm"] = _positive(value, key)
                    elif key == "pump_fluence_uj_cm2":
                        p.table["pump_fluence_uj_cm2"] = float(value)
                        if not p.table["pump_fluence_uj_cm2"] >= 0:
                            raise ValueError("pump_fluence_uj_cm2 must be ≥ 0")
                    elif key == "ambient_c":
                        p.furnace["ambient_c"] = float(value)
                    elif key == "substrate_thickness_mm":
                        p.table["substrate_thickness_mm"] = _positive(value, key)
                    elif key == "substrate_index":
                        p.table["substrate_index"] = _positive(value, key)
                    elif key == "noise_floor_v_per_rthz":
                        p.table["noise_floor_v_per_rthz"] = float(value)
                    elif key == "film_variation":
                        if not isinstance(value, bool):
                            raise ValueError(f"film_variation must be true or false, got {value!r}")
                        self.film_variation = value
                    elif key == "slot_pitch_mm":
                        p.holder["pitch_mm"] = _positive(value, key)
                        n = int(p.holder["n_film_slots"])
                        p.stages[2]["max_mm"] = max(
                            float(p.stages[2]["max_mm"]), n * p.holder["pitch_mm"] + 10.0
                        )
                self.pump_fluence_uj_cm2 = float(p.table["pump_fluence_uj_cm2"])
                self._build()
                self.faults.restore()  # a rebuilt furnace keeps an injected sensor break
        except (TypeError, ValueError) as exc:
            raise StationError(f"simulation: {exc}") from None

    def set_pump_fluence(self, fluence_uj_cm2: float) -> None:
        """Change the pump fluence (e.g. an attenuator) — N scales with it."""
        with self.lock:
            self.pump_fluence_uj_cm2 = float(fluence_uj_cm2)

    # --- time ---------------------------------------------------------------
    def add_controller(
        self,
        fn: Callable[[float, float], None],
        at_rest: Callable[[], bool] | None = None,
        coasts_above_c: Callable[[], float | None] | None = None,
    ) -> None:
        """Call ``fn(t_s, dt_s)`` on every step; ``at_rest()``: see "Rest" in the module doc,
        ``coasts_above_c()``: see "Unheated stretches".

        A controller without these hooks keeps the world stepping second by second.
        """
        with self.lock:
            self._controllers.append(fn)
            self._rest_checks.append(at_rest)
            self._coast_floors.append(coasts_above_c)

    def _at_rest(self, slots: list[FilmSlot], holder_x_mm: float) -> bool:
        """Whether one step of any length integrates what is left exactly (module doc, "Rest")."""
        furnace = self.furnace
        if furnace.heater_fraction != 0.0 or furnace.sensor_broken:
            return False
        room = furnace.ambient_c
        nodes = (furnace.element_c, furnace.zone_c, furnace.tc_c, furnace.sample_c)
        if any(abs(node - room) > REST_C for node in nodes):
            return False
        if any(check is None or not check() for check in self._rest_checks):
            return False
        for slot in slots:
            env = furnace.local_temperature_c(slot.position_mm - holder_x_mm)
            if not (
                env < _QUIESCENT_BELOW_C and abs(env - slot.film.temperature_c) < _QUIESCENT_DT_C
            ):
                return False
        return True

    def _coasting_step_s(self, slots: list[FilmSlot], holder_x_mm: float, left_s: float) -> float:
        """The length of the next step while the furnace coasts (module doc, "Unheated
        stretches"); ``max_step_s`` when it does not."""
        furnace = self.furnace
        if furnace.heater_fraction > _HEATER_OFF or any(s.is_moving(self.t) for s in self.stages):
            return self.max_step_s
        floors = [hook() if hook is not None else None for hook in self._coast_floors]
        if any(floor is None for floor in floors):
            return self.max_step_s
        rate = furnace.fastest_rate_c_per_s()
        lag = furnace.sample_lag_s
        for slot in slots:
            env = furnace.local_temperature_c(slot.position_mm - holder_x_mm)
            temperature = slot.film.temperature_c
            if not (env < _QUIESCENT_BELOW_C and abs(env - temperature) < _QUIESCENT_DT_C):
                rate = max(rate, abs(env - temperature) / lag if lag > 0 else math.inf)
        dt = min(left_s, COAST_MAX_STEP_S, COAST_TRAVEL_C / rate if rate > 0 else math.inf)
        if dt <= self.max_step_s:
            return self.max_step_s
        # the lowest PV the step can reach: a node falls by at most the travel, and an
        # unheated plant that is nowhere below the room never falls below it
        nodes = (furnace.element_c, furnace.zone_c, furnace.tc_c, furnace.sample_c)
        lowest = min(furnace.tc_c, furnace.zone_c) - COAST_TRAVEL_C
        if min(nodes) >= furnace.ambient_c:
            lowest = max(lowest, furnace.ambient_c)
        if floors and lowest < max(floors):
            return self.max_step_s
        return dt

    def advance(self) -> None:
        """Integrate controllers, furnace and films up to the clock's now."""
        with self.lock:
            t_end = self.clock.now()
            furnace = self.furnace
            holder_stage = self.stages[2]
            lag = furnace.sample_lag_s
            slots = [s for s in self.slots if s.film is not None]
            idle = [0.0] * len(
                slots
            )  # time a quiescent (cold, settled) film has not yet been stepped
            while self.t < t_end:
                dt = min(self.max_step_s, t_end - self.t)
                if dt < t_end - self.t:
                    x = holder_stage.position_mm(self.t)
                    if self.rest_in_one_step and self._at_rest(slots, x):
                        dt = t_end - self.t  # at rest: the rest of the interval in one step
                    elif self.coast_in_long_steps:
                        dt = self._coasting_step_s(slots, x, t_end - self.t)
                for fn in self._controllers:
                    fn(self.t, dt)
                if dt > self.max_step_s and furnace.heater_fraction > _HEATER_OFF:
                    # a controller heats after all (a PID holding the room: its integral
                    # back-calculated above 0): this step is 1 s, as it would have been;
                    # resting and coasting controllers integrate nothing over the step ahead
                    dt = self.max_step_s
                furnace.step(dt)
                x = holder_stage.position_mm(self.t + dt)
                for i, slot in enumerate(slots):
                    item = slot.film
                    env = furnace.local_temperature_c(slot.position_mm - x)
                    if env < _QUIESCENT_BELOW_C and abs(env - item.temperature_c) < _QUIESCENT_DT_C:
                        idle[i] += dt  # constant temperature: one exact step later does the same
                        continue
                    if idle[i]:
                        item.step(idle[i], item.temperature_c, lag)
                        idle[i] = 0.0
                    item.step(dt, env, lag)
                self.t += dt
            for i, slot in enumerate(slots):
                if idle[i]:
                    slot.film.step(idle[i], slot.film.temperature_c, lag)

    # --- geometry -----------------------------------------------------------
    @property
    def films(self) -> list:
        """The films in the holder (the blank reference excluded)."""
        return [
            s.film
            for s in self.slots
            if s.film is not None and not getattr(s.film, "is_blank", False)
        ]

    @property
    def blank_slot(self) -> FilmSlot:
        return self.slots[int(self.params.holder["blank_slot"])]

    def film_slots(self) -> list[FilmSlot]:
        return [
            s for s in self.slots if s.film is not None and not getattr(s.film, "is_blank", False)
        ]

    def slot_position_mm(self, index: int) -> float:
        """Stage-3 position that puts slot ``index`` at the hot-zone centre, in the beams."""
        return self.slots[index].position_mm

    def now(self) -> float:
        return self.t

    def film_temperature_c(self, slot: FilmSlot) -> float:
        """Temperature of what a slot holds (or of the holder there, if empty)."""
        if slot.film is not None:
            return slot.film.temperature_c
        x = self.stages[2].position_mm(self.t)
        return self.furnace.local_temperature_c(slot.position_mm - x)

    def slot_in_beam(self) -> FilmSlot | None:
        x = self.stages[2].position_mm(self.t)
        half = self.params.holder["beam_tolerance_mm"]
        for slot in self.slots:
            if abs(x - slot.position_mm) <= half:
                return slot
        return None

    def film_in_beam(self):
        slot = self.slot_in_beam()
        return None if slot is None else slot.film

    def sampling_delay_ps(self) -> float:
        """Gate delay, with the timebase jitter and drift of ``noise: realistic``."""
        stage = self.stages[0]
        x = stage.position_mm(self.t)
        nominal = (x - self.params.table["sampling_zero_mm"]) * PS_PER_MM_DOUBLE_PASS
        return nominal + self.table_noise.sampling_offset_ps(self.t, stage)

    def pump_delay_ps(self) -> float:
        """Pump delay, with stage repeatability and overlap drift of ``noise: realistic``."""
        stage = self.stages[1]
        x = stage.position_mm(self.t)
        nominal = (x - self.params.table["pump_zero_mm"]) * PS_PER_MM_DOUBLE_PASS
        return nominal + self.table_noise.pump_offset_ps(self.t, stage)

    # --- observations -------------------------------------------------------
    def lockin_input_v(self, channel: str) -> float:
        return self.table.lockin_input_v(channel)

    def lockin_noise_v_per_rthz(self, channel: str) -> float:
        return self.table.lockin_noise_v_per_rthz(channel) if self.noise else 0.0

    def lockin_reference_hz(self, channel: str) -> float:
        return self.table.lockin_reference_hz(channel)

    def spectrum_counts(
        self, wavelengths_nm: np.ndarray, integration_time_s: float, dark: bool = False
    ) -> np.ndarray:
        return self.table.spectrum_counts(wavelengths_nm, integration_time_s, dark=dark)

    def pump_power_w(self, wavelength_nm: float = 400.0) -> float:
        return self.table.pump_power_w(wavelength_nm)

    # --- truth (tests, metadata of synthetic data) -----------------------------
    def photoresponse(self, film):
        """The film's photoresponse at the TDS delay for the current fluence."""
        return self.photo.response(film, self.pump_fluence_uj_cm2)

    def absorbance(self, film, wavelengths_nm) -> np.ndarray:
        """Noise-free film absorbance (what a perfect spectrometer would report)."""
        return self.absorption.film_absorbance(film, wavelengths_nm)

    def optp_peak_delay_ps(self) -> float:
        return self.photo.optp_peak_delay_ps

    def tds_pump_delay_ps(self) -> float:
        """Pump delay of the paper's THz-TDS: 0.2 ps after the OPTP peak."""
        return self.photo.tds_delay_ps

    def true_parameters(self, film) -> dict:
        """Everything the simulator knows about a film's state and photoresponse."""
        out = film.snapshot()
        if getattr(film, "is_blank", False):
            return out
        r = self.photoresponse(film)
        wl = np.array([400.0])
        out.update(
            {
                "tau_fs": r.tau_s * 1e15,
                "c": r.c,
                "N_m3": r.n_free_m3,
                "mobility_cm2_Vs": r.as_dict()["mobility_cm2_Vs"],
                "exciton_density_m3": r.n_exciton_m3,
                "exciton_weight": r.exciton_weight,
                "absorbed_density_m3": r.n_abs_m3,
                "free_carrier_yield": r.free_carrier_yield,
                "absorptance_400nm": self.absorption.absorptance(film, 400.0),
                "absorbance_400nm": float(self.absorbance(film, wl)[0]),
                "hh_exciton_nm": 1239.841984
                / self.absorption.hh_energy_ev(film.distance_nm, film.temperature_c),
                "effective_mass": r.effective_mass,
                "pump_fluence_uj_cm2": self.pump_fluence_uj_cm2,
                "params_version": self.params.version,
            }
        )
        return out


def _positive(value, key: str) -> float:
    v = float(value)
    if not v > 0:
        raise ValueError(f"{key} must be positive, got {value!r}")
    return v
