"""The instrument monitor: key readings of every instrument, polled off the GUI thread.

A daemon thread reads each instrument every ``interval_s`` of wall time through
its driver, whose per-instrument lock keeps a running procedure's queries and
the monitor's from interleaving. It only reads, and never a query that changes
state (the lock-in's latched-overload register clears on reading, so "over
range" is R at or above full scale instead). A failed read marks that
instrument "no answer" with the reason; the others are still read.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from qtpy import QtCore

from labctl.errors import LabctlError

log = logging.getLogger(__name__)


def read_furnace(furnace) -> dict[str, Any]:
    from labctl.drivers.eurotherm import FurnaceInterlock

    with furnace.lock:
        out = {
            "pv_c": furnace.temperature_c,
            "sp_c": furnace.setpoint_c,
            "wsp_c": furnace.working_setpoint_c,
            "op_percent": furnace.output_percent,
            "program": furnace.program_status.name.lower(),
            "segment": furnace.segment,
            "manual": furnace.manual_mode,
        }
        try:
            furnace.check_interlocks()
            out["interlock"] = ""
        except FurnaceInterlock as exc:
            out["interlock"] = str(exc)
    return out


def read_lockin(lockin) -> dict[str, Any]:
    with lockin.lock:
        sensitivity = lockin.sensitivity
        time_constant = lockin.time_constant
        r, _theta = lockin.read_r_theta()
    return {
        "sensitivity_v": sensitivity,
        "time_constant_s": time_constant,
        "r_v": r,
        "over_range": abs(r) >= sensitivity,
    }


def read_stages(stage_set) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with stage_set.controller.lock:
        for role in stage_set:
            stage = stage_set[role]
            if hasattr(stage, "delay_ps"):
                out[f"{role}_ps"] = stage.delay_ps
            else:
                out[f"{role}_mm"] = stage.position_mm
                out[f"{role}_slot"] = stage.slot
    return out


def read_power_meter(meter) -> dict[str, Any]:
    return {"power_w": meter.power_w}


def read_spectrometer(spectrometer) -> dict[str, Any]:
    with spectrometer.lock:
        return {"model": spectrometer.model, "integration_s": spectrometer.integration_time_s}


def reader_for(instrument):
    """The reading function for an instrument, by what its driver can do."""
    if hasattr(instrument, "check_interlocks"):
        return read_furnace
    if hasattr(instrument, "read_r_theta"):
        return read_lockin
    if hasattr(instrument, "stages") and hasattr(instrument, "controller"):
        return read_stages
    if hasattr(instrument, "power_w"):
        return read_power_meter
    if hasattr(instrument, "acquire_dark"):
        return read_spectrometer
    return None


def read_station(station) -> dict[str, Any]:
    """Every instrument's readings by role: ``{"ok": bool, "error": str, ...}``; and the clock."""
    out: dict[str, Any] = {"clock_s": station.clock.now()}
    for role, instrument in station.instruments.items():
        reader = reader_for(instrument)
        if reader is None:
            out[role] = {"ok": True, "error": ""}
            continue
        try:
            out[role] = {"ok": True, "error": "", **reader(instrument)}
        except LabctlError as exc:
            out[role] = {"ok": False, "error": str(exc)}
        except Exception as exc:  # a driver bug must not stop the monitor
            log.debug("reading %s failed", role, exc_info=True)
            out[role] = {"ok": False, "error": f"unexpected {type(exc).__name__}: {exc}"}
    return out


class InstrumentMonitor(QtCore.QObject):
    """Polls :func:`read_station` in a thread; ``readings`` carries each result."""

    readings = QtCore.Signal(object)

    def __init__(self, station, interval_s: float = 1.0, parent=None) -> None:
        super().__init__(parent)
        self.station = station
        self.interval_s = float(interval_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="labctl-gui-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.readings.emit(read_station(self.station))
            except Exception:
                log.exception("instrument monitor")
            self._stop.wait(self.interval_s)
