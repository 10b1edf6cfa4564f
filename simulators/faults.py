"""Injected faults: what goes wrong in a lab, on demand, for tests and served stations.

Every :class:`~labctl.simulators.world.World` has one :class:`FaultBoard`
(``world.faults``). A fault is injected on a role — the simulator's name, which
is the station role (``"furnace"``, ``"lockin_pump"``, ``"stages"``, …) — and
stays until cleared:

``silent``
    the instrument stops answering: it neither acts on commands nor replies.
``garbled``
    replies are corrupted as on a noisy serial line: flipped bytes (high bit
    set), and for Modbus RTU sometimes a truncated frame — either way a bad CRC.
    USB checks every packet's CRC, so on the spectrometer a noisy line is a
    failed bulk read (``LIBUSB_ERROR_IO``), and silence a transfer timeout.
``disconnect``
    the link is lost: in-process transports raise what a dropped link raises
    (pyvisa ``VI_ERROR_CONN_LOST``, ``serial.SerialException``); a served
    instrument drops its TCP clients and refuses new ones until cleared.
``late``
    (serial instruments: the furnace) replies come ``delay_s`` seconds of wall time late, in order, as from an
    instrument that pauses before it acts on each request (a busy controller,
    a stalled link); the transports hold them (``SimSerial`` delivers them when
    due, a served instrument acts and answers after the delay). It is how a
    test makes a reply arrive after the driver's read timed out.
``sensor_break``
    the furnace thermocouple opens (``world.furnace.sensor_broken``); only on
    the furnace controller's role.
``stage_stall``
    an ESP301 axis stops short of its target and reports error ``axis*100+3``
    (FOLLOWING ERROR THRESHOLD EXCEEDED) through ``TE?``/``TB?``; optionally on one
    ``axis`` (1..3), otherwise on every axis; only on the motion controller's role.

The silent/garbled hook is :meth:`ProtocolHandler.respond`, which every
transport calls; disconnect lives in the transports; the spectrometer's USB
transfers fail in :mod:`labctl.simulators.seabreeze_usb` (virtual bus and
tunnel); sensor break in the furnace plant; stage stall in the ESP301
simulator's motion.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from labctl.errors import LabctlError

if TYPE_CHECKING:
    from labctl.simulators.base import ProtocolHandler

#: Fault kinds and what they do (see the module docstring).
KINDS: dict[str, str] = {
    "silent": "the instrument stops answering",
    "garbled": "replies corrupted as on a noisy line (flipped bytes, truncation, bad CRC)",
    "disconnect": "the link is lost; served instruments drop clients and refuse new ones",
    "late": "replies come delay_s (wall seconds) late, in order (a paused instrument)",
    "sensor_break": "the furnace thermocouple is open (furnace controller only)",
    "stage_stall": "a stage axis stops short of its target with a following error (ESP301 only)",
}
LINK_FAULTS = frozenset({"silent", "garbled", "disconnect"})
#: Longest delay of a ``late`` fault (wall seconds).
MAX_LATE_S = 10.0

#: Listener signature: ``fn(role, kind, active)`` after every change.
Listener = Callable[[str, str, bool], None]


class FaultError(LabctlError):
    """A fault cannot be injected or cleared as asked (unknown role or kind)."""


class FaultBoard:
    """Which faults are active on which simulated instrument (see module docstring)."""

    def __init__(self, world) -> None:
        self._world = world
        self._lock = threading.RLock()
        self._active: dict[str, dict[str, dict]] = {}  # role -> kind -> options
        self._kinds: dict[str, set[str]] = {}  # role -> kinds its simulator supports
        self._listeners: list[Listener] = []
        self._rng = np.random.default_rng(0xFA17)

    # --- registration (simulators and servers) ---------------------------------
    def register(self, handler: ProtocolHandler) -> None:
        """Make a simulator's role known, with the faults it supports."""
        from labctl.simulators.eurotherm import Eurotherm2408Simulator

        kinds = set(LINK_FAULTS) | set(getattr(handler, "fault_kinds", ()))
        if isinstance(handler, Eurotherm2408Simulator):
            kinds.add("sensor_break")  # the thermocouple is the controller's input
        if handler.kind == "serial":
            kinds.add("late")  # held by SimSerial and the served connection
        with self._lock:
            self._kinds.setdefault(handler.name, set()).update(kinds)

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    @property
    def roles(self) -> list[str]:
        with self._lock:
            return sorted(self._kinds)

    # --- the public API ----------------------------------------------------------
    def inject(self, role: str, kind: str, **options) -> None:
        """Start fault ``kind`` on ``role`` (``stage_stall`` takes ``axis=N``, ``late`` ``delay_s=S``)."""
        if kind not in KINDS:
            raise FaultError(f"unknown fault kind {kind!r} (kinds: {', '.join(KINDS)})")
        with self._lock:
            if role not in self._kinds:
                known = ", ".join(self.roles) or "none"
                raise FaultError(f"no simulated instrument {role!r} (roles: {known})")
            if kind not in self._kinds[role]:
                supported = ", ".join(k for k in KINDS if k in self._kinds[role])
                raise FaultError(f"{role}: cannot inject {kind!r} (it supports: {supported})")
            options = self._check_options(role, kind, options)
            if kind == "sensor_break":
                self._set_sensor_break(True)
            self._active.setdefault(role, {})[kind] = options
        self._notify(role, kind, True)

    def clear(self, role: str | None = None, kind: str | None = None) -> None:
        """Clear one fault (``role``, ``kind``), all of a role's, or every fault (no arguments)."""
        if kind is not None and kind not in KINDS:
            raise FaultError(f"unknown fault kind {kind!r} (kinds: {', '.join(KINDS)})")
        with self._lock:
            if role is not None and role not in self._kinds:
                known = ", ".join(self.roles) or "none"
                raise FaultError(f"no simulated instrument {role!r} (roles: {known})")
            cleared = [
                (r, k)
                for r, faults in self._active.items()
                if role is None or r == role
                for k in faults
                if kind is None or k == kind
            ]
            for r, k in cleared:
                del self._active[r][k]
                if k == "sensor_break":
                    self._set_sensor_break(False)
        for r, k in cleared:
            self._notify(r, k, False)

    def active(self, role: str) -> frozenset[str]:
        """The fault kinds active on ``role``."""
        with self._lock:
            return frozenset(self._active.get(role, ()))

    def options(self, role: str, kind: str) -> dict | None:
        """The options a fault was injected with, or None if it is not active."""
        with self._lock:
            faults = self._active.get(role, {})
            return dict(faults[kind]) if kind in faults else None

    def summary(self) -> dict[str, list[str]]:
        """Active faults by role (roles without faults left out)."""
        with self._lock:
            return {r: sorted(f) for r, f in sorted(self._active.items()) if f}

    # --- used by the hooks ------------------------------------------------------------
    def respond(self, handler: ProtocolHandler, data: bytes, source: object = None) -> bytes:
        """``handler.handle(data, source)`` as seen on the wire under the role's faults.

        USB devices (``kind == "seabreeze"``) fail per transfer instead, as libusb
        reports them (:mod:`labctl.simulators.seabreeze_usb`), also when served.
        """
        if handler.kind == "seabreeze":
            return handler.handle(data, source)
        faults = self.active(handler.name)
        if "silent" in faults:
            return b""  # a dead instrument neither acts nor answers
        reply = handler.handle(data, source)
        if "garbled" in faults and reply:
            reply = self.garble(reply, handler.kind)
        return reply

    def reply_delay_s(self, role: str) -> float:
        """How late ``role`` answers, in wall seconds (0 unless a ``late`` fault is active)."""
        options = self.options(role, "late")
        return 0.0 if options is None else options["delay_s"]

    def stall_axis(self, role: str, axis: int) -> bool:
        """True when moves of ``axis`` (1-based) on ``role`` stall."""
        options = self.options(role, "stage_stall")
        if options is None:
            return False
        return options.get("axis") in (None, axis)

    def garble(self, reply: bytes, kind: str = "visa") -> bytes:
        """Corrupt a reply as line noise would."""
        with self._lock:
            rng = self._rng
            if kind == "visa":  # text: corrupt each line, keep its terminator (framing survives)
                out = bytearray()
                for line in reply.splitlines(keepends=True):
                    body = line.rstrip(b"\r\n")
                    out += _flip(body, rng) + line[len(body) :]
                return bytes(out)
            if kind == "serial" and len(reply) > 2 and rng.random() < 0.5:
                return reply[: int(rng.integers(1, len(reply) - 1))]  # frame cut short
            return _flip(reply, rng)

    def restore(self) -> None:
        """Re-apply world-side faults after the world rebuilt its parts (``configure``)."""
        with self._lock:
            if any("sensor_break" in faults for faults in self._active.values()):
                self._world.furnace.sensor_broken = True

    # --- internals -------------------------------------------------------------------
    def _check_options(self, role: str, kind: str, options: dict) -> dict:
        if kind == "late":
            unknown = set(options) - {"delay_s"}
            delay = options.get("delay_s")
            if unknown or isinstance(delay, bool) or not isinstance(delay, int | float):
                raise FaultError(f"{role}: late takes delay_s=SECONDS only, got {options}")
            if not 0.0 < delay <= MAX_LATE_S:  # also refuses NaN
                raise FaultError(
                    f"{role}: late delay_s must be in (0, {MAX_LATE_S:g}] s, got {delay}"
                )
            return {"delay_s": float(delay)}
        if kind != "stage_stall":
            if options:
                raise FaultError(f"{role}: fault {kind!r} takes no options, got {sorted(options)}")
            return {}
        unknown = set(options) - {"axis"}
        if unknown:
            raise FaultError(f"{role}: stage_stall takes only 'axis', got {sorted(unknown)}")
        axis = options.get("axis")
        if axis is None:
            return {"axis": None}
        n_axes = min(3, len(self._world.stages))
        if isinstance(axis, bool) or not isinstance(axis, int) or not 1 <= axis <= n_axes:
            raise FaultError(f"{role}: stage_stall axis must be 1..{n_axes}, got {axis!r}")
        return {"axis": axis}

    def _set_sensor_break(self, broken: bool) -> None:
        world = self._world
        with world.lock:
            world.advance()  # the past ran with the sensor as it was
            world.furnace.sensor_broken = broken

    def _notify(self, role: str, kind: str, active: bool) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(role, kind, active)


def _flip(data: bytes, rng: np.random.Generator) -> bytes:
    """Set the high bit of the first byte and of about a quarter of the rest."""
    if not data:
        return data
    out = bytearray(data)
    out[0] ^= 0x80
    for i in np.flatnonzero(rng.random(len(out) - 1) < 0.25) + 1:
        out[i] ^= 0x80
    return bytes(out)
