"""Clocks: every wait in labctl goes through one.

* :class:`RealClock` — wall time, for hardware.
* :class:`ScaledClock` — virtual time running ``scale`` times faster than the
  wall clock; two processes with the same scale agree on virtual time to within
  scheduling jitter, so ``labctl sim serve`` and a client can share it.
* :class:`VirtualClock` — virtual time that only moves when somebody sleeps;
  deterministic, for tests.
* :class:`~labctl.served_clock.ServedClock` — the virtual time of a world served by
  ``labctl sim serve --time-scale virtual``, moved by this process's waits.

Physics integrates over virtual time, so acceleration changes nothing but the
wall time a run takes.

Every wait can be interrupted. A run arms its stop request (a
``threading.Event``) for the thread it runs in with :func:`stop_on`; while
armed, every ``sleep`` of every clock in that thread waits on the event in
slices of at most :data:`STOP_SLICE_S` of wall time and raises
:class:`~labctl.errors.Aborted` as soon as it is set — so a stop ends a
3 600 s record interval or a settling wait within a second, not when the wait
is over. The request is per thread, so a GUI monitor polling on the same clock
is never interrupted by a run's Abort, and the run disarms it around its safe
state (:func:`uninterruptible`), which therefore always completes.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from typing import Protocol

from labctl.errors import Aborted

#: Longest stretch of wall time a clock waits without looking at the stop request.
STOP_SLICE_S = 0.25

_armed = threading.local()


def current_stop() -> threading.Event | None:
    """The stop request armed for this thread (None: waits are not interruptible)."""
    return getattr(_armed, "event", None)


@contextlib.contextmanager
def stop_on(event: threading.Event | None) -> Iterator[None]:
    """Within the block, every clock wait in this thread ends (Aborted) when ``event`` is set."""
    previous = current_stop()
    _armed.event = event
    try:
        yield
    finally:
        _armed.event = previous


@contextlib.contextmanager
def uninterruptible() -> Iterator[None]:
    """Within the block, waits run to their end whatever the stop request (the safe state)."""
    with stop_on(None):
        yield


def _raise_if_stopped(event: threading.Event | None, seconds: float) -> None:
    if event is not None and event.is_set():
        raise Aborted(f"stopped by the user (a {seconds:g} s wait cut short)")


def wait_wall(seconds_wall: float, seconds_clock: float | None = None) -> None:
    """Wait ``seconds_wall`` of wall time, in slices that watch this thread's stop request."""
    event = current_stop()
    label = seconds_wall if seconds_clock is None else seconds_clock
    _raise_if_stopped(event, label)
    if event is None:
        time.sleep(seconds_wall)
        return
    deadline = time.monotonic() + seconds_wall
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        # time.sleep, not event.wait: a signal handler that sets the event must never
        # find the event's lock held by the thread it interrupted.
        time.sleep(min(left, STOP_SLICE_S))
        _raise_if_stopped(event, label)


def _check_wait(seconds: float) -> None:
    if math.isnan(seconds) or seconds == math.inf:
        raise ValueError(f"cannot wait {seconds!r} s")


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
        _check_wait(seconds)
        if seconds > 0:
            wait_wall(seconds)

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
        _check_wait(seconds)
        if seconds > 0:
            wait_wall(seconds / self.scale, seconds)

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
        """Advance time by ``seconds`` — unless this thread's stop request is set: then
        :class:`~labctl.errors.Aborted`, and time stays before the wait's deadline."""
        _check_wait(seconds)
        _raise_if_stopped(current_stop(), seconds)
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
