"""Newport ESP301 motion controller: delay stages in picoseconds, sample slots.

Built on pymeasure's :class:`~pymeasure.instruments.newport.esp300.ESP300`
(same command set; the ESP301 is its successor):

* :class:`MotionController` — ESP300 with serialized I/O, waits through the
  labctl clock (``wait_for_stop`` polls ``MD?``), decoded errors from ``TB?``,
  and timeouts/garbled replies turned into :class:`CommunicationError`.
* :class:`DelayStage` — an axis folding a double-pass delay line: 1 mm of
  travel is 2 mm of optical path, ``6.671 ps``; ``delay_ps = (x - zero_mm) *
  6.671``. The calibrated ``zero_mm`` (pump and probe overlap in time) comes
  from the station file.
* :class:`SampleTranslation` — the axis that brings slot ``i`` of the heated
  holder into the beams (slot ``i`` at ``first_slot_mm + i * pitch_mm``).
* :func:`open_instrument` — the station factory: a :class:`StageSet` with the
  controller and the named stages (``stages.sampling``, ``stages.pump``,
  ``stages.sample``).
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

from pymeasure.instruments.newport.esp300 import ESP300, Axis, AxisError, GeneralError

from labctl.clock import Clock, RealClock
from labctl.errors import CommunicationError, InstrumentError, SafetyLimitError, StationError
from labctl.locking import LINK_ERRORS, SerializedIO, numbers

log = logging.getLogger(__name__)

PS_PER_MM_DOUBLE_PASS = 6.671  # 2 mm of optical path per mm of travel, / c
N_AXES = 3
POSITION_TOLERANCE_MM = 2e-3  # a move that ends farther than this from its target stalled
_MAX_ERRORS_READ = 20  # the controller buffers at most 10

#: Axis queries answered with one number (``1TP``, ``2VA?``, ``3MD?`` …).
_NUMBER_QUERY = re.compile(r"^[1-9](TP|DP|VA|VU|AC|AG|SL|SR|MD|MO|DH|FE|JH|JW|OL|OH)\??$")
#: ``TB?``: "code, timestamp, message".
_TB_REPLY = re.compile(r"^\s*\d+\s*,\s*\d+\s*,")


def esp_reply_problem(command: str, reply: str) -> str | None:
    """Why ``reply`` cannot answer the ESP301 query ``command`` (None if it can)."""
    command = command.strip().upper()
    if command == "TB?" and not _TB_REPLY.match(reply):
        return "expected 'code, timestamp, message'"
    if _NUMBER_QUERY.match(command) and numbers(reply, 1) is None:
        return "expected one number"
    return None


@dataclass(frozen=True)
class ControllerError:
    """One entry of the controller's error buffer."""

    code: int
    message: str
    timestamp: int | None = None

    @property
    def axis(self) -> int | None:
        """Axis number for axis errors (``axis*100 + code``), None for general errors."""
        return self.code // 100 if self.code >= 100 else None

    def __str__(self) -> str:
        where = f"axis {self.axis} " if self.axis else ""
        return f"{where}error {self.code}: {self.message}"


class ESPControllerError(InstrumentError):
    """The controller reported errors (see :attr:`errors`)."""

    def __init__(self, instrument: str, errors: list[ControllerError], context: str = ""):
        self.errors = errors
        text = "; ".join(str(e) for e in errors)
        super().__init__(instrument, f"{context}: {text}" if context else text)

    @property
    def codes(self) -> list[int]:
        return [e.code for e in self.errors]


def decode_error(code: int) -> str:
    """Message for an ESP error code from pymeasure's tables (manual, 'Error messages')."""
    try:
        if code >= 100:
            return AxisError(code).message
        return GeneralError(code).message
    except (KeyError, IndexError):
        return "UNKNOWN ERROR"


class MotionController(SerializedIO, ESP300):
    """pymeasure's ESP300 for an ESP301, with the labctl clock and error handling.

    Axes are ``x``, ``y``, ``phi`` (1, 2, 3) as in pymeasure, or ``axis(n)``.
    """

    identity_query = "VE?"  # the ESP301 has no *IDN?
    identity_pattern = r"^ESP30[01]\b"
    model_description = "a Newport ESP301 motion controller"

    def __init__(
        self,
        adapter,
        name: str = "ESP301",
        *,
        clock: Clock | None = None,
        poll_interval_s: float = 0.05,
        **kwargs,
    ) -> None:
        with (
            warnings.catch_warnings()
        ):  # "not known whether this device supports SCPI": it does not
            warnings.simplefilter("ignore", FutureWarning)
            super().__init__(adapter, name=name, **kwargs)
        self.clock: Clock = clock if clock is not None else RealClock()
        if not poll_interval_s > 0:
            raise ValueError(f"{name}: poll_interval_s must be positive, got {poll_interval_s!r}")
        self.poll_interval_s = float(poll_interval_s)

    # --- I/O: SerializedIO serializes, resyncs and names link errors ----------
    def reply_problem(self, command: str, reply: str) -> str | None:
        return esp_reply_problem(command, reply)

    def explain_silence(self) -> str:
        """The controller is silent after a bad query; its error buffer says why.

        Drains the whole buffer (oldest first) so the report holds every error,
        not only the oldest one, which may predate the failed query.
        """
        raw_write, raw_read = super(SerializedIO, self).write, super(SerializedIO, self).read
        errors = []
        try:
            for _ in range(_MAX_ERRORS_READ):
                raw_write("TB?")
                code, _, message = self._parse_tb(raw_read())
                if code == 0:
                    break
                errors.append(f"{code}: {message}")
        except (CommunicationError, *LINK_ERRORS):
            if not errors:
                return " (timeout; the controller does not answer)"
        if not errors:
            return " (timeout)"
        return f" (controller error{'s' if len(errors) > 1 else ''} {'; '.join(errors)})"

    def _query_number(self, command: str, cast=float):
        reply = self.ask(command).strip()
        try:
            value = cast(float(reply)) if cast is int else cast(reply)
        except ValueError:
            raise self.garbled(command, reply, "expected a number") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise self.garbled(command, reply)
        return value

    # --- pymeasure hooks that would otherwise query everything or use SCPI ----
    @property
    def axes(self) -> list[Axis]:
        """The three axes (pymeasure's version queries every attribute to find them)."""
        return [self.x, self.y, self.phi]

    @property
    def id(self) -> str:
        """Firmware identification (``VE?``; the ESP301 has no ``*IDN?``)."""
        return self.ask("VE?").strip()

    def axis(self, number: int) -> Axis:
        if number not in (1, 2, 3):
            raise InstrumentError(self.name, f"axis {number!r} does not exist (axes 1..3)")
        return self.axes[number - 1]

    # --- errors -----------------------------------------------------------
    def _parse_tb(self, reply: str) -> tuple[int, int | None, str]:
        parts = [p.strip() for p in reply.split(",", 2)]
        try:
            code = int(parts[0])
            timestamp = int(parts[1]) if len(parts) > 1 else None
        except ValueError:
            raise self.garbled("TB?", reply, "expected 'code, time, message'") from None
        message = parts[2] if len(parts) > 2 and parts[2] else decode_error(code)
        return code, timestamp, message

    def read_errors(self) -> list[ControllerError]:
        """Drain the controller's error buffer (``TB?`` until code 0), oldest first."""
        errors: list[ControllerError] = []
        with self.lock:
            for _ in range(_MAX_ERRORS_READ):
                code, timestamp, message = self._parse_tb(self.ask("TB?"))
                if code == 0:
                    break
                errors.append(ControllerError(code, message, timestamp))
        return errors

    def check_errors(self, context: str = "") -> list:
        """Raise :class:`ESPControllerError` if the controller reports errors."""
        errors = self.read_errors()
        if errors:
            raise ESPControllerError(self.name, errors, context)
        return []

    # --- motion -------------------------------------------------------------
    def position_mm(self, axis: int) -> float:
        return self._query_number(f"{axis}TP")

    def is_moving(self, axis: int) -> bool:
        done = self._query_number(f"{axis}MD?", int)
        if done not in (0, 1):
            raise self.garbled(f"{axis}MD?", done, "expected 0 or 1")
        return done == 0

    def velocity_mm_s(self, axis: int) -> float:
        return self._query_number(f"{axis}VA?")

    def set_velocity_mm_s(self, axis: int, velocity_mm_s: float) -> None:
        with self.lock:
            self.write(f"{axis}VA{velocity_mm_s:g}")
            self.check_errors(f"setting axis {axis} velocity to {velocity_mm_s:g} mm/s")

    def limits_mm(self, axis: int) -> tuple[float, float]:
        """Software travel limits (``SL?``, ``SR?``)."""
        with self.lock:
            return self._query_number(f"{axis}SL?"), self._query_number(f"{axis}SR?")

    def move_to_mm(self, axis: int, position_mm: float) -> None:
        """Start an absolute move (pymeasure ``Axis.position``) and check it was accepted."""
        with self.lock:
            self.axis(axis).position = position_mm
            self.check_errors(f"moving axis {axis} to {position_mm:g} mm")

    def stop(self, axis: int) -> None:
        self.write(f"{axis}ST")

    def stop_all(self) -> None:
        with self.lock:
            for n in range(1, N_AXES + 1):
                self.stop(n)

    def wait_for_stop(self, axis: int, timeout_s: float = 60.0) -> float:
        """Poll ``MD?`` through the clock until the axis stops; returns the position (mm).

        Raises :class:`InstrumentError` (naming axis and position) after ``timeout_s``.
        """
        t0 = self.clock.now()
        while self.is_moving(axis):
            if self.clock.now() - t0 >= timeout_s:
                position = self.position_mm(axis)
                raise InstrumentError(
                    self.name,
                    f"axis {axis} still moving after {timeout_s:g} s (at {position:.4f} mm)",
                )
            self.clock.sleep(self.poll_interval_s)
        return self.position_mm(axis)


class _AxisUser:
    """Common part of the stage abstractions: one axis of a controller."""

    def __init__(self, controller: MotionController, axis: int, name: str) -> None:
        controller.axis(axis)  # validates the number
        self.controller = controller
        self.axis = int(axis)
        self.name = name
        self._target_mm: float | None = None  # of the last move, until stopped
        with controller.lock:
            self.limits_mm = controller.limits_mm(self.axis)
            self.velocity_mm_s = controller.velocity_mm_s(self.axis)

    def _where(self) -> str:
        return f"{self.controller.name}.{self.name} (axis {self.axis})"

    @property
    def position_mm(self) -> float:
        return self.controller.position_mm(self.axis)

    @property
    def is_moving(self) -> bool:
        return self.controller.is_moving(self.axis)

    def refresh(self) -> None:
        """Re-read limits and velocity (after someone changed them on the controller)."""
        with self.controller.lock:
            self.limits_mm = self.controller.limits_mm(self.axis)
            self.velocity_mm_s = self.controller.velocity_mm_s(self.axis)

    def set_velocity_mm_s(self, velocity_mm_s: float) -> None:
        self.controller.set_velocity_mm_s(self.axis, velocity_mm_s)
        self.velocity_mm_s = float(velocity_mm_s)

    def _move_timeout_s(self) -> float:
        lo, hi = self.limits_mm
        return 1.5 * abs(hi - lo) / max(self.velocity_mm_s, 1e-9) + 5.0

    def _move(self, target_mm: float, wait: bool, timeout_s: float | None) -> None:
        self.controller.move_to_mm(self.axis, target_mm)
        self._target_mm = float(target_mm)
        if wait:
            self.wait(timeout_s)

    def wait(self, timeout_s: float | None = None) -> float:
        """Wait until the axis stops; returns the position in mm.

        An axis that stopped short of its target (a stall: the controller logs a
        following error) raises :class:`ESPControllerError` with the controller's errors.
        """
        position = self.controller.wait_for_stop(
            self.axis, self._move_timeout_s() if timeout_s is None else timeout_s
        )
        target, self._target_mm = self._target_mm, None
        if target is not None and abs(position - target) > POSITION_TOLERANCE_MM:
            where = f"{self.name} stopped at {position:.4f} mm, short of {target:.4f} mm"
            self.controller.check_errors(where)
            raise InstrumentError(self._where(), f"{where} (no controller error reported)")
        return position

    def stop(self) -> None:
        self._target_mm = None
        self.controller.stop(self.axis)


class DelayStage(_AxisUser):
    """A double-pass delay line on one axis, in picoseconds.

    ``delay_ps = (position_mm - zero_mm) * ps_per_mm``; ``zero_mm`` is the
    calibrated position of zero delay.
    """

    def __init__(
        self,
        controller: MotionController,
        axis: int,
        *,
        zero_mm: float,
        name: str = "delay",
        ps_per_mm: float = PS_PER_MM_DOUBLE_PASS,
    ) -> None:
        if not (isinstance(zero_mm, int | float) and math.isfinite(zero_mm)):
            raise StationError(
                f"{controller.name}.{name}: zero_mm must be a number, got {zero_mm!r}"
            )
        if not ps_per_mm > 0:
            raise StationError(f"{controller.name}.{name}: ps_per_mm must be positive")
        super().__init__(controller, axis, name)
        self.zero_mm = float(zero_mm)
        self.ps_per_mm = float(ps_per_mm)

    def mm_for_delay(self, delay_ps: float) -> float:
        return self.zero_mm + delay_ps / self.ps_per_mm

    def delay_for_mm(self, position_mm: float) -> float:
        return (position_mm - self.zero_mm) * self.ps_per_mm

    @property
    def delay_ps(self) -> float:
        """The present delay (reads the axis position)."""
        return self.delay_for_mm(self.position_mm)

    @property
    def range_ps(self) -> tuple[float, float]:
        """Reachable delays, from the axis's software limits."""
        lo, hi = self.limits_mm
        return self.delay_for_mm(lo), self.delay_for_mm(hi)

    def move_to_ps(self, delay_ps: float, wait: bool = True, timeout_s: float | None = None):
        """Move to a delay; refuses (sends nothing) when it is outside the axis range."""
        if not (isinstance(delay_ps, int | float) and math.isfinite(delay_ps)):
            raise SafetyLimitError(
                self._where(), f"delay must be a finite number, got {delay_ps!r}"
            )
        target_mm = self.mm_for_delay(delay_ps)
        lo, hi = self.limits_mm
        if not lo <= target_mm <= hi:
            lo_ps, hi_ps = self.range_ps
            raise SafetyLimitError(
                self._where(),
                f"delay {delay_ps:g} ps needs {target_mm:.4f} mm, outside the travel "
                f"{lo:g}..{hi:g} mm (delays {lo_ps:.2f}..{hi_ps:.2f} ps with zero at "
                f"{self.zero_mm:g} mm)",
            )
        self._move(target_mm, wait, timeout_s)

    def calibration(self) -> dict[str, Any]:
        """What a run header records about this delay line."""
        lo, hi = self.limits_mm
        return {
            "axis": self.axis,
            "zero_mm": self.zero_mm,
            "ps_per_mm": self.ps_per_mm,
            "velocity_mm_s": self.velocity_mm_s,
            "limits_mm": [lo, hi],
            "range_ps": list(self.range_ps),
        }


class SampleTranslation(_AxisUser):
    """The axis that brings one film of the heated holder into the beams.

    Defaults describe the lab's holder (slot 0 the blank substrate, slots 1..8
    films, 40 mm apart); a station overrides them with ``pitch_mm``/``n_slots``.
    """

    def __init__(
        self,
        controller: MotionController,
        axis: int,
        *,
        name: str = "sample",
        pitch_mm: float = 40.0,
        n_slots: int = 9,
        first_slot_mm: float = 0.0,
        tolerance_mm: float = 0.5,
    ) -> None:
        where = f"{controller.name}.{name}"
        if not (isinstance(n_slots, int) and n_slots >= 1):
            raise StationError(f"{where}: n_slots must be a positive integer, got {n_slots!r}")
        for key, value in (("pitch_mm", pitch_mm), ("tolerance_mm", tolerance_mm)):
            if not (isinstance(value, int | float) and value > 0):
                raise StationError(f"{where}: {key} must be positive, got {value!r}")
        super().__init__(controller, axis, name)
        self.pitch_mm = float(pitch_mm)
        self.n_slots = n_slots
        self.first_slot_mm = float(first_slot_mm)
        self.tolerance_mm = float(tolerance_mm)

    def slot_position_mm(self, slot: int) -> float:
        if not (isinstance(slot, int) and 0 <= slot < self.n_slots):
            raise InstrumentError(
                self._where(),
                f"slot {slot!r} does not exist (the holder has slots 0..{self.n_slots - 1})",
            )
        return self.first_slot_mm + slot * self.pitch_mm

    def move_to_slot(self, slot: int, wait: bool = True, timeout_s: float | None = None) -> None:
        target_mm = self.slot_position_mm(slot)
        lo, hi = self.limits_mm
        if not lo <= target_mm <= hi:
            raise SafetyLimitError(
                self._where(),
                f"slot {slot} at {target_mm:g} mm is outside the travel {lo:g}..{hi:g} mm",
            )
        self._move(target_mm, wait, timeout_s)

    @property
    def slot(self) -> int | None:
        """The slot in the beam, or None when the axis is between slots."""
        x = self.position_mm
        i = round((x - self.first_slot_mm) / self.pitch_mm)
        if 0 <= i < self.n_slots and abs(x - self.slot_position_mm(i)) <= self.tolerance_mm:
            return i
        return None

    def calibration(self) -> dict[str, Any]:
        lo, hi = self.limits_mm
        return {
            "axis": self.axis,
            "pitch_mm": self.pitch_mm,
            "n_slots": self.n_slots,
            "first_slot_mm": self.first_slot_mm,
            "velocity_mm_s": self.velocity_mm_s,
            "limits_mm": [lo, hi],
        }


class StageSet:
    """The controller and its named stages (``stages.sampling``, ``stages.pump``, …)."""

    def __init__(self, controller: MotionController, stages: dict[str, _AxisUser]) -> None:
        self.controller = controller
        self.stages = dict(stages)
        self.name = controller.name
        self.version = ""

    def __getattr__(self, role: str):
        stages = self.__dict__.get("stages", {})
        if role in stages:
            return stages[role]
        raise AttributeError(
            f"{self.__dict__.get('name', 'stages')}: no stage {role!r} (it has: {', '.join(stages)})"
        )

    def __getitem__(self, role: str):
        try:
            return self.stages[role]
        except KeyError:
            raise InstrumentError(
                self.name, f"no stage {role!r} (it has: {', '.join(self.stages)})"
            ) from None

    def __iter__(self):
        return iter(self.stages)

    def settings(self) -> dict[str, Any]:
        """Instrument settings for run headers."""
        return {
            "model": "Newport ESP301",
            "version": self.version,
            "axes": {role: stage.calibration() for role, stage in self.stages.items()},
        }

    def stop(self) -> None:
        self.controller.stop_all()

    def shutdown(self) -> None:
        """Stop every axis (motors stay powered, holding position) and close the link."""
        try:
            self.controller.stop_all()
        finally:
            self.controller.isShutdown = True
            try:
                self.controller.adapter.close()
            except Exception:  # closing must not mask why we shut down
                log.warning("%s: closing the connection failed", self.name, exc_info=True)

    close = shutdown


_AXIS_KEYS = {
    "delay": {"axis", "zero_mm", "ps_per_mm", "kind"},
    "translation": {"axis", "pitch_mm", "n_slots", "first_slot_mm", "tolerance_mm", "kind"},
}


def _build_stage(controller: MotionController, role: str, spec: Any) -> _AxisUser:
    where = f"{controller.name}: axes.{role}"
    if not isinstance(spec, dict) or "axis" not in spec:
        raise StationError(f"{where}: expected a mapping with at least 'axis' (1..3)")
    kind = spec.get("kind", "translation" if role == "sample" else "delay")
    if kind not in _AXIS_KEYS:
        raise StationError(f"{where}: kind must be 'delay' or 'translation', got {kind!r}")
    unknown = set(spec) - _AXIS_KEYS[kind]
    if unknown:
        raise StationError(f"{where}: unknown keys {sorted(unknown)} for a {kind} axis")
    axis = spec["axis"]
    if axis not in (1, 2, 3) or isinstance(axis, bool):
        raise StationError(f"{where}: axis must be 1, 2 or 3, got {axis!r}")
    options = {k: v for k, v in spec.items() if k not in ("axis", "kind")}
    if kind == "delay":
        if "zero_mm" not in options:
            raise StationError(f"{where}: a delay axis needs its calibrated zero_mm")
        return DelayStage(controller, axis, name=role, **options)
    return SampleTranslation(controller, axis, name=role, **options)


def _visa_adapter(address: str, visa: dict | None):
    from pymeasure.adapters import VISAAdapter

    from labctl.transport import visa_options

    kwargs = visa_options(address) or {
        "read_termination": "\r\n",  # the ESP301 ends replies with CR LF
        "write_termination": "\r",
        "timeout": 2000,
    }
    if address.upper().startswith("ASRL"):
        kwargs.setdefault("baud_rate", 921600)  # USB virtual COM port default
    kwargs.update(visa or {})
    return VISAAdapter(address, **kwargs)


def open_instrument(
    connection,
    *,
    name: str,
    clock: Clock,
    axes: dict | None = None,
    poll_interval_s: float = 0.05,
    visa: dict | None = None,
) -> StageSet:
    """Station factory: the controller at ``connection`` and its named stages.

    ``axes`` maps a role to ``{axis: n, zero_mm: …}`` (delay lines) or
    ``{axis: n, pitch_mm: …, n_slots: …}`` (the sample translation, role
    ``sample`` or ``kind: translation``). ``visa`` overrides VISA session options.
    """
    if not isinstance(axes, dict) or not axes:
        raise StationError(
            f"{name}: option 'axes' must map roles to axes, e.g. sampling: {{axis: 1}}"
        )
    used = [s.get("axis") for s in axes.values() if isinstance(s, dict) and "axis" in s]
    if len(used) != len(set(used)):
        raise StationError(f"{name}: two roles share one axis in {axes!r}")
    if isinstance(connection, str):
        try:
            adapter = _visa_adapter(connection, visa)
        except LINK_ERRORS as exc:
            raise CommunicationError(name, f"cannot open {connection}: {exc}") from exc
    else:
        adapter = connection
    controller = MotionController(adapter, name=name, clock=clock, poll_interval_s=poll_interval_s)
    try:
        version = controller.confirm_identity()
        controller.read_errors()  # start from an empty error buffer
        stages = {role: _build_stage(controller, role, spec) for role, spec in axes.items()}
    except Exception:
        try:
            adapter.close()
        except Exception:
            log.debug("%s: closing after failed open", name, exc_info=True)
        raise
    stage_set = StageSet(controller, stages)
    stage_set.version = version
    return stage_set
