"""The series view: a plan's steps and their state from the series catalog.

The catalog (``DIR/catalog.sqlite``, SQLite in WAL mode) is read by a poller
thread, opened afresh at every poll, while the series runs in its own process:
``labctl series run PLAN --out DIR [--resume] --station …`` started here with
:class:`QProcess` (the stable interface; stopping it sends SIGTERM, which the
runner treats like Ctrl-C: it stops between points and makes the instruments safe).
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

from qtpy import QtCore, QtGui, QtWidgets

from labctl.errors import LabctlError
from labctl.gui.series_progress import series_progress
from labctl.run_warnings import finished_text, series_warnings
from labctl.series.states import SeriesState, StepState

log = logging.getLogger(__name__)

ENDED_DONE = (SeriesState.DONE, SeriesState.DONE_WITH_FAILURES)
COLUMNS = ("#", "step", "T (°C)", "slot", "sample", "state", "attempts", "started", "ended", "note")
STATE_COLOURS = {  # the catalog's step states (labctl.series.states.StepState), + planned
    StepState.PENDING: "#7f7f7f",
    "planned": "#7f7f7f",  # a step of a plan not started yet (no catalog)
    StepState.RUNNING: "#1f77b4",
    StepState.DONE: "#2ca02c",
    StepState.FAILED: "#d62728",
    StepState.SKIPPED: "#ff7f0e",
}


def read_catalog(directory: str | Path) -> dict[str, Any]:
    """The series, its steps and its events from ``DIR/catalog.sqlite`` (LabctlError if none)."""
    from labctl.series.catalog import Catalog

    with Catalog.in_directory(directory) as catalog:
        return {"series": catalog.series(), "steps": catalog.steps(), "events": catalog.events()}


def step_note(step: dict[str, Any]) -> str:
    """What to say about a step: its message, or a short result."""
    if step.get("message"):
        return str(step["message"])
    results = step.get("results") or {}
    if not isinstance(results, dict):
        return ""
    fit = results.get("fit") if isinstance(results.get("fit"), dict) else None
    if fit and fit.get("tau_fs") is not None:
        return f"τ {fit['tau_fs']:.3g} fs, c {fit.get('c', float('nan')):.2f}"
    if results.get("hh_nm") is not None:
        return f"HH {results['hh_nm']:.1f} nm"
    if results.get("max_pv_c") is not None:
        return f"max PV {results['max_pv_c']:.1f} °C"
    return ""


class CatalogPoller(QtCore.QObject):
    """Reads the catalog of a directory every ``interval_s`` in a thread."""

    polled = QtCore.Signal(object)  # the read_catalog dict
    failed = QtCore.Signal(str)

    def __init__(self, interval_s: float = 1.0, parent=None) -> None:
        super().__init__(parent)
        self.interval_s = interval_s
        self.directory: Path | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="labctl-gui-catalog", daemon=True)
        self._thread.start()

    def watch(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory else None
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)

    def _loop(self) -> None:
        last_error = None
        while not self._stop.is_set():
            directory = self.directory
            if directory is not None:
                try:
                    self.polled.emit(read_catalog(directory))
                    last_error = None
                except LabctlError as exc:
                    if str(exc) != last_error:
                        self.failed.emit(str(exc))
                    last_error = str(exc)
                except Exception as exc:
                    log.exception("reading the series catalog")
                    self.failed.emit(f"unexpected {type(exc).__name__}: {exc}")
            self._wake.wait(self.interval_s)
            self._wake.clear()


class SeriesView(QtWidgets.QWidget):
    """Load a plan, start or resume it, watch its steps, open its report."""

    message = QtCore.Signal(str, bool)  # text, is_error
    watching = QtCore.Signal(str)  # a series directory now followed (Past runs lists it)
    process_ended = QtCore.Signal()

    def __init__(self, station_name: str, time_scale: str | None = None, parent=None) -> None:
        super().__init__(parent)
        self.station_name = station_name
        self.time_scale = time_scale
        self.process: QtCore.QProcess | None = None
        self.last: dict[str, Any] | None = None
        self.progress = None  # the last SeriesProgress shown
        self.last_plan_changes = None  # the last PlanChanges shown on Resume

        self.plan_edit = QtWidgets.QLineEdit()
        self.plan_edit.setPlaceholderText("plan.yaml")
        self.out_edit = QtWidgets.QLineEdit()
        self.out_edit.setPlaceholderText("series directory (catalog, run files, report)")
        plan_button = QtWidgets.QPushButton("Load plan…")
        plan_button.clicked.connect(self._choose_plan)
        out_button = QtWidgets.QPushButton("Directory…")
        out_button.clicked.connect(self._choose_out)
        self.start_button = QtWidgets.QPushButton("Start")
        self.start_button.clicked.connect(lambda: self.start(resume=False))
        self.resume_button = QtWidgets.QPushButton("Resume")
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.report_button = QtWidgets.QPushButton("Make report")
        self.report_button.clicked.connect(self.make_report)
        self.open_button = QtWidgets.QPushButton("Open report")
        self.open_button.clicked.connect(self.open_report)

        grid = QtWidgets.QGridLayout()
        grid.addWidget(QtWidgets.QLabel("plan"), 0, 0)
        grid.addWidget(self.plan_edit, 0, 1)
        grid.addWidget(plan_button, 0, 2)
        grid.addWidget(QtWidgets.QLabel("out"), 1, 0)
        grid.addWidget(self.out_edit, 1, 1)
        grid.addWidget(out_button, 1, 2)
        buttons = QtWidgets.QHBoxLayout()
        for b in (
            self.start_button,
            self.resume_button,
            self.stop_button,
            self.report_button,
            self.open_button,
        ):
            buttons.addWidget(b)
        self.state_label = QtWidgets.QLabel("no series")
        self.state_label.setWordWrap(True)
        self.series_bar = QtWidgets.QProgressBar()
        self.series_bar.setRange(0, 1000)
        self.series_bar.setFormat("series: no steps")
        self.step_bar = QtWidgets.QProgressBar()
        self.step_bar.setRange(0, 1000)
        self.step_bar.setFormat("step: —")
        self.eta_label = QtWidgets.QLabel("")
        self.eta_label.setWordWrap(True)
        #: asks the operator (title, question, details) → bool; tests replace it
        self.confirm = self._ask
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.events = QtWidgets.QPlainTextEdit()
        self.events.setReadOnly(True)
        self.events.setMaximumBlockCount(5000)
        split = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.events)
        split.setStretchFactor(0, 3)

        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addLayout(buttons)
        layout.addWidget(self.state_label)
        bars = QtWidgets.QHBoxLayout()
        bars.addWidget(self.series_bar, 2)
        bars.addWidget(self.step_bar, 1)
        layout.addLayout(bars)
        layout.addWidget(self.eta_label)
        layout.addWidget(split, 1)

        self.poller = CatalogPoller(parent=self)
        self.poller.polled.connect(self.show_catalog)
        self.poller.failed.connect(self._catalog_failed)
        self.out_edit.editingFinished.connect(lambda: self.watch(self.out_edit.text()))
        self._update_buttons()

    # ------------------------------------------------------------------ plan & catalog
    def _choose_plan(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Series plan", "", "Plans (*.yaml *.yml)"
        )
        if path:
            self.load_plan(path)

    def _choose_out(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Series directory")
        if path:
            self.watch(path)

    def load_plan(self, path: str | Path) -> bool:
        """Show a plan's steps (state 'planned') until a catalog says more; errors are shown."""
        from labctl.series.plan import load_plan

        self.plan_edit.setText(str(path))
        try:
            plan = load_plan(path)
        except LabctlError as exc:
            self.message.emit(f"plan: {exc}", True)
            self.state_label.setText(f"plan not loaded: {exc}")
            return False
        if self.last is None:
            steps = [
                {
                    "idx": s.index,
                    "kind": s.kind,
                    "temperature_c": s.temperature_c,
                    "slot": s.slot,
                    "sample_id": s.sample_id,
                    "state": "planned",
                    "attempts": 0,
                }
                for s in plan.steps
            ]
            self._fill(steps)
            self.state_label.setText(f"plan {plan.name}: {len(steps)} steps, not started")
        self.message.emit(f"plan {plan.name} loaded ({len(plan.steps)} steps)", False)
        self._update_buttons()
        return True

    def watch(self, directory: str | Path) -> None:
        """Follow the catalog in ``directory`` (polled)."""
        directory = str(directory).strip()
        self.out_edit.setText(directory)
        self.last = None
        self.poller.watch(directory or None)
        if directory:
            self.watching.emit(directory)
        self._update_buttons()

    def _catalog_failed(self, text: str) -> None:
        if self.last is None:
            self.state_label.setText(text)

    def show_catalog(self, doc: dict[str, Any]) -> None:
        self.last = doc
        series = doc.get("series") or {}
        steps = doc.get("steps") or []
        counts: dict[str, int] = {}
        for s in steps:
            counts[s.get("state") or "?"] = counts.get(s.get("state") or "?", 0) + 1
        tally = ", ".join(f"{n} {state}" for state, n in counts.items())
        state = series.get("state", "?")
        warnings = series_warnings(series, steps) if state in ENDED_DONE else []
        shown = finished_text(warnings) if state in ENDED_DONE else state
        text = f"series {series.get('name', '?')}: {shown}"
        if series.get("message"):
            text += f" ({series['message']})"
        self.state_label.setText(f"{text} — {tally}")
        self.state_label.setStyleSheet("color: #ef6c00; font-weight: bold" if warnings else "")
        self._fill(steps)
        self._show_progress(steps, state)
        lines = [
            f"{e.get('t', '')} {e.get('level', '')}"
            + (f" step {e['step']}" if e.get("step") is not None else "")
            + f": {e.get('message', '')}"
            for e in doc.get("events") or []
        ]
        if lines != getattr(self, "_event_lines", None):
            self._event_lines = lines
            self.events.setPlainText("\n".join(lines))
            self.events.moveCursor(QtGui.QTextCursor.End)
        self._update_buttons()

    def _show_progress(self, steps: list[dict[str, Any]], state: str) -> None:
        progress = series_progress(steps, self.time_scale)
        self.progress = progress
        self.series_bar.setValue(int(round(1000 * progress.fraction)))
        self.series_bar.setFormat(f"series: {progress.done}/{progress.total} steps (%p%)")
        if progress.running_idx is not None and progress.step_fraction is not None:
            self.step_bar.setValue(int(round(1000 * progress.step_fraction)))
            self.step_bar.setFormat(f"step {progress.running_idx}: %p%")
        else:
            self.step_bar.setValue(0)
            self.step_bar.setFormat("step: —")
        self.eta_label.setText(progress.text() if state == "running" else "")

    def _fill(self, steps: list[dict[str, Any]]) -> None:
        self.table.setRowCount(len(steps))
        for row, s in enumerate(steps):
            temperature = s.get("temperature_c")
            cells = (
                str(s.get("idx", row)),
                str(s.get("kind", "")),
                "as made" if temperature is None else f"{temperature:g}",
                str(s.get("slot", "")),
                str(s.get("sample_id") or ""),
                str(s.get("state", "")),
                str(s.get("attempts") or 0),
                str(s.get("started") or ""),
                str(s.get("ended") or ""),
                step_note(s),
            )
            for col, text in enumerate(cells):
                item = self.table.item(row, col)
                if item is None:
                    item = QtWidgets.QTableWidgetItem()
                    self.table.setItem(row, col, item)
                item.setText(text)
                if col == 5:
                    item.setForeground(QtGui.QColor(STATE_COLOURS.get(text, "#000000")))
        self.table.resizeColumnsToContents()  # every column readable, the note last

    def step_states(self) -> list[str]:
        """The state column as shown (tests)."""
        return [self.table.item(r, 5).text() for r in range(self.table.rowCount())]

    # ------------------------------------------------------------------ process
    def command(self, resume: bool, allow_changed_plan: bool = False) -> list[str]:
        plan, out = self.plan_edit.text().strip(), self.out_edit.text().strip()
        args = ["-m", "labctl.cli", "series", "run", plan, "--out", out]
        args += ["--station", self.station_name]
        if self.time_scale:
            args += ["--time-scale", str(self.time_scale)]
        if resume:
            args.append("--resume")
        if allow_changed_plan:
            args.append("--allow-changed-plan")
        return [sys.executable, *args, "--quiet"]

    def start(self, resume: bool = False) -> bool:
        if self.running:
            self.message.emit("a series is already running from this window", True)
            return False
        plan, out = self.plan_edit.text().strip(), self.out_edit.text().strip()
        if not plan or not out:
            self.message.emit("series: choose a plan and a directory first", True)
            return False
        allow = False
        if resume:
            decision = self._changed_plan_decision(plan, out)
            if decision is None:
                return False
            allow = decision
        what = f"series {'resume' if resume else 'run'}"
        return self._launch(self.command(resume, allow), what)

    def _changed_plan_decision(self, plan_path: str, out: str) -> bool | None:
        """Resume: False when the plan is the recorded one; when it changed, show what
        changed step by step and ask (True: resume with --allow-changed-plan); None when
        the operator declines or the change is one the runner refuses."""
        from labctl.series.plan import load_plan
        from labctl.series.plan_changes import plan_changes

        try:
            plan = load_plan(plan_path)
            doc = read_catalog(out)
        except LabctlError:
            return False  # the series process says what is wrong, as the CLI would
        recorded = doc.get("series") or {}
        if recorded.get("plan_digest") == plan.digest:
            return False
        changes = plan_changes(doc.get("steps") or [], plan)
        details = "\n".join(changes.lines) or "(no step differs; the plan file's text changed)"
        self.last_plan_changes = changes
        if changes.refused:
            self.message.emit(
                f"series: cannot resume with this plan: {changes.refused} "
                "(a changed plan may alter parameters and add steps, not reorder or remove them)",
                True,
            )
            self.events.appendPlainText("plan changes:\n" + details)
            return None
        question = (
            f"{plan_path} differs from the plan this series started with "
            f"({recorded.get('plan_digest')} → {plan.digest}):\n\n{details}\n\n"
            "Resume with the changed plan (--allow-changed-plan)? Steps already done are "
            "kept as recorded."
        )
        if not self.confirm("Resume with a changed plan?", question, details):
            self.message.emit("series: resume cancelled (the plan changed)", False)
            return None
        self.events.appendPlainText("resuming with a changed plan:\n" + details)
        return True

    def _ask(self, title: str, question: str, details: str) -> bool:
        box = QtWidgets.QMessageBox(self)
        box.setIcon(QtWidgets.QMessageBox.Question)
        box.setWindowTitle(title)
        box.setText(question)
        box.setDetailedText(details)
        box.setStandardButtons(QtWidgets.QMessageBox.Yes | QtWidgets.QMessageBox.Cancel)
        box.setDefaultButton(QtWidgets.QMessageBox.Cancel)
        return box.exec() == QtWidgets.QMessageBox.Yes

    def make_report(self) -> bool:
        out = self.out_edit.text().strip()
        if not out:
            self.message.emit("series: choose the series directory first", True)
            return False
        if self.running:
            self.message.emit("series: wait until the series process ends", True)
            return False
        return self._launch([sys.executable, "-m", "labctl.cli", "series", "report", out], "report")

    def _launch(self, command: list[str], what: str) -> bool:
        process = QtCore.QProcess(self)
        process.setProcessChannelMode(QtCore.QProcess.MergedChannels)
        process.readyReadStandardOutput.connect(lambda: self._output(process))
        process.finished.connect(lambda code, _status: self._ended(what, code))
        process.errorOccurred.connect(lambda _err: self._failed_to_start(what, process))
        self.process = process
        self.events.appendPlainText(f"$ labctl {' '.join(command[3:])}")
        process.start(command[0], command[1:])
        self.watch(self.out_edit.text())
        self.message.emit(f"{what} started", False)
        self._update_buttons()
        return True

    def _output(self, process: QtCore.QProcess) -> None:
        text = bytes(process.readAllStandardOutput()).decode(errors="replace").rstrip()
        if text:
            self.events.appendPlainText(text)

    def _failed_to_start(self, what: str, process: QtCore.QProcess) -> None:
        if process.state() == QtCore.QProcess.NotRunning:
            self.message.emit(f"{what}: {process.errorString()}", True)
            self._update_buttons()

    def _ended(self, what: str, code: int) -> None:
        ok = code == 0
        self.message.emit(f"{what} ended (exit {code})", not ok)
        self.poller.watch(self.out_edit.text() or None)
        self.process_ended.emit()
        self._update_buttons()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QtCore.QProcess.NotRunning

    def stop(self) -> None:
        """Ask the series process to stop: SIGTERM, the command line's one stop path (the
        running wait ends within a second, the furnace is made safe and read back, exit 143).
        It is never killed: the view waits for it to end (``_ended`` reports its exit)."""
        if self.running:
            self.process.terminate()
            self.message.emit("series: stop requested (safe state, then it exits)", False)

    def report_path(self) -> Path | None:
        out = self.out_edit.text().strip()
        return Path(out) / "report.html" if out else None

    def open_report(self) -> bool:
        path = self.report_path()
        if path is None or not path.exists():
            self.message.emit(f"no report at {path} yet: Make report first", True)
            return False
        QtGui.QDesktopServices.openUrl(QtCore.QUrl.fromLocalFile(str(path)))
        return True

    def _update_buttons(self) -> None:
        running = self.running
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.report_button.setEnabled(not running)

    def close_view(self, timeout_ms: int | None = None) -> None:
        """Stop the poller; a running series gets SIGTERM and is waited for — never killed,
        which would leave the furnace program running (``timeout_ms`` None: as long as its
        safe state takes)."""
        import logging

        self.poller.stop()
        if not self.running:
            return
        self.process.terminate()
        waited = 0
        while not self.process.waitForFinished(1000):
            if self.process.state() == QtCore.QProcess.NotRunning:
                break
            waited += 1000
            if timeout_ms is not None and waited >= timeout_ms:
                break
            if waited % 5000 == 0:
                logging.getLogger(__name__).warning(
                    "waiting for the series to reach its safe state"
                )


__all__ = ["SeriesView", "read_catalog"]
