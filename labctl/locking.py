"""Serialized instrument I/O with errors that name the instrument.

A GUI monitor and a running procedure share instruments, and pymeasure has no
locking: a query is a write followed by a read, and two threads interleaving
them get each other's replies. :class:`SerializedIO` gives a pymeasure
instrument an ``RLock`` held across every write, read and query, usable as
``with instrument.lock:`` for multi-command sequences, and turns link failures
(VISA timeouts, closed sockets) into :class:`~labctl.errors.CommunicationError`
saying which instrument and which command.
"""

from __future__ import annotations

import threading

import pyvisa

from labctl.errors import CommunicationError

#: What a broken or silent link raises below pymeasure.
LINK_ERRORS: tuple[type[BaseException], ...] = (pyvisa.errors.Error, OSError, EOFError)

_LOCKED_ONLY = (
    "write_bytes",
    "write_binary_values",
    "read_bytes",
    "read_binary_values",
    "values",
    "binary_values",
)


class GarbledReply(CommunicationError):
    """A reply arrived but is not text (line noise); ``message`` without the name."""

    def __init__(self, instrument: str, message: str):
        self.message = message
        super().__init__(instrument, message)


class SerializedIO:
    """Mixin for pymeasure instruments: put it first in the bases."""

    def __init__(self, *args, **kwargs) -> None:
        self.lock = threading.RLock()
        super().__init__(*args, **kwargs)

    def write(self, command: str, **kwargs) -> None:
        with self.lock:
            try:
                super().write(command, **kwargs)  # type: ignore[misc]
            except LINK_ERRORS as exc:
                raise CommunicationError(self.name, f"cannot send {command!r}: {exc}") from exc

    def read(self, **kwargs) -> str:
        with self.lock:
            try:
                return super().read(**kwargs)  # type: ignore[misc]
            except LINK_ERRORS as exc:
                raise CommunicationError(
                    self.name, f"no reply (timeout or lost link): {exc}"
                ) from exc
            except UnicodeDecodeError as exc:  # line noise: bytes that are not text
                raise GarbledReply(self.name, f"garbled reply {exc.object[:40]!r}") from exc

    def ask(self, command: str, query_delay: float | None = None) -> str:
        with self.lock:
            try:
                return super().ask(command, query_delay)  # type: ignore[misc]
            except GarbledReply as exc:
                raise GarbledReply(self.name, f"{exc.message} to {command!r}") from exc
            except CommunicationError as exc:
                raise CommunicationError(
                    self.name, f"no reply to {command!r}{self.explain_silence()}"
                ) from exc

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


class ClosesOnShutdown:
    """Mixin: ``shutdown()`` closes the link, then runs the instrument's own shutdown."""

    def shutdown(self) -> None:
        try:
            self.adapter.close()  # type: ignore[attr-defined]
        finally:
            super().shutdown()  # type: ignore[misc]
