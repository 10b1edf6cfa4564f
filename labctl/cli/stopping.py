"""Ctrl-C and SIGTERM on the command line: one path to a safe stop.

Rule: a signal never kills a run; it sets the run's stop request. The run's
waits watch that request (``labctl.clock.stop_on``), so the procedure stops
within a second, puts its instruments in their safe state (uninterruptible)
and keeps its data and summary; the command then exits 130 after SIGINT or 143
after SIGTERM (128 + the signal, as a shell reports a killed process). A
second Ctrl-C while the safe state is being set is acknowledged and ignored:
interrupting that sequence is exactly what could leave a furnace heating.

The handler only sets an event: the waits it must end read the flag
(``is_set``) between ``time.sleep`` slices and never hold the event's lock, so
setting it from the handler cannot deadlock the thread it interrupted.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

#: Exit code of a run stopped by signal ``s``: 128 + s (SIGINT 130, SIGTERM 143).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignals:
    """Context manager: SIGINT/SIGTERM set ``stop`` (main thread only; elsewhere a no-op)."""

    def __init__(self, stop: threading.Event, what: str = "labctl") -> None:
        self.stop = stop
        self.what = what
        #: The first stop signal received (None: none).
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signum is None:
            self.signum = signum
            print(
                f"{self.what}: {name}: stopping — safe state, data and summary kept",
                file=sys.stderr,
                flush=True,
            )
        else:
            print(
                f"{self.what}: {name} again: still setting the safe state; not interrupted",
                file=sys.stderr,
                flush=True,
            )
        self.stop.set()

    def exit_code(self, default: int = 130) -> int:
        """128 + the signal that stopped the run, else ``default`` (130, a stop by other means)."""
        return 128 + self.signum if self.signum is not None else default
