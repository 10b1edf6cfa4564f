"""Clocks: every wait in labctl goes through one.

* :class:`RealClock` — wall time, for hardware.
* :class:`ScaledClock` — virtual time running ``scale`` times faster than the
  wall clock; two processes with the same scale agree on virtual time to within
  scheduling jitter, so ``labctl sim serve`` and a client can share it.
* :class:`VirtualClock` — virtual time that only moves when somebody sleeps;
  deterministic, for tests.

Physics integrates over virtual time, so acceleration changes nothing but the
wall time a run takes.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What procedures, drivers and simulators need of time."""

    scale: float

    def now(self) -> float:
        """Seconds since the clock's epoch (virtual seconds for simulated clocks)."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


class RealClock:
    """Wall-clock time (monotonic)."""

    scale = 1.0

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def __repr__(self) -> str:
        return "RealClock()"


class ScaledClock:
    """Virtual time that runs ``scale`` times faster than wall time.

    The epoch is the Unix epoch scaled from ``origin`` (wall time when virtual
    time was zero), so every process built with the same ``origin`` and
    ``scale`` reads the same virtual time.
    """

    def __init__(self, scale: float = 1.0, origin: float | None = None) -> None:
        if not scale > 0:
            raise ValueError(f"time scale must be positive, got {scale!r}")
        self.scale = float(scale)
        self.origin = time.time() if origin is None else float(origin)

    def now(self) -> float:
        return (time.time() - self.origin) * self.scale

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.scale)

    def __repr__(self) -> str:
        return f"ScaledClock(scale={self.scale:g})"


class VirtualClock:
    """Deterministic virtual time: ``sleep`` advances the clock instantly.

    Thread-safe. Used in tests and for synthetic measurements where wall time
    is irrelevant.
    """

    scale = float("inf")

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._t += seconds

    def advance(self, seconds: float) -> None:
        """Move time forward (alias of :meth:`sleep`, reads better in tests)."""
        self.sleep(seconds)

    def __repr__(self) -> str:
        return f"VirtualClock(t={self._t:g})"


def make_clock(time_scale: float | None) -> Clock:
    """Clock for a ``--time-scale`` option: None or 1 → real, inf → virtual, else scaled."""
    if time_scale is None or time_scale == 1:
        return RealClock()
    if time_scale == float("inf"):
        return VirtualClock()
    return ScaledClock(time_scale)
