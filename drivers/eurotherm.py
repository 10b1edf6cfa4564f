"""Eurotherm 2408/2416 furnace controller-programmer over Modbus RTU.

Built on minimalmodbus (framing, CRC and exception decoding come from the
library, not from here). Registers follow the 2000-series communications
handbook (HA026230); ``docs/instruments/eurotherm.md`` has the map, the
scaling, the safety limits and the programmer usage.

Safety limits are the driver's job: a setpoint outside
``[min_setpoint_c, max_setpoint_c]``, a ramp faster than
``max_ramp_c_per_min`` or a program segment violating either is refused with
:class:`~labctl.errors.SafetyLimitError` *before anything is written*.

Every Modbus transaction runs under ``self.lock`` (a GUI monitor and a
procedure share the controller). Lost or garbled frames are retried
``retries`` times (RS-485 links drop frames) and then become
:class:`~labctl.errors.CommunicationError`; Modbus exception replies become
:class:`~labctl.errors.InstrumentError` naming the register and the code.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any

import minimalmodbus
import serial

from labctl.clock import Clock, RealClock
from labctl.errors import CommunicationError, InstrumentError, LabctlError, SafetyLimitError

log = logging.getLogger(__name__)

# Register addresses (handbook tags) used by this driver.
REGISTER_NAMES: dict[int, str] = {
    1: "process value (PV)",
    2: "target setpoint",
    3: "output power",
    5: "working setpoint",
    6: "proportional band",
    8: "integral time",
    9: "derivative time",
    22: "program number",
    23: "program status",
    35: "setpoint rate limit",
    36: "segment time remaining",
    56: "segment number",
    58: "program time remaining",
    75: "status word",
    77: "extended status word",
    107: "instrument version",
    111: "setpoint 1 high limit",
    112: "setpoint 1 low limit",
    122: "instrument ident",
    163: "programmer setpoint",
    211: "maximum number of segments",
    258: "sensor break",
    273: "auto/manual",
    525: "decimal places",
    531: "setpoint rate limit units",
}
PROGRAM_BASE = 8192
PROGRAM_STRIDE = 136
SEGMENT_WORDS = 8
MAX_WRITE_WORDS = 120  # 15 blocks of 8 words per function-16 request
MODBUS_EXCEPTIONS = {
    1: "illegal function",
    2: "illegal data address: the controller has no such parameter",
    3: "illegal data value: refused (outside limits, read-only, or not allowed now)",
    4: "slave device failure",
    6: "slave device busy",
}
MODELS = {0x2480: "2408", 0x2460: "2416"}
RATE_UNIT_SECONDS = {0: 1.0, 1: 60.0, 2: 3600.0}
HOLDBACK_TYPES = {"low": 1, "high": 2, "band": 3}


class ProgramStatus(IntEnum):
    """Register 23: the programmer's state."""

    RESET = 1
    RUN = 2
    HOLD = 4
    HOLDBACK = 8
    COMPLETE = 16


class StatusWord(IntFlag):
    """Register 75, the summary status word."""

    ALARM_1 = 1 << 0
    ALARM_2 = 1 << 1
    ALARM_3 = 1 << 2
    ALARM_4 = 1 << 3
    MANUAL = 1 << 4
    SENSOR_BREAK = 1 << 5
    OPEN_LOOP = 1 << 6
    HEATER_FAIL = 1 << 7
    AUTOTUNE_ACTIVE = 1 << 8
    PROGRAM_COMPLETE = 1 << 9
    PV_OUT_OF_RANGE = 1 << 10
    DC_MODULE_FAULT = 1 << 11
    SEGMENT_SYNC = 1 << 12
    REMOTE_SENSOR_BREAK = 1 << 13


class FurnaceInterlock(InstrumentError):
    """An interlock tripped: sensor break, over-temperature or PV far from the setpoint."""


# --- program segments -------------------------------------------------------------
@dataclass(frozen=True)
class Ramp:
    """Ramp at ``rate_c_per_min`` to ``target_c`` (segment type "ramp rate")."""

    rate_c_per_min: float
    target_c: float


@dataclass(frozen=True)
class Dwell:
    """Hold the current setpoint for ``minutes``."""

    minutes: float


@dataclass(frozen=True)
class Step:
    """Jump the setpoint to ``target_c`` (refused when a maximum ramp rate is configured)."""

    target_c: float


@dataclass(frozen=True)
class End:
    """End of program: hold the last setpoint (default) or ``reset`` the programmer."""

    reset: bool = False


Segment = Ramp | Dwell | Step | End


# --- declarative register properties (pymeasure's control/measurement, for Modbus) --
class Register:
    """A controller parameter as a Python property.

    ``kind`` says how the 16-bit word is scaled: ``"temperature"`` (display
    decimal places, signed), ``"percent"`` (one decimal, signed), ``"int"``
    (unsigned) or ``"bool"``. ``values`` maps words to Python values (enums);
    ``validator(instrument, value)`` runs before a write and raises on bad input.
    """

    def __init__(
        self,
        address: int,
        doc: str,
        *,
        kind: str = "temperature",
        writable: bool = False,
        validator: Callable[[Any, Any], None] | None = None,
        values: Callable[[int], Any] | None = None,
    ) -> None:
        self.address = address
        self.kind = kind
        self.writable = writable
        self.validator = validator
        self.values = values
        self.__doc__ = doc

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, instrument, owner=None):
        if instrument is None:
            return self
        value = instrument._read_value(self.address, self.kind)
        return self.values(value) if self.values is not None else value

    def __set__(self, instrument, value) -> None:
        if not self.writable:
            raise AttributeError(f"{instrument.name}: {self.name} is read-only")
        if self.validator is not None:
            self.validator(instrument, value)
        instrument._write_value(self.address, value, self.kind)


def register_measurement(address: int, doc: str, **kwargs) -> Register:
    return Register(address, doc, writable=False, **kwargs)


def register_control(address: int, doc: str, **kwargs) -> Register:
    return Register(address, doc, writable=True, **kwargs)


def _percent_range(instrument, value) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value <= 100.0):
        raise InstrumentError(instrument.name, f"output power {value!r} % is outside 0..100 %")


def _check_rate(instrument, value) -> None:
    instrument.check_ramp_rate(value)


class Eurotherm2408:
    """Eurotherm 2408/2416 controller-programmer driving a tube furnace."""

    temperature_c = register_measurement(1, "Process value (thermocouple), °C.")
    working_setpoint_c = register_measurement(
        5, "Working setpoint, °C: the rate-limited or programmed setpoint the PID follows."
    )
    output_percent = register_control(
        3,
        "Heater output power, %. Writable in manual mode only (the controller refuses it in auto).",
        kind="percent",
        validator=_percent_range,
    )
    manual_mode = register_control(
        273, "True in manual mode (output set by hand), False in auto (PID).", kind="bool"
    )
    sensor_broken = register_measurement(
        258, "True when the thermocouple is open (sensor break).", kind="bool"
    )
    status = register_measurement(75, "Summary status word.", kind="int", values=StatusWord)
    program_number = register_measurement(22, "Selected/running program number.", kind="int")
    program_status = register_measurement(23, "Programmer state.", kind="int", values=ProgramStatus)
    segment = register_measurement(56, "Current program segment (0 in reset).", kind="int")
    segment_time_remaining_s = register_measurement(
        36, "Time left in the current segment, s.", kind="int"
    )
    programmer_setpoint_c = register_measurement(163, "Programmer setpoint, °C.")

    def __init__(
        self,
        name: str,
        port: Any,
        modbus_address: int = 1,
        clock: Clock | None = None,
        *,
        max_setpoint_c: float,
        max_ramp_c_per_min: float,
        min_setpoint_c: float = 0.0,
        safe_setpoint_c: float = 25.0,
        over_temperature_margin_c: float = 25.0,
        retries: int = 2,
        retry_delay_s: float = 0.05,
    ) -> None:
        self.name = name
        self.lock = threading.RLock()
        self.clock: Clock = clock if clock is not None else RealClock()
        self.max_setpoint_c = float(max_setpoint_c)
        self.min_setpoint_c = float(min_setpoint_c)
        self.max_ramp_c_per_min = float(max_ramp_c_per_min)
        if not self.min_setpoint_c < self.max_setpoint_c:
            raise SafetyLimitError(
                name,
                f"min_setpoint_c {min_setpoint_c} must be below max_setpoint_c {max_setpoint_c}",
            )
        if not self.max_ramp_c_per_min > 0:
            raise SafetyLimitError(
                name, f"max_ramp_c_per_min must be > 0, got {max_ramp_c_per_min}"
            )
        self.safe_setpoint_c = min(max(float(safe_setpoint_c), self.min_setpoint_c), max_setpoint_c)
        self.over_temperature_c = self.max_setpoint_c + float(over_temperature_margin_c)
        self.retries = int(retries)
        self.retry_delay_s = float(retry_delay_s)
        self.modbus_address = int(modbus_address)
        self._owns_port = isinstance(port, str)
        if isinstance(port, str):
            from labctl.transport import open_serial

            try:
                port = open_serial(port)
            except (serial.SerialException, OSError, ValueError) as exc:
                raise CommunicationError(name, f"cannot open {port}: {exc}") from exc
        self.port = port
        try:
            self._mm = minimalmodbus.Instrument(port, self.modbus_address)
        except (minimalmodbus.ModbusException, ValueError, TypeError) as exc:
            raise CommunicationError(name, f"cannot use {port!r} for Modbus RTU: {exc}") from exc
        self._mm.clear_buffers_before_each_transaction = True
        self.decimal_places = 0
        self.ident = self._read_word(122)
        self.model = MODELS.get(self.ident, f"2400-series (ident 0x{self.ident:04X})")
        self.firmware = self._read_word(107)
        self.refresh_configuration()

    # ------------------------------------------------------------ transactions
    def _transact(self, what: str, call: Callable, *args, **kwargs):
        with self.lock:
            last: Exception | None = None
            for attempt in range(self.retries + 1):
                try:
                    return call(*args, **kwargs)
                except minimalmodbus.SlaveReportedException as exc:
                    code = _exception_code(exc)
                    meaning = MODBUS_EXCEPTIONS.get(code, str(exc))
                    raise InstrumentError(
                        self.name, f"{what}: Modbus exception {code:02d} ({meaning})"
                    ) from exc
                except (
                    minimalmodbus.MasterReportedException,
                    serial.SerialException,
                    OSError,
                ) as exc:
                    last = exc
                    log.warning("%s: %s failed (attempt %d): %s", self.name, what, attempt + 1, exc)
                    self._flush()
                    if attempt < self.retries:
                        self.clock.sleep(self.retry_delay_s)
                except (TypeError, ValueError) as exc:  # minimalmodbus refused our arguments
                    raise InstrumentError(self.name, f"{what}: {exc}") from exc
            raise CommunicationError(
                self.name,
                f"{what}: no valid reply after {self.retries + 1} attempts "
                f"(slave {self.modbus_address} on {getattr(self.port, 'port', self.port)}): {last}",
            )

    def _flush(self) -> None:
        try:
            self.port.reset_input_buffer()
        except Exception:  # flushing is best effort
            pass

    @staticmethod
    def _where(address: int) -> str:
        if address >= PROGRAM_BASE:
            p, k = divmod(address - PROGRAM_BASE, PROGRAM_STRIDE)
            return f"register {address} (program {p}, segment {k // SEGMENT_WORDS}, word {k % 8})"
        return f"register {address} ({REGISTER_NAMES.get(address, 'parameter')})"

    def _read_words(self, address: int, count: int) -> list[int]:
        what = f"reading {self._where(address)}" + (f" ×{count}" if count > 1 else "")
        return self._transact(what, self._mm.read_registers, address, count, functioncode=3)

    def _read_word(self, address: int) -> int:
        return self._read_words(address, 1)[0]

    def _write_word(self, address: int, word: int) -> None:
        self._transact(
            f"writing {word} to {self._where(address)}",
            self._mm.write_register,
            address,
            word & 0xFFFF,
            0,
            functioncode=6,
        )

    def _write_words(self, address: int, words: Sequence[int]) -> None:
        self._transact(
            f"writing {len(words)} words at {self._where(address)}",
            self._mm.write_registers,
            address,
            [w & 0xFFFF for w in words],
        )

    # ------------------------------------------------------------ scaling
    def _encode(self, value: float, kind: str, address: int = 0) -> int:
        decimals = {"temperature": self.decimal_places, "percent": 1}.get(kind, 0)
        if kind == "bool":
            return int(bool(value))
        raw = int(round(float(value) * 10**decimals))
        if not -32768 <= raw <= (65535 if kind == "int" else 32767):
            raise InstrumentError(
                self.name, f"{value!r} cannot be sent to {self._where(address)} (16-bit overflow)"
            )
        return raw & 0xFFFF

    def _decode(self, word: int, kind: str) -> Any:
        if kind == "int":
            return word
        if kind == "bool":
            return bool(word)
        signed = word - 0x10000 if word & 0x8000 else word
        decimals = self.decimal_places if kind == "temperature" else 1
        return round(signed / 10**decimals, decimals)

    def _read_value(self, address: int, kind: str) -> Any:
        return self._decode(self._read_word(address), kind)

    def _write_value(self, address: int, value: Any, kind: str) -> None:
        self._write_word(address, self._encode(value, kind, address))

    def refresh_configuration(self) -> None:
        """Read decimal places (525), rate units (531) and the segment count (211)."""
        with self.lock:
            self.decimal_places = self._read_word(525)
            self.rate_unit_s = RATE_UNIT_SECONDS.get(self._read_word(531), 60.0)
            self.max_segments = self._read_word(211)

    # ------------------------------------------------------------ safety
    def check_setpoint(self, value_c: float, what: str = "setpoint") -> None:
        """Raise SafetyLimitError if ``value_c`` lies outside the configured limits."""
        if not isinstance(value_c, int | float) or not math.isfinite(value_c):
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
        if not isinstance(rate_c_per_min, int | float) or not math.isfinite(rate_c_per_min):
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

    # ------------------------------------------------------------ setpoint
    @property
    def setpoint_c(self) -> float:
        """Target setpoint (register 2), °C. Writes are checked against the safety limits,
        and the controller's setpoint rate limit is enforced (set to max_ramp_c_per_min
        if it is off or faster) before the setpoint changes."""
        return self._read_value(2, "temperature")

    @setpoint_c.setter
    def setpoint_c(self, value_c: float) -> None:
        self.check_setpoint(value_c)
        with self.lock:
            rate = self.setpoint_rate_c_per_min
            if rate <= 0 or rate > self.max_ramp_c_per_min + 1e-9:
                log.warning(
                    "%s: setpoint rate limit was %s °C/min; setting it to %g °C/min",
                    self.name,
                    rate or "off",
                    self.max_ramp_c_per_min,
                )
                self.setpoint_rate_c_per_min = self.max_ramp_c_per_min
            self._write_value(2, value_c, "temperature")

    @property
    def setpoint_rate_c_per_min(self) -> float:
        """Setpoint rate limit (register 35), °C/min; 0 means off (refused when writing)."""
        return self._read_value(35, "temperature") * 60.0 / self.rate_unit_s

    @setpoint_rate_c_per_min.setter
    def setpoint_rate_c_per_min(self, rate: float) -> None:
        self.check_ramp_rate(rate, "setpoint rate limit")
        self._write_value(35, rate * self.rate_unit_s / 60.0, "temperature")

    @property
    def setpoint_limits_c(self) -> tuple[float, float]:
        """The controller's own SP1 low/high limits (registers 112/111), °C."""
        high, low = self._read_words(111, 2)
        return self._decode(low, "temperature"), self._decode(high, "temperature")

    # ------------------------------------------------------------ programmer
    def _program_words(
        self, segments: Sequence[Segment], holdback_c: float | None, holdback_type: int = 1
    ) -> tuple[list[int], int]:
        """Validate a program against the safety limits and encode it (nothing is sent)."""
        segs = list(segments)
        if not segs:
            raise InstrumentError(self.name, "a program needs at least one segment")
        for i, seg in enumerate(segs):
            if not isinstance(seg, Ramp | Dwell | Step | End):
                raise InstrumentError(self.name, f"segment {i + 1}: {seg!r} is not a segment")
            if isinstance(seg, End) and i != len(segs) - 1:
                raise InstrumentError(self.name, f"segment {i + 1}: End must be the last segment")
        if not isinstance(segs[-1], End):
            segs.append(End())
        if len(segs) > self.max_segments:
            raise InstrumentError(
                self.name,
                f"program has {len(segs)} segments (with End); the controller holds {self.max_segments}",
            )
        for i, seg in enumerate(segs, start=1):
            if isinstance(seg, Ramp):
                self.check_ramp_rate(seg.rate_c_per_min, f"segment {i} ramp rate")
                self.check_setpoint(seg.target_c, f"segment {i} target")
            elif isinstance(seg, Step):
                self.check_setpoint(seg.target_c, f"segment {i} step target")
                raise SafetyLimitError(
                    self.name,
                    f"segment {i}: a step is an unlimited ramp rate, above max_ramp_c_per_min = "
                    f"{self.max_ramp_c_per_min:g} °C/min; use Ramp; nothing was written",
                )
            elif isinstance(seg, Dwell):
                if not (math.isfinite(seg.minutes) and seg.minutes >= 0):
                    raise InstrumentError(self.name, f"segment {i}: dwell {seg.minutes!r} min")
        if holdback_c is not None and not (math.isfinite(holdback_c) and holdback_c > 0):
            raise InstrumentError(self.name, f"holdback band must be > 0 °C, got {holdback_c!r}")
        longest_s = max((s.minutes * 60 for s in segs if isinstance(s, Dwell)), default=0.0)
        dwell_units, dwell_scale = (0, 60.0) if longest_s <= 65535 else (1, 1.0)
        if longest_s / 60.0 * dwell_scale > 65535:
            raise InstrumentError(self.name, "a dwell longer than 65535 min cannot be programmed")
        t = "temperature"
        general = [
            holdback_type if holdback_c is not None else 0,  # holdback: none/low/high/band
            self._encode(holdback_c or 0.0, t),
            1,  # ramp units: per minute
            dwell_units,  # dwell units: seconds or minutes
            1,  # one cycle
            0,
            0,
            0,
        ]
        words = list(general)
        for seg in segs:
            block = [0] * SEGMENT_WORDS
            if isinstance(seg, Ramp):
                block[:3] = [1, self._encode(seg.target_c, t), self._encode(seg.rate_c_per_min, t)]
            elif isinstance(seg, Dwell):
                block[:2] = [3, int(round(seg.minutes * dwell_scale))]
            elif isinstance(seg, End):
                block[:4] = [0, 0, 0, 1 if seg.reset else 0]
            words += block
        return words, len(segs)

    def load_program(
        self,
        segments: Iterable[Segment],
        program: int = 1,
        *,
        holdback_c: float | None = None,
        holdback: str = "low",
    ) -> None:
        """Validate and store a ramp/dwell program in the controller, then read it back.

        Every target is checked against the setpoint limits and every rate
        against ``max_ramp_c_per_min`` before anything is written. An ``End``
        is appended if missing. ``holdback_c`` enables holdback: the programmer
        waits while PV is more than this below (``"low"``, the heating case),
        above (``"high"``) or either side of (``"band"``) the programmed
        setpoint, so the sample follows the programmed profile.
        """
        if holdback not in HOLDBACK_TYPES:
            raise InstrumentError(
                self.name, f"holdback must be one of {sorted(HOLDBACK_TYPES)}, got {holdback!r}"
            )
        words, n = self._program_words(list(segments), holdback_c, HOLDBACK_TYPES[holdback])
        if not isinstance(program, int) or program < 1:
            raise InstrumentError(self.name, f"program number must be >= 1, got {program!r}")
        base = PROGRAM_BASE + PROGRAM_STRIDE * program
        with self.lock:
            state = self.program_status
            if state in (ProgramStatus.RUN, ProgramStatus.HOLD, ProgramStatus.HOLDBACK):
                if self.program_number == program:
                    raise InstrumentError(
                        self.name, f"program {program} is {state.name.lower()}; reset it first"
                    )
            for offset in range(0, len(words), MAX_WRITE_WORDS):
                self._write_words(base + offset, words[offset : offset + MAX_WRITE_WORDS])
            back: list[int] = []
            for offset in range(0, len(words), MAX_WRITE_WORDS):
                chunk = words[offset : offset + MAX_WRITE_WORDS]
                back += self._read_words(base + offset, len(chunk))
            if back != words:
                raise InstrumentError(
                    self.name, f"program {program} read back differs from written"
                )
        log.info("%s: program %d loaded (%d segments)", self.name, program, n)

    def run_program(self, program: int = 1) -> None:
        """Run ``program`` (from reset or complete; resumes it from hold)."""
        with self.lock:
            state = self.program_status
            current = self.program_number
            if state in (ProgramStatus.RUN, ProgramStatus.HOLDBACK) and current == program:
                return
            if state == ProgramStatus.HOLD and current == program:
                self._write_word(23, ProgramStatus.RUN)
                return
            if state in (ProgramStatus.RUN, ProgramStatus.HOLD, ProgramStatus.HOLDBACK):
                raise InstrumentError(
                    self.name, f"program {current} is {state.name.lower()}; reset it first"
                )
            if state == ProgramStatus.COMPLETE:
                self._write_word(23, ProgramStatus.RESET)
            self._write_word(22, program)
            self._write_word(23, ProgramStatus.RUN)

    def hold_program(self) -> None:
        self._write_word(23, ProgramStatus.HOLD)

    def reset_program(self) -> None:
        self._write_word(23, ProgramStatus.RESET)

    @property
    def program_time_remaining_s(self) -> float:
        """Time left in the running program (register 58, whole minutes), s."""
        return self._read_word(58) * 60.0

    def wait_for_program(
        self,
        poll_s: float = 10.0,
        timeout_s: float | None = None,
        max_deviation_c: float | None = None,
        on_poll: Callable[[dict], None] | None = None,
    ) -> ProgramStatus:
        """Poll (through the clock) until the program completes or is reset.

        Interlocks are checked at every poll (:meth:`check_interlocks`); a
        trip raises :class:`FurnaceInterlock` and leaves the furnace as it is
        (the caller decides on :meth:`safe_state`).
        """
        start = self.clock.now()
        while True:
            reading = self.check_interlocks(max_deviation_c)
            state = self.program_status
            reading["program_status"] = state
            if on_poll is not None:
                on_poll(reading)
            if state in (ProgramStatus.COMPLETE, ProgramStatus.RESET):
                return state
            if timeout_s is not None and self.clock.now() - start > timeout_s:
                raise InstrumentError(
                    self.name, f"program still {state.name.lower()} after {timeout_s:g} s"
                )
            self.clock.sleep(poll_s)

    # ------------------------------------------------------------ interlocks
    def check_interlocks(self, max_deviation_c: float | None = None) -> dict:
        """Raise FurnaceInterlock on sensor break, over-temperature or deviation.

        Returns the readings it checked (for logging).
        """
        with self.lock:
            status = self.status
            broken = self.sensor_broken
            pv = self.temperature_c
            wsp = self.working_setpoint_c
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

    def safe_state(self) -> None:
        """Reset the program, setpoint to ``safe_setpoint_c``, auto mode.

        Best effort: every step is tried even if one fails; failures are
        reported together afterwards.
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
                failures.append(f"{what}: {exc}")
        if failures:
            raise InstrumentError(self.name, "safe state incomplete: " + "; ".join(failures))
        log.info("%s: safe state (setpoint %g °C, auto)", self.name, self.safe_setpoint_c)

    # ------------------------------------------------------------ misc
    def settings(self) -> dict:
        """Controller configuration for run-file headers."""
        with self.lock:
            pb = self._read_value(6, "temperature")
            ti, td = self._read_words(8, 2)
            low, high = self.setpoint_limits_c
            return {
                "model": f"Eurotherm {self.model}",
                "ident": f"0x{self.ident:04X}",
                "firmware": f"0x{self.firmware:04X}",
                "modbus_address": self.modbus_address,
                "port": str(getattr(self.port, "port", self.port)),
                "decimal_places": self.decimal_places,
                "setpoint_c": self.setpoint_c,
                "setpoint_rate_c_per_min": self.setpoint_rate_c_per_min,
                "manual_mode": self.manual_mode,
                "proportional_band_c": pb,
                "integral_time_s": ti,
                "derivative_time_s": td,
                "controller_sp_limits_c": [low, high],
                "max_setpoint_c": self.max_setpoint_c,
                "min_setpoint_c": self.min_setpoint_c,
                "max_ramp_c_per_min": self.max_ramp_c_per_min,
                "safe_setpoint_c": self.safe_setpoint_c,
                "program_number": self.program_number,
                "program_status": self.program_status.name.lower(),
            }

    def close(self) -> None:
        """Close the port if this driver opened it. The furnace keeps its state."""
        if self._owns_port:
            try:
                self.port.close()
            except Exception:  # closing must not mask anything
                log.warning("%s: closing %s failed", self.name, self.port, exc_info=True)

    def __repr__(self) -> str:
        return f"<Eurotherm{self.model} {self.name!r} slave {self.modbus_address}>"


def _exception_code(exc: Exception) -> int:
    text = str(exc).lower()
    for code, key in (
        (1, "illegal function"),
        (2, "illegal data address"),
        (3, "illegal data value"),
        (4, "device failure"),
        (6, "busy"),
        (7, "negative acknowledge"),
    ):
        if key in text:
            return code
    return 0


def open_instrument(
    connection: Any,
    *,
    name: str,
    clock: Clock,
    modbus_address: int = 1,
    max_setpoint_c: float,
    max_ramp_c_per_min: float,
    **options: Any,
) -> Eurotherm2408:
    """Station factory: ``connection`` is a device path / pyserial URL or a serial-like object."""
    return Eurotherm2408(
        name,
        connection,
        modbus_address,
        clock,
        max_setpoint_c=max_setpoint_c,
        max_ramp_c_per_min=max_ramp_c_per_min,
        **options,
    )
