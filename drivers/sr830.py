"""SRS SR830 lock-in amplifier: pymeasure's ``SR830`` with serialized I/O and clock waits.

What this adds to pymeasure's driver:

* every query is serialized (:class:`~labctl.locking.SerializedIO`), and
  timeouts, lost links and garbled replies become
  :class:`~labctl.errors.CommunicationError` naming the instrument;
* :meth:`LockIn.settle` waits through the station's clock, slope-aware;
* :meth:`LockIn.read_xy` (one ``SNAP? 1,2``), overload checks from ``LIAS?``,
  :meth:`LockIn.auto_range` (done here with ``SENS`` and reads, not ``AGAN``),
  :meth:`LockIn.settings` for run-file headers, :meth:`LockIn.check_errors`
  from ``*ESR?``.

Settling (``settle``): ``n_tau`` counts time constants of a 6 dB/oct filter,
i.e. it asks for a step residual of ``exp(−n_tau)``. For ``k`` cascaded RC
stages (6·k dB/oct) the wait is the ``x·τ`` where the step residual
``Q(k, x) = e^{−x} Σ_{j<k} x^j/j!`` equals ``exp(−n_tau)``. For 99 %
(``n_tau = 4.6``) this gives 4.6/6.6/8.4/10.0 τ for 6/12/18/24 dB/oct, the
SR830 manual's settling table (5/7/9/10 τ).
"""

from __future__ import annotations

import math
from typing import Any

import pyvisa
from pymeasure.adapters import Adapter
from pymeasure.instruments.srs import SR830
from scipy.special import gammainccinv

from labctl.clock import Clock, RealClock
from labctl.errors import CommunicationError, InstrumentError, StationError
from labctl.locking import ClosesOnShutdown, SerializedIO, numbers

#: Standard event status bits that mean an error (bit: meaning).
ESR_ERROR_BITS = {
    0: "INP: input queue overflow",
    2: "QRY: output queue overflow",
    4: "EXE: command execution error (parameter out of range or not allowed now)",
    5: "CMD: illegal command received",
}
#: LIA status bits that mean an overload (bit: meaning).
LIAS_OVERLOAD_BITS = {
    0: "INPUT/RESERVE overload",
    1: "FILTER overload",
    2: "OUTPUT overload",
}
#: Fraction of full scale auto_range keeps |R| under.
AUTO_RANGE_FRACTION = 0.9

#: Queries with integer replies in a known range (SR830 manual, command list).
_INTEGER_REPLIES = {
    "SENS": (0, 26),
    "OFLT": (0, 19),
    "OFSL": (0, 3),
    "HARM": (1, 19999),
    "RMOD": (0, 2),
    "ISRC": (0, 3),
    "IGND": (0, 1),
    "ICPL": (0, 1),
    "ILIN": (0, 3),
    "FMOD": (0, 1),
    "SYNC": (0, 1),
    "*ESR": (0, 255),
    "*STB": (0, 255),
    "LIAS": (0, 255),
    "ERRS": (0, 255),
}
#: Queries answered with two numbers; buffer reads with any number of them.
_PAIR_REPLIES = ("OEXP", "DDEF")
_BUFFER_REPLIES = ("TRCA", "TRCB", "TRCL")


def sr830_reply_problem(command: str, reply: str) -> str | None:
    """Why ``reply`` cannot answer the SR830 query ``command`` (None if it can).

    Every SR830 query but ``*IDN?`` is answered with numbers: one, two for
    ``OEXP?``/``DDEF?``, as many as asked for ``SNAP?``; settings are integers
    in their range.
    """
    head, query, params = command.replace(" ", "").upper().partition("?")
    if not query or head == "*IDN":
        return None
    if head in _BUFFER_REPLIES:
        return None if numbers(reply, None) is not None else "expected numbers"
    if head == "SNAP":
        count = len(params.split(","))
    else:
        count = 2 if head in _PAIR_REPLIES else 1
    values = numbers(reply, count)
    if values is None:
        return f"expected {count} number{'s' if count > 1 else ''}"
    if head in _INTEGER_REPLIES and not params:
        lo, hi = _INTEGER_REPLIES[head]
        if values[0] != int(values[0]) or not lo <= values[0] <= hi:
            return f"expected an integer {lo}..{hi}"
    return None


def settling_time_constants(n_tau: float, slope_db_oct: int) -> float:
    """Time constants to wait so a step's residual is ``exp(−n_tau)`` (see module doc)."""
    if n_tau <= 0:
        return 0.0
    stages = SR830.FILTER_SLOPES.index(int(slope_db_oct)) + 1
    return float(gammainccinv(stages, math.exp(-n_tau)))


class LockIn(SerializedIO, ClosesOnShutdown, SR830):
    """An SR830 on a station: serialized, clocked, with errors that name it."""

    identity_pattern = r"^Stanford_Research_Systems,SR830,"
    model_description = "a Stanford Research SR830 lock-in"

    def __init__(
        self,
        adapter: Adapter | str,
        name: str = "SR830",
        clock: Clock | None = None,
        **kwargs: Any,
    ) -> None:
        self.clock: Clock = clock if clock is not None else RealClock()
        try:
            super().__init__(adapter, name=name, **kwargs)
        except (pyvisa.errors.Error, OSError) as exc:
            raise CommunicationError(name, f"cannot open {adapter!r}: {exc}") from exc

    # --- I/O: SerializedIO serializes, resyncs and names link errors; checks here
    def reply_problem(self, command: str, reply: str) -> str | None:
        return sr830_reply_problem(command, reply)

    def values(self, command: str, separator: str = ",", cast=float, **kwargs) -> list:
        result = super().values(command, separator=separator, cast=cast, **kwargs)
        if cast is not str and any(isinstance(v, str) for v in result):
            raise self.garbled(command, ",".join(map(str, result)))
        return result

    def _floats(self, command: str, count: int) -> list[float]:
        result = self.values(command)
        if len(result) != count:
            raise self.garbled(command, result, f"{len(result)} values, expected {count}")
        return [float(v) for v in result]

    def _int(self, command: str) -> int:
        (value,) = self._floats(command, 1)
        if value != int(value):
            raise self.garbled(command, value, "not an integer")
        return int(value)

    # --- measurements ------------------------------------------------------------
    def read_xy(self) -> tuple[float, float]:
        """X and Y (V rms) recorded at one instant (``SNAP? 1,2``)."""
        x, y = self._floats("SNAP? 1,2", 2)
        return x, y

    def read_r_theta(self) -> tuple[float, float]:
        """R (V rms) and θ (degrees) recorded at one instant (``SNAP? 3,4``)."""
        r, theta = self._floats("SNAP? 3,4", 2)
        return r, theta

    def read_overload(self) -> list[str]:
        """Overloads latched since the last read (``LIAS?``, which clears them)."""
        status = self._int("LIAS?")
        return [what for bit, what in LIAS_OVERLOAD_BITS.items() if status & (1 << bit)]

    def check_overload(self) -> None:
        """Raise :class:`InstrumentError` if an overload was latched since the last read."""
        overloads = self.read_overload()
        if overloads:
            raise InstrumentError(
                self.name,
                f"{', '.join(overloads)} at sensitivity {self.sensitivity:g} V "
                "(reduce the signal or call auto_range())",
            )

    def check_errors(self) -> list:
        """Read (and clear) ``*ESR?``; raise :class:`InstrumentError` naming set error bits."""
        status = self._int("*ESR?")
        errors = [what for bit, what in ESR_ERROR_BITS.items() if status & (1 << bit)]
        if errors:
            raise InstrumentError(self.name, f"*ESR? = {status}: {'; '.join(errors)}")
        return []

    # --- waiting -----------------------------------------------------------------
    def settling_time_s(self, n_tau: float = 3) -> float:
        """How long :meth:`settle` waits for the present time constant and slope."""
        with self.lock:
            tau = self.time_constant
            slope = self.filter_slope
        return settling_time_constants(n_tau, slope) * tau

    def settle(self, n_tau: float = 3) -> float:
        """Wait (through the clock) for the output filter to settle; returns seconds waited.

        ``n_tau`` is in 6 dB/oct time constants (residual ``exp(−n_tau)``):
        3 → 95 %, 4.6 → 99 %, 6.9 → 99.9 %; steeper slopes wait longer.
        """
        wait = self.settling_time_s(n_tau)
        self.clock.sleep(wait)
        return wait

    # --- ranging -----------------------------------------------------------------
    def quick_range(self) -> float:
        """pymeasure's ``quick_range`` waits in real time; here it is :meth:`auto_range`."""
        return self.auto_range()

    def auto_range(self, fraction: float = AUTO_RANGE_FRACTION, n_tau: float = 3) -> float:
        """Choose the most sensitive range with no overload and |R| < ``fraction``·FS.

        Steps ``SENS`` and reads ``LIAS?`` and R after each change (waiting
        :meth:`settle` ``(n_tau)``); returns the chosen sensitivity in V.
        """
        full_scales = self.SENSITIVITIES
        with self.lock:
            index = self._int("SENS?")
            lowest_overloaded = -1
            for _ in range(3 * len(full_scales)):
                self.read_overload()  # forget overloads latched before this range
                self.settle(n_tau)
                overloaded = bool(self.read_overload())
                r, _theta = self.read_r_theta()
                if overloaded or abs(r) >= fraction * full_scales[index]:
                    lowest_overloaded = max(lowest_overloaded, index)
                    if index == len(full_scales) - 1:
                        raise InstrumentError(
                            self.name, f"signal overloads the least sensitive range (|R| = {r:g} V)"
                        )
                    index += 1
                else:
                    best = next(
                        i
                        for i in range(lowest_overloaded + 1, index + 1)
                        if abs(r) < fraction * full_scales[i]
                    )
                    if best == index:
                        return full_scales[index]
                    index = best
                self.write(f"SENS {index}")
            raise InstrumentError(self.name, "auto_range did not converge")

    def range_with_headroom(self, steps: int = 2, n_tau: float = 5.0) -> float:
        """:meth:`auto_range`, then ``steps`` ranges less sensitive, for a scan whose signal
        will grow beyond what the lock-in sees now; settles ``n_tau``; returns the range (V)."""
        full_scales = list(self.SENSITIVITIES)
        with self.lock:
            index = full_scales.index(self.auto_range()) + max(0, int(steps))
            index = min(index, len(full_scales) - 1)
            self.write(f"SENS {index}")
            self.settle(n_tau)
            return full_scales[index]

    # --- headers -------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """Instrument state for run-file headers."""
        with self.lock:
            return {
                "idn": self.id,
                "sensitivity_V": self.sensitivity,
                "time_constant_s": self.time_constant,
                "slope_db_oct": self.filter_slope,
                "frequency_hz": self.frequency,
                "phase_deg": self.phase,
                "harmonic": self._int("HARM?"),
                "reference_source": self.reference_source,
                "reserve": self.reserve,
                "input_config": self.input_config,
                "input_coupling": self.input_coupling,
                "input_grounding": self.input_grounding,
                "input_notch": self.input_notch_config,
            }


def open_instrument(
    connection: Adapter | str,
    *,
    name: str,
    clock: Clock,
    sensitivity_v: float | None = None,
    time_constant_s: float | None = None,
    slope_db_oct: int | None = None,
    reference_source: str | None = None,
    **options: Any,
) -> LockIn:
    """A :class:`LockIn` on an address (VISA resource) or an in-process adapter.

    The instrument must answer ``*IDN?`` as an SR830 (else InstrumentError, or
    CommunicationError if nothing answers). Optional settings are applied on
    connection (``reference_source``: ``"External"`` or ``"Internal"``);
    anything else is refused.
    """
    if options:
        raise StationError(f"{name}: unknown SR830 options {sorted(options)}")
    if isinstance(connection, str):
        from labctl.transport import visa_options

        lockin = LockIn(connection, name=name, clock=clock, **visa_options(connection))
    else:
        lockin = LockIn(connection, name=name, clock=clock)
    try:
        lockin.confirm_identity()
    except Exception:
        lockin.adapter.close()
        raise
    if reference_source is not None:
        lockin.reference_source = reference_source
    if sensitivity_v is not None:
        lockin.sensitivity = sensitivity_v
    if time_constant_s is not None:
        lockin.time_constant = time_constant_s
    if slope_db_oct is not None:
        lockin.filter_slope = slope_db_oct
    return lockin
