"""Which driver and which simulator serve each instrument model.

Station files name a ``driver`` (an instrument model); this table maps it to
the driver factory and to the protocol handler that simulates it. Entries are
``"module:attribute"`` strings, imported only when used.

A driver factory has the signature::

    open_instrument(connection, *, name: str, clock: Clock, **options) -> driver

where ``connection`` is either an address string (VISA resource, pyserial URL
or device path, spectrometer serial number) or an in-process transport object
(:class:`~labctl.simulators.transport.SimAdapter` for ``visa`` simulators,
:class:`~labctl.simulators.transport.SimSerial` for ``serial`` ones, or what the
simulator's ``connect()`` returns for other kinds).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from labctl.errors import StationError


@dataclass(frozen=True)
class Model:
    driver: str
    simulator: str | None
    description: str


MODELS: dict[str, Model] = {
    "eurotherm2408": Model(
        "labctl.drivers.eurotherm:open_instrument",
        "labctl.simulators.eurotherm:Eurotherm2408Simulator",
        "Eurotherm 2408/2416 furnace controller, Modbus RTU",
    ),
    "sr830": Model(
        "labctl.drivers.sr830:open_instrument",
        "labctl.simulators.sr830:SR830Simulator",
        "Stanford Research SR830 lock-in amplifier",
    ),
    "esp301": Model(
        "labctl.drivers.esp301:open_instrument",
        "labctl.simulators.esp301:ESP301Simulator",
        "Newport ESP301 3-axis motion controller (delay stages, sample translation)",
    ),
    "pm100": Model(
        "labctl.drivers.pm100:open_instrument",
        "labctl.simulators.pm100:PM100Simulator",
        "Thorlabs PM100 power meter (SCPI)",
    ),
    "ocean_spectrometer": Model(
        "labctl.drivers.spectrometer:open_instrument",
        "labctl.simulators.spectrometer:SpectrometerSimulator",
        "Ocean Insight spectrometer via python-seabreeze",
    ),
}


def load(ref: str):
    """Import ``"module:attribute"``."""
    module, _, attr = ref.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise StationError(f"cannot load {ref!r}: {exc}") from exc


def model(name: str) -> Model:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise StationError(f"unknown instrument model {name!r} (known: {known})") from None
