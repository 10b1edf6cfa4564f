"""Eurotherm 2408/2416 furnace controller-programmer over Modbus RTU.

The driver class, assembled from one module per concern (each states its
rule in its docstring):

* :mod:`labctl.modbus` — transactions, retries and resync: a late reply is
  never taken as the answer to the next request (framing from minimalmodbus);
* :mod:`labctl.drivers.eurotherm_registers` — the register map, enumerations
  and the 16-bit scaling, re-read before every safety-relevant write;
* :mod:`labctl.drivers.eurotherm_safety` — the driver's limits (refused before
  anything is written, also written into the controller's SP1 limits), the
  interlocks and the read-back safe state;
* :mod:`labctl.drivers.eurotherm_programmer` — ramp/dwell programs on the
  controller's own programmer;
* :mod:`labctl.drivers.eurotherm_watch` — the over-temperature watch that
  manual output needs.

Registers follow the 2000-series communications handbook (HA026230);
``docs/instruments/eurotherm.md`` has the map, the scaling, the safety limits,
the programmer usage and the link's retry/drain rule. Every name other
modules import from here (``Eurotherm2408``, ``FurnaceInterlock``,
``ProgramStatus``, ``Ramp``, ``Dwell``, …) is re-exported. Every Modbus
transaction runs under ``self.lock`` (a GUI monitor and a procedure share the
controller); Modbus exception replies become
:class:`~labctl.errors.InstrumentError` naming the register and the code.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import serial

from labctl.clock import Clock, RealClock
from labctl.drivers.eurotherm_programmer import (
    HOLDBACK_TYPES,
    MAX_WRITE_WORDS,
    Dwell,
    End,
    Programmer,
    ProgramProgress,
    Ramp,
    Segment,
    SegmentType,
    Step,
)
from labctl.drivers.eurotherm_registers import (
    MODELS,
    PROGRAM_BASE,
    PROGRAM_STRIDE,
    RATE_UNIT_NAMES,
    RATE_UNIT_SECONDS,
    REGISTER_NAMES,
    SEGMENT_WORDS,
    SERIES_2400,
    ProgramStatus,
    Register,
    ScaledRegisters,
    StatusWord,
    ceil_count,
    floor_count,
    is_number,
    register_control,
    register_measurement,
    register_name,
)
from labctl.drivers.eurotherm_safety import (
    THERMOCOUPLE_RANGE_C,
    FurnaceInterlock,
    FurnaceSafety,
    checked_option,
    manual_mode_allowed,
    manual_output_allowed,
)
from labctl.drivers.eurotherm_watch import OverTemperatureGuard, OverTemperatureWatch
from labctl.errors import CommunicationError, InstrumentError, LabctlError, SafetyLimitError
from labctl.modbus import MODBUS_EXCEPTIONS, ModbusLink

__all__ = [
    "HOLDBACK_TYPES",
    "MAX_RETRIES",
    "MAX_RETRY_DELAY_S",
    "MAX_WRITE_WORDS",
    "MODBUS_EXCEPTIONS",
    "MODELS",
    "PROGRAM_BASE",
    "PROGRAM_STRIDE",
    "RATE_UNIT_NAMES",
    "RATE_UNIT_SECONDS",
    "REGISTER_NAMES",
    "SEGMENT_WORDS",
    "SERIES_2400",
    "THERMOCOUPLE_RANGE_C",
    "Dwell",
    "End",
    "Eurotherm2408",
    "FurnaceInterlock",
    "OverTemperatureWatch",
    "ProgramProgress",
    "ProgramStatus",
    "Ramp",
    "Register",
    "Segment",
    "SegmentType",
    "StatusWord",
    "Step",
    "ceil_count",
    "floor_count",
    "is_number",
    "open_instrument",
    "register_control",
    "register_measurement",
    "register_name",
]

log = logging.getLogger(__name__)

MAX_RETRIES = 10
MAX_RETRY_DELAY_S = 5.0


class Eurotherm2408(ScaledRegisters, FurnaceSafety, Programmer, OverTemperatureGuard):
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
        validator=manual_output_allowed,
    )
    manual_mode = register_control(
        273,
        "True in manual mode (output set by hand), False in auto (PID). "
        "Manual mode needs a running over-temperature watch.",
        kind="bool",
        validator=manual_mode_allowed,
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
        baud_rate: int = 9600,
        parity: str = "none",
        stop_bits: int = 1,
        byte_size: int = 8,
        framing: str = "silence",
    ) -> None:
        self.name = name
        self.lock = threading.RLock()
        self.clock: Clock = clock if clock is not None else RealClock()
        low, high = THERMOCOUPLE_RANGE_C
        self.max_setpoint_c = checked_option(
            name, "max_setpoint_c", max_setpoint_c, low, high, " °C"
        )
        self.min_setpoint_c = checked_option(
            name, "min_setpoint_c", min_setpoint_c, low, high, " °C"
        )
        self.max_ramp_c_per_min = checked_option(
            name, "max_ramp_c_per_min", max_ramp_c_per_min, 0.0, high, " °C/min"
        )
        safe = checked_option(name, "safe_setpoint_c", safe_setpoint_c, low, high, " °C")
        margin = checked_option(
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
        self.retry_delay_s = checked_option(
            name, "retry_delay_s", retry_delay_s, 0.0, MAX_RETRY_DELAY_S, " s"
        )
        if not (is_number(modbus_address) and modbus_address in range(1, 248)):
            raise InstrumentError(name, f"modbus_address must be 1..247, got {modbus_address!r}")
        self.modbus_address = int(modbus_address)
        self._watch: OverTemperatureWatch | None = None
        self._owns_port = isinstance(port, str)
        if isinstance(port, str):
            from labctl.transport import open_serial

            line = _serial_line(name, baud_rate, parity, stop_bits, byte_size)
            try:
                port = open_serial(port, **line)
            except (serial.SerialException, OSError, ValueError) as exc:
                raise CommunicationError(name, f"cannot open {port}: {exc}") from exc
        if framing not in ("silence", "packet"):
            raise InstrumentError(name, f"framing must be 'silence' or 'packet', got {framing!r}")
        self.port = port
        self.link = ModbusLink(
            name,
            port,
            self.modbus_address,
            framed_by_silence=framing == "silence",
            retries=self.retries,
            quiet_s=self.retry_delay_s,
            lock=self.lock,
            describe=register_name,
        )
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
                # the driver doing its job (a fresh controller has no limit), not a problem
                # for the operator: logged at info, shown with -v
                log.info(
                    "%s: setpoint rate limit was %s; set to %g °C/min before the setpoint",
                    self.name,
                    "off" if rate <= 0 else f"{rate:g} °C/min",
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
        return self.decode_word(low, "temperature"), self.decode_word(high, "temperature")

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
                "serial_line": _describe_line(self.port),
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


#: Serial line settings a 2000-series controller can be set to (HA026230).
BAUD_RATES = (1200, 2400, 4800, 9600, 19200)
PARITIES = ("none", "even", "odd")


def _serial_line(name: str, baud_rate: Any, parity: Any, stop_bits: Any, byte_size: Any) -> dict:
    """pyserial settings for the controller's line, refused unless a 2408 can use them."""
    for key, value, allowed in (
        ("baud_rate", baud_rate, BAUD_RATES),
        ("parity", parity, PARITIES),
        ("stop_bits", stop_bits, (1, 2)),
        ("byte_size", byte_size, (8,)),
    ):
        if isinstance(value, bool) or value not in allowed:
            raise InstrumentError(
                name, f"option {key} = {value!r} must be one of {', '.join(map(str, allowed))}"
            )
    return {"baudrate": baud_rate, "parity": parity, "stopbits": stop_bits, "bytesize": byte_size}


def _describe_line(port: Any) -> str:
    """``9600 baud, 8N1`` as the port is set (``?`` where a port-like object cannot tell)."""
    parity = str(getattr(port, "parity", "N") or "N")[:1]
    return (
        f"{getattr(port, 'baudrate', '?')} baud, {getattr(port, 'bytesize', 8)}"
        f"{parity}{getattr(port, 'stopbits', 1)}"
    )


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
