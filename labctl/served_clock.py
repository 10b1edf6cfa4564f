"""Virtual time shared by a served simulated world and the programs that drive it.

``labctl sim serve --time-scale virtual`` keeps its world on a :class:`WorldClock`: a
:class:`~labctl.clock.VirtualClock` that moves only when somebody waits. A program
driving that world (the series runner, ``labctl run``, a test) uses a
:class:`ServedClock`, which carries each of its waits to the serving process over the
control socket (``clock sleep S``) and reads the time there (``clock now``). So a
served world behaves as an in-process one: deterministic, and as fast as the machine
computes — a 3 h anneal is over in a second or two, however busy the machine, and no
wait is ever "late" — while it still outlives the program that drives it, as
hardware does (the point of serving it: a crash and a resume see one world).

A test can *hold* the world at a virtual time (``clock hold T``): from then on a
client's wait that would carry the clock past ``T`` waits (in wall time) at ``T``
until ``clock release`` or a later hold. The program is then frozen at a known
point of its own timeline while the test looks at what it has recorded, kills it,
or injects a fault — a deterministic stand-in for "kill it mid-dwell" that no
scheduling delay can move. The instruments still answer while the clock is held
(their own short waits — a spectrometer's integration — are not held), so nothing
times out.

Requests (one line each, on the control socket of :mod:`labctl.servesim`)::

    clock now              ->  ok T
    clock sleep S          ->  ok T          (T after the wait; held: at most the hold)
    clock hold T           ->  ok holding at T
    clock release          ->  ok released
    clock held WAIT_S      ->  ok held T | ok running T   (held: a client waits at the hold)
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections import Counter

from labctl.clock import STOP_SLICE_S, VirtualClock, _check_wait, _raise_if_stopped, current_stop
from labctl.errors import LabctlError, StationError

#: Longest wall time a ``clock now`` (never held) may take before the link is called lost.
REPLY_TIMEOUT_S = 30.0
#: Longest ``clock held`` wait the server grants one request (a client asks again).
MAX_HELD_WAIT_S = 10.0


def loopback_address(address: str, what: str) -> tuple[str, int]:
    """(host, port) of a served world's ``127.0.0.1:PORT`` (or ``localhost:PORT``);
    :class:`~labctl.errors.StationError` naming ``what`` for anything else: the
    simulators are served on loopback only."""
    host, _, port = str(address).rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        raise StationError(f"{what} {address!r}: expected '127.0.0.1:PORT'")
    return host, int(port)


class WorldClock(VirtualClock):
    """The served world's virtual clock: its clients' waits advance it; a hold stops them.

    :meth:`sleep` is the world's own (a simulated instrument's integration time) and is
    never held; :meth:`client_sleep` is a client's wait, carried over the control socket.
    """

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(start)
        self._changed = threading.Condition(self._lock)
        self._hold_at: float | None = None
        #: client waits waiting, by the hold they reached (a moved hold is a new one)
        self._held: Counter[float] = Counter()

    def client_sleep(self, seconds: float) -> float:
        """Advance by ``seconds`` unless held short of that; wait at the hold until it is
        released or moved on. Returns the time after the wait."""
        _check_wait(seconds)
        left = max(float(seconds), 0.0)
        with self._changed:
            while (hold := self._hold_at) is not None and self._t + left > hold:
                step = max(hold - self._t, 0.0)
                self._t += step
                left -= step
                self._held[hold] += 1
                self._changed.notify_all()
                try:
                    self._changed.wait()
                finally:
                    self._held[hold] -= 1
                    if not self._held[hold]:
                        del self._held[hold]
            self._t += left
            return self._t

    def hold(self, at_s: float) -> None:
        """Client waits stop at virtual time ``at_s`` (now, if that is already past)."""
        if not math.isfinite(at_s):
            raise ValueError(f"cannot hold the clock at {at_s!r}")
        with self._changed:
            self._hold_at = float(at_s)
            self._changed.notify_all()

    def release(self) -> None:
        with self._changed:
            self._hold_at = None
            self._changed.notify_all()

    def wait_held(self, timeout_s: float) -> bool:
        """True once a client waits at the hold (within ``timeout_s`` of wall time)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._hold_at is not None and self._held[self._hold_at] > 0,
                timeout=timeout_s,
            )


def clock_request(clock, words: list[str]) -> str:
    """Carry out one ``clock ...`` control request on the served world's clock."""
    if not isinstance(clock, WorldClock):
        return (
            f"error clock: this world runs on {clock!r}, not on its clients' virtual time "
            "(serve it with --time-scale virtual)"
        )
    try:
        if words == ["now"]:
            return f"ok {clock.now()!r}"
        if len(words) == 2 and words[0] == "sleep":
            return f"ok {clock.client_sleep(float(words[1]))!r}"
        if len(words) == 2 and words[0] == "hold":
            clock.hold(float(words[1]))
            return f"ok holding at {float(words[1])!r}"
        if words == ["release"]:
            clock.release()
            return "ok released"
        if len(words) == 2 and words[0] == "held":
            wait_s = min(max(float(words[1]), 0.0), MAX_HELD_WAIT_S)
            state = "held" if clock.wait_held(wait_s) else "running"
            return f"ok {state} {clock.now()!r}"
    except ValueError as exc:
        return f"error clock: {exc}"
    return (
        f"error clock: unknown request {' '.join(words)!r} "
        "(now, sleep S, hold T, release, held WAIT_S)"
    )


class ServedClock:
    """A program's clock when it drives a world served on virtual time (see module doc).

    One connection per thread, so a thread waiting at a hold never blocks another's
    ``now()``. A stop request armed for the thread (:func:`labctl.clock.stop_on`) ends
    a held wait within :data:`~labctl.clock.STOP_SLICE_S`, as with every other clock.
    """

    scale = math.inf

    def __init__(self, address: str) -> None:
        self._where = loopback_address(address, "served clock")
        self.address = "{}:{}".format(*self._where)
        self._local = threading.local()

    def now(self) -> float:
        return float(self._request("clock now"))

    def sleep(self, seconds: float) -> None:
        _check_wait(seconds)
        _raise_if_stopped(current_stop(), seconds)
        if seconds > 0:
            self._request(f"clock sleep {float(seconds)!r}", waits=seconds)

    # -- the link ---------------------------------------------------------------------
    def _socket(self) -> socket.socket:
        sock = getattr(self._local, "sock", None)
        if sock is None:
            try:
                sock = socket.create_connection(self._where, timeout=REPLY_TIMEOUT_S)
            except OSError as exc:
                raise self._lost(exc) from None
            sock.settimeout(STOP_SLICE_S)
            self._local.sock = sock
        return sock

    def _drop(self) -> None:
        sock = getattr(self._local, "sock", None)
        self._local.sock = None
        if sock is not None:
            sock.close()

    def _lost(self, why) -> LabctlError:
        return LabctlError(
            f"lost the served world's clock at {self.address} "
            f"(is `labctl sim serve` still running?): {why}"
        )

    def _request(self, line: str, waits: float | None = None) -> str:
        for attempt in (1, 2):  # the server closes a connection idle for 30 s: open anew
            sock = self._socket()
            try:
                sock.sendall((line + "\n").encode("ascii"))
                reply = self._read_line(sock, waits)
            except (_Closed, ConnectionError) as exc:  # closed before it read the request
                self._drop()
                if attempt == 2:
                    raise self._lost(f"the connection closed ({exc or 'no reply'})") from None
                continue
            except BaseException:
                self._drop()  # a reply may still come: never read it as the next one's
                raise
            if reply.startswith("ok "):
                return reply[3:]
            raise LabctlError(f"served clock at {self.address}: {reply}")
        raise AssertionError("unreachable")

    def _read_line(self, sock: socket.socket, waits: float | None) -> str:
        """One reply line; a wait (``waits`` s) may be held, so it is read in stop slices."""
        data = b""
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while not data.endswith(b"\n"):
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                if waits is not None:  # a held wait: ends with the thread's stop request
                    _raise_if_stopped(current_stop(), waits)
                elif time.monotonic() > deadline:
                    raise self._lost(f"no reply in {REPLY_TIMEOUT_S:g} s") from None
                continue
            except ConnectionError:
                if data:
                    raise self._lost("the reply was cut short") from None
                raise
            except OSError as exc:
                raise self._lost(exc) from None
            if not chunk:
                if data:
                    raise self._lost("the reply was cut short")
                raise _Closed
            data += chunk
        return data.decode("utf-8", errors="replace").strip()

    def __repr__(self) -> str:
        return f"ServedClock({self.address})"


class _Closed(Exception):
    """The server closed the connection before replying (it idled out)."""
