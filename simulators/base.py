"""Base classes for protocol handlers (bytes in, bytes out)."""

from __future__ import annotations

import logging
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


class TextProtocolHandler(ProtocolHandler):
    """A line-oriented ASCII instrument.

    Input is split on ``\\n`` or ``\\r`` (``\\r\\n`` accepted); each complete
    line goes to :meth:`handle_line`, whose reply (``None`` for silence) is
    sent terminated by :attr:`reply_termination`.
    """

    reply_termination = "\n"
    max_line = 4096

    def __init__(self, world: World, name: str = "") -> None:
        super().__init__(world, name)
        self._buffers: dict[object, bytes] = {}

    def handle(self, data: bytes, source: object = None) -> bytes:
        with self.lock:
            buffer = self._buffers.get(source, b"") + data
            out: list[str] = []
            while True:
                cut = [i for i in (buffer.find(b"\n"), buffer.find(b"\r")) if i >= 0]
                if not cut:
                    break
                i = min(cut)
                raw, buffer = buffer[:i], buffer[i + 1 :]
                if not raw.strip():
                    continue
                line = raw.decode("ascii", errors="replace")
                try:
                    reply = self.handle_line(line)
                except Exception:  # a simulator never crashes on garbage
                    log.exception("%s: error handling %r", self.name, line)
                    reply = self.on_internal_error(line)
                if reply is not None:
                    out.append(reply + self.reply_termination)
            if len(buffer) > self.max_line:  # runaway input without terminator
                buffer = b""
            self._buffers[source] = buffer
            return "".join(out).encode("ascii", errors="replace")

    def reset_input(self, source: object = None) -> None:
        with self.lock:
            self._buffers.pop(source, None)

    def handle_line(self, line: str) -> str | None:
        raise NotImplementedError

    def on_internal_error(self, line: str) -> str | None:
        """Reply (or silence) after an unexpected internal error; instrument-specific."""
        return None
