"""Thorlabs PM100 power meter: pymeasure's ``ThorlabsPM100USB`` with serialized I/O.

Adds SI-named accessors (:attr:`PowerMeter.power_w`,
:attr:`PowerMeter.wavelength_nm`), :meth:`PowerMeter.average_power_w`,
:meth:`PowerMeter.check_errors` from the SCPI error queue, :meth:`settings`
for run-file headers, and errors that name the instrument (timeouts and
garbled replies → :class:`~labctl.errors.CommunicationError`).

A photodiode power meter reads the right power only at the right wavelength
(it divides the photocurrent by the responsivity at the *set* wavelength), so
``open_instrument`` sets ``wavelength_nm`` from the station options.
"""

from __future__ import annotations

import re
import statistics
import warnings
from typing import Any

import pyvisa
from pymeasure.adapters import Adapter
from pymeasure.instruments.thorlabs import ThorlabsPM100USB

from labctl.clock import Clock, RealClock
from labctl.errors import CommunicationError, InstrumentError, StationError
from labctl.locking import ClosesOnShutdown, SerializedIO, numbers

#: SCPI queries answered with one number (headers as the driver and pymeasure send them).
_NUMBER_QUERY = re.compile(r"^(MEAS|READ|FETC|SENS(E)?:(CORR|AVER))", re.IGNORECASE)
#: ``SYST:SENS:IDN?``: name, serial, calibration, type, subtype, flags.
_SENSOR_IDN_QUERY = re.compile(r"^SYST(EM)?:SENS(OR)?:IDN\?", re.IGNORECASE)


def pm100_reply_problem(command: str, reply: str) -> str | None:
    """Why ``reply`` cannot answer the PM100 query ``command`` (None if it can)."""
    command = command.strip()
    if not command.endswith("?") and "? " not in command:
        return None
    head = command.split()[0].upper()
    if head.startswith("SYST:ERR") or head.startswith("SYSTEM:ERR"):
        if not re.match(r"^[+-]?\d+\s*,", reply.strip()):
            return "expected 'code,\"message\"'"
    elif _SENSOR_IDN_QUERY.match(command):
        if len(reply.split(",")) != 6:
            return "expected 6 fields (sensor name, serial, calibration, type, subtype, flags)"
    elif _NUMBER_QUERY.match(head) and numbers(reply, 1) is None:
        return "expected one number"
    return None


class PowerMeter(SerializedIO, ClosesOnShutdown, ThorlabsPM100USB):
    """A PM100 on a station: serialized, with errors that name it."""

    identity_pattern = r"^THORLABS,PM100"
    model_description = "a Thorlabs PM100 power meter"

    def __init__(
        self,
        adapter: Adapter | str,
        name: str = "PM100",
        clock: Clock | None = None,
        **kwargs: Any,
    ) -> None:
        self.clock: Clock = clock if clock is not None else RealClock()
        try:
            try:
                with warnings.catch_warnings():  # the PM100 does speak SCPI (its manual, ch. 7)
                    warnings.filterwarnings("ignore", "It is not known whether", FutureWarning)
                    super().__init__(adapter, name=name, **kwargs)
            except (pyvisa.errors.Error, OSError) as exc:
                raise CommunicationError(name, f"cannot open {adapter!r}: {exc}") from exc
            except InstrumentError:  # identity or link (CommunicationError)
                raise
            except Exception as exc:  # e.g. pymeasure's "No sensor connected."
                raise InstrumentError(name, f"cannot initialise the power meter: {exc}") from exc
        except InstrumentError:
            link = self.__dict__.get("adapter")
            if link is not None:
                link.close()
            raise

    # --- I/O: SerializedIO serializes, resyncs and names link errors ------------
    def _set_flags(self) -> None:
        """pymeasure's first I/O (sensor flags), after confirming this is a PM100."""
        self.confirm_identity()
        super()._set_flags()

    def reply_problem(self, command: str, reply: str) -> str | None:
        return pm100_reply_problem(command, reply)

    def _float(self, command: str) -> float:
        result = self.values(command)
        if len(result) != 1 or isinstance(result[0], str):
            raise self.garbled(command, result)
        return float(result[0])

    # --- measurements ------------------------------------------------------------
    @property
    def power_w(self) -> float:
        """One power reading in W (``MEAS:POW?``)."""
        if not self.is_power_sensor:
            raise InstrumentError(self.name, f"sensor {self.sensor_name} is not a power sensor")
        return self._float("MEAS:POW?")

    def average_power_w(self, n: int = 10) -> tuple[float, float]:
        """Mean and standard error (W) of ``n`` readings."""
        if n < 1:
            raise ValueError(f"{self.name}: average_power_w needs n ≥ 1, got {n}")
        with self.lock:
            readings = [self.power_w for _ in range(n)]
        mean = statistics.fmean(readings)
        sem = statistics.stdev(readings) / n**0.5 if n > 1 else float("nan")
        return mean, sem

    @property
    def wavelength_nm(self) -> float:
        """Correction wavelength in nm (the sensor's responsivity is taken there)."""
        return self._float("SENS:CORR:WAV?")

    @wavelength_nm.setter
    def wavelength_nm(self, value: float) -> None:
        with self.lock:
            low = self._float("SENS:CORR:WAV? MIN")
            high = self._float("SENS:CORR:WAV? MAX")
            if not low <= value <= high:
                raise InstrumentError(
                    self.name,
                    f"wavelength {value} nm outside the sensor's {low:g}–{high:g} nm",
                )
            self.write(f"SENS:CORR:WAV {value:g}")
            self.check_errors()

    def check_errors(self) -> list:
        """Drain ``SYST:ERR?``; raise :class:`InstrumentError` listing any errors."""
        errors = []
        with self.lock:
            for _ in range(32):
                reply = self.ask("SYST:ERR?").strip()
                code, _, message = reply.partition(",")
                try:
                    number = int(code)
                except ValueError:
                    raise self.garbled("SYST:ERR?", reply) from None
                if number == 0:
                    break
                errors.append(f"{number} {message.strip(chr(34))}")
        if errors:
            raise InstrumentError(self.name, "SCPI errors: " + "; ".join(errors))
        return []

    def settings(self) -> dict[str, Any]:
        """Instrument state for run-file headers."""
        with self.lock:
            return {
                "idn": self.ask("*IDN?").strip(),
                "sensor": self.sensor_name,
                "sensor_sn": _text(self.sensor_sn),
                "sensor_calibration": self.sensor_cal_msg,
                "wavelength_nm": self.wavelength_nm,
            }


def open_instrument(
    connection: Adapter | str,
    *,
    name: str,
    clock: Clock,
    wavelength_nm: float | None = None,
    **options: Any,
) -> PowerMeter:
    """A :class:`PowerMeter` on an address (VISA resource) or an in-process adapter."""
    if options:
        raise StationError(f"{name}: unknown PM100 options {sorted(options)}")
    if isinstance(connection, str):
        from labctl.transport import visa_options

        meter = PowerMeter(connection, name=name, clock=clock, **visa_options(connection))
    else:
        meter = PowerMeter(connection, name=name, clock=clock)
    if wavelength_nm is not None:
        meter.wavelength_nm = wavelength_nm
    return meter


def _text(value: Any) -> str:
    """A field pymeasure may have cast to float (serial numbers) back as text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
