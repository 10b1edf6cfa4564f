"""The server end of the USB-over-TCP tunnel for simulated Ocean spectrometers.

The virtual USB bus is transport, in :mod:`labctl.virtual_usb`; the wire format
and the client are in :mod:`labctl.usb_tunnel`. Their names are re-exported here
for code written against this module.

A served device carries out one tunnelled transfer per request
(:func:`serve_request`). A bulk IN request waits on the world clock for up to
the timeout the client asked for; that wait ends early when the client has
gone (:func:`client_gone`), so abandoned requests do not keep threads asleep.
"""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Callable

import usb.core

from labctl.usb_tunnel import (  # noqa: F401 (re-exported)
    MAX_TRANSFER,
    OP_DESCRIBE,
    OP_IN,
    OP_OUT,
    ST_BAD_REQUEST,
    ST_OK,
    ST_TIMEOUT,
    ST_USB_ERROR,
    TUNNEL_MAGIC,
    RemoteUSBDevice,
    TunnelRequest,
    encode_reply,
    parse_request,
)
from labctl.virtual_usb import (  # noqa: F401 (re-exported)
    BACKEND_NAME,
    LIBUSB_ERROR_BUSY,
    LIBUSB_ERROR_INVALID_PARAM,
    LIBUSB_ERROR_IO,
    LIBUSB_ERROR_NO_DEVICE,
    LIBUSB_ERROR_TIMEOUT,
    SimulatedUSBDevice,
    VirtualUSBBackend,
    get_backend,
    install,
    open_spectrometer,
    usb_error,
    usb_timeout,
    use_simulated_usb,
)


def client_gone(source: object) -> Callable[[], bool] | None:
    """For a TCP client socket: a check that is true once the client has closed or reset."""
    if not isinstance(source, socket.socket):
        return None

    def gone() -> bool:
        try:
            readable, _, _ = select.select([source], [], [], 0)
            return bool(readable) and source.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):  # reset, or already closed here
            return True

    return gone


def serve_request(
    device: SimulatedUSBDevice,
    req: TunnelRequest,
    cancelled: Callable[[], bool] | None = None,
) -> bytes:
    """Carry out one tunnelled transfer on ``device``; never raises.

    ``cancelled`` (e.g. :func:`client_gone`) lets a waiting bulk IN end early.
    """
    try:
        if req.op == OP_DESCRIBE:
            eps = sorted(device.usb_endpoints.items())
            body = struct.pack("<HHB", device.usb_vendor_id, device.usb_product_id, len(eps))
            body += b"".join(struct.pack("<BH", a, n) for a, n in eps)
            return encode_reply(ST_OK, 0, body)
        if req.op == OP_OUT and not req.endpoint & 0x80 and req.endpoint in device.usb_endpoints:
            n = device.usb_bulk_write(req.endpoint, req.payload, req.timeout_ms)
            return encode_reply(ST_OK, req.endpoint, struct.pack("<I", n))
        if req.op == OP_IN and req.endpoint & 0x80 and req.endpoint in device.usb_endpoints:
            kwargs = {"cancelled": cancelled} if cancelled is not None else {}
            data = device.usb_bulk_read(req.endpoint, req.length, req.timeout_ms, **kwargs)
            return encode_reply(ST_OK, req.endpoint, data)
        return encode_reply(ST_BAD_REQUEST, req.endpoint)
    except usb.core.USBTimeoutError:
        return encode_reply(ST_TIMEOUT, req.endpoint)
    except usb.core.USBError as exc:
        return encode_reply(ST_USB_ERROR, req.endpoint, str(exc).encode("utf-8", "replace"))
    except Exception as exc:  # a simulator never crashes on garbage
        return encode_reply(ST_USB_ERROR, req.endpoint, repr(exc).encode("utf-8", "replace"))
