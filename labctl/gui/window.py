"""The main window: measurement dock (procedure, parameters, queue, abort), live plots,
instrument panel, series view, past runs and the log."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from qtpy import QtCore, QtGui, QtWidgets

from labctl.gui.browser import RunBrowser
from labctl.gui.inputs import ParameterInputs
from labctl.gui.monitor import InstrumentMonitor
from labctl.gui.panels import InstrumentPanel
from labctl.gui.plots import (
    AbsorptionPlot,
    ConductivityPlot,
    FitPanel,
    FurnaceTrend,
    OPTPPlot,
    WaveformPlot,
)
from labctl.gui.runner import FAILED, FINISHED, RunQueue
from labctl.gui.series_view import SeriesView
from labctl.run_warnings import finished_text, run_warnings
from labctl.runs import Ending

log = logging.getLogger(__name__)

#: Redraw period of the live plots (ms): ≈ 30 frames/s at most.
REDRAW_MS = 33
#: Where each kind's run is shown.
TAB_OF_KIND = {"anneal": "Furnace", "absorption": "Absorption", "optp": "OPTP", "tds": "Δσ(ω)"}


class _LogSignal(QtCore.QObject):
    record = QtCore.Signal(str, int)


class LogBridge(logging.Handler):
    """A logging handler whose records reach the GUI thread as a Qt signal."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.signal = _LogSignal()
        self.record = self.signal.record

    def emit(self, record: logging.LogRecord) -> None:  # any thread
        try:
            text = self.format(record)
        except Exception:
            text = record.getMessage()
        try:
            self.signal.record.emit(text, record.levelno)
        except RuntimeError:  # the window is gone
            pass


class MainWindow(QtWidgets.QMainWindow):
    """The operator's window on one station."""

    def __init__(
        self,
        station,
        *,
        station_name: str = "sim",
        data_dir: str | Path = "labctl-runs",
        time_scale: str | None = None,
        monitor_interval_s: float = 1.0,
    ) -> None:
        super().__init__()
        from labctl.procedures import PROCEDURES

        self.station = station
        self.station_name = station_name
        self.data_dir = Path(data_dir)
        self.setWindowTitle(f"labctl — station {station.spec.name}")
        self.resize(1400, 900)
        self._run_clock0: float | None = None
        self._current_kind = ""
        self._interlock = ""
        #: RunOutcome of every run that ended, by request id
        self.outcomes: dict[int, Any] = {}

        # ---- plots
        self.furnace = FurnaceTrend()
        self.optp = OPTPPlot()
        self.waveform = WaveformPlot()
        self.conductivity = ConductivityPlot()
        self.fit_panel = FitPanel()
        self.absorption = AbsorptionPlot()
        self.series = SeriesView(station_name, time_scale)
        self.panels = (self.furnace, self.optp, self.waveform, self.conductivity, self.absorption)
        sigma_page = QtWidgets.QSplitter()
        sigma_page.addWidget(self.conductivity)
        sigma_page.addWidget(self.fit_panel)
        sigma_page.setStretchFactor(0, 4)
        self.tabs = QtWidgets.QTabWidget()
        for name, widget in (
            ("Furnace", self.furnace),
            ("OPTP", self.optp),
            ("THz waveform", self.waveform),
            ("Δσ(ω)", sigma_page),
            ("Absorption", self.absorption),
            ("Series", self.series),
        ):
            self.tabs.addTab(widget, name)
        self.setCentralWidget(self.tabs)

        # ---- measurement dock
        self.kind_box = QtWidgets.QComboBox()
        self.inputs: dict[str, ParameterInputs] = {}
        self.input_stack = QtWidgets.QStackedWidget()
        for kind in PROCEDURES:
            self.kind_box.addItem(kind)
            self.inputs[kind] = self._make_inputs(kind)
            self.input_stack.addWidget(self.inputs[kind])
        self.kind_box.currentIndexChanged.connect(self.input_stack.setCurrentIndex)
        self.queue_button = QtWidgets.QPushButton("Queue")
        self.queue_button.clicked.connect(lambda: self.queue_current())
        self.abort_button = QtWidgets.QPushButton("Abort")
        self.abort_button.setStyleSheet("font-weight: bold; color: #d62728")
        self.abort_button.clicked.connect(self.abort)
        self.remove_button = QtWidgets.QPushButton("Remove queued")
        self.remove_button.clicked.connect(self._remove_selected)
        self.queue_list = QtWidgets.QListWidget()
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.phase_label = QtWidgets.QLabel("idle")
        self.phase_label.setWordWrap(True)
        self.safety_label = QtWidgets.QLabel("")
        self.safety_label.setWordWrap(True)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.queue_button, self.abort_button, self.remove_button):
            buttons.addWidget(b)
        measure = QtWidgets.QWidget()
        form = QtWidgets.QVBoxLayout(measure)
        form.addWidget(self.kind_box)
        form.addWidget(self.input_stack, 1)
        form.addLayout(buttons)
        form.addWidget(QtWidgets.QLabel("queue"))
        form.addWidget(self.queue_list)
        form.addWidget(self.progress)
        form.addWidget(self.phase_label)
        form.addWidget(self.safety_label)
        self._dock("Measurement", measure, QtCore.Qt.LeftDockWidgetArea)

        # ---- instruments, log, runs
        self.instruments = InstrumentPanel(list(station.instruments))
        self._dock("Instruments", self.instruments, QtCore.Qt.RightDockWidgetArea)
        self.log_view = QtWidgets.QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(10000)
        self.browser = RunBrowser(self.data_dir)
        log_dock = self._dock("Log", self.log_view, QtCore.Qt.BottomDockWidgetArea)
        runs_dock = self._dock("Past runs", self.browser, QtCore.Qt.BottomDockWidgetArea)
        self.tabifyDockWidget(log_dock, runs_dock)
        log_dock.raise_()
        self.resizeDocks([log_dock], [160], QtCore.Qt.Vertical)
        self.error_label = QtWidgets.QLabel("")
        self.statusBar().addPermanentWidget(self.error_label)

        # ---- machinery
        self.log_bridge = LogBridge()
        self.log_bridge.record.connect(self._log_record)
        logging.getLogger("labctl").addHandler(self.log_bridge)
        if logging.getLogger("labctl").getEffectiveLevel() > logging.INFO:
            logging.getLogger("labctl").setLevel(logging.INFO)
        self.queue = RunQueue(station, self.data_dir, parent=self)
        self.queue.emitted.connect(self._on_emit)
        self.queue.fit_update.connect(self._on_fit_update)
        self.queue.started.connect(self._on_started)
        self.queue.finished.connect(self._on_finished)
        self.queue.safety.connect(self._on_safety)
        self.queue.changed.connect(self._show_queue)
        self.monitor = InstrumentMonitor(station, monitor_interval_s, parent=self)
        self.monitor.readings.connect(self._on_readings)
        self.series.message.connect(lambda text, error: self.say(text, error, source="series"))
        self.browser.message.connect(lambda text, error: self.say(text, error, source="browser"))
        self.browser.loaded.connect(self.show_run)
        self.series.watching.connect(self.browser.add_series_dir)
        self.series.process_ended.connect(self.browser.refresh)
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.redraw)
        self.timer.start(REDRAW_MS)
        self.tabs.currentChanged.connect(lambda _i: self.redraw())
        self.monitor.start()
        self.browser.refresh()
        self._closed = False
        self.say(f"station {station.spec.name}: {', '.join(station.instruments)}", False)

    def _dock(self, title: str, widget: QtWidgets.QWidget, area) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _make_inputs(self, kind: str) -> ParameterInputs:
        from labctl.parameter_limits import station_limits
        from labctl.procedures import procedure_class

        inputs = ParameterInputs(procedure_class(kind))
        inputs.limit_to(station_limits(self.station_name))
        inputs.set_value("station_file", self.station_name)
        inputs.station_file.setEnabled(False)  # runs use this window's station
        return inputs

    # ------------------------------------------------------------------ actions
    def queue_run(self, kind: str, **values: Any):
        """Queue ``kind`` with the entered parameters, overridden by ``values``."""
        self.kind_box.setCurrentText(kind)
        inputs = self.inputs[kind]
        for name, value in values.items():
            inputs.set_value(name, value)
        return self.queue_current()

    def queue_current(self):
        kind = self.kind_box.currentText()
        try:
            values = self.inputs[kind].values()
        except ValueError as exc:
            self.say(f"{kind}: {exc}", True, source="inputs")
            return None
        values["station_file"] = self.station_name
        request = self.queue.submit(kind, values)
        self.say(f"queued {request.label}", False, source="inputs")
        return request

    def abort(self) -> None:
        if self.queue.abort():
            self.say("abort requested: the run stops at the next point, then makes safe", False)
        else:
            self.say("nothing is running", False)

    def _remove_selected(self) -> None:
        item = self.queue_list.currentItem()
        if item is not None and not self.queue.remove(item.data(256)):
            self.say("only a queued run can be removed; Abort stops the running one", True)

    def say(self, text: str, error: bool = False, source: str = "window") -> None:
        """A message in the status bar and the log. An error stays visible in red until
        its cause is gone: the same ``source`` (a run, the series, the browser, the
        safety check, the inputs) reports success, which clears it."""
        (log.error if error else log.info)("%s", text)
        self.statusBar().showMessage(text, 0 if error else 8000)
        if error:
            self.error_source = source
            self.error_label.setText(text[:200])
            self.error_label.setStyleSheet("color: #d62728; font-weight: bold")
        elif source == getattr(self, "error_source", None):
            self.error_source = None
            self.error_label.setText("")
            self.error_label.setStyleSheet("")
            self.statusBar().showMessage(text, 8000)

    def _log_record(self, text: str, level: int) -> None:
        self.log_view.appendPlainText(text)
        if level >= logging.ERROR:
            self.log_view.moveCursor(QtGui.QTextCursor.End)

    # ------------------------------------------------------------------ run signals
    def _on_started(self, request) -> None:
        self._current_kind = request.kind
        self._run_clock0 = self.station.clock.now()
        self.progress.setValue(0)
        self.phase_label.setText(f"{request.label}: started → {Path(request.data_file).name}")
        self.safety_label.setText("")
        if request.kind == "optp":
            self.optp.clear()
        elif request.kind == "tds":
            from labctl.procedures.tds import parse_target

            self.waveform.clear()
            self.conductivity.clear()
            try:
                self.fit_panel.clear(parse_target(request.values.get("target")))
            except Exception:
                self.fit_panel.clear()
        elif request.kind == "absorption":
            self.absorption.clear()
        for panel in self._panels_of(request.kind):
            panel.show_source(f"live: {request.label} → {Path(request.data_file).name}")
        self.tabs.setCurrentIndex(self._tab_index(TAB_OF_KIND.get(request.kind, "Furnace")))
        self._show_queue()

    def _panels_of(self, kind: str) -> list:
        """The plot panels a run of ``kind`` draws in."""
        return {
            "anneal": [self.furnace],
            "optp": [self.optp],
            "tds": [self.waveform, self.conductivity],
            "absorption": [self.absorption],
        }.get(kind, [])

    def _tab_index(self, name: str) -> int:
        for i in range(self.tabs.count()):
            if self.tabs.tabText(i) == name:
                return i
        return 0

    def _on_emit(self, request, topic: str, record) -> None:
        kind = request.kind
        if topic == "results":
            if kind == "optp":
                self.optp.add_row(record)
            elif kind == "tds":
                self.waveform.add_row(record)
            elif kind == "anneal" and self._run_clock0 is not None:
                self.furnace.add(
                    self._run_clock0 + float(record["elapsed_s"]),
                    record["temperature_c"],
                    record["working_setpoint_c"],
                    record["output_percent"],
                )
            elif kind == "absorption":
                self.absorption.add_row(record)
        elif topic == "batch results" and kind == "absorption":
            self.absorption.add_batch(record)
        elif topic == "fit":
            if kind == "optp":
                self.optp.set_fit(record)
            elif kind == "tds":
                self.fit_panel.set_record(record)
        elif topic == "progress":
            self.progress.setValue(int(10 * float(record)))
        elif topic == "phase":
            self.phase_label.setText(f"{request.label}: {record}")

    def _on_fit_update(self, _request, update) -> None:
        self.conductivity.set_update(update)

    def _on_finished(self, request, outcome) -> None:
        from labctl.procedures import procedure_class

        self.outcomes[request.id] = outcome
        if request.kind == "absorption":
            self.absorption.set_results(outcome.results)
        try:
            line = procedure_class(request.kind).summary_line(outcome.results)
        except Exception:
            line = request.kind
        if outcome.status == FINISHED:
            warnings = run_warnings(outcome.results)
            self.progress.setValue(1000)
            self.phase_label.setText(f"{request.label}: {finished_text(warnings)} — {line}")
            self.phase_label.setStyleSheet("color: #ef6c00" if warnings else "")
            if request.kind == "tds" and outcome.results.get("stopped_because"):
                self.fit_panel.status.setText(outcome.results["stopped_because"])
            self.say(f"{request.label} {finished_text(warnings)}: {line}", False, source="run")
        elif outcome.ending is Ending.IN_USE:  # refused: name the holder, nothing was touched
            self.phase_label.setText(
                f"{request.label}: refused, nothing touched — {outcome.message}"
            )
            self.phase_label.setStyleSheet("color: #ef6c00")
            self.say(f"{request.label} refused: {outcome.message}", True, source="run")
        else:
            self.phase_label.setText(f"{request.label}: {outcome.status} — {outcome.message}")
            self.phase_label.setStyleSheet("")
            self.say(
                f"{request.label} {outcome.status}: {outcome.message}",
                outcome.status == FAILED,
                source="run",
            )
        self.browser.refresh()
        self._show_queue()

    def _on_safety(self, safe: bool, message: str) -> None:
        self.safety_label.setText(message)
        self.safety_label.setStyleSheet(
            "color: #2ca02c" if safe else "background: #d62728; color: white; font-weight: bold"
        )
        self.say(message, not safe, source="safety")

    def _show_queue(self) -> None:
        self.queue_list.clear()
        current = self.queue.current
        rows = ([current] if current is not None else []) + list(self.queue.pending)
        for r in rows:
            item = QtWidgets.QListWidgetItem(f"{r.label} — {r.state}")
            item.setData(256, r.id)
            self.queue_list.addItem(item)

    # ------------------------------------------------------------------ monitor
    def _on_readings(self, readings: dict) -> None:
        self.instruments.show_readings(readings)
        furnace = readings.get("furnace") or {}
        if furnace.get("ok"):
            self.furnace.add(
                readings["clock_s"], furnace["pv_c"], furnace["wsp_c"], furnace["op_percent"]
            )
        if self.instruments.interlock != self._interlock:
            self._interlock = self.instruments.interlock
            if self._interlock:
                self.say(f"INTERLOCK: {self._interlock}", True, source="interlock")
            else:
                self.say("interlock cleared", False, source="interlock")

    # ------------------------------------------------------------------ reopened runs
    def show_run(self, run: dict) -> None:
        """Show a reopened run (``browser.load_run``) in its panels."""
        kind, data, summary = run["kind"], run["data"], run["summary"]
        results = summary.get("results") or {}
        n = len(next(iter(data.values()))) if data else 0
        rows = [{k: v[i] for k, v in data.items()} for i in range(n)]
        if kind == "optp":
            self.optp.clear()
            for row in rows:
                self.optp.add_row(row)
            if results.get("fit") or results.get("optp_peak"):
                self.optp.set_fit(
                    {
                        "sweeps": results.get("sweeps"),
                        "optp_peak": results.get("optp_peak"),
                        "absorbed_photons_m2": results.get("absorbed_photons_m2"),
                        "decay": results.get("fit"),
                        "error": results.get("fit_error"),
                    }
                )
        elif kind == "tds":
            self.waveform.clear()
            self.conductivity.clear()
            self.fit_panel.clear(results.get("target") or {})
            for row in rows:
                self.waveform.add_row(row)
            update = run.get("update")
            if update is not None:
                self.conductivity.set_update(update)
                self.fit_panel.set_record(update.to_dict())
            if results.get("stopped_because"):
                self.fit_panel.status.setText(results["stopped_because"])
        elif kind == "absorption":
            self.absorption.clear()
            self.absorption.add_batch(
                {"wavelength_nm": data["wavelength_nm"], "absorbance": data["absorbance"]}
            )
            self.absorption.set_results(results)
        elif kind == "anneal":
            self.furnace.data.clear()
            for row in rows:
                self.furnace.add(
                    float(row["elapsed_s"]),
                    row["temperature_c"],
                    row["working_setpoint_c"],
                    row["output_percent"],
                )
        for panel in self._panels_of(kind):
            panel.show_source(f"file: {Path(run['path']).name}")
        self.tabs.setCurrentIndex(self._tab_index(TAB_OF_KIND.get(kind, "Furnace")))
        self.say(
            f"opened {Path(run['path']).name} ({summary.get('status', 'no summary')})",
            source="browser",
        )
        self.redraw_all()

    # ------------------------------------------------------------------ drawing & closing
    def redraw(self) -> None:
        """Redraw the changed panels on the visible tab (others when shown)."""
        page = self.tabs.currentWidget()
        for panel in self.panels:
            if panel.dirty and (panel is page or page.isAncestorOf(panel)):
                panel.redraw()

    def redraw_all(self) -> None:
        for panel in self.panels:
            panel.redraw()

    def shutdown(self, timeout_s: float | None = None) -> None:
        """Abort a run and wait for its safe state, stop a series process and wait for it to
        exit (its own safe state), stop the monitor. ``timeout_s`` None: as long as it takes."""
        if self._closed:
            return
        self._closed = True
        self.timer.stop()
        self.queue.close(timeout_s)
        self.monitor.stop()
        self.series.close_view()
        logging.getLogger("labctl").removeHandler(self.log_bridge)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if self.queue.busy or self.series.running:
            answer = QtWidgets.QMessageBox.question(
                self,
                "labctl",
                "A measurement or series is running. Abort it (safe state) and quit?",
            )
            if answer != QtWidgets.QMessageBox.Yes:
                event.ignore()
                return
        self.shutdown()
        event.accept()
