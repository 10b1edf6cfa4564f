"""The browser of past runs: run files in the data directory, reopened off the GUI thread.

A run is its pymeasure Results CSV and the ``.json`` run summary beside it
(:func:`labctl.runs.summary_path`). Reopening reads both in a thread; a TDS run's
Δσ(ω) and fit are recomputed from its complete sweeps by the one TDS analysis
(:func:`labctl.analysis.tds_analysis.analyze_tds_run_file`), so the panels show the
numbers of the run summary and of ``labctl analyze tds``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from qtpy import QtCore, QtWidgets

from labctl.errors import DataFileError, LabctlError
from labctl.runs import summary_path

log = logging.getLogger(__name__)


def list_runs(directory: str | Path) -> list[dict[str, Any]]:
    """Run files in ``directory``, newest first: path, kind, status, summary line."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    runs = []
    for csv in sorted(directory.glob("*.csv"), key=lambda p: p.stat().st_mtime, reverse=True):
        entry: dict[str, Any] = {"path": str(csv), "kind": csv.name.split("_", 1)[0]}
        summary = summary_path(csv)
        try:
            doc = json.loads(summary.read_text())
        except (OSError, ValueError):
            doc = {}
        entry["status"] = doc.get("status", "no summary")
        entry["points"] = doc.get("points")
        entry["message"] = doc.get("message", "")
        entry["when"] = time.strftime("%Y-%m-%d %H:%M", time.localtime(csv.stat().st_mtime))
        runs.append(entry)
    return runs


def load_run(path: str | Path) -> dict[str, Any]:
    """A run's data (column → array), summary and, for TDS, the recomputed live-fit update."""
    from pymeasure.experiment import Results

    path = Path(path)
    try:
        results = Results.load(str(path))
        frame = results.data
    except Exception as exc:
        raise DataFileError(f"{path}: not a readable run file: {exc}") from None
    data = {col: frame[col].to_numpy() for col in frame.columns}
    try:
        summary = json.loads(summary_path(path).read_text())
    except (OSError, ValueError):
        summary = {}
    kind = getattr(results.procedure, "KIND", "") or path.name.split("_", 1)[0]
    out = {"path": str(path), "kind": kind, "data": data, "summary": summary, "update": None}
    if kind == "tds" and data.get("sweep") is not None and len(data["sweep"]):
        out["update"] = refit_tds(path)
    return out


def refit_tds(path: str | Path):
    """A TDS run's analysis as a live-fit update (for the panels): the one analysis of
    :func:`labctl.analysis.tds_analysis.analyze_tds_run_file` — the numbers of
    ``labctl analyze tds`` and of the run summary — or an error update."""
    from labctl.analysis.io import load_tds_csv
    from labctl.analysis.tds_analysis import analyze_tds_run_file
    from labctl.errors import AnalysisError
    from labctl.livefit import LiveFitUpdate, update_from_analysis

    try:
        data = load_tds_csv(path)
        analysis = analyze_tds_run_file(path)
    except AnalysisError as exc:
        return LiveFitUpdate(0, 0, 0, None, None, None, None, None, None, 0.0, error=str(exc))
    return update_from_analysis(
        analysis, n_sweeps=data.n_sweeps, n_points=int(data.time_ps.size * data.n_sweeps)
    )


class RunBrowser(QtWidgets.QWidget):
    """Past runs of the data directory; double-click (or Open) reopens one."""

    loaded = QtCore.Signal(object)  # the load_run dict
    message = QtCore.Signal(str, bool)

    def __init__(self, directory: str | Path, parent=None) -> None:
        super().__init__(parent)
        self.directory = Path(directory)
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setHeaderLabels(["run file", "status", "rows", "when"])
        self.tree.setRootIsDecorated(False)
        self.tree.itemDoubleClicked.connect(lambda item, _col: self.open(item.data(0, 256)))
        refresh = QtWidgets.QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        open_button = QtWidgets.QPushButton("Open")
        open_button.clicked.connect(self._open_selected)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(refresh)
        buttons.addWidget(open_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(QtWidgets.QLabel(f"runs in {self.directory}"))
        layout.addWidget(self.tree)
        layout.addLayout(buttons)
        self._loading: threading.Thread | None = None

    def refresh(self) -> None:
        self.tree.clear()
        for run in list_runs(self.directory):
            item = QtWidgets.QTreeWidgetItem(
                [Path(run["path"]).name, run["status"], str(run["points"] or ""), run["when"]]
            )
            item.setData(0, 256, run["path"])  # Qt.UserRole
            item.setToolTip(1, run["message"] or run["status"])
            self.tree.addTopLevelItem(item)
        for col in range(4):
            self.tree.resizeColumnToContents(col)

    def _open_selected(self) -> None:
        item = self.tree.currentItem()
        if item is not None:
            self.open(item.data(0, 256))

    def open(self, path: str | Path) -> None:
        """Load ``path`` in a thread; ``loaded`` carries it, ``message`` any error."""

        def work() -> None:
            try:
                self.loaded.emit(load_run(path))
            except LabctlError as exc:
                self.message.emit(str(exc), True)
            except Exception as exc:
                log.exception("opening %s", path)
                self.message.emit(f"{path}: unexpected {type(exc).__name__}: {exc}", True)

        self.message.emit(f"opening {Path(path).name}…", False)
        self._loading = threading.Thread(target=work, name="labctl-gui-open", daemon=True)
        self._loading.start()
