"""Ocean Insight Flame-S / USB2000+ spectrometer, simulated at the USB level.

The simulator is a USB device speaking the OOI command set of the Flame-S
(Flame user manual 225-00000-000-11, ch. 8 "USB Command Descriptions"),
plugged into a virtual pyusb bus (:mod:`labctl.virtual_usb`).
python-seabreeze's ``pyseabreeze`` backend talks to it unmodified: it reads
the serial number and the wavelength / nonlinearity calibration from the
EEPROM slots, the FPGA firmware version (major ≥ 3 → "FLAMES"), sets the
integration time and requests spectra exactly as it would on hardware.

Endpoints (high-speed USB 2.0): commands to EP1 OUT (0x01); replies to
queries on EP1 IN (0x81); spectra on EP2 IN (0x82) as 2048 little-endian
16-bit pixels followed by the sync byte 0x69; EP6 IN (0x86) exists but is
unused by this model.

Commands: 0x01 initialize, 0x02 set integration time (µs, u32; outside the
firmware range the value is unchanged, as the manual says), 0x03 lamp
enable, 0x05/0x06 query/write EEPROM slot (17-byte reply ``05 slot ascii…``),
0x09 request spectrum, 0x0A trigger mode (unacceptable values leave it
unchanged), 0x6A/0x6B write/read FPGA register, 0x6C PCB temperature, 0xFE
status (16 bytes). Anything else, or a command of the wrong length, is
ignored (the OOI protocol has no NAK); reading an endpoint with nothing queued
times out after the transfer's timeout, as a bulk read on hardware does.

Detector (here, not in the world — the world supplies only light): a
spectrum requested at ``t`` with integration time ``τ`` is ready at
``t + τ`` on the world clock; the read waits for it with ``clock.sleep``
(never longer than the transfer timeout). Light counts are
``world.spectrum_counts(λ, τ) − world.spectrum_counts(λ, τ, dark=True)``
(so the result does not depend on whether the world's model includes a
baseline), on optically active pixels only. To them the detector adds a
thermal dark signal ∝ τ with fixed-pattern non-uniformity, takes Poisson
statistics of the photo- and dark electrons (``gain_e_per_count``), applies
the CCD's response nonlinearity ``m = s / (1 + k s)`` (whose inverse is the
polynomial ``1 − k m`` stored in EEPROM slots 6–7, order in slot 14, so
seabreeze's ``correct_nonlinearity`` linearises it), adds the electronic
offset and Gaussian read noise, rounds and clips at the 16-bit ADC range.
The electric-dark pixels 6–20 are masked: offset + thermal dark + noise,
no light — seabreeze's ``correct_dark_counts`` subtracts their mean.
With ``world.noise`` False the detector is noise-free (deterministic).
"""

from __future__ import annotations

import errno
import logging
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from labctl.clock import VirtualClock
from labctl.simulators import seabreeze_usb
from labctl.simulators.base import ProtocolHandler

log = logging.getLogger(__name__)

OCEAN_VENDOR_ID = 0x2457
SYNC_BYTE = 0x69
EP_OUT, EP_QUERY_IN, EP_SPECTRUM_IN, EP_SPECTRUM_IN2 = 0x01, 0x81, 0x82, 0x86


@dataclass(frozen=True)
class OOIModel:
    """Firmware and detector facts of one OOI-protocol model."""

    name: str
    usb_product_id: int
    fpga_version: int  # FPGA register 0x04: major in bits 12–15
    serial_prefix: str
    pixels: int = 2048
    dark_pixels: tuple[int, int] = (6, 21)  # electric-dark (masked) pixels [lo, hi)
    first_active_pixel: int = 21
    integration_min_us: int = 1000  # firmware-accepted range (datasheet: 1 ms – 65 s)
    integration_max_us: int = 65_535_000
    integration_default_us: int = 10_000
    adc_max: int = 65535
    wavelength_coeffs: tuple[float, float, float, float] = (
        187.9,
        0.3761,
        -1.458e-5,
        -2.21e-10,
    )  # λ(p) = Σ c_i p^i, nm (UV-VIS grating, ~190–880 nm)
    offset_counts: float = 1500.0  # electronic baseline of every pixel
    read_noise_counts: float = 8.0  # rms, per readout
    gain_e_per_count: float = 0.95  # Sony ILX511B: ~62 500 e⁻ full well over 16 bits
    dark_counts_per_s: float = 400.0  # thermal dark signal at room temperature
    dark_nonuniformity: float = 0.10  # rms fixed-pattern spread of the dark signal
    nonlinearity_k: float = 1.0e-6  # m = s / (1 + k s), per count


MODELS: dict[str, OOIModel] = {
    "FLAMES": OOIModel("FLAMES", 0x101E, 0x3013, "FLMS"),
    "USB2000PLUS": OOIModel("USB2000PLUS", 0x101E, 0x2011, "USB2+H"),
}

# OOI commands: opcode -> exact length of the OUT transfer
_COMMAND_LENGTH = {
    0x01: 1,
    0x02: 5,
    0x03: 3,
    0x05: 2,
    0x06: 17,
    0x09: 1,
    0x0A: 3,
    0x6A: 4,
    0x6B: 2,
    0x6C: 1,
    0xFE: 1,
}
_TRIGGER_MODES = {0, 1, 2, 3, 4}  # normal, software, ext. sync, ext. hardware, single shot
_EXTERNAL_TRIGGERS = {2, 3}  # wait for a trigger that no simulated cable delivers


def _slot_text(value: str) -> bytes:
    raw = value.encode("ascii")[:14]
    return raw + b"\x00" * (15 - len(raw))


class SpectrometerSimulator(ProtocolHandler):
    """A simulated Flame-S (default) or USB2000+ on the virtual USB bus.

    ``connect()`` returns a ``seabreeze.spectrometers.Spectrometer`` opened on
    it through pyseabreeze. :meth:`handle` speaks a small USB-over-TCP framing
    (see :mod:`labctl.usb_tunnel`) so ``SimServer`` can expose
    the device to another process.
    """

    kind = "seabreeze"

    def __init__(
        self,
        world,
        name: str = "",
        model: str = "FLAMES",
        serial_number: str | None = None,
        sensitivity: float = 1.0,
        lamp_shutter: bool = False,
    ) -> None:
        super().__init__(world, name)
        #: The light source's TTL shutter is wired to the Lamp Enable line (J2 pin 4):
        #: lamp enable high opens it, so dark spectra are taken through the instrument.
        self.lamp_shutter = bool(lamp_shutter)
        try:
            self.model = MODELS[model.upper()]
        except KeyError:
            raise ValueError(
                f"{self.name}: unknown spectrometer model {model!r} (simulated: {', '.join(MODELS)})"
            ) from None
        if serial_number is None:
            serial_number = (
                f"{self.model.serial_prefix}{zlib.crc32(self.name.encode()) % 100000:05d}"
            )
        if not 0 < len(serial_number) <= 14 or not serial_number.isascii():
            raise ValueError(f"{self.name}: serial number must be 1–14 ASCII characters")
        self.serial_number = serial_number
        self.sensitivity = float(sensitivity)
        # USB identity (SimulatedUSBDevice interface)
        self.usb_vendor_id = OCEAN_VENDOR_ID
        self.usb_product_id = self.model.usb_product_id
        self.usb_endpoints = {
            EP_OUT: 512,
            EP_QUERY_IN: 512,
            EP_SPECTRUM_IN: 512,
            EP_SPECTRUM_IN2: 512,
        }
        # device personality: fixed-pattern dark non-uniformity, seeded by serial number
        personal = np.random.default_rng(zlib.crc32(serial_number.encode()))
        spread = self.model.dark_nonuniformity
        self._dark_pattern = np.clip(
            1.0 + spread * personal.standard_normal(self.model.pixels), 0.0, None
        )
        self.eeprom = self._factory_eeprom()
        self.registers: dict[int, int] = {0x04: self.model.fpga_version}
        self._power_on()
        self._tunnel_rx: dict[object, bytes] = {}  # USB-over-TCP input, per client
        self._usb_id = seabreeze_usb.get_backend().plug(self)

    # --- state --------------------------------------------------------------
    def _factory_eeprom(self) -> dict[int, bytes]:
        m = self.model
        slots = {i: _slot_text("") for i in range(19)}
        slots[0] = _slot_text(self.serial_number)
        for i, c in enumerate(m.wavelength_coeffs):
            slots[1 + i] = _slot_text(f"{c:.6E}")
        slots[5] = _slot_text("0.000000E+00")  # stray light constant
        nl = [1.0, -m.nonlinearity_k] + [0.0] * 6
        for i, c in enumerate(nl):
            slots[6 + i] = _slot_text(f"{c:.6E}")
        slots[14] = _slot_text("1")  # polynomial order of the nonlinearity correction
        slots[15] = _slot_text("25 3 0 0 0")  # optical bench: slit 25 µm, grating #3
        slots[16] = _slot_text("ILX511B")
        # slot 17 autonulling: bytes 4–5 hold the saturation level (LSB first)
        slots[17] = bytes([0x00, 0x00, 0x00, 0x00]) + struct.pack("<H", m.adc_max) + b"\x00" * 9
        return slots

    def _set_lamp(self, enabled: bool) -> None:
        self.lamp_enabled = enabled
        if self.lamp_shutter:
            with self.world.lock:
                self.world.lamp_shutter_open = enabled

    def _power_on(self) -> None:
        self.integration_time_us = self.model.integration_default_us
        self.trigger_mode = 0
        self._set_lamp(False)
        self._queues: dict[int, bytearray] = {
            EP_QUERY_IN: bytearray(),
            EP_SPECTRUM_IN: bytearray(),
            EP_SPECTRUM_IN2: bytearray(),
        }
        self._pending: tuple[float, float] | None = None  # (ready at, integration s)

    def wavelengths_nm(self) -> np.ndarray:
        """The calibration the EEPROM holds (what seabreeze will compute)."""
        p = np.arange(self.model.pixels, dtype=float)
        return sum(c * p**i for i, c in enumerate(self.model.wavelength_coeffs))

    @property
    def integration_time_s(self) -> float:
        return self.integration_time_us * 1e-6

    # --- USB device interface ----------------------------------------------
    def usb_reset(self) -> None:
        # pyseabreeze resets a device when any enumeration handle is garbage-collected,
        # even while another handle has it open; the simulated firmware keeps its state.
        pass

    def _link_faults(self, endpoint: int, timeout_ms: int, reading: bool) -> None:
        """An injected fault fails the transfer as libusb would: an unplugged device
        (disconnect), a hung one (silent: time-out), line noise (garbled: USB checks every
        packet's CRC, so an IN transfer fails with an I/O error)."""
        faults = self.world.faults.active(self.name)
        if not faults & {"disconnect", "silent", "garbled"}:
            return
        where = f"{self.name} (simulated) EP 0x{endpoint:02X}"
        if "disconnect" in faults:
            raise seabreeze_usb.usb_error(
                f"{where}: No such device", seabreeze_usb.LIBUSB_ERROR_NO_DEVICE, errno.ENODEV
            )
        if "garbled" in faults and reading:
            raise seabreeze_usb.usb_error(
                f"{where}: Input/Output Error (bad CRC)", seabreeze_usb.LIBUSB_ERROR_IO, errno.EIO
            )
        if "silent" in faults:
            if timeout_ms > 0:
                self.world.clock.sleep(timeout_ms / 1000.0)
            raise seabreeze_usb.usb_timeout(where)

    def usb_bulk_write(self, endpoint: int, data: bytes, timeout_ms: int) -> int:
        self._link_faults(endpoint, timeout_ms, reading=False)
        with self.lock:
            if endpoint == EP_OUT:
                try:
                    self._command(bytes(data))
                except Exception:  # never crash on garbage
                    log.exception("%s: error handling command %r", self.name, data[:32])
            return len(data)

    def usb_bulk_read(self, endpoint: int, size: int, timeout_ms: int, cancelled=None) -> bytes:
        """One IN transfer; ``cancelled()`` true (the tunnel client left) ends a wait early."""
        self._link_faults(endpoint, timeout_ms, reading=True)
        where = f"{self.name} (simulated {self.model.name}) EP 0x{endpoint:02X} IN"
        if endpoint == EP_SPECTRUM_IN:
            self._complete_acquisition(timeout_ms, where, cancelled)
        with self.lock:
            queue = self._queues.get(endpoint)
            if queue is None:
                raise seabreeze_usb.usb_error(
                    f"{where}: no such endpoint", seabreeze_usb.LIBUSB_ERROR_INVALID_PARAM, 22
                )
            if queue:
                out = bytes(queue[:size])
                del queue[:size]
                return out
        if timeout_ms > 0:
            self._wait(timeout_ms / 1000.0, cancelled, where)
        raise seabreeze_usb.usb_timeout(where)

    def _wait(self, seconds: float, cancelled, where: str) -> None:
        """Sleep on the world clock; in ~50 ms (wall) steps while a client may leave."""
        clock = self.world.clock
        if cancelled is None or isinstance(clock, VirtualClock):
            clock.sleep(seconds)
            return
        step = 0.05 * getattr(clock, "scale", 1.0)
        end = clock.now() + seconds
        while (left := end - clock.now()) > 0:
            if cancelled():
                raise seabreeze_usb.usb_error(
                    f"{where}: request abandoned (the client left)",
                    seabreeze_usb.LIBUSB_ERROR_NO_DEVICE,
                    19,
                )
            clock.sleep(min(step, left))

    # --- firmware -------------------------------------------------------------
    def _command(self, data: bytes) -> None:
        if not data:
            return
        op = data[0]
        if _COMMAND_LENGTH.get(op) != len(data):
            log.debug("%s: ignored OOI transfer %r", self.name, data[:32])
            return
        if op == 0x01:
            self._power_on()
        elif op == 0x02:
            (us,) = struct.unpack_from("<I", data, 1)
            if self.model.integration_min_us <= us <= self.model.integration_max_us:
                self.integration_time_us = us
        elif op == 0x03:
            self._set_lamp(bool(struct.unpack_from("<H", data, 1)[0]))
        elif op == 0x05:
            slot = data[1]
            if slot in self.eeprom:
                self._queues[EP_QUERY_IN] += bytes([0x05, slot]) + self.eeprom[slot]
        elif op == 0x06:
            slot = data[1]
            if slot in self.eeprom and slot != 17:
                self.eeprom[slot] = data[2:17]
        elif op == 0x09:
            if self.trigger_mode in _EXTERNAL_TRIGGERS:
                return  # waits for an external trigger that never comes
            it_s = self.integration_time_s
            self._pending = (self.world.clock.now() + it_s, it_s)
        elif op == 0x0A:
            (mode,) = struct.unpack_from("<H", data, 1)
            if mode in _TRIGGER_MODES:
                self.trigger_mode = mode
        elif op == 0x6A:
            register, value = struct.unpack_from("<BH", data, 1)
            if register != 0x04:  # firmware version is read-only
                self.registers[register] = value
        elif op == 0x6B:
            register = data[1]
            self._queues[EP_QUERY_IN] += struct.pack(
                "<BH", register, self.registers.get(register, 0)
            )
        elif op == 0x6C:
            self._queues[EP_QUERY_IN] += struct.pack("<Bh", 0x08, round(24.5 / 0.003906))
        elif op == 0xFE:
            self._queues[EP_QUERY_IN] += struct.pack(
                "<HIBBBBBBBBBB",
                self.model.pixels,
                self.integration_time_us,
                int(self.lamp_enabled),
                self.trigger_mode,
                int(self._pending is not None),
                9,  # packets in a spectrum: 8 × 512 + sync
                1,  # powered up
                len(self._queues[EP_SPECTRUM_IN]) // 512,
                0,
                0,
                0x80,  # high speed (480 Mbit/s)
                0,
            )

    def _complete_acquisition(self, timeout_ms: int, where: str, cancelled=None) -> None:
        """Wait (world clock) for a requested spectrum and queue it on EP2."""
        with self.lock:
            if self._pending is None or self._queues[EP_SPECTRUM_IN]:
                return
            ready_at, it_s = self._pending
        wait = ready_at - self.world.clock.now()
        if wait > 0:
            if timeout_ms > 0 and wait > timeout_ms / 1000.0:
                self._wait(timeout_ms / 1000.0, cancelled, where)
                raise seabreeze_usb.usb_timeout(where)
            self._wait(wait, cancelled, where)
        counts = self._read_out(it_s)
        with self.lock:
            self._pending = None
            self._queues[EP_SPECTRUM_IN] += counts.astype("<u2").tobytes() + bytes([SYNC_BYTE])

    # --- detector physics ------------------------------------------------------
    def _read_out(self, integration_time_s: float) -> np.ndarray:
        """ADC counts of one exposure (see module docstring)."""
        m = self.model
        wl = self.wavelengths_nm()
        world = self.world
        with world.lock:
            world.advance()
            lit = np.asarray(world.spectrum_counts(wl, integration_time_s), dtype=float)
            dark = np.asarray(world.spectrum_counts(wl, integration_time_s, dark=True), dtype=float)
            light = np.clip(lit - dark, 0.0, None) * self.sensitivity
            light[: m.first_active_pixel] = 0.0  # masked / dummy pixels see no light
            thermal = m.dark_counts_per_s * integration_time_s * self._dark_pattern
            mean_signal = light + thermal
            if world.noise:
                electrons = world.rng.poisson(mean_signal * m.gain_e_per_count)
                signal = electrons / m.gain_e_per_count
                read_noise = world.rng.normal(0.0, m.read_noise_counts, m.pixels)
            else:
                signal = mean_signal
                read_noise = np.zeros(m.pixels)
        measured = signal / (1.0 + m.nonlinearity_k * signal)
        raw = m.offset_counts + measured + read_noise
        return np.clip(np.rint(raw), 0, m.adc_max).astype(np.uint16)

    # --- connections ---------------------------------------------------------
    def pyusb_device(self):
        """A pyusb ``Device`` for this simulator on the virtual bus."""
        return seabreeze_usb.get_backend().pyusb_device(self._usb_id)

    def connect(self):
        """A ``seabreeze.spectrometers.Spectrometer`` opened on this device via pyseabreeze."""
        return seabreeze_usb.open_spectrometer(self.pyusb_device())

    def unplug(self) -> None:
        seabreeze_usb.get_backend().unplug(self)

    # --- USB-over-TCP (ProtocolHandler) -----------------------------------------
    def handle(self, data: bytes, source: object = None) -> bytes:
        requests = []
        with self.lock:
            rx = self._tunnel_rx.get(source, b"") + data
            while True:
                request, rx = seabreeze_usb.parse_request(rx)
                if request is None:
                    break
                requests.append(request)
            self._tunnel_rx[source] = rx
        cancelled = seabreeze_usb.client_gone(source)
        return b"".join(seabreeze_usb.serve_request(self, r, cancelled) for r in requests)

    def reset_input(self, source: object = None) -> None:
        with self.lock:
            self._tunnel_rx.pop(source, None)

    def __repr__(self) -> str:
        return f"<SpectrometerSimulator {self.name} {self.model.name} {self.serial_number}>"
