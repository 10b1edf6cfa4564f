"""Eurotherm 2408/2416 over-temperature watch: manual output is never left unwatched.

Manual output bypasses the controller's PID, so the driver allows it only
while an :class:`OverTemperatureWatch` runs: a daemon thread that polls PV
every ``poll_s`` of the station clock and, above ``max_setpoint_c +
over_temperature_margin_c``, at a sensor break, or when PV cannot be read,
puts the furnace in its (read-back) safe state and stops.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import TYPE_CHECKING

from labctl.drivers.eurotherm_registers import is_number
from labctl.drivers.eurotherm_safety import FurnaceInterlock, reason
from labctl.errors import InstrumentError, LabctlError

if TYPE_CHECKING:
    from labctl.drivers.eurotherm import Eurotherm2408

log = logging.getLogger("labctl.drivers.eurotherm")


class OverTemperatureGuard:
    """Over-temperature check and watch (mixin of the driver)."""

    def check_over_temperature(self) -> float:
        """Read PV; above ``max_setpoint_c + over_temperature_margin_c``, or at a sensor
        break, put the furnace in its safe state and raise :class:`FurnaceInterlock`.

        Returns PV. This is what :class:`OverTemperatureWatch` runs at every poll.
        """
        with self.lock:
            self.refresh_scaling()
            pv = self.temperature_c  # before the break flag (see check_interlocks)
            broken = self.sensor_broken
        if broken:
            problem = "sensor break: thermocouple open, PV unknown"
        elif pv > self.over_temperature_c:
            problem = (
                f"over-temperature: PV {pv:g} °C above {self.over_temperature_c:g} °C "
                f"(max_setpoint_c {self.max_setpoint_c:g} + margin)"
            )
        else:
            return pv
        try:
            confirmed = self.safe_state()
        except InstrumentError as exc:
            problem += f"; {reason(exc)}"
        else:
            problem += f"; furnace put in its {confirmed}"
        raise FurnaceInterlock(self.name, problem)

    def over_temperature_watch(self, poll_s: float = 1.0) -> OverTemperatureWatch:
        """Start an over-temperature watch; manual output is refused unless one runs.

        Use as a context manager::

            with furnace.over_temperature_watch(poll_s=1.0):
                furnace.manual_mode = True
                furnace.output_percent = 30.0
                ...
            # on leaving: the watch stops and the controller is back in auto
        """
        if not (is_number(poll_s) and math.isfinite(poll_s) and 0 < poll_s <= 60):
            raise InstrumentError(self.name, f"watch poll_s must be in (0, 60] s, got {poll_s!r}")
        with self.lock:
            if self._watch is not None and self._watch.running:
                raise InstrumentError(self.name, "an over-temperature watch is already running")
            self._watch = OverTemperatureWatch(self, float(poll_s))
            self._watch.start()
            return self._watch


class OverTemperatureWatch:
    """Guards manual output: polls PV in a daemon thread every ``poll_s`` of the
    station clock and, above the over-temperature limit or at a sensor break (or
    when PV cannot be read), puts the furnace in its safe state and stops.

    Started by :meth:`Eurotherm2408.over_temperature_watch`. As a context
    manager it stops on exit and returns the controller to auto; a trip is then
    raised as :class:`FurnaceInterlock` (``tripped`` keeps it either way).
    """

    def __init__(self, furnace: Eurotherm2408, poll_s: float) -> None:
        self.furnace = furnace
        self.poll_s = poll_s
        self.tripped: FurnaceInterlock | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"{furnace.name}-over-temperature-watch", daemon=True
        )

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def start(self) -> OverTemperatureWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        # poll_s of station time in wall time (a virtual clock polls every 10 ms)
        wall_s = max(self.poll_s / self.furnace.clock.scale, 0.01)
        while not self._stop.is_set():
            try:
                self.furnace.check_over_temperature()
            except FurnaceInterlock as exc:
                self.tripped = exc
            except LabctlError as exc:  # blind: the watch cannot see PV any more
                self.tripped = FurnaceInterlock(
                    self.furnace.name, f"over-temperature watch cannot read PV: {exc}"
                )
                try:
                    self.furnace.safe_state()
                except LabctlError:
                    log.exception("%s: safe state after a lost watch failed", self.furnace.name)
            if self.tripped is not None:
                log.error("%s", self.tripped)
                self._stop.set()
                return
            self._stop.wait(wall_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10.0)

    def __enter__(self) -> OverTemperatureWatch:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
        try:
            if self.furnace.manual_mode:
                self.furnace.manual_mode = False  # no manual output without the watch
        except LabctlError:
            if exc is None and self.tripped is None:
                raise
            log.exception("%s: returning to auto failed", self.furnace.name)
        if self.tripped is not None and exc is None:
            raise self.tripped
