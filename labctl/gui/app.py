"""``labctl gui``: open the station and show the main window."""

from __future__ import annotations

import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Time scale of a simulated station when none is given: fast enough that a run is
#: quick, slow enough to watch it (``--time-scale virtual`` runs instantly).
SIMULATED_TIME_SCALE = 20.0


#: where the GUI writes the station file of the simulators it serves (in the data dir)
SERVED_STATION_FILE = "gui-served-station.yaml"


@dataclass
class OpenedStation:
    """The GUI's station, the name to give runs and series of it, and (for a simulated
    station) the loopback servers of its world, which the GUI owns."""

    station: object  # labctl.station.Station
    time_scale: object
    name: str
    served: object | None = None  # labctl.servesim.ServedStation

    def close(self) -> None:
        try:
            self.station.close()
        finally:
            if self.served is not None:
                self.served.stop()


def open_station(station: str, time_scale, data_dir: str | Path = "labctl-runs") -> OpenedStation:
    """The station: a simulated one is served on loopback from this process (scaled time
    unless told) and the GUI connects to it like any program, so a series started from
    the GUI (another process, given the served station file) runs on the same simulated
    world the instrument panel shows; a real station is connected to directly. At
    virtual time the simulators stay in-process (a served world needs a wall-clock pace;
    the series view then says its series has a world of its own)."""
    from labctl.servesim import serve_station
    from labctl.station import Station, load_station_spec

    spec = load_station_spec(station)
    if time_scale is None:
        time_scale = SIMULATED_TIME_SCALE if spec.needs_world else "station"
    all_simulated = bool(spec.instruments) and all(
        i.simulated_in_process for i in spec.instruments.values()
    )
    if not all_simulated or time_scale == "virtual":
        return OpenedStation(Station(spec, time_scale=time_scale), time_scale, station)
    factor = 1.0 if time_scale in ("real", "station") else float(time_scale)
    if time_scale == "station" and spec.time_scale is not None:
        factor = spec.time_scale
    if factor == float("inf"):
        return OpenedStation(Station(spec, time_scale="virtual"), "virtual", station)
    served = serve_station(station, time_scale=factor)
    try:
        path = Path(data_dir) / SERVED_STATION_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        served.write_station(path)
        opened = Station.from_file(path)
    except BaseException:
        served.stop()
        raise
    scale = "real" if factor == 1.0 else factor
    return OpenedStation(opened, scale, str(path), served)


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
    opened = open_station(station, time_scale, data_dir)
    scale = opened.time_scale
    try:
        window = MainWindow(
            opened.station,
            station_name=opened.name,
            data_dir=data_dir,
            time_scale=None if scale == "station" else str(scale),
        )
        if opened.served is None and getattr(opened.station, "world", None) is not None:
            window.series.state_label.setText(
                "the simulators run in this process at virtual time: a series started here "
                "runs on a simulated world of its own (give a --time-scale to share one)"
            )
        window.show()

        def in_the_event_loop() -> None:
            # logged from inside the event loop: from then on SIGTERM/Ctrl-C quit it; a
            # signal before it ran found nothing to quit, so quit now
            log.info(
                "labctl gui: station %s, time scale %s, data in %s", opened.name, scale, data_dir
            )
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

    from qtpy import QtCore

    def handle(signum, _frame) -> None:
        if seen:
            print("labctl gui: still setting the safe state; not interrupted", file=sys.stderr)
            return
        seen.append(signum)
        print("labctl gui: stopping — safe state first, then quit", file=sys.stderr)
        # from the event loop, never inside the handler: quit() closes the window (its
        # shutdown joins the monitor thread) right away, and the handler interrupts
        # whatever the main thread was doing -- inside logging, holding the stream
        # handler's lock, it made the monitor's next log record wait out the 5 s join
        QtCore.QTimer.singleShot(0, app.quit)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handle)
    _keep_python_awake(app)
    return seen


def _keep_python_awake(app) -> None:
    from qtpy import QtCore

    timer = QtCore.QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(200)
