"""Thermal plant of the tube furnace, and a reference PID programmer for tests.

Two lumped nodes (heat capacities C_e, C_z) and a thermocouple::

    C_e dT_e/dt = P·u − G_ez (T_e − T_z) − G_e (T_e − T_a)      heating element + insulation face
    C_z dT_z/dt = G_ez (T_e − T_z) − G_z (T_z − T_a)            work tube, hot zone
    τ_tc dT_tc/dt = T_z − T_tc                                  thermocouple bead (sheathed type K)

``u`` = ``heater_fraction`` (0..1), set by the controller. The element's stored
heat is the lag between heater and thermocouple that makes a PID overshoot at
the end of a ramp; the small overall conductance makes natural cooling take
hours (slow mode τ ≈ (C_e + C_z)/(G_e + G_z) ≈ 37 min; 350 → 30 °C ≈ 2.7 h).

Samples on the holder feel the zone temperature through an axial profile (flat
hot zone, Gaussian roll-off) and their own thermal lag; see
:meth:`FurnacePlant.local_temperature_c` and ``World.advance``.

Sensor break: with ``sensor_broken`` set, the open thermocouple drives the
input upscale ("upscale burnout"), so ``thermocouple_c`` reads ``range_max_c``
— what the controller shows as its PV with the sensor-break flag raised.
"""

from __future__ import annotations

import math


class FurnacePlant:
    """Heater → element → hot zone → room; thermocouple in the hot zone.

    Interface: ``heater_fraction`` (0..1) is set by the controller;
    ``thermocouple_c`` is what the controller's sensor reads, ``sample_c`` what
    a sample at the hot-zone centre feels (lagged); ``sensor_broken`` simulates
    an open thermocouple; ``zone_c`` is the true hot-zone air/tube temperature.
    """

    def __init__(self, p: dict) -> None:
        self.p = p
        self.ambient_c = float(p["ambient_c"])
        self.element_c = self.ambient_c
        self.zone_c = self.ambient_c
        self.tc_c = self.ambient_c  # the bead's true temperature
        self.sample_c = self.ambient_c
        self.heater_fraction = 0.0
        self.sensor_broken = False
        self._cache_p()

    def _cache_p(self) -> None:
        p = self.p
        self._pmax = float(p["heater_max_w"])
        self._ce = float(p["element_heat_capacity_j_per_k"])
        self._cz = float(p["zone_heat_capacity_j_per_k"])
        self._gez = float(p["element_to_zone_w_per_k"])
        self._ge = float(p["element_loss_w_per_k"])
        self._gz = float(p["zone_loss_w_per_k"])
        self._tau_tc = float(p["thermocouple_lag_s"])
        self._tau_s = float(p["sample_lag_s"])
        self._flat = float(p["hot_zone_flat_half_mm"])
        self._roll = float(p["hot_zone_rolloff_mm"])

    def set_ambient(self, ambient_c: float) -> None:
        """Room temperature; an idle furnace is at equilibrium with it."""
        self.ambient_c = self.element_c = self.zone_c = self.tc_c = self.sample_c = float(ambient_c)

    @property
    def thermocouple_c(self) -> float:
        """The controller's process value: the bead, or range max if the thermocouple is open."""
        if self.sensor_broken:
            return float(self.p["range_max_c"])
        return self.tc_c

    @property
    def heater_power_w(self) -> float:
        return self._pmax * min(1.0, max(0.0, self.heater_fraction))

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds (explicit sub-steps well inside the plant's stability limit)."""
        if dt <= 0:
            return
        power = self.heater_power_w
        ta = self.ambient_c
        n = max(1, math.ceil(dt / 2.0))
        h = dt / n
        te, tz = self.element_c, self.zone_c
        for _ in range(n):
            q_ez = self._gez * (te - tz)
            te += h * (power - q_ez - self._ge * (te - ta)) / self._ce
            tz += h * (q_ez - self._gz * (tz - ta)) / self._cz
        self.element_c, self.zone_c = te, tz
        self.tc_c += (tz - self.tc_c) * -math.expm1(-dt / self._tau_tc)
        self.sample_c += (tz - self.sample_c) * -math.expm1(-dt / self._tau_s)

    def profile(self, offset_mm: float) -> float:
        """Fraction of the hot-zone temperature rise at ``offset_mm`` from its centre."""
        x = abs(offset_mm) - self._flat
        if x <= 0:
            return 1.0
        x /= self._roll
        return math.exp(-x * x) if x < 6 else 0.0

    def local_temperature_c(self, offset_mm: float) -> float:
        """Air/holder temperature at an axial offset from the hot-zone centre."""
        return self.ambient_c + (self.zone_c - self.ambient_c) * self.profile(offset_mm)

    @property
    def sample_lag_s(self) -> float:
        return self._tau_s


class ReferenceProgrammer:
    """A PID + ramp/dwell programmer driving a :class:`FurnacePlant` (tests, benchmarks).

    Not an instrument: the Eurotherm simulator has its own. It controls on the
    thermocouple reading like the real controller (positional PID on the
    ramping working setpoint, derivative on PV, anti-windup by clamping), so
    physics tests can run the paper's program without the Modbus layer.
    Segments: ``("ramp", rate_c_per_min, target_c)``, ``("dwell", minutes)``.
    """

    def __init__(
        self, plant: FurnacePlant, pb_c: float = 20.0, ti_s: float = 360.0, td_s: float = 60.0
    ):
        self.plant = plant
        self.pb_c, self.ti_s, self.td_s = pb_c, ti_s, td_s
        self.segments: list[tuple] = []
        self.index = 0
        self.seg_t = 0.0
        self.setpoint_c = plant.thermocouple_c
        self.integral = 0.0
        self.last_pv: float | None = None
        self.running = False

    def load(self, segments: list[tuple]) -> None:
        self.segments = list(segments)
        self.index = 0
        self.seg_t = 0.0
        self.setpoint_c = self.plant.thermocouple_c
        self.running = True

    @property
    def done(self) -> bool:
        return not self.running

    def __call__(self, t: float, dt: float) -> None:
        self._program(dt)
        pv = self.plant.thermocouple_c
        if self.plant.sensor_broken:
            self.plant.heater_fraction = 0.0
            return
        err = self.setpoint_c - pv
        gain = 1.0 / self.pb_c
        deriv = 0.0 if self.last_pv is None or dt <= 0 else -(pv - self.last_pv) / dt
        self.last_pv = pv
        trial_i = self.integral + gain * err * dt / self.ti_s
        out = gain * err + trial_i + gain * self.td_s * deriv
        if 0.0 < out < 1.0 or (out >= 1.0 and err < 0) or (out <= 0.0 and err > 0):
            self.integral = trial_i
        self.plant.heater_fraction = min(1.0, max(0.0, out))

    def _program(self, dt: float) -> None:
        if not self.running:
            return
        if self.index >= len(self.segments):
            self.running = False
            return
        seg = self.segments[self.index]
        self.seg_t += dt
        if seg[0] == "ramp":
            rate_s = seg[1] / 60.0
            target = seg[2]
            step = rate_s * dt
            if abs(target - self.setpoint_c) <= step:
                self.setpoint_c = target
                self._next()
            else:
                self.setpoint_c += math.copysign(step, target - self.setpoint_c)
        elif seg[0] == "dwell":
            if self.seg_t >= seg[1] * 60.0:
                self._next()
        else:
            raise ValueError(f"unknown program segment {seg!r}")

    def _next(self) -> None:
        self.index += 1
        self.seg_t = 0.0
        if self.index >= len(self.segments):
            self.running = False


def paper_program(anneal_c: float, ambient_c: float = 25.0, dwell_min: float = 30.0) -> list[tuple]:
    """The paper's anneal: 10 °C/min to ``anneal_c``, dwell, cool to ambient in 120 min."""
    cool_rate = (anneal_c - ambient_c) / 120.0
    return [
        ("ramp", 10.0, anneal_c),
        ("dwell", dwell_min),
        ("ramp", max(cool_rate, 0.01), ambient_c),
    ]


def anneal_slot(
    world,
    slot: int,
    anneal_c: float,
    dwell_min: float = 30.0,
    ramp_c_per_min: float = 10.0,
    cool_min: float = 120.0,
    ready_below_c: float = 30.0,
) -> None:
    """Anneal the film in ``slot`` the paper's way with the reference programmer (no instruments).

    Moves stage 3 to the slot, runs ramp → dwell → ``cool_min`` controlled cooling on
    the world's virtual clock, then lets the furnace cool naturally below
    ``ready_below_c``. For physics tests and benchmarks; ``labctl sim measure`` does the
    same through the Eurotherm simulator.
    """
    ctl = getattr(world, "_reference_programmer", None)
    if ctl is None:
        pid = world.params.furnace["reference_pid"]
        ctl = ReferenceProgrammer(world.furnace, **pid)
        world._reference_programmer = ctl
        world.add_controller(ctl)
    clock = world.clock
    with world.lock:
        world.advance()
        stage = world.stages[2]
        stage.move_to(world.slot_position_mm(slot), world.t)
    clock.sleep(abs(stage.target_mm - stage.start_mm) / stage.velocity_mm_s + 1.0)
    ambient = world.furnace.ambient_c
    cool_rate = max((anneal_c - ambient) / cool_min, 0.01)
    with world.lock:
        world.advance()
        ctl.load(
            [("ramp", ramp_c_per_min, anneal_c), ("dwell", dwell_min), ("ramp", cool_rate, ambient)]
        )
    while True:
        clock.sleep(600.0)
        with world.lock:
            world.advance()
            if ctl.done and world.furnace.sample_c < ready_below_c:
                return
