"""Eurotherm 2408/2416 safety: the driver's limits, the interlocks and the read-back safe state.

Safety limits are the driver's job: a setpoint outside
``[min_setpoint_c, max_setpoint_c]``, a ramp faster than
``max_ramp_c_per_min`` or a program segment violating either is refused with
:class:`~labctl.errors.SafetyLimitError` *before anything is written*, checked
before and after the 16-bit scaling (a rate that would be written as 0, "no
limit" on a Eurotherm, is refused). At connect the limits are also written
into the controller's own SP1 limits, so other clients are held to them too
(defence in depth). Manual output needs a running over-temperature watch.

Safe means read back: :meth:`FurnaceSafety.safe_state` resets the program,
sets the safe setpoint and auto mode, then reads all of it back from the
controller and returns one line saying so, or raises
:class:`~labctl.errors.SafeStateError` naming exactly what is not safe. A
run summary or a series stop reports that line as it stands, never an
assumption.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from labctl.drivers.eurotherm_registers import (
    ProgramStatus,
    StatusWord,
    ceil_count,
    floor_count,
    is_number,
)
from labctl.errors import (
    FurnaceInterlock,
    InstrumentError,
    LabctlError,
    SafeStateError,
    SafetyLimitError,
)

log = logging.getLogger("labctl.drivers.eurotherm")

THERMOCOUPLE_RANGE_C = (0.0, 1372.0)  # type K: what the furnace can measure (and reach)


# FurnaceInterlock lives in labctl.errors with the other interlocks (an InterlockError:
# a run it ends is typed "interlock"); imported here so the old import paths keep working.


def checked_option(name: str, key: str, value: Any, low: float, high: float, unit: str) -> float:
    """A driver option as a float, refused unless finite and within ``low..high``."""
    if not (is_number(value) and math.isfinite(value) and low <= value <= high):
        raise SafetyLimitError(
            name, f"option {key} = {value!r} must be a finite number in {low:g}..{high:g}{unit}"
        )
    return float(value)


def manual_output_allowed(instrument, value) -> None:
    """Validator of ``output_percent``: 0..100 %, and only while a watch runs."""
    if not (is_number(value) and 0.0 <= value <= 100.0):
        raise InstrumentError(instrument.name, f"output power {value!r} % is outside 0..100 %")
    instrument.require_watch(f"output power {value:g} %")


def manual_mode_allowed(instrument, value) -> None:
    """Validator of ``manual_mode``: a bool; manual only while a watch runs."""
    if not isinstance(value, bool):
        raise InstrumentError(instrument.name, f"manual_mode must be True or False, got {value!r}")
    if value:
        instrument.require_watch("manual mode")


def reason(exc: LabctlError) -> str:
    """An error's text without the instrument name in front (it is said once)."""
    instrument = getattr(exc, "instrument", None)
    text = str(exc)
    return (
        text[len(instrument) + 2 :] if instrument and text.startswith(f"{instrument}: ") else text
    )


class FurnaceSafety:
    """Limits, interlocks and the read-back safe state (mixin of the driver)."""

    def _write_controller_limits(self) -> None:
        """Write max/min_setpoint_c into SP1 high/low (111/112) and read them back.

        The controller then refuses out-of-limit setpoints from any client
        (front panel, another program) and clamps programmer targets. High is
        rounded down and low up, so the controller's window lies inside ours.
        """
        with self.lock:
            high = self.encode_word(
                self.max_setpoint_c, "temperature", "SP1 high limit", floor_count
            )
            low = self.encode_word(self.min_setpoint_c, "temperature", "SP1 low limit", ceil_count)
            wanted = f"{self.min_setpoint_c:g}..{self.max_setpoint_c:g} °C"
            try:
                current_low = self.decode_word(self._read_word(112), "temperature")
                # keep low < high at every step, whatever the controller held before
                if self.decode_word(high, "temperature") > current_low:
                    self._write_word(111, high)
                    self._write_word(112, low)
                else:
                    self._write_word(112, low)
                    self._write_word(111, high)
                back = self._read_words(111, 2)
            except InstrumentError as exc:
                raise SafetyLimitError(
                    self.name,
                    f"cannot set the controller's own setpoint limits (SP1 high/low, registers "
                    f"111/112) to {wanted}: {exc}; refusing to run without them",
                ) from exc
            if back != [high, low]:
                got = [self.decode_word(w, "temperature") for w in back]
                raise SafetyLimitError(
                    self.name,
                    f"the controller's setpoint limits read back as {got[1]:g}..{got[0]:g} °C, "
                    f"not {wanted}; refusing to run",
                )

    def _encode_setpoint(self, value_c: Any, what: str) -> int:
        """A setpoint word at the current decimal places, checked before and after scaling."""
        self.check_setpoint(value_c, what)
        word = self.encode_word(value_c, "temperature", what)
        self.check_setpoint(self.decode_word(word, "temperature"), f"{what} (as written)")
        return word

    def _encode_rate(self, rate_c_per_min: Any, what: str, unit_s: float) -> int:
        """A rate word in display units per ``unit_s``, rounded down, never 0 ("no limit")."""
        self.check_ramp_rate(rate_c_per_min, what)
        word = self.encode_word(rate_c_per_min * unit_s / 60.0, "temperature", what, floor_count)
        if word == 0:
            smallest = 60.0 / unit_s / 10**self.decimal_places
            raise SafetyLimitError(
                self.name,
                f"{what} {rate_c_per_min:g} °C/min would be written as 0, which a Eurotherm "
                f"reads as no rate limit; the smallest non-zero rate at {self.decimal_places} "
                f"decimal places is {smallest:g} °C/min; nothing was written",
            )
        return word

    def check_setpoint(self, value_c: float, what: str = "setpoint") -> None:
        """Raise SafetyLimitError if ``value_c`` lies outside the configured limits."""
        if not (is_number(value_c) and math.isfinite(value_c)):
            raise SafetyLimitError(self.name, f"{what} {value_c!r} is not a finite temperature")
        if value_c > self.max_setpoint_c:
            raise SafetyLimitError(
                self.name,
                f"{what} {value_c:g} °C exceeds max_setpoint_c = {self.max_setpoint_c:g} °C; "
                "nothing was written",
            )
        if value_c < self.min_setpoint_c:
            raise SafetyLimitError(
                self.name,
                f"{what} {value_c:g} °C is below min_setpoint_c = {self.min_setpoint_c:g} °C; "
                "nothing was written",
            )

    def check_ramp_rate(self, rate_c_per_min: float, what: str = "ramp rate") -> None:
        """Raise SafetyLimitError unless 0 < rate ≤ max_ramp_c_per_min."""
        if not (is_number(rate_c_per_min) and math.isfinite(rate_c_per_min)):
            raise SafetyLimitError(self.name, f"{what} {rate_c_per_min!r} is not a finite rate")
        if rate_c_per_min <= 0:
            raise SafetyLimitError(
                self.name,
                f"{what} {rate_c_per_min:g} °C/min: 0 means unlimited on a Eurotherm, and the limit "
                f"is max_ramp_c_per_min = {self.max_ramp_c_per_min:g} °C/min; nothing was written",
            )
        if rate_c_per_min > self.max_ramp_c_per_min:
            raise SafetyLimitError(
                self.name,
                f"{what} {rate_c_per_min:g} °C/min exceeds max_ramp_c_per_min = "
                f"{self.max_ramp_c_per_min:g} °C/min; nothing was written",
            )

    def check_interlocks(self, max_deviation_c: float | None = None) -> dict:
        """Raise FurnaceInterlock on sensor break, over-temperature or deviation.

        Returns the readings it checked (for logging).
        """
        with self.lock:
            self.refresh_scaling()  # a stale decimal point would hide an over-temperature
            # PV first, the break flags after it: a thermocouple that opens between the
            # reads shows as a sensor break, never as an over-temperature at the range limit
            pv = self.temperature_c
            wsp = self.working_setpoint_c
            status = self.status
            broken = self.sensor_broken
        if broken or StatusWord.SENSOR_BREAK in status:
            raise FurnaceInterlock(
                self.name, f"sensor break: thermocouple open (PV reads {pv:g} °C, the range limit)"
            )
        if pv > self.over_temperature_c:
            raise FurnaceInterlock(
                self.name,
                f"over-temperature: PV {pv:g} °C above {self.over_temperature_c:g} °C "
                f"(max_setpoint_c {self.max_setpoint_c:g} + margin)",
            )
        if max_deviation_c is not None and abs(pv - wsp) > max_deviation_c:
            raise FurnaceInterlock(
                self.name,
                f"deviation: PV {pv:g} °C is {pv - wsp:+.1f} °C from the working setpoint "
                f"{wsp:g} °C (allowed ±{max_deviation_c:g} °C)",
            )
        return {"temperature_c": pv, "working_setpoint_c": wsp, "status": status}

    def require_watch(self, what: str) -> None:
        """Refuse ``what`` (manual output) unless an over-temperature watch is running."""
        watch = self._watch
        if watch is not None and watch.running:
            return
        if watch is not None and watch.tripped is not None:
            raise SafetyLimitError(
                self.name, f"{what} refused: the over-temperature watch tripped: {watch.tripped}"
            )
        raise SafetyLimitError(
            self.name,
            f"{what} refused: manual output bypasses the PID, so it needs a running "
            "over-temperature watch (with furnace.over_temperature_watch(): ...)",
        )

    def safe_state(self) -> str:
        """Put the furnace safe and confirm it by reading it back; return what was read.

        Safe: program reset, target setpoint at ``safe_setpoint_c`` (reached at the
        rate limit), auto mode (the PID, not a manual output). Every step is tried
        even if one fails; then each is read back from the controller. Returns one
        line, ``"safe state confirmed (read back): program reset, setpoint 25.0 °C,
        auto"``; raises :class:`~labctl.errors.SafeStateError` saying exactly what is
        not safe (or could not be read) otherwise.
        """
        failures: list[str] = []
        steps: list[tuple[str, Callable[[], None]]] = [
            ("reset program", self.reset_program),
            ("setpoint", lambda: setattr(self, "setpoint_c", self.safe_setpoint_c)),
            ("auto mode", lambda: setattr(self, "manual_mode", False)),
        ]
        for what, step in steps:
            try:
                step()
            except LabctlError as exc:
                failures.append(f"{what} failed ({reason(exc)})")
        try:
            with self.lock:
                state = self.program_status
                setpoint = self.setpoint_c
                manual = self.manual_mode
                status = self.status
        except LabctlError as exc:
            raise SafeStateError(
                self.name,
                "safe state NOT confirmed: cannot read it back ("
                + "; ".join([*failures, reason(exc)])
                + ")",
            ) from exc
        shown = f"{setpoint:.{max(self.decimal_places, 1)}f} °C"
        unsafe = []
        if state != ProgramStatus.RESET:
            unsafe.append(f"program {state.name.lower()}, not reset")
        if abs(setpoint - self.safe_setpoint_c) > 0.5 / 10**self.decimal_places:
            unsafe.append(f"setpoint {shown}, not {self.safe_setpoint_c:g} °C")
        if manual or StatusWord.MANUAL in status:
            unsafe.append("manual mode (output not under the PID)")
        if unsafe or failures:
            raise SafeStateError(
                self.name, "safe state NOT confirmed (read back): " + "; ".join(unsafe + failures)
            )
        message = f"safe state confirmed (read back): program reset, setpoint {shown}, auto"
        log.info("%s: %s", self.name, message)
        return message
