"""Opening a real (or served) instrument's link: VISA session options and serial ports.

Core transport helpers used by the drivers and the station. What carries bytes to
an in-process or served *simulator* (``SimAdapter``, ``SimSerial``, ``SimServer``)
lives beside the simulators, in :mod:`labctl.simulators.transport`: the core
does not import the simulators.
"""

from __future__ import annotations


def visa_options(address: str) -> dict:
    """VISA session options for an address: SOCKET resources need explicit terminations."""
    if address.upper().endswith("::SOCKET"):
        return {"read_termination": "\n", "write_termination": "\n", "timeout": 2000}
    return {}


def open_serial(
    address: str,
    baudrate: int = 19200,
    timeout: float = 0.2,
    *,
    parity: str = "none",
    stopbits: int = 1,
    bytesize: int = 8,
):
    """A pyserial port for a device path or URL (``socket://…``, ``loop://``).

    ``parity`` is ``"none"``, ``"even"`` or ``"odd"``; a URL ignores the line settings.
    """
    import serial

    parities = {"none": serial.PARITY_NONE, "even": serial.PARITY_EVEN, "odd": serial.PARITY_ODD}
    return serial.serial_for_url(
        address,
        baudrate=baudrate,
        timeout=timeout,
        parity=parities[parity],
        stopbits=stopbits,
        bytesize=bytesize,
    )
