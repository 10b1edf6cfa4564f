"""Eurotherm 2408/2416 furnace controller-programmer over Modbus RTU.

Built on minimalmodbus (framing, CRC and exception decoding come from the
library, not from here). Registers follow the 2000-series communications
handbook (HA026230); ``docs/instruments/eurotherm.md`` has the map, the
scaling, the safety limits and the programmer usage.

Safety limits are the driver's job: a setpoint outside
``[min_setpoint_c, max_setpoint_c]``, a ramp faster than
``max_ramp_c_per_min`` or a program segment violating either is refused with
:class:`~labctl.errors.SafetyLimitError` *before anything is written*. Every
written number is checked to survive the 16-bit scaling (a rate that would be
written as 0, "no limit" on a Eurotherm, is refused), and the scaling (decimal
places, rate units) is re-read before every safety-relevant write. At connect
the driver also writes its setpoint limits into the controller's own SP1
limits, so other clients are held to them too (defence in depth). Manual
output needs a running :class:`OverTemperatureWatch`.

Every Modbus transaction runs under ``self.lock`` (a GUI monitor and a
procedure share the controller). Lost or garbled frames are retried
``retries`` times (RS-485 links drop frames) and then become
:class:`~labctl.errors.CommunicationError`; Modbus exception replies become
:class:`~labctl.errors.InstrumentError` naming the register and the code.
"""

from __future__ import annotations

import logging
import math
import numbers
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
RATE_UNIT_NAMES = {0: "second", 1: "minute", 2: "hour"}
SERIES_2400 = 0x24  # ident >ABCD: A = 2 (2000 series), B = 4 (2400); C, D: size, control
THERMOCOUPLE_RANGE_C = (0.0, 1372.0)  # type K: what the furnace can measure (and reach)
MAX_RETRIES = 10
MAX_RETRY_DELAY_S = 5.0
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


def is_number(value: Any) -> bool:
    """A real number, not a bool (``True`` is not 1 °C)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _floor_count(x: float) -> int:
    """Round down to a whole count (rates: never written faster than asked)."""
    return math.floor(x + 1e-6)  # tolerance: 2.3 * 10 is 22.999999999999996


def _ceil_count(x: float) -> int:
    return math.ceil(x - 1e-6)


def _manual_output(instrument, value) -> None:
    if not (is_number(value) and 0.0 <= value <= 100.0):
        raise InstrumentError(instrument.name, f"output power {value!r} % is outside 0..100 %")
    instrument.require_watch(f"output power {value:g} %")


def _manual_mode(instrument, value) -> None:
    if not isinstance(value, bool):
        raise InstrumentError(instrument.name, f"manual_mode must be True or False, got {value!r}")
    if value:
        instrument.require_watch("manual mode")


def _checked_option(name: str, key: str, value: Any, low: float, high: float, unit: str) -> float:
    """A driver option as a float, refused unless finite and within ``low..high``."""
    if not (is_number(value) and math.isfinite(value) and low <= value <= high):
        raise SafetyLimitError(
            name, f"option {key} = {value!r} must be a finite number in {low:g}..{high:g}{unit}"
        )
    return float(value)


class Eurotherm2408:
    """Eurotherm 2408/2416 controller-programmer driving a tube furnace."""

    temperature_c = register_measurement(1, "Process value (thermocouple), °C.")
    working_setpoint_c = register_measurement(
        5, "Working setpoint, °C: the rate-limited or programmed setpoint the PID follows."
    )
    output_percent = register_control(
        3,
        "Heater output power, %. Writable in manual mode only (the controller refuses it in auto) "
        "and only while an over-temperature watch runs.",
        kind="percent",
        validator=_manual_output,
    )
    manual_mode = register_control(
        273,
        "True in manual mode (output set by hand), False in auto (PID). "
        "Manual mode needs a running over-temperature watch.",
        kind="bool",
        validator=_manual_mode,
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
        low, high = THERMOCOUPLE_RANGE_C
        self.max_setpoint_c = _checked_option(
            name, "max_setpoint_c", max_setpoint_c, low, high, " °C"
        )
        self.min_setpoint_c = _checked_option(
            name, "min_setpoint_c", min_setpoint_c, low, high, " °C"
        )
        self.max_ramp_c_per_min = _checked_option(
            name, "max_ramp_c_per_min", max_ramp_c_per_min, 0.0, high, " °C/min"
        )
        safe = _checked_option(name, "safe_setpoint_c", safe_setpoint_c, low, high, " °C")
        margin = _checked_option(
            name, "over_temperature_margin_c", over_temperature_margin_c, 0.0, high, " °C"
        )
        if not self.min_setpoint_c < self.max_setpoint_c:
            raise SafetyLimitError(
                name,
                f"min_setpoint_c {min_setpoint_c} must be below max_setpoint_c {max_setpoint_c}",
            )
        if not self.max_ramp_c_per_min > 0:
            raise SafetyLimitError(
                name, f"max_ramp_c_per_min must be > 0, got {max_ramp_c_per_min}"
            )
        self.safe_setpoint_c = min(max(safe, self.min_setpoint_c), self.max_setpoint_c)
        self.over_temperature_c = self.max_setpoint_c + margin
        if isinstance(retries, float) and retries.is_integer():
            retries = int(retries)
        if not (isinstance(retries, int) and not isinstance(retries, bool)) or not (
            0 <= retries <= MAX_RETRIES
        ):
            raise SafetyLimitError(
                name, f"option retries = {retries!r} must be a whole number in 0..{MAX_RETRIES}"
            )
        self.retries = retries
        self.retry_delay_s = _checked_option(
            name, "retry_delay_s", retry_delay_s, 0.0, MAX_RETRY_DELAY_S, " s"
        )
        if not (is_number(modbus_address) and modbus_address in range(1, 248)):
            raise InstrumentError(name, f"modbus_address must be 1..247, got {modbus_address!r}")
        self.modbus_address = int(modbus_address)
        self._watch: OverTemperatureWatch | None = None
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
        self.rate_units = 1
        self.rate_unit_s = 60.0
        self._scaling_read = False
        try:
            self._identify()
            self.firmware = self._read_word(107)
            self.refresh_configuration()
            self._write_controller_limits()
        except BaseException:
            self.close()
            raise

    def _identify(self) -> None:
        """Refuse anything but a Eurotherm 2400-series controller on this address."""
        where = f"slave {self.modbus_address} on {getattr(self.port, 'port', self.port)}"
        try:
            self.ident = self._read_word(122)
        except CommunicationError:
            raise
        except InstrumentError as exc:
            raise InstrumentError(
                self.name,
                f"{where} is not a Eurotherm 2400-series controller: it has no ident register "
                f"122 ({exc})",
            ) from exc
        if self.ident >> 8 != SERIES_2400:
            raise InstrumentError(
                self.name,
                f"{where} answered ident 0x{self.ident:04X} (register 122): not a Eurotherm "
                "2400-series controller (2408: 0x2480, 2416: 0x2460); refusing to drive it",
            )
        self.model = MODELS.get(self.ident, f"2400-series (ident 0x{self.ident:04X})")

    def _write_controller_limits(self) -> None:
        """Write max/min_setpoint_c into SP1 high/low (111/112) and read them back.

        The controller then refuses out-of-limit setpoints from any client
        (front panel, another program) and clamps programmer targets. High is
        rounded down and low up, so the controller's window lies inside ours.
        """
        with self.lock:
            high = self._encode(self.max_setpoint_c, "temperature", "SP1 high limit", _floor_count)
            low = self._encode(self.min_setpoint_c, "temperature", "SP1 low limit", _ceil_count)
            wanted = f"{self.min_setpoint_c:g}..{self.max_setpoint_c:g} °C"
            try:
                current_low = self._decode(self._read_word(112), "temperature")
                # keep low < high at every step, whatever the controller held before
                if self._decode(high, "temperature") > current_low:
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
                got = [self._decode(w, "temperature") for w in back]
                raise SafetyLimitError(
                    self.name,
                    f"the controller's setpoint limits read back as {got[1]:g}..{got[0]:g} °C, "
                    f"not {wanted}; refusing to run",
                )

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
    def _decimals(self, kind: str) -> int:
        return {"temperature": self.decimal_places, "percent": 1}.get(kind, 0)

    def _encode(
        self, value: Any, kind: str, what: str, rounding: Callable[[float], int] = round
    ) -> int:
        """Scale ``value`` to a register word, refusing what the word cannot hold.

        Refused (nothing is sent): a bool for a number (or a number for a bool),
        a non-finite or non-numeric value, a value outside the 16-bit range at
        the current decimal places, and any value whose word would not decode
        back to it within one count.
        """
        if kind == "bool":
            if not isinstance(value, bool):
                raise InstrumentError(self.name, f"{what}: {value!r} is not True or False")
            return int(value)
        if not (is_number(value) and math.isfinite(value)):
            raise SafetyLimitError(
                self.name, f"{what}: {value!r} is not a finite number; nothing was written"
            )
        scale = 10 ** self._decimals(kind)
        low, high = (0, 65535) if kind == "int" else (-32768, 32767)
        raw = rounding(value * scale) if low - 1 <= value * scale <= high + 1 else None
        if raw is None or not low <= raw <= high:
            raise SafetyLimitError(
                self.name,
                f"{what}: {value:g} does not fit the register ({low / scale:g}..{high / scale:g} "
                f"at {self._decimals(kind)} decimal places); nothing was written",
            )
        if abs(raw / scale - value) > 1.0 / scale:  # encode → decode must give it back
            raise SafetyLimitError(
                self.name, f"{what}: {value:g} would be written as {raw / scale:g}; refused"
            )
        return raw & 0xFFFF

    def _decode(self, word: int, kind: str) -> Any:
        if kind == "int":
            return word
        if kind == "bool":
            return bool(word)
        signed = word - 0x10000 if word & 0x8000 else word
        decimals = self._decimals(kind)
        return round(signed / 10**decimals, decimals)

    def _encode_setpoint(self, value_c: Any, what: str) -> int:
        """A setpoint word at the current decimal places, checked before and after scaling."""
        self.check_setpoint(value_c, what)
        word = self._encode(value_c, "temperature", what)
        self.check_setpoint(self._decode(word, "temperature"), f"{what} (as written)")
        return word

    def _encode_rate(self, rate_c_per_min: Any, what: str, unit_s: float) -> int:
        """A rate word in display units per ``unit_s``, rounded down, never 0 ("no limit")."""
        self.check_ramp_rate(rate_c_per_min, what)
        word = self._encode(rate_c_per_min * unit_s / 60.0, "temperature", what, _floor_count)
        if word == 0:
            smallest = 60.0 / unit_s / 10**self.decimal_places
            raise SafetyLimitError(
                self.name,
                f"{what} {rate_c_per_min:g} °C/min would be written as 0, which a Eurotherm "
                f"reads as no rate limit; the smallest non-zero rate at {self.decimal_places} "
                f"decimal places is {smallest:g} °C/min; nothing was written",
            )
        return word

    def _read_value(self, address: int, kind: str) -> Any:
        return self._decode(self._read_word(address), kind)

    def _write_value(self, address: int, value: Any, kind: str) -> None:
        self._write_word(address, self._encode(value, kind, self._where(address)))

    def _write_verified(self, address: int, word: int) -> None:
        """Write one word and read it back: a mismatch is reported, not ignored."""
        self._write_word(address, word)
        back = self._read_word(address)
        if back != word:
            raise InstrumentError(
                self.name,
                f"{self._where(address)} reads back {back} after writing {word}: "
                "another client or the controller changed it",
            )

    def refresh_scaling(self) -> None:
        """Re-read decimal places (525) and rate units (531) before a safety-relevant write.

        Another client or the front panel may have changed them; a stale
        decimal point would turn 100 °C into 1000 °C. A change is logged and
        the new scaling used from then on.
        """
        with self.lock:
            decimals = self._read_word(525)
            units = self._read_word(531)
            if decimals not in (0, 1, 2) or units not in RATE_UNIT_SECONDS:
                raise InstrumentError(
                    self.name,
                    f"decimal places {decimals} (register 525) or rate units {units} "
                    "(register 531) are not 2400-series settings; nothing was written",
                )
            if self._scaling_read and (decimals, units) != (self.decimal_places, self.rate_units):
                log.warning(
                    "%s: controller scaling changed: %d → %d decimal places, rate per %s → per %s",
                    self.name,
                    self.decimal_places,
                    decimals,
                    RATE_UNIT_NAMES[self.rate_units],
                    RATE_UNIT_NAMES[units],
                )
            self.decimal_places = decimals
            self.rate_units = units
            self.rate_unit_s = RATE_UNIT_SECONDS[units]
            self._scaling_read = True

    def refresh_configuration(self) -> None:
        """Read decimal places (525), rate units (531) and the segment count (211)."""
        with self.lock:
            self.refresh_scaling()
            self.max_segments = self._read_word(211)

    # ------------------------------------------------------------ safety
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
            self.refresh_scaling()
            word = self._encode_setpoint(value_c, "setpoint")
            rate = self.setpoint_rate_c_per_min
            if rate <= 0 or rate > self.max_ramp_c_per_min + 1e-9:
                log.warning(
                    "%s: setpoint rate limit was %s °C/min; setting it to %g °C/min",
                    self.name,
                    rate or "off",
                    self.max_ramp_c_per_min,
                )
                self._write_rate(self.max_ramp_c_per_min)
            self._write_verified(2, word)

    @property
    def setpoint_rate_c_per_min(self) -> float:
        """Setpoint rate limit (register 35), °C/min; 0 means off (refused when writing).

        A rate is written rounded down to the register's resolution (one count
        is 0.1 °C/min at one decimal place, per minute); one that would be
        written as 0 is refused, since 0 means no limit.
        """
        return self._read_value(35, "temperature") * 60.0 / self.rate_unit_s

    @setpoint_rate_c_per_min.setter
    def setpoint_rate_c_per_min(self, rate: float) -> None:
        self.check_ramp_rate(rate, "setpoint rate limit")
        with self.lock:
            self.refresh_scaling()
            self._write_rate(rate)

    def _write_rate(self, rate: float) -> None:
        self._write_verified(35, self._encode_rate(rate, "setpoint rate limit", self.rate_unit_s))

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
        words_of: dict[int, list[int]] = {}
        for i, seg in enumerate(segs, start=1):
            if isinstance(seg, Ramp):
                self.check_ramp_rate(seg.rate_c_per_min, f"segment {i} ramp rate")
                target = self._encode_setpoint(seg.target_c, f"segment {i} target")
                rate = self._encode_rate(seg.rate_c_per_min, f"segment {i} ramp rate", 60.0)
                words_of[i] = [target, rate]
            elif isinstance(seg, Step):
                self.check_setpoint(seg.target_c, f"segment {i} step target")
                raise SafetyLimitError(
                    self.name,
                    f"segment {i}: a step is an unlimited ramp rate, above max_ramp_c_per_min = "
                    f"{self.max_ramp_c_per_min:g} °C/min; use Ramp; nothing was written",
                )
            elif isinstance(seg, Dwell):
                if not (is_number(seg.minutes) and math.isfinite(seg.minutes) and seg.minutes >= 0):
                    raise InstrumentError(self.name, f"segment {i}: dwell {seg.minutes!r} min")
            elif not isinstance(seg.reset, bool):
                raise InstrumentError(self.name, f"segment {i}: End(reset={seg.reset!r})")
        holdback_word = 0
        if holdback_c is not None:
            if not (is_number(holdback_c) and math.isfinite(holdback_c) and holdback_c > 0):
                raise SafetyLimitError(
                    self.name, f"holdback band must be a number > 0 °C, got {holdback_c!r}"
                )
            holdback_word = self._encode(holdback_c, "temperature", "holdback band")
            if holdback_word == 0:
                raise SafetyLimitError(
                    self.name,
                    f"holdback band {holdback_c:g} °C would be written as 0 at "
                    f"{self.decimal_places} decimal places; nothing was written",
                )
        longest_s = max((s.minutes * 60 for s in segs if isinstance(s, Dwell)), default=0.0)
        dwell_units, dwell_scale = (0, 60.0) if longest_s <= 65535 else (1, 1.0)
        if longest_s / 60.0 * dwell_scale > 65535:
            raise InstrumentError(self.name, "a dwell longer than 65535 min cannot be programmed")
        general = [
            holdback_type if holdback_c is not None else 0,  # holdback: none/low/high/band
            holdback_word,
            1,  # ramp units: per minute (the rate words above are per minute)
            dwell_units,  # dwell units: seconds or minutes
            1,  # one cycle
            0,
            0,
            0,
        ]
        words = list(general)
        for i, seg in enumerate(segs, start=1):
            block = [0] * SEGMENT_WORDS
            if isinstance(seg, Ramp):
                block[:3] = [1, *words_of[i]]
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
        if not isinstance(holdback, str) or holdback not in HOLDBACK_TYPES:
            raise InstrumentError(
                self.name, f"holdback must be one of {sorted(HOLDBACK_TYPES)}, got {holdback!r}"
            )
        self._check_program_number(program)
        try:
            segments = list(segments)
        except TypeError:
            raise InstrumentError(
                self.name, f"segments must be a list of Ramp/Dwell/End, got {segments!r}"
            ) from None
        base = PROGRAM_BASE + PROGRAM_STRIDE * program
        with self.lock:
            self.refresh_scaling()
            words, n = self._program_words(segments, holdback_c, HOLDBACK_TYPES[holdback])
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

    def _check_program_number(self, program: Any) -> None:
        if not (isinstance(program, int) and not isinstance(program, bool) and program >= 1):
            raise InstrumentError(self.name, f"program number must be an int >= 1, got {program!r}")

    def run_program(self, program: int = 1) -> None:
        """Run ``program`` (from reset or complete; resumes it from hold)."""
        self._check_program_number(program)
        with self.lock:
            self.refresh_scaling()  # so that what is read while it runs is scaled right
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
            self.refresh_scaling()  # a stale decimal point would hide an over-temperature
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

    def check_over_temperature(self) -> float:
        """Read PV; above ``max_setpoint_c + over_temperature_margin_c``, or at a sensor
        break, put the furnace in its safe state and raise :class:`FurnaceInterlock`.

        Returns PV. This is what :class:`OverTemperatureWatch` runs at every poll.
        """
        with self.lock:
            self.refresh_scaling()
            broken = self.sensor_broken
            pv = self.temperature_c
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
            self.safe_state()
        except InstrumentError as exc:
            problem += f"; {exc}"
        else:
            problem += "; furnace put in its safe state"
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
        """Close the port if this driver opened it. The furnace keeps its state,
        except that a running over-temperature watch is stopped and the
        controller returned to auto (manual output is never left unwatched)."""
        if self._watch is not None and self._watch.running:
            try:
                self._watch.stop()
                self.manual_mode = False
            except LabctlError:
                log.warning("%s: returning to auto on close failed", self.name, exc_info=True)
        if self._owns_port:
            try:
                self.port.close()
            except Exception:  # closing must not mask anything
                log.warning("%s: closing %s failed", self.name, self.port, exc_info=True)

    def __repr__(self) -> str:
        return f"<Eurotherm{self.model} {self.name!r} slave {self.modbus_address}>"

    def program_progress(self) -> ProgramProgress:
        """The programmer's own account of the program it runs (nothing is written).

        Registers 23 (status), 22 (program), 56 (segment number), 29 (current
        segment type) and 36 (segment time remaining, s), and the running
        program's segment blocks up to the current one (their types and dwell
        durations, from program memory). The dwell done is the controller's
        clock, not a temperature window: the durations of the dwell segments
        passed plus the elapsed part of the current one. In reset the
        programmer has forgotten the program: segment 0, nothing known.
        """
        with self.lock:
            status = self.program_status
            program = self.program_number
            if status == ProgramStatus.RESET:
                return ProgramProgress(status, program, 0, SegmentType.END, 0.0, 0.0, False)
            segment = self.segment
            seg_type = SegmentType(self._read_word(29))
            remaining_s = float(self._read_word(36))
            base = PROGRAM_BASE + PROGRAM_STRIDE * program
            count = SEGMENT_WORDS * (segment + 1)  # general block + segments 1..current
            words: list[int] = []
            for offset in range(0, count, MAX_WRITE_WORDS):
                words += self._read_words(base + offset, min(MAX_WRITE_WORDS, count - offset))
        unit_s = RATE_UNIT_SECONDS.get(words[3], 60.0)  # general word 3: dwell units
        dwell_done_s, dwell_passed = 0.0, False
        for i in range(1, segment + 1):
            block = words[SEGMENT_WORDS * i : SEGMENT_WORDS * (i + 1)]
            if block[0] != SegmentType.DWELL:
                continue
            duration_s = block[1] * unit_s
            if i < segment or status == ProgramStatus.COMPLETE:
                dwell_done_s += duration_s
                dwell_passed = True
            else:
                dwell_done_s += max(duration_s - remaining_s, 0.0)
        past = dwell_passed and (seg_type != SegmentType.DWELL or status == ProgramStatus.COMPLETE)
        return ProgramProgress(status, program, segment, seg_type, remaining_s, dwell_done_s, past)


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


# --- programmer progress (what Eurotherm2408.program_progress reads) ------------------
class SegmentType(IntEnum):
    """Register 29 and word 0 of a segment block: the segment's type."""

    END = 0
    RAMP_RATE = 1
    RAMP_TIME = 2
    DWELL = 3
    STEP = 4
    CALL = 5


@dataclass(frozen=True)
class ProgramProgress:
    """Where the controller's programmer is in its program, by its own account."""

    status: ProgramStatus
    program: int
    segment: int  # 0 in reset
    segment_type: SegmentType
    segment_time_remaining_s: float
    dwell_done_s: float  # the dwell segments' time run so far (programmer's clock)
    past_dwell: bool  # a dwell segment is behind: the cooling segment (or the end) reached

    @property
    def known(self) -> bool:
        """False in reset: the programmer keeps no account of a reset program."""
        return self.status != ProgramStatus.RESET
