"""Eurotherm 2408/2416 registers: addresses, enumerations and the 16-bit scaling.

The one place that knows how a controller parameter sits in a Modbus word:
the register map used by the driver (handbook tags of the 2000-series
communications handbook, HA026230; ``docs/instruments/eurotherm.md``), the
programmer's and status words' enumerations, declarative register properties
(pymeasure's ``control``/``measurement`` idiom, for Modbus) and
:class:`ScaledRegisters`, which turns values into words and back at the
controller's current decimal places (``encode_word``/``decode_word``, public so a
caller can check a value before anything is sent). Every written number is checked to
survive the scaling: a value the word cannot hold, or one that would not
decode back to itself within one count, is refused before anything is sent.
The decimal places and rate units are re-read before every safety-relevant
write (:meth:`ScaledRegisters.refresh_scaling`): a stale decimal point
would turn 100 °C into 1000 °C. Transactions go through the Modbus link
(:mod:`labctl.modbus`).
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable, Sequence
from enum import IntEnum, IntFlag
from typing import Any

from labctl.errors import InstrumentError, SafetyLimitError

log = logging.getLogger("labctl.drivers.eurotherm")

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
    29: "current segment type",
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
MODELS = {0x2480: "2408", 0x2460: "2416"}
RATE_UNIT_SECONDS = {0: 1.0, 1: 60.0, 2: 3600.0}
RATE_UNIT_NAMES = {0: "second", 1: "minute", 2: "hour"}
SERIES_2400 = 0x24  # ident >ABCD: A = 2 (2000 series), B = 4 (2400); C, D: size, control


def register_name(address: int) -> str:
    """A register as messages name it: ``register 2 (target setpoint)``."""
    if address >= PROGRAM_BASE:
        p, k = divmod(address - PROGRAM_BASE, PROGRAM_STRIDE)
        return f"register {address} (program {p}, segment {k // SEGMENT_WORDS}, word {k % 8})"
    return f"register {address} ({REGISTER_NAMES.get(address, 'parameter')})"


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


def floor_count(x: float) -> int:
    """Round down to a whole count (rates: never written faster than asked)."""
    return math.floor(x + 1e-6)  # tolerance: 2.3 * 10 is 22.999999999999996


def ceil_count(x: float) -> int:
    return math.ceil(x - 1e-6)


class ScaledRegisters:
    """Register words ↔ values at the controller's scaling (mixin of the driver).

    Needs ``self.name``, ``self.link`` (:class:`~labctl.modbus.ModbusLink`) and
    ``self.lock``; keeps ``decimal_places``, ``rate_units``, ``rate_unit_s``.
    """

    @staticmethod
    def _where(address: int) -> str:
        return register_name(address)

    def _read_words(self, address: int, count: int) -> list[int]:
        return self.link.read_registers(address, count)

    def _read_word(self, address: int) -> int:
        return self.link.read_register(address)

    def _write_word(self, address: int, word: int) -> None:
        self.link.write_register(address, word)

    def _write_words(self, address: int, words: Sequence[int]) -> None:
        self.link.write_registers(address, words)

    def _decimals(self, kind: str) -> int:
        return {"temperature": self.decimal_places, "percent": 1}.get(kind, 0)

    def encode_word(
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

    def decode_word(self, word: int, kind: str) -> Any:
        """The value a register word holds at the current decimal places (the inverse of
        :meth:`encode_word`; a temperature word is signed)."""
        if kind == "int":
            return word
        if kind == "bool":
            return bool(word)
        signed = word - 0x10000 if word & 0x8000 else word
        decimals = self._decimals(kind)
        return round(signed / 10**decimals, decimals)

    def _read_value(self, address: int, kind: str) -> Any:
        return self.decode_word(self._read_word(address), kind)

    def _write_value(self, address: int, value: Any, kind: str) -> None:
        self._write_word(address, self.encode_word(value, kind, self._where(address)))

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
