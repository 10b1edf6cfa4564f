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


def headline(kind: str, results: dict[str, Any] | None) -> str:
    """The run's one-line result, as ``labctl run`` prints it ('' when there is none)."""
    from labctl.procedures import procedure_class

    if not results:
        return ""
    try:
        return procedure_class(kind).summary_line(results)
    except Exception:  # an old or partial summary: no headline rather than no list
        return ""


def run_status(status: str, results: dict[str, Any] | None) -> str:
    """'finished', 'finished with warnings: …', or the status as recorded."""
    from labctl.run_warnings import finished_text, run_warnings

    return finished_text(run_warnings(results)) if status == "finished" else status


def list_runs(directory: str | Path) -> list[dict[str, Any]]:
    """Run files in ``directory``, newest first: path, kind, sample, status, headline."""
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
        results = doc.get("results") if isinstance(doc.get("results"), dict) else {}
        entry["status"] = run_status(doc.get("status", "no summary"), results)
        entry["sample"] = str((doc.get("parameters") or {}).get("sample_id") or "")
        entry["result"] = (
            headline(entry["kind"], results) if doc.get("status") == "finished" else ""
        )
        entry["points"] = doc.get("points")
        entry["message"] = doc.get("message", "")
        entry["when"] = time.strftime("%Y-%m-%d %H:%M", time.localtime(csv.stat().st_mtime))
        runs.append(entry)
    return runs


def list_series(directories) -> list[dict[str, Any]]:
    """Series directories (each with ``catalog.sqlite``), newest first: name, state (with
    warnings), and each step's kind, sample, temperature, state, result and run file.
    Catalogs are opened read-only (a running series is never disturbed)."""
    from labctl.gui.series_view import step_note
    from labctl.run_warnings import finished_text, series_warnings
    from labctl.series.catalog import Catalog
    from labctl.series.states import SeriesState

    out = []
    seen = set()
    for directory in directories:
        directory = Path(directory)
        catalog_file = directory / "catalog.sqlite"
        if directory.resolve() in seen or not catalog_file.is_file():
            continue
        seen.add(directory.resolve())
        try:
            with Catalog.read_only(directory) as catalog:
                series, steps = catalog.series() or {}, catalog.steps()
        except Exception as exc:  # one unreadable catalog does not hide the others
            log.warning("series in %s: %s", directory, exc)
            continue
        state = series.get("state", "?")
        if state in (SeriesState.DONE, SeriesState.DONE_WITH_FAILURES):
            state = finished_text(series_warnings(series, steps))
        out.append({
            "dir": str(directory),
            "name": series.get("name", directory.name),
            "state": state,
            "when": time.strftime("%Y-%m-%d %H:%M", time.localtime(catalog_file.stat().st_mtime)),
            "steps": [
                {
                    "path": s.get("run_file") or "",
                    "kind": s.get("kind", ""),
                    "sample": str(s.get("sample_id") or ""),
                    "temperature_c": s.get("temperature_c"),
                    "state": s.get("state", ""),
                    "result": step_note(s),
                }
                for s in steps
            ],
        })  # fmt: skip
    out.sort(key=lambda d: d["when"], reverse=True)
    return out


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

    COLUMNS = ("run file", "kind", "sample", "status", "result", "rows", "when")

    def __init__(self, directory: str | Path, parent=None) -> None:
        super().__init__(parent)
        self.directory = Path(directory)
        self.series_dirs: list[Path] = []  # series started or watched from this GUI
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setHeaderLabels(list(self.COLUMNS))
        self.tree.setRootIsDecorated(True)
        self.tree.itemDoubleClicked.connect(self._open_item)
        refresh = QtWidgets.QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        open_button = QtWidgets.QPushButton("Open")
        open_button.clicked.connect(self._open_selected)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(refresh)
        buttons.addWidget(open_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(QtWidgets.QLabel(f"runs in {self.directory}, and series"))
        layout.addWidget(self.tree)
        layout.addLayout(buttons)
        self._loading: threading.Thread | None = None

    def add_series_dir(self, directory: str | Path) -> None:
        """List this series too (the Series view tells the browser what it runs)."""
        directory = Path(directory)
        if directory not in self.series_dirs:
            self.series_dirs.append(directory)
            self.refresh()

    def _series_candidates(self) -> list[Path]:
        below = (
            [p for p in sorted(self.directory.iterdir()) if p.is_dir()]
            if self.directory.is_dir()
            else []
        )
        return [*self.series_dirs, *below]

    def refresh(self) -> None:
        self.tree.clear()
        for run in list_runs(self.directory):
            item = QtWidgets.QTreeWidgetItem([
                Path(run["path"]).name, run["kind"], run["sample"], run["status"],
                run["result"], str(run["points"] or ""), run["when"],
            ])  # fmt: skip
            item.setData(0, 256, run["path"])  # Qt.UserRole
            item.setToolTip(3, run["message"] or run["status"])
            self.tree.addTopLevelItem(item)
        for series in list_series(self._series_candidates()):
            top = QtWidgets.QTreeWidgetItem([
                f"series {series['name']} ({Path(series['dir']).name})", "series", "",
                series["state"], f"{len(series['steps'])} steps", "", series["when"],
            ])  # fmt: skip
            top.setToolTip(0, series["dir"])
            for step in series["steps"]:
                t = step["temperature_c"]
                where = "as made" if t is None else f"{t:g} °C"
                child = QtWidgets.QTreeWidgetItem([
                    Path(step["path"]).name if step["path"] else "—",
                    f"{step['kind']} ({where})", step["sample"], step["state"],
                    step["result"], "", "",
                ])  # fmt: skip
                child.setData(0, 256, step["path"] or None)
                top.addChild(child)
            self.tree.addTopLevelItem(top)
        for col in range(len(self.COLUMNS)):
            self.tree.resizeColumnToContents(col)

    def series_items(self) -> list[QtWidgets.QTreeWidgetItem]:
        """The top-level series entries (tests)."""
        items = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        return [it for it in items if it.text(1) == "series"]

    def _open_item(self, item, _column) -> None:
        path = item.data(0, 256)
        if path:
            self.open(path)

    def _open_selected(self) -> None:
        item = self.tree.currentItem()
        if item is not None and item.data(0, 256):
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
