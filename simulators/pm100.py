"""Thorlabs PM100USB optical power meter with an S120VC photodiode, simulated.

Speaks the SCPI subset of the PM100USB/PM100D manuals that pymeasure's
``ThorlabsPM100USB`` and our driver use: long or short keyword forms in any
case (``SENSE:CORR:WAV?`` = ``sens:correction:wavelength?``), optional
``[SENSe]`` / ``[SCALar]`` / ``[DC]`` nodes, and (as the PM100USB manual's own
``CORR:WAVE 1550`` example shows) any spelling between the short and the long
form, ``;``-separated commands,
``MIN``/``MAX``/``DEF`` numeric parameters, IEEE-488.2 common commands and a
SCPI error queue (``SYST:ERR?``). An unknown header queues
``-113,"Undefined header"``, a bad parameter ``-104``/``-109``/``-222``; none
of them produces a reply.

Input buffer: a command line longer than :attr:`PM100Simulator.input_buffer_size`
bytes is discarded whole (no command of it runs) and queues the SCPI
device-specific error ``-363,"Input buffer overrun"`` (ESR bit 3, DDE). The
PM100USB manual does not state its buffer size; 1024 bytes is assumed, far
above any command the meter accepts.

Physics: the sensor is a UV-extended Si photodiode whose responsivity
``R(λ)`` (A/W, :data:`RESPONSIVITY_A_PER_W`) varies strongly with
wavelength. The meter divides the photocurrent by ``R(λ_set)`` at the
*configured* wavelength, so it reads the true power only when the wavelength
is set to the laser's: ``P_read = P · R(λ_pump) / R(λ_set)``. The pump's
power is ``world.pump_power_w(λ_pump)`` with ``λ_pump`` from the world's
table parameters (``pump_wavelength_nm``, 400 nm by default). With world
noise on, readings carry 0.3 % rms laser/amplifier noise plus the
photodiode's noise-equivalent power, averaged over ``SENS:AVER:COUN``
samples.
"""

from __future__ import annotations

import math
import re
import zlib

import numpy as np

from labctl.simulators.base import TextProtocolHandler

#: Typical S120VC (UV-extended Si) responsivity: (wavelength nm, A/W).
RESPONSIVITY_A_PER_W = np.array(
    [
        (200, 0.12), (250, 0.13), (300, 0.14), (350, 0.14), (400, 0.16), (450, 0.21),
        (500, 0.27), (550, 0.32), (600, 0.36), (650, 0.40), (700, 0.44), (750, 0.48),
        (800, 0.52), (850, 0.55), (900, 0.58), (950, 0.60), (1000, 0.52), (1050, 0.30),
        (1100, 0.10),
    ]
)  # fmt: skip
WAVELENGTH_MIN_NM = 200.0
WAVELENGTH_MAX_NM = 1100.0
POWER_MAX_W = 0.05  # S120VC: 50 mW
RELATIVE_NOISE = 3e-3
NEP_W = 1e-9
DEFAULT_PUMP_WAVELENGTH_NM = 400.0
SENSOR_FLAGS = 1 + 32 + 256  # power sensor, wavelength settable, temperature sensor

ESR_DDE = 1 << 3
ESR_EXE = 1 << 4
ESR_CMD = 1 << 5
ERRORS = {
    -102: "Syntax error",
    -104: "Data type error",
    -109: "Missing parameter",
    -113: "Undefined header",
    -221: "Settings conflict",
    -222: "Data out of range",
    -350: "Queue overflow",
    -363: "Input buffer overrun",
}


def responsivity_a_per_w(wavelength_nm: float) -> float:
    """The photodiode's responsivity at ``wavelength_nm`` (linear interpolation)."""
    table = RESPONSIVITY_A_PER_W
    return float(np.interp(wavelength_nm, table[:, 0], table[:, 1]))


class _ScpiError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _node(spec: str) -> tuple[str, str, bool]:
    """``"[SENSe]"`` → (short "SENS", long "SENSE", optional True)."""
    optional = spec.startswith("[")
    word = spec.strip("[]")
    short = "".join(c for c in word if c.isupper() or c.isdigit() or c in "*?")
    return short.upper(), word.upper(), optional


def _pattern(spec: str) -> list[tuple[str, str, bool]]:
    return [_node(part) for part in spec.replace("[:", ":[").split(":")]


def _matches(words: list[str], nodes: list[tuple[str, str, bool]]) -> bool:
    if not nodes:
        return not words
    short, long, optional = nodes[0]
    word = words[0] if words else ""
    if (
        word
        and long.startswith(word)
        and len(word) >= len(short)
        and _matches(words[1:], nodes[1:])
    ):
        return True
    return optional and _matches(words, nodes[1:])


_NUMBER_SUFFIX = re.compile(r"^([A-Z*]+?)(\d*)$")


class PM100Simulator(TextProtocolHandler):
    """A PM100USB + S120VC observing ``world.pump_power_w``."""

    kind = "visa"
    max_errors = 30
    input_buffer_size = 1024

    def __init__(self, world, name: str = "") -> None:
        super().__init__(world, name or "PM100USB")
        self.serial_number = f"P{2000000 + zlib.crc32(self.name.encode()) % 100000}"
        self.sensor_serial = f"{18000000 + zlib.crc32(b'S120VC' + self.name.encode()) % 100000}"
        self.errors: list[int] = []
        self.esr = 0
        self.ese = self.sre = 0
        self._reset()
        self._commands = [
            (_pattern(spec), query, fn)
            for spec, query, fn in [
                ("*IDN", True, self._idn),
                ("*RST", False, self._rst),
                ("*CLS", False, self._cls),
                ("*ESR", True, self._esr),
                ("*ESE", None, self._ese),
                ("*SRE", None, self._sre),
                ("*STB", True, self._stb),
                ("*OPC", True, lambda a: "1"),
                ("*OPC", False, lambda a: None),
                ("*TST", True, lambda a: "0"),
                ("*WAI", False, lambda a: None),
                ("SYSTem:ERRor[:NEXT]", True, self._next_error),
                ("SYSTem:VERSion", True, lambda a: "1999.0"),
                ("SYSTem:SENSor:IDN", True, self._sensor_idn),
                ("[SENSe]:CORRection:WAVelength", None, self._wavelength),
                ("[SENSe]:CORRection:POWer[:PDIOde][:RESPonse]", True, self._response),
                ("[SENSe]:CORRection:COLLect:ZERO[:INITiate]", False, lambda a: None),
                ("[SENSe]:AVERage[:COUNt]", None, self._average),
                ("[SENSe]:POWer[:DC]:RANGe:AUTO", None, self._range_auto),
                ("[SENSe]:POWer[:DC]:RANGe[:UPPer]", None, self._range),
                ("[SENSe]:POWer[:DC]:UNIT", None, self._unit),
                ("MEASure[:SCALar]:POWer", True, self._measure_power),
                ("MEASure[:SCALar]:ENERgy", True, self._not_energy_sensor),
                ("READ", True, self._measure_power),
                ("FETCh", True, self._fetch),
                ("INITiate[:IMMediate]", False, self._initiate),
                ("CONFigure[:SCALar]:POWer", False, lambda a: None),
                ("CONFigure[:SCALar]:POWer", True, lambda a: "POW"),
            ]
        ]

    def _reset(self) -> None:
        self.wavelength_nm = 633.0  # calibration default of Si sensors
        self.average_count = 1
        self.range_auto = 1
        self.range_w = POWER_MAX_W
        self.unit = "W"
        self._last_power_w = 0.0

    # --- physics ------------------------------------------------------------
    def pump_wavelength_nm(self) -> float:
        table = getattr(getattr(self.world, "params", None), "table", {}) or {}
        return float(table.get("pump_wavelength_nm", DEFAULT_PUMP_WAVELENGTH_NM))

    def reading_w(self) -> float:
        """One reading (W) as the meter would display it now."""
        with self.world.lock:
            self.world.advance()
            lam = self.pump_wavelength_nm()
            true_w = float(self.world.pump_power_w(lam))
            reading = true_w * responsivity_a_per_w(lam) / responsivity_a_per_w(self.wavelength_nm)
            if self.world.noise:
                n = self.average_count
                sigma = math.hypot(RELATIVE_NOISE * reading, NEP_W) / math.sqrt(n)
                reading += sigma * float(self.world.rng.standard_normal())
        if not self.range_auto:
            reading = min(reading, self.range_w)  # over range: the ADC saturates
        return reading

    # --- protocol -------------------------------------------------------------
    def handle_line(self, line: str) -> str | None:
        replies = []
        for command in line.split(";"):
            command = command.strip()
            if not command:
                continue
            try:
                reply = self._execute(command)
            except _ScpiError as exc:
                self._push_error(exc.code)
                continue
            if reply is not None:
                replies.append(reply)
        return self.reply_termination.join(replies) if replies else None

    def on_internal_error(self, line: str) -> str | None:
        self._push_error(-102)
        return None

    def on_input_overflow(self) -> str | None:
        self._push_error(-363)
        return None

    def _push_error(self, code: int) -> None:
        if -199 <= code <= -100:
            self.esr |= ESR_CMD
        elif -399 <= code <= -300:
            self.esr |= ESR_DDE
        else:
            self.esr |= ESR_EXE
        if len(self.errors) < self.max_errors:
            self.errors.append(code)
        else:
            self.errors[-1] = -350

    def _execute(self, command: str) -> str | None:
        header, _, argument = command.partition(" ")
        header = header.upper().lstrip(":")
        argument = argument.strip()
        query = header.endswith("?")
        header = header.rstrip("?")
        if not header or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:*" for c in header):
            raise _ScpiError(-113)
        words = []
        for word in header.split(":"):
            m = _NUMBER_SUFFIX.match(word)
            if not m:
                raise _ScpiError(-113)
            words.append(m.group(1) if m.group(2) in ("", "1") else word)
        for nodes, kind, fn in self._commands:
            if (kind is None or kind == query) and _matches(words, nodes):
                return fn(argument) if kind is not None else fn(argument, query)
        raise _ScpiError(-113)

    # --- commands ----------------------------------------------------------------
    def _idn(self, arg):
        return f"THORLABS,PM100USB,{self.serial_number},1.6.0"

    def _sensor_idn(self, arg):
        return f"S120VC,{self.sensor_serial},12-Mar-2021,1,18,{SENSOR_FLAGS}"

    def _rst(self, arg):
        self._reset()

    def _cls(self, arg):
        self.errors.clear()
        self.esr = 0

    def _esr(self, arg):
        value, self.esr = self.esr, 0
        return str(value)

    def _ese(self, arg, query):
        if query:
            return str(self.ese)
        self.ese = int(_number(arg, 0, 255))

    def _sre(self, arg, query):
        if query:
            return str(self.sre)
        self.sre = int(_number(arg, 0, 255))

    def _stb(self, arg):
        stb = (1 << 2) if self.errors else 0
        if self.esr & self.ese:
            stb |= 1 << 5
        return str(stb)

    def _next_error(self, arg):
        if not self.errors:
            return '0,"No error"'
        code = self.errors.pop(0)
        return f'{code},"{ERRORS.get(code, "Error")}"'

    def _wavelength(self, arg, query):
        if query:
            which = arg.upper()
            if which.startswith("MIN"):
                return _nr3(WAVELENGTH_MIN_NM)
            if which.startswith("MAX"):
                return _nr3(WAVELENGTH_MAX_NM)
            if which:
                raise _ScpiError(-104)
            return _nr3(self.wavelength_nm)
        self.wavelength_nm = _number(
            arg, WAVELENGTH_MIN_NM, WAVELENGTH_MAX_NM, default=633.0, unit="NM"
        )

    def _response(self, arg):
        return _nr3(responsivity_a_per_w(self.wavelength_nm))

    def _average(self, arg, query):
        if query:
            return str(self.average_count)
        self.average_count = int(round(_number(arg, 1, 10000, default=1)))

    def _range_auto(self, arg, query):
        if query:
            return str(self.range_auto)
        word = arg.upper()
        if word in ("ON", "1"):
            self.range_auto = 1
        elif word in ("OFF", "0"):
            self.range_auto = 0
        elif not word:
            raise _ScpiError(-109)
        else:
            raise _ScpiError(-104)

    def _range(self, arg, query):
        if query:
            return _nr3(self.range_w)
        self.range_w = _number(arg, 1e-9, POWER_MAX_W, default=POWER_MAX_W, unit="W")
        self.range_auto = 0

    def _unit(self, arg, query):
        if query:
            return self.unit
        word = arg.upper()
        if word in ("W", "DBM"):
            self.unit = word
        elif not word:
            raise _ScpiError(-109)
        else:
            raise _ScpiError(-104)

    def _measure_power(self, arg):
        self._last_power_w = self.reading_w()
        return self._format_power(self._last_power_w)

    def _initiate(self, arg):
        self._last_power_w = self.reading_w()

    def _fetch(self, arg):
        return self._format_power(self._last_power_w)

    def _format_power(self, power_w: float) -> str:
        if self.unit == "DBM":
            return _nr3(10 * math.log10(max(power_w, 1e-15) / 1e-3))
        return _nr3(power_w)

    def _not_energy_sensor(self, arg):
        raise _ScpiError(-221)


def _nr3(value: float) -> str:
    return f"{value:.9E}"


def _number(arg: str, lo: float, hi: float, default: float | None = None, unit: str = "") -> float:
    """A SCPI numeric parameter (MIN/MAX/DEF accepted, optional unit); -222 if out of range."""
    word = arg.strip().upper()
    if not word:
        raise _ScpiError(-109)
    if word.startswith("MIN"):
        return lo
    if word.startswith("MAX"):
        return hi
    if word.startswith("DEF") and default is not None:
        return default
    if unit and word.endswith(unit):
        word = word[: -len(unit)].strip()
    try:
        value = float(word)
    except ValueError:
        raise _ScpiError(-104) from None
    if not math.isfinite(value):
        raise _ScpiError(-104)
    if not lo <= value <= hi:
        raise _ScpiError(-222)
    return value
