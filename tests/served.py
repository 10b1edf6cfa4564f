"""One way to run ``labctl sim serve`` in a test: wait for ``ready``, drain, tear down bounded.

Rule: a served world is started, waited for and stopped in one place, so that
every served test gets the same guarantees:

- *readiness, not sleeps*: the context is entered when the server has printed
  ``ready`` (after one ``NAME RESOURCE`` line per instrument), or the test fails
  with what the server printed -- within ``ready_timeout_s``, however busy the
  machine is, because a reader thread does the blocking reads;
- *drained pipes*: stdout and stderr are read by daemon threads for the whole life
  of the server (a full pipe would stall it mid-reply); ``stderr_text()`` gives
  what it has said, for failure messages;
- *bounded teardown*: SIGCONT (a test may have SIGSTOPped it), SIGTERM, a bounded
  wait, then SIGKILL; every wait and join has a timeout.

Use :func:`served_world` directly for module-scoped servers, or the ``serve``
fixture of ``tests/conftest.py`` for one server per test. A world served on virtual
time (``time_scale="virtual"``) moves only when its clients wait; :func:`hold_when`
stops the program driving it at a point of its own timeline (kill it, inject a fault)
instead of racing it on the wall clock.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

LABCTL = [sys.executable, "-m", "labctl.cli"]
READY_TIMEOUT_S = 60.0  # generous: a loaded 2-core machine imports numpy/scipy slowly
STOP_TIMEOUT_S = 10.0


@dataclass
class Served:
    """A running ``labctl sim serve``: its process, station file and resources."""

    proc: subprocess.Popen
    station: Path
    resources: dict[str, str]
    _stderr: list[str] = field(default_factory=list, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)

    @property
    def control(self) -> str:
        """``HOST:PORT`` of the fault-control socket (from the written station file)."""
        import yaml

        return yaml.safe_load(self.station.read_text())["sim_control"]

    def stderr_text(self) -> str:
        return "".join(self._stderr)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM (SIGKILL if it will not go); returns the exit code. Idempotent."""
        proc = self.proc
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout_s)
        for thread in self._threads:
            thread.join(timeout=timeout_s)
        return proc.returncode


def _drain(stream, sink) -> None:
    """Read ``stream`` line by line into ``sink`` (a list or a queue) until EOF."""
    try:
        for line in stream:
            sink.put(line) if isinstance(sink, queue.Queue) else sink.append(line)
    except (OSError, ValueError):  # closed under us at teardown
        pass
    finally:
        if isinstance(sink, queue.Queue):
            sink.put(None)


def read_lines_until(source, last: str, timeout_s: float) -> list[str]:
    """Lines (stripped) up to and including ``last``, or up to EOF, within ``timeout_s``.

    ``source`` is a queue of lines fed by a drain thread (``None`` at EOF), or a
    ``subprocess.Popen`` with a text stdout pipe, which gets its drain thread here. The
    blocking reads are the thread's, so a process that hangs without printing fails the
    test after the timeout instead of hanging the suite.
    """
    import time

    if not isinstance(source, queue.Queue):
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_drain, args=(source.stdout, lines), daemon=True).start()
        source = lines
    out: list[str] = []
    deadline = time.monotonic() + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = source.get(timeout=remaining)
        except queue.Empty:
            break
        if line is None:
            break
        out.append(line.strip())
        if out[-1] == last:
            break
    return out


def start_served(
    directory: Path,
    time_scale: float | str = 100,
    *extra: str,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> Served:
    """Start ``labctl sim serve`` writing ``directory/served.yaml``; return once ``ready``.

    The caller must ``stop()`` it (or use :func:`served_world`).
    """
    station = Path(directory) / "served.yaml"
    proc = subprocess.Popen(
        [*LABCTL, "sim", "serve", "--time-scale", str(time_scale)]
        + ["--write-station", str(station), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    stderr: list[str] = []
    threads = [
        threading.Thread(target=_drain, args=(proc.stdout, lines), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, stderr), daemon=True),
    ]
    for thread in threads:
        thread.start()
    served = Served(proc, station, {}, stderr, threads)
    printed = read_lines_until(lines, "ready", ready_timeout_s)
    if printed[-1:] == ["ready"]:
        served.resources = dict(entry.split(" ", 1) for entry in printed[:-1])
        return served
    served.stop()
    raise RuntimeError(
        f"sim serve did not get ready within {ready_timeout_s:g} s: "
        f"stdout {printed}, stderr {served.stderr_text()[-2000:]!r}"
    )


def station_with_options(station: Path, out: Path, role: str, **options) -> Path:
    """A copy of a station file (as ``sim serve`` wrote it) with ``options`` set on
    ``role``'s driver, written to ``out``: e.g. a furnace link that tries once
    (``retries=0``) for a test of a silent or garbled controller."""
    import yaml

    data = yaml.safe_load(Path(station).read_text())
    data["instruments"][role].setdefault("options", {}).update(options)
    Path(out).write_text(yaml.safe_dump(data, sort_keys=False))
    return Path(out)


@contextlib.contextmanager
def served_world(
    directory: Path, time_scale: float | str = 100, *extra: str, **options
) -> Iterator[Served]:
    """A fresh simulated world served on loopback for the ``with`` block."""
    served = start_served(directory, time_scale, *extra, **options)
    try:
        yield served
    finally:
        served.stop()


def hold_when(
    station: Path,
    proc: subprocess.Popen,
    ready: Callable[[], bool],
    step_s: Callable[[], float],
    timeout_s: float = 120.0,
) -> float:
    """Advance a world served on virtual time in held steps until ``ready()``; returns
    the virtual time the program is left held at (``RemoteWorldClock.release`` frees it).

    At each step the clock is held ``step_s()`` virtual seconds further on and the
    program driving the world (``proc``) runs until it waits there; ``ready()`` then
    looks at what it has recorded while it is frozen. So "kill it mid-dwell" is a point
    of the program's own timeline, not a race with the machine's load. ``timeout_s``
    (wall) only ends a test whose program never reaches the point.
    """
    from labctl.servesim import RemoteWorldClock

    clock = RemoteWorldClock.from_station_file(station)
    at_s = clock.now()
    deadline = time.monotonic() + timeout_s
    while True:
        clock.hold(at_s)
        while not clock.wait_held(timeout_s=1.0):
            if proc.poll() is not None:
                raise AssertionError(
                    f"the program ended ({proc.returncode}) before the point was reached, "
                    f"at virtual {clock.now():g} s"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"the program never waited at virtual {at_s:g} s")
        if ready():
            return at_s
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready by virtual {at_s:g} s")
        at_s += step_s()
