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


def run_gui(
    station: str = "sim",
    time_scale=None,
    data_dir: str | Path = "labctl-runs",
    early_signals: list[int] | None = None,
) -> int:
    """Open the station and the window; ``early_signals`` are stop signals received before
    (the GUI then quits the orderly way as soon as it runs). Exit 128 + the signal that
    closed it, else Qt's code."""
    from qtpy import QtCore, QtWidgets

    from labctl.gui.window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("labctl")
    signals = _quit_on_signals(app, early_signals or [])
    opened, scale = open_station(station, time_scale)
    try:
        window = MainWindow(
            opened,
            station_name=station,
            data_dir=data_dir,
            time_scale=None if scale == "station" else str(scale),
        )
        window.show()

        def in_the_event_loop() -> None:
            # logged from inside the event loop: from then on SIGTERM/Ctrl-C quit it; a
            # signal before it ran found nothing to quit, so quit now
            log.info("labctl gui: station %s, time scale %s, data in %s", station, scale, data_dir)
            if signals:
                app.quit()

        QtCore.QTimer.singleShot(0, in_the_event_loop)
        code = app.exec()
        window.shutdown()  # returns once a running measurement's safe state is done
        return 128 + signals[0] if signals else int(code)
    finally:
        opened.close()


def _quit_on_signals(app, seen: list[int]) -> list[int]:
    """Ctrl-C and SIGTERM close the window the orderly way (a running measurement is
    aborted and made safe, a series process stopped and waited for); a second signal
    while that happens is acknowledged and does not interrupt it. A timer lets Python
    see the signal while Qt waits."""
    import sys

    def handle(signum, _frame) -> None:
        if seen:
            print("labctl gui: still setting the safe state; not interrupted", file=sys.stderr)
            return
        seen.append(signum)
        print("labctl gui: stopping — safe state first, then quit", file=sys.stderr)
        app.quit()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handle)
    _keep_python_awake(app)
    return seen


def _keep_python_awake(app) -> None:
    from qtpy import QtCore

    timer = QtCore.QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(200)
