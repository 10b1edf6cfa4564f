"""The instrument panel: connection state and key readings, and the interlock banner."""

from __future__ import annotations

from typing import Any

from qtpy import QtCore, QtWidgets

OK_STYLE = "color: #2ca02c; font-weight: bold"
BAD_STYLE = "color: #d62728; font-weight: bold"
TRIP_STYLE = "background: #d62728; color: white; font-weight: bold; padding: 6px"


def _fmt(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if key.endswith("_c"):
            return f"{value:.1f} °C"
        if key.endswith("_percent"):
            return f"{value:.1f} %"
        if key.endswith("_ps"):
            return f"{value:.3f} ps"
        if key.endswith("_mm"):
            return f"{value:.3f} mm"
        if key.endswith("_w"):
            return f"{value * 1e3:.3g} mW"
        if key.endswith("_v"):
            return f"{value:.3g} V"
        if key.endswith("_s"):
            return f"{value:.3g} s"
        return f"{value:.4g}"
    return str(value)


#: What the panel shows per instrument, in order (reading key → label).
LABELS = {
    "pv_c": "PV",
    "sp_c": "SP",
    "wsp_c": "working SP",
    "op_percent": "OP",
    "program": "program",
    "segment": "segment",
    "manual": "manual",
    "sensitivity_v": "sensitivity",
    "time_constant_s": "time constant",
    "r_v": "R",
    "over_range": "over range",
    "power_w": "pump power",
    "model": "model",
    "integration_s": "integration",
}


class InstrumentPanel(QtWidgets.QWidget):
    """One row per instrument: state, then its readings; a red banner on an interlock trip."""

    def __init__(self, roles, parent=None) -> None:
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        self.banner = QtWidgets.QLabel("")
        self.banner.setStyleSheet(TRIP_STYLE)
        self.banner.setWordWrap(True)
        self.banner.hide()
        layout.addWidget(self.banner)
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["instrument", "state / reading"])
        self.tree.setRootIsDecorated(False)
        self.tree.setColumnWidth(0, 150)
        self.tree.setMinimumWidth(330)
        layout.addWidget(self.tree)
        self.rows: dict[str, QtWidgets.QTreeWidgetItem] = {}
        for role in roles:
            item = QtWidgets.QTreeWidgetItem([role, "…"])
            self.tree.addTopLevelItem(item)
            item.setExpanded(True)
            self.rows[role] = item
        self.tree.setRootIsDecorated(True)
        self.interlock = ""
        self.last: dict[str, Any] = {}

    def show_readings(self, readings: dict[str, Any]) -> None:
        self.last = readings
        trips = []
        for role, item in self.rows.items():
            reading = readings.get(role)
            if reading is None:
                continue
            label = self.tree.itemWidget(item, 1)
            if label is None:
                label = QtWidgets.QLabel()
                self.tree.setItemWidget(item, 1, label)
            if reading.get("ok"):
                label.setText("connected")
                label.setStyleSheet(OK_STYLE)
            else:
                label.setText(f"no answer: {reading.get('error')}")
                label.setStyleSheet(BAD_STYLE)
                label.setToolTip(reading.get("error", ""))
            self._show_values(item, role, reading)
            if reading.get("interlock"):
                trips.append(reading["interlock"])
        self.interlock = "; ".join(trips)
        if trips:
            self.banner.setText("INTERLOCK TRIPPED — " + self.interlock)
            self.banner.show()
        else:
            self.banner.hide()

    def _show_values(self, item: QtWidgets.QTreeWidgetItem, role: str, reading: dict) -> None:
        values = {k: v for k, v in reading.items() if k not in ("ok", "error", "interlock")}
        keys = [k for k in LABELS if k in values] + [k for k in values if k not in LABELS]
        while item.childCount() > len(keys):
            item.removeChild(item.child(item.childCount() - 1))
        for i, key in enumerate(keys):
            child = item.child(i) if i < item.childCount() else None
            if child is None:
                child = QtWidgets.QTreeWidgetItem(item)
            child.setText(0, LABELS.get(key, key.replace("_", " ")))
            child.setText(1, _fmt(key, values[key]))
            bad = key == "over_range" and values[key]
            child.setForeground(1, QtCore.Qt.red if bad else QtCore.Qt.black)
        item.setExpanded(True)

    def value(self, role: str, key: str):
        """The last reading (tests)."""
        return (self.last.get(role) or {}).get(key)
