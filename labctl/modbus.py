"""One Modbus RTU link that never takes a late reply as the answer to the next request.

A Modbus RTU reply carries the slave address and the function code but no
register address and no transaction id: a read of register 2 and a read of
register 35 get replies of the same shape. So a reply that comes late — the
controller was busy, a link hiccup, a served simulator paused past the read
timeout — is indistinguishable from the answer to whatever is asked next,
and read naively the ramp rate comes back as the setpoint. Flushing the
input once and retrying a fixed 50 ms later (what the Eurotherm driver did)
is not enough: a reply still in flight arrives after the flush. Measured on
the served simulator with short pauses just past the 0.2 s timeout: 23 of
63 000 reads returned another register's value.

The rule, in :class:`ModbusLink`:

* After any failed attempt (no reply, a short or garbled frame, a reply
  followed by unexpected bytes) the link is *out of step*. Before anything
  else is sent it drains: reads and discards input until the line has been
  silent for at least ``quiet_s`` (the read timeout) **and** either every
  reply still owed has arrived (the link counts the bytes each unanswered
  request is owed: a read of ``k`` registers 5 + 2k, a write 8) or the reply
  horizon (``LATE_REPLY_TIMEOUTS`` read timeouts, 1 s on a 0.2 s link) has
  passed since the last request went out; then it retries. Silence for one
  timeout alone is not enough when the instrument answers more than two
  timeouts late (a 0.5 s pause on a 0.2 s link: drained, retried at 0.4 s,
  answered by the late reply at 0.5 s, and the retry's own reply answered
  the next request; measured with the ``late`` fault, 1 wrong value in 75
  reads). Waiting no longer than the owed replies matters on a served world
  at a high speed-up, where every second of gap is thousands of virtual
  seconds the next request must integrate first. All of it in **wall
  time**, never the station's scaled clock: a late reply takes as long to
  arrive at 10 000× as at 1×, and 50 ms of virtual time is 5 µs there.
* If replies are still owed past the horizon (a controller or a served world
  stalled for longer), or their count is unknown (a partial frame was read),
  the link proves it is in step with a *marker*: a read with function 4,
  which nothing else sends, so its reply cannot be mistaken for another. The
  stream is in order, so when the marker's reply is the first thing read
  nothing stale is left; a stale marker reply can only fail a later request
  (minimalmodbus checks the function code), never answer it. Measured: a
  served world catching up after idling stalled > 1 s under load, and the
  late reply to register 6 reached the read of registers 8-9.
* A reply must be the only thing on the line: bytes already waiting behind
  it mean it (or they) belong to an earlier request; the attempt is failed
  and the link drains.
* If the line never falls silent (``drain_limit_s``), or every attempt
  fails, the call raises :class:`~labctl.errors.CommunicationError` naming
  the instrument and what was asked; the next call drains first.

On a serial line, RTU frames are delimited by silence: minimalmodbus waits
3.5 character times (at least 1.75 ms) after the last reply before it sends,
per port. A port whose ``frames_delimited_by_silence`` is False (the in-process
simulator port: each ``write`` hands one whole frame to the handler) has no
line to keep silent, so the link skips that wait there. It was pure waiting,
~2000 sleeps per in-process anneal (a sleep of 1.75 ms takes 2-4 ms): the
paper's 300 °C anneal took 5.9 s of wall time, 0.9 s without them (measured on
the loaded 2-core machine). So does a port the station declares ``framing: packet``
(``framed_by_silence=False``): an RTU-over-TCP gateway, or ``labctl sim serve``,
whose furnace finds frames by their length, never by a gap. Every other port keeps it.

Framing, CRC and the decoding of exception replies come from minimalmodbus,
not from here. Exception replies become :class:`~labctl.errors.InstrumentError`
naming the register and the code. Every transaction holds ``lock`` (a GUI
monitor and a procedure share the instrument).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import minimalmodbus
import serial

from labctl.errors import CommunicationError, InstrumentError

log = logging.getLogger(__name__)

#: Exception codes of the Modbus specification and what they mean on a controller.
MODBUS_EXCEPTIONS: dict[int, str] = {
    1: "illegal function",
    2: "illegal data address: the controller has no such parameter",
    3: "illegal data value: refused (outside limits, read-only, or not allowed now)",
    4: "slave device failure",
    6: "slave device busy",
}
#: What a lost, silent or garbled attempt raises below the link.
ATTEMPT_ERRORS: tuple[type[BaseException], ...] = (
    minimalmodbus.MasterReportedException,
    serial.SerialException,
    OSError,
)
#: Longest a drain waits for the line to fall silent before giving up, in wall seconds.
DRAIN_LIMIT_S = 5.0
#: Read timeouts after its request beyond which a missing reply is taken as lost.
LATE_REPLY_TIMEOUTS = 5
#: How often a drain looks at the line (wall seconds).
DRAIN_POLL_S = 0.005


def frames_delimited_by_silence(port: Any) -> bool:
    """Whether frames on ``port`` are delimited by silence, as on a serial line (default)."""
    return bool(getattr(port, "frames_delimited_by_silence", True))


def exception_code(exc: Exception) -> int:
    """The Modbus exception code minimalmodbus reported (0 if it cannot be told)."""
    text = str(exc).lower()
    for code, key in (
        (1, "illegal function"),
        (2, "illegal data address"),
        (3, "illegal data value"),
        (4, "device failure"),
        (6, "busy"),
        (7, "negative acknowledge"),
    ):
        if key in text:
            return code
    return 0


def bytes_waiting(port: Any) -> int:
    """Bytes in the port's input buffer (0 if the port cannot tell)."""
    try:
        return int(port.in_waiting)
    except (AttributeError, TypeError, ValueError, OSError, serial.SerialException):
        return 0


def drain_until_quiet(
    port: Any,
    quiet_s: float,
    limit_s: float = DRAIN_LIMIT_S,
    not_before: float = 0.0,
    owed_bytes: int | None = None,
) -> tuple[int, bool]:
    """Read and drop input until the line has been silent for ``quiet_s`` (wall time)
    and either ``time.monotonic()`` has reached ``not_before`` or ``owed_bytes`` (the
    replies still due, when known) have arrived.

    Returns (bytes discarded, whether that happened within ``limit_s``).
    """
    start = last_heard = time.monotonic()
    discarded = 0
    while True:
        waiting = bytes_waiting(port)
        now = time.monotonic()
        if waiting:
            discarded += len(port.read(waiting))
            last_heard = now
        elif now - last_heard >= quiet_s and (
            now >= not_before or (owed_bytes is not None and discarded >= owed_bytes)
        ):
            return discarded, True
        if now - start >= limit_s:
            try:
                port.reset_input_buffer()
            except (OSError, serial.SerialException):
                pass
            return discarded, False
        time.sleep(min(DRAIN_POLL_S, quiet_s) if quiet_s > 0 else DRAIN_POLL_S)


class ModbusLink:
    """Modbus RTU transactions with one slave, retried and kept in step (module docstring).

    ``describe(address)`` names a register in messages (``"register 2 (target
    setpoint)"``). ``quiet_s`` is the silence a drain waits for: at least the
    port's read timeout, so that a reply still in flight has arrived.
    """

    def __init__(
        self,
        name: str,
        port: Any,
        slave_address: int,
        *,
        framed_by_silence: bool = True,
        retries: int = 2,
        quiet_s: float | None = None,
        drain_limit_s: float = DRAIN_LIMIT_S,
        lock: threading.RLock | None = None,
        describe: Callable[[int], str] | None = None,
        marker_register: int = 1,
    ) -> None:
        self.name = name
        self.port = port
        self.slave_address = slave_address
        self.retries = retries
        timeout = getattr(port, "timeout", None) or 0.0
        self.quiet_s = max(float(timeout), float(quiet_s or 0.0))
        #: A reply later than this after its request is taken as lost (wall seconds).
        self.reply_horizon_s = LATE_REPLY_TIMEOUTS * self.quiet_s
        self.drain_limit_s = max(drain_limit_s, 2 * self.reply_horizon_s)
        self._last_sent = 0.0  # time.monotonic() of the last request
        #: Bytes of replies the slave still owes (None: unknown after a partial frame).
        self._owed_bytes: int | None = 0
        self.lock = lock if lock is not None else threading.RLock()
        self.describe = describe or (lambda address: f"register {address}")
        #: Why the link is out of step (None when in step): the next call drains first.
        self.out_of_step: str | None = None
        #: Counters for logs and tests: failed attempts, drains, bytes discarded.
        self.failed_attempts = 0
        self.drains = 0
        self.markers = 0
        #: The register the marker request reads (function 4); any readable one.
        self.marker_register = marker_register
        self.discarded_bytes = 0
        try:
            self._mm = minimalmodbus.Instrument(port, slave_address)
        except (minimalmodbus.ModbusException, ValueError, TypeError) as exc:
            raise CommunicationError(name, f"cannot use {port!r} for Modbus RTU: {exc}") from exc
        self._mm.clear_buffers_before_each_transaction = True
        self._keeps_silence = framed_by_silence and frames_delimited_by_silence(port)

    def _request(self, call: Callable, *args, **kwargs):
        """One minimalmodbus request; without the inter-frame silence where there is no line."""
        if not self._keeps_silence:
            # minimalmodbus times the silence from its record of the port's last read
            # (``_latest_read_times``, by port name; pinned 2.1.*): no record, no wait
            portname = getattr(self._mm.serial, "port", None) or ""
            minimalmodbus._latest_read_times.pop(portname, None)
        return call(*args, **kwargs)

    @property
    def where(self) -> str:
        return f"slave {self.slave_address} on {getattr(self.port, 'port', self.port)}"

    # ------------------------------------------------------------ the registers
    def read_registers(self, address: int, count: int = 1) -> list[int]:
        what = f"reading {self.describe(address)}" + (f" ×{count}" if count > 1 else "")
        return self.transact(
            what, self._mm.read_registers, address, count, functioncode=3, reply_bytes=5 + 2 * count
        )

    def read_register(self, address: int) -> int:
        return self.read_registers(address, 1)[0]

    def write_register(self, address: int, word: int) -> None:
        self.transact(
            f"writing {word} to {self.describe(address)}",
            self._mm.write_register,
            address,
            word & 0xFFFF,
            0,
            functioncode=6,
            reply_bytes=8,
        )

    def write_registers(self, address: int, words: Sequence[int]) -> None:
        self.transact(
            f"writing {len(words)} words at {self.describe(address)}",
            self._mm.write_registers,
            address,
            [w & 0xFFFF for w in words],
            reply_bytes=8,
        )

    # ------------------------------------------------------------ one transaction
    def transact(self, what: str, call: Callable, *args, reply_bytes: int | None = None, **kwargs):
        """``call(*args, **kwargs)`` (a minimalmodbus request), kept in step and retried.

        ``reply_bytes``: the length of a normal reply (None if not known), so a
        drain can end as soon as every reply still owed has arrived.
        """
        with self.lock:
            failures: list[str] = []
            for attempt in range(self.retries + 1):
                if self.out_of_step is not None:
                    try:
                        quiet = self.resync()
                    except ATTEMPT_ERRORS as exc:  # the link broke while draining
                        self._failed(what, attempt, f"{type(exc).__name__}: {exc}", failures)
                        continue
                    if not quiet:
                        failures.append(f"not back in step ({self.out_of_step})")
                        continue
                self._owe(reply_bytes)
                try:
                    self._last_sent = time.monotonic()
                    reply = self._request(call, *args, **kwargs)
                except minimalmodbus.SlaveReportedException as exc:
                    self._owe(reply_bytes, -1)
                    code = exception_code(exc)
                    meaning = MODBUS_EXCEPTIONS.get(code, str(exc))
                    raise InstrumentError(
                        self.name, f"{what}: Modbus exception {code:02d} ({meaning})"
                    ) from exc
                except ATTEMPT_ERRORS as exc:
                    if not isinstance(exc, minimalmodbus.NoResponseError):
                        self._owed_bytes = None  # part of a frame was read: count unknown
                    self._failed(what, attempt, f"{type(exc).__name__}: {exc}", failures)
                    continue
                except (TypeError, ValueError) as exc:  # minimalmodbus refused our arguments
                    self._owe(reply_bytes, -1)  # nothing was sent
                    raise InstrumentError(self.name, f"{what}: {exc}") from exc
                self._owe(reply_bytes, -1)  # a whole reply was read
                extra = bytes_waiting(self.port)
                if extra:
                    self._failed(
                        what,
                        attempt,
                        f"{extra} bytes followed the reply (late replies to earlier requests)",
                        failures,
                    )
                    continue
                return reply
            raise CommunicationError(
                self.name,
                f"{what}: no valid reply after {self.retries + 1} attempts ({self.where}): "
                f"{failures[-1] if failures else 'no attempt'}",
            )

    def _owe(self, reply_bytes: int | None, replies: int = 1) -> None:
        """Count ``replies`` more (or, negative, fewer) replies of ``reply_bytes`` owed."""
        if self._owed_bytes is None or reply_bytes is None:
            self._owed_bytes = None
        else:
            self._owed_bytes = max(self._owed_bytes + replies * reply_bytes, 0)

    def _failed(self, what: str, attempt: int, why: str, failures: list[str]) -> None:
        self.failed_attempts += 1
        self.out_of_step = f"{what} failed: {why}"
        failures.append(why)
        log.warning("%s: %s failed (attempt %d): %s", self.name, what, attempt + 1, why)

    def resync(self) -> bool:
        """Bring the link back in step; True if it is (module docstring).

        Drain until the line has been silent for ``quiet_s`` and either every owed
        reply has arrived or the reply horizon has passed (wall time). If owed
        replies are still missing, or their count is unknown, a reply may yet
        come later than the horizon, so the link proves it is in step with a
        *marker* request: a read with function 4, which nothing else uses, so its
        reply (or exception reply) cannot be mistaken for any other. Replies come
        in order: once the marker's reply is the first thing read, everything
        stale has arrived before it (and was drained) or was never sent.
        """
        self.drains += 1
        owed = self._owed_bytes
        discarded, quiet = drain_until_quiet(
            self.port,
            self.quiet_s,
            self.drain_limit_s,
            not_before=self._last_sent + self.reply_horizon_s,
            owed_bytes=owed,
        )
        self.discarded_bytes += discarded
        if discarded:
            log.info("%s: discarded %d late bytes (%s)", self.name, discarded, self.out_of_step)
        if not quiet:
            self._owed_bytes = None
            return False
        # every reply owed has come (nothing stale left in flight), or prove it with a marker
        if not (owed is not None and discarded >= owed) and not self._marker_answered():
            return False
        self._owed_bytes = 0
        self.out_of_step = None
        return True

    def _marker_answered(self) -> bool:
        """Send the marker request (function 4); True if its reply is the first thing read."""
        self.markers += 1
        self._last_sent = time.monotonic()
        try:
            self._request(self._mm.read_registers, self.marker_register, 1, functioncode=4)
        except minimalmodbus.SlaveReportedException:
            pass  # an exception reply to function 4 is as unmistakable
        except ATTEMPT_ERRORS as exc:
            log.info("%s: marker request not answered in step: %s", self.name, exc)
            self._owed_bytes = None  # stale replies may still come before the marker's
            return False
        if bytes_waiting(self.port):
            self._owed_bytes = None
            return False
        return True
