"""One owner per instrument and per series directory, across processes.

Annealing is irreversible: two runs driving one furnace (a second ``labctl run
anneal``, the GUI's queue, another series) move the film out of the hot zone and
reset the first run's program. So a run *claims* what it needs before it
touches anything, and a second claim is refused at once, naming the holder.

How: one lock file per instrument address (``<lock dir>/<address>.lock``) or
series directory (``<dir>/.series.lock``) held with ``fcntl.flock``: the OS
releases it when the process dies, however it dies (SIGKILL included), so
there is never a stale lock to clean up. The holder writes who it is (pid,
command, since) into the file for the refusal message.

Within one process, flock cannot tell two claims apart, so a registry here
does: a claim is *re-entrant for the same owner* (the series runner claims the
station for the whole series; each of its procedures claims again under the
same owner, see :func:`owner_scope`) and refused for any other owner — a
second run in the same process (the GUI queue while a series runs) is refused
like one in another process. I/O sharing between a run and the GUI's monitors
is another matter: the per-instrument RLocks serialize it; monitors only read
and claim nothing.

Simulated instruments inside the process (``sim://`` addresses) belong to the
process's own world and are not claimed; served simulators (loopback
addresses) are, exactly like hardware. The lock directory is
``$LABCTL_LOCK_DIR``, else ``$XDG_RUNTIME_DIR/labctl/locks``, else
``<tmp>/labctl-<uid>/locks``.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import hashlib
import json
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from labctl.errors import LabctlError


class Busy(LabctlError):
    """An instrument or series is owned by another run; nothing was touched."""


@dataclass
class _Held:
    owner: object
    fd: int
    count: int


_registry: dict[str, _Held] = {}  # lock file path → this process's hold on it
_registry_lock = threading.Lock()
_current_owner: contextvars.ContextVar[object | None] = contextvars.ContextVar(
    "labctl_owner", default=None
)


def lock_dir() -> Path:
    env = os.environ.get("LABCTL_LOCK_DIR")
    if env:
        path = Path(env)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "labctl" / "locks"
    else:
        path = Path(tempfile.gettempdir()) / f"labctl-{os.getuid()}" / "locks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def instrument_lock_path(address: str) -> Path:
    """The lock file of an instrument address (readable name + a hash: no collisions)."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", address).strip("_")[:60]
    digest = hashlib.sha256(address.encode()).hexdigest()[:12]
    return lock_dir() / f"{readable}-{digest}.lock"


def holder_text(path: Path) -> str:
    """Who holds ``path``: "pid 1234 (labctl series run …) since 2026-…" or what is known."""
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process (it has not said who it is yet)"
    return f"pid {info.get('pid')} ({info.get('command', '?')}) since {info.get('since', '?')}"


def _command() -> str:
    return " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))[:200]


def _acquire(path: Path, what: str, owner: object) -> None:
    key = str(path)
    with _registry_lock:
        held = _registry.get(key)
        if held is not None:
            if held.owner is owner:
                held.count += 1
                return
            raise Busy(f"{what} is in use by another run in this process ({holder_text(path)})")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Busy(f"{what} is in use by {holder_text(path)}") from None
        except BaseException:
            os.close(fd)
            raise
        info = {
            "pid": os.getpid(),
            "command": _command(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
            "what": what,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        _registry[key] = _Held(owner, fd, 1)


def _release(path: Path) -> None:
    key = str(path)
    with _registry_lock:
        held = _registry.get(key)
        if held is None:
            return
        held.count -= 1
        if held.count > 0:
            return
        del _registry[key]
        with contextlib.suppress(OSError):
            os.ftruncate(held.fd, 0)  # nobody holds it: no stale name in the file
        os.close(held.fd)  # closing the descriptor releases the flock


class Claim:
    """Locks held together; ``release()`` (or leaving the ``with``) gives them all back."""

    def __init__(self, paths: list[tuple[Path, str]], owner: object) -> None:
        self.owner = owner
        self._held: list[Path] = []
        try:
            for path, what in paths:
                _acquire(path, what, owner)
                self._held.append(path)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        while self._held:
            _release(self._held.pop())

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def claim_instruments(addresses: Iterable[tuple[str, str]], owner: object | None = None) -> Claim:
    """Claim instruments ``(role, address)`` for ``owner`` (default: the current owner
    from :func:`owner_scope`, else a new one); all or none — refused with :class:`Busy`."""
    owner = owner if owner is not None else (_current_owner.get() or object())
    unique: dict[str, str] = {}
    for role, address in addresses:
        if address and not address.startswith("sim://"):
            unique.setdefault(address, role)
    paths = [
        (instrument_lock_path(address), f"{role} ({address})")
        for address, role in sorted(unique.items())  # one order everywhere: no deadlock
    ]
    return Claim(paths, owner)


def claim_station(station, roles: Iterable[str] | None = None, owner: object | None = None):
    """Claim a station's instruments (``roles``, default all) before touching any.

    ``station`` is a :class:`~labctl.station.Station` or its spec: claiming on the
    spec, before the station is opened, keeps a refused program from connecting to
    (and so talking to) instruments another run owns."""
    instruments = getattr(getattr(station, "spec", station), "instruments", None) or {}
    addresses = {role: inst.address for role, inst in instruments.items()}
    wanted = addresses if roles is None else {r: addresses[r] for r in roles if r in addresses}
    return claim_instruments(wanted.items(), owner)


def claim_series_directory(directory: str | Path, owner: object | None = None) -> Claim:
    """One runner per series directory (its ``.series.lock``)."""
    directory = Path(directory)
    return Claim([(directory / ".series.lock", f"series {directory}")], owner or object())


@contextlib.contextmanager
def owner_scope(owner: object) -> Iterator[object]:
    """Claims made inside (by procedures) are ``owner``'s: re-entrant for the series."""
    token = _current_owner.set(owner)
    try:
        yield owner
    finally:
        _current_owner.reset(token)
