"""Ocean Insight spectrometers (Flame-S, USB2000+, …) through python-seabreeze.

The driver works on a ``seabreeze.spectrometers.Spectrometer``: for hardware
it opens one by serial number (``address``: the serial, or ``"first"``) with
whichever seabreeze backend the process uses (``backend`` option to choose);
for the in-process simulator the station hands it a ``Spectrometer`` already
opened on the simulated USB device; ``socket://HOST:PORT`` (or
``TCPIP0::HOST::PORT::SOCKET``) reaches a simulator served by
``labctl sim serve`` over labctl's USB-over-TCP tunnel
(:mod:`labctl.usb_tunnel`), still through pyseabreeze's protocol code.

A failed exchange never leaves a stale reply behind: the tunnel reopens its
connection after a timeout or a reply that does not fit its request, data that
pyseabreeze cannot parse becomes a :class:`CommunicationError`, and the first
scan after such an error is discarded (it may have started before the error).

Corrections are seabreeze's, applied per scan to the raw counts so saturation
can be judged on the raw ADC values: electric-dark correction subtracts the
mean of the masked pixels, nonlinearity correction divides the dark-corrected
counts by the EEPROM polynomial (``Spectrometer.intensities`` does the same).
"""

from __future__ import annotations

import re
import struct
import threading
from typing import Any

import numpy as np

from labctl.clock import Clock
from labctl.errors import CommunicationError, InstrumentError

# Datasheet integration-time ranges (s). seabreeze's own limits can be wider than
# what the firmware accepts (a Flame-S leaves the time unchanged above 65.535 s).
DATASHEET_INTEGRATION_LIMITS_S: dict[str, tuple[float, float]] = {
    "FLAMES": (1e-3, 65.535),
    "USB2000PLUS": (1e-3, 65.535),
}

_TUNNEL_ADDRESS = re.compile(
    r"^(?:socket://(?P<h1>[^:/]+):(?P<p1>\d+)/?|TCPIP\d*::(?P<h2>[^:]+)::(?P<p2>\d+)::SOCKET)$",
    re.IGNORECASE,
)


def _comm_errors() -> tuple[type[BaseException], ...]:
    import usb.core

    return (usb.core.USBError, OSError, RuntimeError, ReferenceError)


#: What pyseabreeze raises on data that is not what it asked for (garbled or stray).
_GARBLED_DATA = (struct.error, ValueError, IndexError)


class OceanSpectrometer:
    """A seabreeze spectrometer with validated settings, averaging and run-header settings."""

    def __init__(
        self,
        spectrometer: Any,
        *,
        name: str = "spectrometer",
        clock: Clock | None = None,
        integration_time_s: float = 0.1,
        discard_after_change: bool = True,
        lamp_shutter: bool = False,
        closer: Any = None,
        model: str | None = None,
    ) -> None:
        from seabreeze.spectrometers import SeaBreezeError

        self.name = name
        self.clock = clock
        self.lock = threading.RLock()
        self.discard_after_change = discard_after_change
        self._spec = spectrometer
        self._closer = closer
        self._sb_error = SeaBreezeError
        self._integration_time_s: float | None = None
        self._last: tuple[np.ndarray, np.ndarray, float] | None = None  # result, mask, ceiling
        self._discard_next = False  # after a communication error: the next scan may be stale
        self.averages = 1
        with self._transaction("read identity and calibration"):
            self.model: str = str(spectrometer.model)
            self.serial_number: str = str(spectrometer.serial_number)
            if model is not None and self.model.upper() != str(model).upper():
                raise InstrumentError(
                    name,
                    f"expected an Ocean {model} spectrometer, but the device answers as "
                    f"{self.model} (serial {self.serial_number})",
                )
            self.pixels: int = int(spectrometer.pixels)
            self.max_intensity: float = float(spectrometer.max_intensity)
            self._wavelengths = np.asarray(spectrometer.wavelengths(), dtype=float).copy()
            lo_us, hi_us = spectrometer.integration_time_micros_limits
            feats = spectrometer.f
            self._dark_pixels = list(feats.spectrometer.get_electric_dark_pixel_indices())
            nl = feats.nonlinearity_coefficients
            coeffs = nl.get_nonlinearity_coefficients() if nl is not None else []
        # seabreeze accepts lo <= t < hi; the datasheet range can be narrower
        lo_s, hi_s = lo_us * 1e-6, (hi_us - 1) * 1e-6
        sheet = DATASHEET_INTEGRATION_LIMITS_S.get(self.model.upper())
        if sheet is not None:
            lo_s, hi_s = max(lo_s, sheet[0]), min(hi_s, sheet[1])
        self.integration_limits_s: tuple[float, float] = (lo_s, hi_s)
        self._nonlinearity = np.poly1d(coeffs[::-1]) if len(coeffs) > 1 else None
        self.integration_time_s = integration_time_s
        #: The light source's shutter follows the Lamp Enable line (J2 pin 4).
        self.lamp_shutter = bool(lamp_shutter)
        self._shutter_open: bool | None = None
        if self.lamp_shutter:
            self.shutter_open = True

    # --- plumbing -------------------------------------------------------------
    def _transaction(self, what: str):
        driver = self

        class _Guard:
            def __enter__(self):
                driver.lock.acquire()

            def __exit__(self, exc_type, exc, tb):
                driver.lock.release()
                if exc is None or (
                    isinstance(exc, InstrumentError) and not isinstance(exc, CommunicationError)
                ):
                    return False
                if isinstance(exc, driver._sb_error):
                    raise InstrumentError(driver.name, f"{what}: {exc}") from exc
                driver._discard_next = True
                if isinstance(exc, CommunicationError):
                    return False
                if isinstance(exc, _comm_errors()):
                    raise CommunicationError(driver.name, f"{what}: {exc}") from exc
                if isinstance(exc, _GARBLED_DATA):
                    raise CommunicationError(
                        driver.name, f"{what}: garbled data from the spectrometer ({exc!r})"
                    ) from exc
                return False

        return _Guard()

    # --- settings ---------------------------------------------------------------
    def wavelengths_nm(self) -> np.ndarray:
        """Pixel wavelengths (nm) from the device's calibration."""
        return self._wavelengths.copy()

    @property
    def integration_time_s(self) -> float:
        assert self._integration_time_s is not None
        return self._integration_time_s

    @integration_time_s.setter
    def integration_time_s(self, seconds: float) -> None:
        lo, hi = self.integration_limits_s
        try:
            seconds = float(seconds)
        except (TypeError, ValueError):
            raise InstrumentError(
                self.name, f"integration time must be a number of seconds, got {seconds!r}"
            ) from None
        if not lo <= seconds <= hi:
            raise InstrumentError(
                self.name,
                f"integration time {seconds:g} s is outside the {self.model} limits {lo:g}–{hi:g} s",
            )
        with self._transaction(f"set integration time {seconds:g} s"):
            self._spec.integration_time_micros(int(round(seconds * 1e6)))
            changed = self._integration_time_s is not None and self._integration_time_s != seconds
            self._integration_time_s = seconds
            if changed and self.discard_after_change:
                # a free-running OOI device finishes the scan in progress with the old time
                self._spec.intensities()

    # --- acquisition ------------------------------------------------------------
    def _correct(self, raw: np.ndarray, dark: bool, nonlinearity: bool) -> tuple[np.ndarray, float]:
        offset = float(np.mean(raw[self._dark_pixels])) if self._dark_pixels else 0.0
        out = raw - offset if (dark or nonlinearity) else raw.copy()
        ceiling = self.max_intensity - (offset if (dark or nonlinearity) else 0.0)
        if nonlinearity:
            out = out / np.polyval(self._nonlinearity, out)
            ceiling = ceiling / float(np.polyval(self._nonlinearity, ceiling))
            if not dark:
                out += offset
                ceiling += offset
        return out, ceiling

    def acquire(
        self,
        integration_time_s: float | None = None,
        averages: int = 1,
        correct_dark: bool = True,
        correct_nonlinearity: bool = False,
    ) -> np.ndarray:
        """Mean counts per pixel over ``averages`` scans (each takes the integration time).

        ``correct_dark`` subtracts the electric-dark pixels' mean;
        ``correct_nonlinearity`` applies the EEPROM polynomial.
        """
        if (
            isinstance(averages, bool)
            or not isinstance(averages, (int, np.integer))
            or averages < 1
        ):
            raise InstrumentError(
                self.name, f"averages must be a positive integer, got {averages!r}"
            )
        if correct_dark and not self._dark_pixels:
            raise InstrumentError(
                self.name, f"{self.model} has no electric-dark pixels to correct with"
            )
        if correct_nonlinearity and self._nonlinearity is None:
            raise InstrumentError(self.name, f"{self.model} has no nonlinearity calibration")
        with self.lock:
            if integration_time_s is not None and integration_time_s != self._integration_time_s:
                self.integration_time_s = integration_time_s
            total = np.zeros(self.pixels)
            mask = np.zeros(self.pixels, dtype=bool)
            ceilings = []
            with self._transaction(f"acquire {averages} × {self.integration_time_s:g} s"):
                if self._discard_next:  # begun before the last error, perhaps: not this request's
                    self._spec.intensities()
                    self._discard_next = False
                for _ in range(int(averages)):
                    raw = np.asarray(self._spec.intensities(), dtype=float)
                    mask |= raw >= self.max_intensity
                    corrected, ceiling = self._correct(raw, correct_dark, correct_nonlinearity)
                    total += corrected
                    ceilings.append(ceiling)
            result = total / averages
            self.averages = int(averages)
            self._last = (result, mask, float(np.min(ceilings)))
            return result

    @property
    def shutter_open(self) -> bool | None:
        """Light-source shutter state (None when no shutter is wired to Lamp Enable)."""
        return self._shutter_open

    @shutter_open.setter
    def shutter_open(self, is_open: bool) -> None:
        if not self.lamp_shutter:
            raise InstrumentError(
                self.name, "no light-source shutter is wired to Lamp Enable (option lamp_shutter)"
            )
        with self._transaction(f"{'open' if is_open else 'close'} the lamp shutter"):
            self._spec.f.continuous_strobe.set_enable(bool(is_open))
            self._shutter_open = bool(is_open)
            if self.discard_after_change:  # the scan in progress saw the old light
                self._spec.intensities()

    def acquire_dark(self, integration_time_s: float | None = None, averages: int = 1, **kw):
        """A dark spectrum: shutter closed for the acquisition, reopened afterwards."""
        with self.lock:
            self.shutter_open = False
            try:
                return self.acquire(integration_time_s, averages, **kw)
            finally:
                self.shutter_open = True

    def saturated(self, counts: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask of saturated pixels.

        For the array the last :meth:`acquire` returned (or ``None``): pixels
        that hit the ADC ceiling in any of its scans. For other arrays: pixels
        at the ceiling as corrected like the last acquisition (raw ceiling
        ``max_intensity`` if there was none).
        """
        if self._last is not None:
            result, mask, ceiling = self._last
            if counts is None or counts is result:
                return mask.copy()
        else:
            if counts is None:
                return np.zeros(self.pixels, dtype=bool)
            ceiling = self.max_intensity
        return np.asarray(counts) >= ceiling - 0.5

    def settings(self) -> dict:
        """Instrument settings for run-file headers."""
        wl = self._wavelengths
        return {
            "instrument": "Ocean Insight spectrometer (python-seabreeze)",
            "model": self.model,
            "serial_number": self.serial_number,
            "integration_time_s": self.integration_time_s,
            "averages": self.averages,
            "pixels": self.pixels,
            "wavelength_min_nm": float(wl.min()),
            "wavelength_max_nm": float(wl.max()),
            "max_intensity_counts": self.max_intensity,
            "integration_limits_s": list(self.integration_limits_s),
            "electric_dark_pixels": len(self._dark_pixels),
            "nonlinearity_calibrated": self._nonlinearity is not None,
            "lamp_shutter": self.lamp_shutter,
        }

    def close(self) -> None:
        with self.lock:
            try:
                self._spec.close()
            except Exception:  # already closed or device gone: nothing left to release
                pass
            if self._closer is not None:
                self._closer.close()
                self._closer = None

    def __repr__(self) -> str:
        return f"<OceanSpectrometer {self.name} {self.model} {self.serial_number}>"


def _open_address(address: str, name: str, backend: str | None, tunnel_timeout_s: float):
    """A ``Spectrometer`` (and what to close with it) for an address string."""
    from seabreeze.spectrometers import SeaBreezeError

    match = _TUNNEL_ADDRESS.match(address.strip())
    if match:
        from labctl.usb_tunnel import RemoteUSBDevice
        from labctl.virtual_usb import open_spectrometer

        host = match.group("h1") or match.group("h2")
        port = int(match.group("p1") or match.group("p2"))
        try:
            remote = RemoteUSBDevice(host, port, timeout_s=tunnel_timeout_s)
        except Exception as exc:
            raise CommunicationError(
                name, f"cannot reach served spectrometer at {address}: {exc}"
            ) from exc
        try:
            return open_spectrometer(remote.pyusb_device()), remote
        except Exception as exc:
            remote.close()
            raise CommunicationError(name, f"cannot open spectrometer at {address}: {exc}") from exc
    import seabreeze

    if backend is not None:
        seabreeze.use(backend)
    from seabreeze.spectrometers import Spectrometer

    try:
        if address.strip().lower() in ("", "first"):
            return Spectrometer.from_first_available(), None
        return Spectrometer.from_serial_number(address.strip()), None
    except SeaBreezeError as exc:
        raise InstrumentError(name, f"cannot open spectrometer {address!r}: {exc}") from exc
    except _comm_errors() as exc:
        raise CommunicationError(name, f"cannot open spectrometer {address!r}: {exc}") from exc


def open_instrument(
    connection: Any,
    *,
    name: str,
    clock: Clock,
    backend: str | None = None,
    tunnel_timeout_s: float = 5.0,
    **options: Any,
) -> OceanSpectrometer:
    """Station factory: ``connection`` is a serial number, ``"first"``, a tunnel
    address, or a ``Spectrometer`` (from the in-process simulator's ``connect()``).

    Options: ``integration_time_s`` (initial, default 0.1), ``discard_after_change``,
    ``lamp_shutter`` (the light source's shutter follows Lamp Enable),
    ``model`` (e.g. ``FLAMES``: refuse any other model at connect),
    ``backend`` ("cseabreeze"/"pyseabreeze", hardware only),
    ``tunnel_timeout_s`` (tunnel addresses: link wait beyond the USB timeout).
    """
    closer = None
    if isinstance(connection, str):
        spectrometer, closer = _open_address(connection, name, backend, tunnel_timeout_s)
    else:
        spectrometer = connection
    try:
        return OceanSpectrometer(spectrometer, name=name, clock=clock, closer=closer, **options)
    except Exception:
        try:
            spectrometer.close()
        finally:
            if closer is not None:
                closer.close()
        raise
