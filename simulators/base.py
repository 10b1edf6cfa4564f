"""Base classes for protocol handlers (bytes in, bytes out)."""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labctl.simulators.world import World

log = logging.getLogger(__name__)


class ProtocolHandler:
    """A simulated instrument's wire protocol.

    ``handle(data, source)`` takes whatever bytes arrived (any fragmentation)
    from one client ``source`` and returns the bytes the instrument sends back
    (possibly ``b""``). Half-received messages are kept per source, so two TCP
    clients of one served instrument never splice their commands together;
    ``reset_input(source)`` forgets a source's half message. A handler must
    never raise on garbage: real instruments do not crash on bad input.

    ``kind`` says how the transport presents it: ``"visa"`` for text
    instruments (pyvisa SOCKET resources), ``"serial"`` for byte-oriented
    serial instruments (pyserial ``socket://`` URLs).
    """

    kind = "visa"

    def __init__(self, world: World, name: str = "") -> None:
        self.world = world
        self.name = name or type(self).__name__
        self.lock = threading.RLock()
        faults = getattr(world, "faults", None)
        if faults is not None:
            faults.register(self)

    def respond(self, data: bytes, source: object = None) -> bytes:
        """What goes back on the wire: :meth:`handle` under any injected fault.

        Transports call this, never :meth:`handle` directly (see
        :mod:`labctl.simulators.faults`).
        """
        faults = getattr(self.world, "faults", None)
        if faults is None:
            return self.handle(data, source)
        return faults.respond(self, data, source)

    def handle(self, data: bytes, source: object = None) -> bytes:
        raise NotImplementedError

    def reset_input(self, source: object = None) -> None:
        """Forget ``source``'s half-received message (its connection closed)."""


class _LineInput:
    """One client's half-received command line (see :class:`TextProtocolHandler`)."""

    __slots__ = ("data", "discarding")

    def __init__(self) -> None:
        self.data = bytearray()
        self.discarding = False  # overflowed: drop everything up to the next terminator


_TERMINATOR = re.compile(rb"[\r\n]")


class TextProtocolHandler(ProtocolHandler):
    """A line-oriented ASCII instrument with the real unit's input buffer.

    Input is split on ``\\n`` or ``\\r`` (``\\r\\n`` accepted); each complete
    line goes to :meth:`handle_line`, whose reply (``None`` for silence) is
    sent terminated by :attr:`reply_termination`.

    A command line longer than :attr:`input_buffer_size` bytes (terminator not
    counted) overflows the instrument's input buffer: the whole line, up to and
    including its terminator, is discarded, so no command from it is executed
    (not even one after the next ``;``), and :meth:`on_input_overflow` reports it
    the instrument's way, once per line. Work is linear in the bytes received
    and the memory per client bounded by the buffer size.
    """

    reply_termination = "\n"
    #: Bytes of one command line the instrument can hold; each model sets its own.
    input_buffer_size = 256

    def __init__(self, world: World, name: str = "") -> None:
        super().__init__(world, name)
        self._inputs: dict[object, _LineInput] = {}

    @property
    def held_input_bytes(self) -> int:
        """Bytes of half-received command lines held for all clients: at most
        :attr:`input_buffer_size` per client, however much garbage arrived."""
        with self.lock:
            return sum(len(state.data) for state in self._inputs.values())

    def handle(self, data: bytes, source: object = None) -> bytes:
        with self.lock:
            state = self._inputs.get(source)
            if state is None:
                state = self._inputs[source] = _LineInput()
            out: list[str] = []
            start = 0
            for m in _TERMINATOR.finditer(data):
                piece = data[start : m.start()]
                start = m.end()
                if state.discarding:  # the end of an overflowed line
                    state.discarding = False
                    continue
                if len(state.data) + len(piece) > self.input_buffer_size:
                    state.data.clear()
                    self._overflow(out)
                    continue
                raw = bytes(state.data) + piece
                state.data.clear()
                if raw.strip():
                    self._run_line(raw, out)
            tail = data[start:]
            if tail and not state.discarding:
                if len(state.data) + len(tail) > self.input_buffer_size:
                    state.data.clear()
                    state.discarding = True
                    self._overflow(out)
                else:
                    state.data += tail
            return "".join(out).encode("ascii", errors="replace")

    def _run_line(self, raw: bytes, out: list[str]) -> None:
        line = raw.decode("ascii", errors="replace")
        try:
            reply = self.handle_line(line)
        except Exception:  # a simulator never crashes on garbage
            log.exception("%s: error handling %r", self.name, line[:80])
            reply = self.on_internal_error(line)
        if reply is not None:
            out.append(reply + self.reply_termination)

    def _overflow(self, out: list[str]) -> None:
        try:
            reply = self.on_input_overflow()
        except Exception:
            log.exception("%s: error reporting an input overflow", self.name)
            return
        if reply is not None:
            out.append(reply + self.reply_termination)

    def reset_input(self, source: object = None) -> None:
        with self.lock:
            self._inputs.pop(source, None)

    def handle_line(self, line: str) -> str | None:
        raise NotImplementedError

    def on_internal_error(self, line: str) -> str | None:
        """Reply (or silence) after an unexpected internal error; instrument-specific."""
        return None

    def on_input_overflow(self) -> str | None:
        """Report an input-buffer overflow as the instrument does (status bit, error
        queue); the reply, if any, is sent. Instrument-specific; silent by default."""
        return None
