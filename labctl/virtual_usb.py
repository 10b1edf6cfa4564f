"""A virtual USB bus as a pyusb backend: simulated and tunnelled Ocean spectrometers.

pyseabreeze finds spectrometers with ``usb.core.find(backend=...)`` and talks
to them with bulk transfers. :class:`VirtualUSBBackend` implements pyusb's
``IBackend`` over simulated devices (anything with the small
:class:`SimulatedUSBDevice` interface), so pyusb's ``Device`` objects and
pyseabreeze's transport, protocol and feature code run unchanged on top of it.

seabreeze selects a pyusb backend by name (``seabreeze.use("pyseabreeze",
pyusb_backend=NAME)`` → ``importlib.import_module("usb.backend." + NAME)``);
:func:`install` makes this module importable under that name, following
pyusb's convention that a backend module exposes ``get_backend()``. Nothing
in seabreeze or pyusb is patched.

Devices on the bus are in-process simulators (:mod:`labctl.simulators.spectrometer`)
or the client end of a USB-over-TCP tunnel (:mod:`labctl.usb_tunnel`), which is how a
driver reaches a spectrometer served by ``labctl sim serve``.
"""

from __future__ import annotations

import array
import errno
import itertools
import sys
import threading
import weakref
from dataclasses import dataclass, field
from typing import Protocol

import usb.backend
import usb.core
import usb.util

BACKEND_NAME = "labctl_sim"
"""The ``pyusb_backend`` name under which seabreeze finds the virtual bus."""

# libusb error codes (what a libusb1 backend reports as ``backend_error_code``)
LIBUSB_ERROR_IO = -1
LIBUSB_ERROR_INVALID_PARAM = -2
LIBUSB_ERROR_NO_DEVICE = -4
LIBUSB_ERROR_BUSY = -6
LIBUSB_ERROR_TIMEOUT = -7


class SimulatedUSBDevice(Protocol):
    """What a simulated device offers the bus (one configuration, one interface)."""

    usb_vendor_id: int
    usb_product_id: int
    usb_endpoints: dict[int, int]  # bEndpointAddress -> wMaxPacketSize (all bulk)

    def usb_bulk_write(self, endpoint: int, data: bytes, timeout_ms: int) -> int:
        """Accept one OUT transfer; return bytes taken."""

    def usb_bulk_read(self, endpoint: int, size: int, timeout_ms: int) -> bytes:
        """Return one IN transfer (≤ size bytes); raise :func:`usb_timeout` if nothing comes."""

    def usb_reset(self) -> None:
        """Port reset."""


def usb_timeout(where: str) -> usb.core.USBTimeoutError:
    return usb.core.USBTimeoutError(
        f"{where}: Operation timed out", error_code=LIBUSB_ERROR_TIMEOUT, errno=errno.ETIMEDOUT
    )


def usb_error(message: str, code: int, err: int) -> usb.core.USBError:
    return usb.core.USBError(message, error_code=code, errno=err)


@dataclass
class _Descriptor:
    """A descriptor record: pyusb copies the named fields onto its objects."""

    fields: dict = field(default_factory=dict)

    def __getattr__(self, name: str):
        try:
            return self.__dict__["fields"][name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(eq=False)
class _DeviceId:
    """The backend's opaque device identity (what ``enumerate_devices`` yields)."""

    bus: int
    address: int
    device: weakref.ReferenceType


@dataclass(eq=False)
class _Handle:
    dev_id: _DeviceId
    configuration: int = 0
    claimed: set = field(default_factory=set)
    closed: bool = False


class VirtualUSBBackend(usb.backend.IBackend):
    """pyusb backend whose bus holds simulated devices (held weakly: a device
    that is garbage-collected is unplugged)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._devices: list[_DeviceId] = []
        self._addresses = itertools.count(1)
        self._claims: dict[int, _Handle] = {}  # id(_DeviceId) -> handle holding interface 0

    # --- plugging ---------------------------------------------------------
    def plug(self, device: SimulatedUSBDevice) -> _DeviceId:
        """Attach a device; returns its bus identity."""
        with self._lock:
            n = next(self._addresses)
            dev_id = _DeviceId(
                bus=200 + (n - 1) // 127, address=1 + (n - 1) % 127, device=weakref.ref(device)
            )
            self._devices.append(dev_id)
            return dev_id

    def unplug(self, device: SimulatedUSBDevice) -> None:
        with self._lock:
            self._devices = [d for d in self._devices if d.device() not in (None, device)]

    def pyusb_device(self, dev_id: _DeviceId) -> usb.core.Device:
        """A pyusb ``Device`` for a plugged device (as ``usb.core.find`` would return)."""
        return usb.core.Device(dev_id, self)

    def _live(self, dev_id: _DeviceId) -> SimulatedUSBDevice:
        device = dev_id.device()
        if device is None or dev_id not in self._devices:
            raise usb_error(
                "No such device (it may have been disconnected)",
                LIBUSB_ERROR_NO_DEVICE,
                errno.ENODEV,
            )
        return device

    def _device_of(self, handle: _Handle) -> SimulatedUSBDevice:
        if handle.closed:
            raise usb_error(
                "Invalid parameter (device handle closed)", LIBUSB_ERROR_INVALID_PARAM, errno.EINVAL
            )
        return self._live(handle.dev_id)

    # --- descriptors ------------------------------------------------------
    def enumerate_devices(self):
        with self._lock:
            self._devices = [d for d in self._devices if d.device() is not None]
            return list(self._devices)

    def get_parent(self, dev):
        return None

    def get_device_descriptor(self, dev: _DeviceId):
        device = self._live(dev)
        return _Descriptor(
            dict(
                bLength=18,
                bDescriptorType=usb.util.DESC_TYPE_DEVICE,
                bcdUSB=0x0200,
                bDeviceClass=0xFF,
                bDeviceSubClass=0x00,
                bDeviceProtocol=0x00,
                bMaxPacketSize0=64,
                idVendor=device.usb_vendor_id,
                idProduct=device.usb_product_id,
                bcdDevice=0x0200,
                iManufacturer=1,
                iProduct=2,
                iSerialNumber=0,
                bNumConfigurations=1,
                address=dev.address,
                bus=dev.bus,
                port_number=1,
                port_numbers=(1,),
                speed=3,  # LIBUSB_SPEED_HIGH
            )
        )

    def get_configuration_descriptor(self, dev: _DeviceId, config: int):
        if config != 0:
            raise IndexError("configuration index out of range")
        n_ep = len(self._live(dev).usb_endpoints)
        return _Descriptor(
            dict(
                bLength=9,
                bDescriptorType=usb.util.DESC_TYPE_CONFIG,
                wTotalLength=9 + 9 + 7 * n_ep,
                bNumInterfaces=1,
                bConfigurationValue=1,
                iConfiguration=0,
                bmAttributes=0x80,
                bMaxPower=250,
                extra_descriptors=[],
            )
        )

    def get_interface_descriptor(self, dev: _DeviceId, intf: int, alt: int, config: int):
        if config != 0 or intf != 0 or alt != 0:
            raise IndexError("interface index out of range")
        return _Descriptor(
            dict(
                bLength=9,
                bDescriptorType=usb.util.DESC_TYPE_INTERFACE,
                bInterfaceNumber=0,
                bAlternateSetting=0,
                bNumEndpoints=len(self._live(dev).usb_endpoints),
                bInterfaceClass=0xFF,
                bInterfaceSubClass=0,
                bInterfaceProtocol=0,
                iInterface=0,
                extra_descriptors=[],
            )
        )

    def get_endpoint_descriptor(self, dev: _DeviceId, ep: int, intf: int, alt: int, config: int):
        endpoints = sorted(self._live(dev).usb_endpoints.items())
        if config != 0 or intf != 0 or alt != 0 or not 0 <= ep < len(endpoints):
            raise IndexError("endpoint index out of range")
        address, max_packet = endpoints[ep]
        return _Descriptor(
            dict(
                bLength=7,
                bDescriptorType=usb.util.DESC_TYPE_ENDPOINT,
                bEndpointAddress=address,
                bmAttributes=usb.util.ENDPOINT_TYPE_BULK,
                wMaxPacketSize=max_packet,
                bInterval=0,
                bRefresh=0,
                bSynchAddress=0,
                extra_descriptors=[],
            )
        )

    # --- handles ----------------------------------------------------------
    def open_device(self, dev: _DeviceId) -> _Handle:
        self._live(dev)
        return _Handle(dev_id=dev)

    def close_device(self, dev_handle: _Handle) -> None:
        with self._lock:
            if self._claims.get(id(dev_handle.dev_id)) is dev_handle:
                del self._claims[id(dev_handle.dev_id)]
            dev_handle.closed = True

    def _check_not_busy(self, handle: _Handle) -> None:
        owner = self._claims.get(id(handle.dev_id))
        if owner is not None and owner is not handle and not owner.closed:
            raise usb_error(
                "Resource busy (interface claimed by another handle)",
                LIBUSB_ERROR_BUSY,
                errno.EBUSY,
            )

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        with self._lock:
            self._device_of(dev_handle)
            self._check_not_busy(dev_handle)
            if config_value not in (0, 1):
                raise usb_error(
                    "Invalid parameter (configuration)", LIBUSB_ERROR_INVALID_PARAM, errno.EINVAL
                )
            dev_handle.configuration = config_value

    def get_configuration(self, dev_handle: _Handle) -> int:
        self._device_of(dev_handle)
        return dev_handle.configuration or 1

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        self._device_of(dev_handle)
        if intf != 0 or altsetting != 0:
            raise usb_error(
                "Invalid parameter (interface)", LIBUSB_ERROR_INVALID_PARAM, errno.EINVAL
            )

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        with self._lock:
            self._device_of(dev_handle)
            self._check_not_busy(dev_handle)
            self._claims[id(dev_handle.dev_id)] = dev_handle
            dev_handle.claimed.add(intf)

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        with self._lock:
            dev_handle.claimed.discard(intf)
            if self._claims.get(id(dev_handle.dev_id)) is dev_handle and not dev_handle.claimed:
                del self._claims[id(dev_handle.dev_id)]

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        return False

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        pass

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        pass

    def reset_device(self, dev_handle: _Handle) -> None:
        self._device_of(dev_handle).usb_reset()

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        self._device_of(dev_handle)

    # --- transfers --------------------------------------------------------
    def bulk_write(self, dev_handle: _Handle, ep: int, intf: int, data, timeout: int) -> int:
        device = self._device_of(dev_handle)
        if ep & 0x80:
            raise usb_error(
                "Invalid parameter (IN endpoint)", LIBUSB_ERROR_INVALID_PARAM, errno.EINVAL
            )
        return device.usb_bulk_write(ep, bytes(data), int(timeout or 0))

    def bulk_read(
        self, dev_handle: _Handle, ep: int, intf: int, buff: array.array, timeout: int
    ) -> int:
        device = self._device_of(dev_handle)
        if not ep & 0x80:
            raise usb_error(
                "Invalid parameter (OUT endpoint)", LIBUSB_ERROR_INVALID_PARAM, errno.EINVAL
            )
        size = len(buff) * buff.itemsize
        data = device.usb_bulk_read(ep, size, int(timeout or 0))[:size]
        view = memoryview(buff).cast("B")
        view[: len(data)] = data
        return len(data)

    def ctrl_transfer(self, dev_handle, bmRequestType, bRequest, wValue, wIndex, data, timeout):
        # standard requests beyond descriptors (strings, status) are not modelled: STALL
        self._device_of(dev_handle)
        raise usb_error("Pipe error (control request stalled)", -9, errno.EPIPE)


_backend: VirtualUSBBackend | None = None
_backend_lock = threading.Lock()


def get_backend(find_library=None) -> VirtualUSBBackend:
    """The process-wide virtual bus (pyusb backend-module convention)."""
    global _backend
    with _backend_lock:
        if _backend is None:
            _backend = VirtualUSBBackend()
        return _backend


def install() -> str:
    """Make the virtual bus importable as ``usb.backend.<BACKEND_NAME>``; returns the name."""
    sys.modules.setdefault(f"usb.backend.{BACKEND_NAME}", sys.modules[__name__])
    return BACKEND_NAME


def use_simulated_usb() -> None:
    """Select pyseabreeze on the virtual bus for ``seabreeze.spectrometers`` user code.

    Equivalent to ``seabreeze.use("pyseabreeze", pyusb_backend="labctl_sim")``
    after :func:`install`. Like ``seabreeze.use`` it must run before the first
    spectrometer is opened in the process; if seabreeze already resolved
    another backend, this raises instead of silently talking to real hardware.
    """
    import seabreeze
    import seabreeze.backends

    install()
    cfg = seabreeze.backends.BackendConfig
    spectrometers = sys.modules.get("seabreeze.spectrometers")
    if spectrometers is not None:
        resolved = spectrometers.Spectrometer.__dict__["_backend"]._backend
        cached_api = getattr(spectrometers.list_devices, "_api", None)
        if (resolved is not None and getattr(resolved, "_backend_", "") != "pyseabreeze") or (
            cached_api is not None and cached_api._kwargs.get("pyusb_backend") != BACKEND_NAME
        ):
            raise RuntimeError(
                "seabreeze already uses another backend in this process; "
                "call use_simulated_usb() before opening any spectrometer"
            )
        if (
            resolved is not None
            and cfg.requested == "pyseabreeze"
            and cfg.api_kwargs.get("pyusb_backend") == BACKEND_NAME
        ):
            return  # already selected; seabreeze.use would only warn
    seabreeze.use("pyseabreeze", pyusb_backend=BACKEND_NAME)


# --- opening a seabreeze Spectrometer on a pyusb device -------------------------------


def _pyseabreeze_spectrometer_class():
    import seabreeze.pyseabreeze
    from seabreeze.spectrometers import Spectrometer

    class PySeabreezeSpectrometer(Spectrometer):
        """seabreeze's ``Spectrometer``, unchanged, bound to the pyseabreeze backend
        (whatever backend the process selected with ``seabreeze.use``)."""

        _backend = seabreeze.pyseabreeze  # shadows the lazily-resolved class descriptor

    return PySeabreezeSpectrometer


_spectrometer_class = None


def open_spectrometer(pyusb_device: usb.core.Device):
    """``seabreeze.spectrometers.Spectrometer`` opened through pyseabreeze on ``pyusb_device``.

    This is what ``Spectrometer.from_serial_number`` does after enumeration,
    without the enumeration (which also runs a 1 s Ethernet multicast discovery).
    """
    global _spectrometer_class
    from seabreeze.pyseabreeze import SeaBreezeDevice
    from seabreeze.pyseabreeze.transport import USBTransportHandle

    install()
    if _spectrometer_class is None:
        _spectrometer_class = _pyseabreeze_spectrometer_class()
    return _spectrometer_class(SeaBreezeDevice(USBTransportHandle(pyusb_device)))
