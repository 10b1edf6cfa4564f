"""Render the GUI's Series tab while a real series runs, and Past runs listing it
(docs/gui-series.png), offscreen.

The GUI opens the bundled simulated station as ``labctl gui --time-scale 600`` does
(its simulators served on loopback, so the series process shares their world), loads
``plans/demo.yaml`` in the Series view and starts it; the window is grabbed once
``--steps`` steps have ended and the next is running (progress, ETA, step table), and
the series is then stopped (SIGTERM, as the Stop button does).

    python scripts/render_gui_series.py [--out docs/gui-series.png] [--steps 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/gui-series.png")
    parser.add_argument("--steps", type=int, default=3, help="grab after this many steps ended")
    parser.add_argument("--time-scale", type=float, default=600.0)
    parser.add_argument("--timeout", type=float, default=420.0, help="give up after (wall s)")
    args = parser.parse_args()

    from qtpy import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    from labctl.gui.app import open_station
    from labctl.gui.window import MainWindow

    grabbed = False
    with tempfile.TemporaryDirectory() as data:
        opened = open_station("sim", args.time_scale, data)
        try:
            window = MainWindow(
                opened.station,
                station_name=opened.name,
                data_dir=data,
                time_scale=str(opened.time_scale),
                monitor_interval_s=1.0,
            )
            window.resize(1600, 1000)
            window.show()
            view = window.series
            view.load_plan(ROOT / "plans" / "demo.yaml")
            view.out_edit.setText(str(Path(data) / "demo-series"))
            view.start()
            window.tabs.setCurrentIndex(window._tab_index("Series"))
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                app.processEvents()
                p = view.progress
                if p is not None and p.done >= args.steps and p.running_idx is not None:
                    time.sleep(1.5)  # a poll or two: the step bar moves off zero
                    for _ in range(50):
                        app.processEvents()
                        time.sleep(0.02)
                    window.browser.refresh()
                    window.browser.tree.expandAll()
                    for col in range(window.browser.tree.columnCount()):
                        window.browser.tree.resizeColumnToContents(col)
                    for dock in window.findChildren(QtWidgets.QDockWidget):
                        if dock.objectName() == "Past runs":
                            dock.raise_()
                    window.redraw_all()
                    app.processEvents()
                    window.grab().save(args.out)
                    grabbed = True
                    break
                if not view.running and view.last is not None:
                    break
                time.sleep(0.05)
            view.stop()
            if view.process is not None:
                view.process.waitForFinished(60_000)
            window.shutdown()
        finally:
            opened.close()
    if not grabbed:
        print(f"render_gui_series: the series did not reach {args.steps} steps", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
