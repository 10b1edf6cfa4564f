"""Serialized instrument I/O that never hands back another query's reply.

A GUI monitor and a running procedure share instruments, and pymeasure has no
locking: a query is a write followed by a read, and two threads interleaving
them get each other's replies. :class:`SerializedIO` gives a pymeasure
instrument an ``RLock`` held across every write, read and query, usable as
``with instrument.lock:`` for multi-command sequences, and turns link failures
(VISA timeouts, closed sockets) into :class:`~labctl.errors.CommunicationError`
saying which instrument and which command.

It also keeps the reply stream in step with the queries. A text instrument
that answers late (busy, a link hiccup) leaves its reply in the input buffer
after the read timed out; read naively, every later query would return the
reply to the one before. So after a timeout or a garbled reply the link is
*out of step*, and before anything else is sent :meth:`SerializedIO.resync`
discards what arrives until the line is silent, asks the identification query
(``*IDN?``; ``VE?`` on the ESP301), skips stale replies up to the one that
matches the instrument's identity, and checks that nothing follows it. The
reply stream is in order, so everything stale comes before that reply. If the
instrument does not answer, the call raises a CommunicationError and the next
call tries again. Drivers add :meth:`SerializedIO.reply_problem` checks
(field count, numbers where numbers are due, ranges) so a reply that cannot
belong to its query is refused, not returned.
"""

from __future__ import annotations

import logging
import re
import threading
import time

import pyvisa
from pyvisa import constants

from labctl.errors import CommunicationError, InstrumentError

log = logging.getLogger(__name__)

#: What a broken or silent link raises below pymeasure.
LINK_ERRORS: tuple[type[BaseException], ...] = (pyvisa.errors.Error, OSError, EOFError)

#: Longest a discard of late input runs before giving up on silence (s).
DISCARD_LIMIT_S = 2.0
#: Stale replies skipped while waiting for the identification reply.
MAX_STALE_REPLIES = 32

_LOCKED_ONLY = (
    "write_bytes",
    "write_binary_values",
    "read_bytes",
    "read_binary_values",
    "values",
    "binary_values",
)


def discard_input(adapter, quiet_s: float) -> bytes | None:
    """Read and drop input until the link has been silent for ``quiet_s``.

    Returns what was dropped, or ``None`` when the adapter can only flush
    (then nobody knows whether something was there).
    """
    own = getattr(adapter, "discard_input", None)  # labctl's SimAdapter
    if callable(own):
        return own(quiet_s)
    connection = getattr(adapter, "connection", None)
    if isinstance(connection, pyvisa.resources.MessageBasedResource):
        return _discard_visa(connection, quiet_s)
    try:
        adapter.flush_read_buffer()
    except (NotImplementedError, AttributeError):
        pass
    return None


def _discard_visa(connection, quiet_s: float) -> bytes:
    saved = connection.timeout
    dropped = bytearray()
    deadline = time.monotonic() + DISCARD_LIMIT_S
    try:
        connection.timeout = max(1, round(quiet_s * 1000))
        while time.monotonic() < deadline:
            try:
                dropped += connection.read_raw()
            except pyvisa.errors.VisaIOError as exc:
                if exc.error_code == constants.StatusCode.error_timeout:
                    break
                raise
    finally:
        connection.timeout = saved
    return bytes(dropped)


def describe_address(adapter) -> str:
    """The address an adapter talks to, for error messages."""
    connection = getattr(adapter, "connection", None)
    name = getattr(connection, "resource_name", None)
    return str(name) if name else repr(adapter)


class GarbledReply(CommunicationError):
    """A reply arrived but is not text (line noise); ``message`` without the name."""

    def __init__(self, instrument: str, message: str):
        self.message = message
        super().__init__(instrument, message)


class SerializedIO:
    """Mixin for pymeasure instruments: put it first in the bases.

    Class attributes a driver sets: ``identity_query`` (``None``: resync only
    discards input until silence), ``identity_pattern`` (regex a reply of this
    model matches) and ``model_description`` (for messages).
    """

    identity_query: str | None = "*IDN?"
    identity_pattern: str = r"\S"
    model_description: str = "the expected instrument"
    #: Silence that ends a discard of late input (s).
    resync_quiet_s: float = 0.1
    #: Identification rounds before giving up (another is needed only when a
    #: stale reply looked like the identification).
    resync_attempts: int = 3

    def __init__(self, *args, **kwargs) -> None:
        self.lock = threading.RLock()
        self._out_of_step: str | None = None
        super().__init__(*args, **kwargs)

    # --- the stream of replies ---------------------------------------------------
    @property
    def out_of_step(self) -> str | None:
        """Why the reply stream may be shifted (None when it is in step)."""
        return self._out_of_step

    def lose_step(self, why: str) -> None:
        """Mark the reply stream as not trusted until :meth:`resync` succeeds."""
        if self._out_of_step is None:
            log.warning(
                "%s: reply stream out of step (%s); resyncing before the next command",
                self.name,
                why,
            )
            self._out_of_step = why

    def garbled(self, command: str, reply: object, why: str = "") -> CommunicationError:
        """The error for a reply that cannot be the answer to ``command`` (marks out of step)."""
        self.lose_step(f"garbled reply to {command!r}")
        detail = f" ({why})" if why else ""
        return CommunicationError(self.name, f"garbled reply {reply!r} to {command!r}{detail}")

    def is_identity(self, reply: str) -> bool:
        return re.search(self.identity_pattern, reply.strip()) is not None

    def resync(self) -> None:
        """Get the reply stream back in step (see module doc), or raise CommunicationError."""
        with self.lock:
            why = self._out_of_step or "request"
            if self.identity_query is None:
                discard_input(self.adapter, self.resync_quiet_s)
                self._out_of_step = None
                return
            raw_write = super().write  # type: ignore[misc]
            raw_read = self._raw_text_read
            for _ in range(self.resync_attempts):
                discard_input(self.adapter, self.resync_quiet_s)
                try:
                    raw_write(self.identity_query)
                    for _ in range(MAX_STALE_REPLIES):
                        if self.is_identity(raw_read()):
                            break
                    else:
                        continue
                except LINK_ERRORS as exc:
                    raise CommunicationError(
                        self.name,
                        f"reply stream out of step after {why}, and {self.identity_query!r} "
                        f"got no reply ({exc}); the next call tries again",
                    ) from exc
                if not discard_input(self.adapter, self.resync_quiet_s):
                    log.info("%s: back in step after %s", self.name, why)
                    self._out_of_step = None
                    return
            raise CommunicationError(
                self.name,
                f"reply stream out of step after {why}: still getting unexpected replies "
                f"after {self.resync_attempts} rounds of {self.identity_query!r}",
            )

    def _raw_text_read(self) -> str:
        """A raw read (no resync of its own) whose garbled bytes are decoded with replacement:
        line noise meeting the resync is just another unexpected reply, not a UnicodeDecodeError."""
        try:
            return super().read()  # type: ignore[misc]
        except UnicodeDecodeError as exc:
            return bytes(exc.object).decode("ascii", errors="replace")

    # --- identity ------------------------------------------------------------------
    def confirm_identity(self) -> str:
        """Ask the identification query; raise unless this model answers. Returns the reply.

        :class:`InstrumentError` when another instrument answers (naming it),
        :class:`CommunicationError` when nothing answers.
        """
        query = self.identity_query or "*IDN?"
        where = describe_address(self.adapter)
        with self.lock:
            try:
                reply = self.ask(query).strip()
            except CommunicationError:
                reply = None
            if reply is not None and self.is_identity(reply):
                return reply
            answered = (
                f"no reply to {query!r}" if reply is None else f"{query!r} answered {reply!r}"
            )
            others = self._what_answers(exclude=query)
            text = f"expected {self.model_description} at {where}, but {answered}"
            if others:
                text += "; " + others
            if reply is None and not others:
                raise CommunicationError(self.name, text)
            raise InstrumentError(self.name, text)

    def _what_answers(self, exclude: str) -> str:
        """Who is on the line: the other usual identification queries, tried raw."""
        raw_write, raw_read = super().write, self._raw_text_read  # type: ignore[misc]
        found = []
        for query in ("*IDN?", "VE?"):
            if query == exclude:
                continue
            discard_input(self.adapter, self.resync_quiet_s)
            try:
                raw_write(query)
                found.append(f"{query!r} answered {raw_read().strip()!r}")
            except LINK_ERRORS:
                continue
        self.lose_step("identification by other queries")
        return "; ".join(found)

    # --- serialized I/O ------------------------------------------------------------------
    def write(self, command: str, **kwargs) -> None:
        with self.lock:
            if self._out_of_step is not None:
                self.resync()
            try:
                super().write(command, **kwargs)  # type: ignore[misc]
            except LINK_ERRORS as exc:
                self.lose_step(f"failing to send {command!r}")
                raise CommunicationError(self.name, f"cannot send {command!r}: {exc}") from exc

    def read(self, **kwargs) -> str:
        with self.lock:
            try:
                return super().read(**kwargs)  # type: ignore[misc]
            except UnicodeDecodeError as exc:  # line noise: bytes that are not text
                self.lose_step("a reply that is not text")
                raise GarbledReply(self.name, f"garbled reply {exc.object[:40]!r}") from exc
            except LINK_ERRORS as exc:
                self.lose_step("a reply that did not come in time")
                raise CommunicationError(
                    self.name, f"no reply (timeout or lost link): {exc}"
                ) from exc

    def ask(self, command: str, query_delay: float | None = None) -> str:
        with self.lock:
            self.write(command)
            self.wait_for(query_delay)
            try:
                reply = self.read()
            except GarbledReply as exc:
                raise GarbledReply(self.name, f"{exc.message} to {command!r}") from exc
            except CommunicationError as exc:
                raise CommunicationError(
                    self.name, f"no reply to {command!r}{self.explain_silence()}"
                ) from exc
            problem = self.reply_problem(command, reply)
            if problem:
                raise self.garbled(command, reply, problem)
            return reply

    def reply_problem(self, command: str, reply: str) -> str | None:
        """Why ``reply`` cannot be the answer to ``command`` (None if it can); drivers override."""
        return None

    def wait_for(self, query_delay: float | None = None) -> None:
        """The write→read delay of a query, on the instrument's clock when it has one."""
        delay = query_delay if query_delay is not None else getattr(self, "query_delay", 0)
        clock = getattr(self, "clock", None)
        if delay and clock is not None:
            clock.sleep(delay)
        elif delay:
            super().wait_for(delay)  # type: ignore[misc]

    def explain_silence(self) -> str:
        """Why a query went unanswered, from the instrument's error report if it has one."""
        return " (timeout, lost link or refused command)"


def _locked(name: str):
    def method(self, *args, **kwargs):
        with self.lock:
            return getattr(super(SerializedIO, self), name)(*args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"``{name}`` under the instrument's lock."
    return method


for _name in _LOCKED_ONLY:
    setattr(SerializedIO, _name, _locked(_name))


def numbers(reply: str, count: int | None = 1) -> list[float] | None:
    """The comma-separated finite numbers of a reply, or None if it is not that (or not ``count``)."""
    fields = [f.strip() for f in reply.strip().split(",")]
    if fields and fields[-1] == "" and count is None:
        fields = fields[:-1]  # buffer transfers end with a comma
    try:
        values = [float(f) for f in fields]
    except ValueError:
        return None
    if any(v != v or v in (float("inf"), float("-inf")) for v in values):
        return None
    if count is not None and len(values) != count:
        return None
    return values


class ClosesOnShutdown:
    """Mixin: ``shutdown()`` closes the link, then runs the instrument's own shutdown."""

    def shutdown(self) -> None:
        try:
            self.adapter.close()  # type: ignore[attr-defined]
        finally:
            super().shutdown()  # type: ignore[misc]
