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

    ``handle(data)`` takes whatever bytes arrived (any fragmentation) and
    returns the bytes the instrument sends back (possibly ``b""``). A handler
    must never raise on garbage: real instruments do not crash on bad input.

    ``kind`` says how the transport presents it: ``"visa"`` for text
    instruments (pyvisa SOCKET resources), ``"serial"`` for byte-oriented
    serial instruments (pyserial ``socket://`` URLs).
    """

    kind = "visa"

    def __init__(self, world: World, name: str = "") -> None:
        self.world = world
        self.name = name or type(self).__name__
        self.lock = threading.RLock()

    def handle(self, data: bytes) -> bytes:
        raise NotImplementedError

    def reset_input(self) -> None:
        """Forget a half-received message (connection closed or reopened)."""


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
        self._buffer = b""

    def handle(self, data: bytes) -> bytes:
        with self.lock:
            self._buffer += data
            out: list[str] = []
            while True:
                cut = [i for i in (self._buffer.find(b"\n"), self._buffer.find(b"\r")) if i >= 0]
                if not cut:
                    break
                i = min(cut)
                raw, self._buffer = self._buffer[:i], self._buffer[i + 1 :]
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
            if len(self._buffer) > self.max_line:  # runaway input without terminator
                self._buffer = b""
            return "".join(out).encode("ascii", errors="replace")

    def reset_input(self) -> None:
        with self.lock:
            self._buffer = b""

    def handle_line(self, line: str) -> str | None:
        raise NotImplementedError

    def on_internal_error(self, line: str) -> str | None:
        """Reply (or silence) after an unexpected internal error; instrument-specific."""
        return None
