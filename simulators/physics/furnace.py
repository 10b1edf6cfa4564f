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

import numpy as np

#: Steps longer than this many explicit sub-steps use the exact solution of the linear
#: two-node plant at constant heater power instead (O(1) in dt; only long, quiet steps
#: of ``World.advance`` at rest are this long).
_EXACT_AFTER_SUBSTEPS = 16


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
        self._modes: tuple | None = None  # the plant's eigen-decomposition (see _exact)
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
        te, tz = self.element_c, self.zone_c
        if n > _EXACT_AFTER_SUBSTEPS:
            te, tz = self._exact(dt, power, te, tz)
        else:
            h = dt / n
            for _ in range(n):
                q_ez = self._gez * (te - tz)
                te += h * (power - q_ez - self._ge * (te - ta)) / self._ce
                tz += h * (q_ez - self._gz * (tz - ta)) / self._cz
        self.element_c, self.zone_c = te, tz
        self.tc_c += (tz - self.tc_c) * -math.expm1(-dt / self._tau_tc)
        self.sample_c += (tz - self.sample_c) * -math.expm1(-dt / self._tau_s)

    def fastest_rate_c_per_s(self) -> float:
        """The fastest rate of change of any node (element, zone, bead, sample) now, °C/s.

        ``World.advance`` sizes a coasting step by it: a step that moves no node by more
        than a fraction of a degree is integrated as accurately as 1 s steps are.
        """
        ta, te, tz = self.ambient_c, self.element_c, self.zone_c
        q_ez = self._gez * (te - tz)
        return max(
            abs((self.heater_power_w - q_ez - self._ge * (te - ta)) / self._ce),
            abs((q_ez - self._gz * (tz - ta)) / self._cz),
            abs(tz - self.tc_c) / self._tau_tc,
            abs(tz - self.sample_c) / self._tau_s,
        )

    def _exact(self, dt: float, power: float, te: float, tz: float) -> tuple[float, float]:
        """Element and zone after ``dt`` at constant ``power``: the linear plant's exact step.

        With x = (T_e − T_a, T_z − T_a), dx/dt = A x + b is linear with a constant
        conductance matrix A (real, negative eigenvalues): x(dt) = x_ss + V e^{Λ dt} V⁻¹
        (x − x_ss), x_ss = −A⁻¹ b. The eigen-decomposition is computed once per plant.
        """
        if self._modes is None:
            ce, cz, gez = self._ce, self._cz, self._gez
            a = np.array([[-(gez + self._ge) / ce, gez / ce], [gez / cz, -(gez + self._gz) / cz]])
            rates, vectors = np.linalg.eig(a)
            self._modes = (a, rates.real, vectors.real, np.linalg.inv(vectors.real))
        a, rates, vectors, inverse = self._modes
        ta = self.ambient_c
        steady = np.linalg.solve(a, np.array([-power / self._ce, 0.0]))
        x = steady + vectors @ (
            np.exp(rates * dt) * (inverse @ (np.array([te - ta, tz - ta]) - steady))
        )
        return float(x[0] + ta), float(x[1] + ta)

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
