"""Serialized instrument I/O.

A GUI monitor and a running procedure share instruments, and pymeasure has no
locking: a query is a write followed by a read, and two threads interleaving
them get each other's replies. :class:`SerializedIO` gives a pymeasure
instrument an ``RLock`` held across every write, read and query, and usable
as ``with instrument.lock:`` for multi-command sequences.
"""

from __future__ import annotations

import threading

_IO_METHODS = (
    "write",
    "write_bytes",
    "write_binary_values",
    "read",
    "read_bytes",
    "read_binary_values",
    "ask",
    "values",
    "binary_values",
)


class SerializedIO:
    """Mixin for pymeasure instruments: put it first in the bases."""

    def __init__(self, *args, **kwargs) -> None:
        self.lock = threading.RLock()
        super().__init__(*args, **kwargs)


def _locked(name: str):
    def method(self, *args, **kwargs):
        with self.lock:
            return getattr(super(SerializedIO, self), name)(*args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"``{name}`` under the instrument's lock."
    return method


for _name in _IO_METHODS:
    setattr(SerializedIO, _name, _locked(_name))
