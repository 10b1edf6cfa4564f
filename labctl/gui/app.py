"""``labctl gui``: open the station and show the main window."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

log = logging.getLogger(__name__)

#: Time scale of a simulated station when none is given: fast enough that a run is
#: quick, slow enough to watch it (``--time-scale virtual`` runs instantly).
SIMULATED_TIME_SCALE = 20.0


def open_station(station: str, time_scale):
    """The station: a simulated one in-process (scaled time unless told), else connected."""
    from labctl.station import Station, load_station_spec

    spec = load_station_spec(station)
    if time_scale is None:
        time_scale = SIMULATED_TIME_SCALE if spec.needs_world else "station"
    return Station(spec, time_scale=time_scale), time_scale


def run_gui(station: str = "sim", time_scale=None, data_dir: str | Path = "labctl-runs") -> int:
    from qtpy import QtCore, QtWidgets

    from labctl.gui.window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("labctl")
    opened, scale = open_station(station, time_scale)
    try:
        window = MainWindow(
            opened,
            station_name=station,
            data_dir=data_dir,
            time_scale=None if scale == "station" else str(scale),
        )
        window.show()
        _quit_on_signals(app)
        # logged from inside the event loop: from then on SIGTERM/Ctrl-C quit it
        QtCore.QTimer.singleShot(
            0,
            lambda: log.info(
                "labctl gui: station %s, time scale %s, data in %s", station, scale, data_dir
            ),
        )
        code = app.exec()
        window.shutdown()
        return int(code)
    finally:
        opened.close()


def _quit_on_signals(app) -> None:
    """Ctrl-C and SIGTERM close the window the orderly way (a running measurement is
    aborted and made safe); a timer lets Python see the signal while Qt waits."""
    from qtpy import QtCore

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: app.quit())
    timer = QtCore.QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(200)
