"""Render the main window during a TDS run to a PNG (docs/gui.png), offscreen.

The bundled simulated station runs in-process on virtual time; the film in slot 1
is annealed at 300 °C first, then an OPTP and a TDS run are queued from the GUI
as an operator would. The window is grabbed once the TDS
live fit has averaged ``--sweeps`` sweeps, while the run is still going.

    python scripts/render_gui.py [--out docs/gui.png] [--sweeps 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/gui.png")
    parser.add_argument("--sweeps", type=int, default=4, help="grab after this many TDS sweeps")
    parser.add_argument("--timeout", type=float, default=240.0, help="give up after (wall s)")
    args = parser.parse_args()

    from qtpy import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    from labctl.gui.window import MainWindow

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from sim_furnace import annealed_station  # the test side's annealed film (slot 1, 300 °C)

    station = annealed_station(300.0, slot=1)
    with tempfile.TemporaryDirectory() as data:
        window = MainWindow(station, data_dir=data, monitor_interval_s=0.5)
        window.resize(1600, 1000)
        window.show()
        optp = window.queue_run("optp", sweeps=2, sample_id="NPL-4ML 300C")
        tds = window.queue_run(
            "tds", max_sweeps=12, target="tau_fs_err=0.1", sample_id="NPL-4ML 300C"
        )
        deadline = time.monotonic() + args.timeout
        grabbed = False
        while time.monotonic() < deadline:
            app.processEvents()
            fit = window.fit_panel.labels["sweeps"].text()
            if tds.state == "running" and fit.isdigit() and int(fit) >= args.sweeps:
                window.tabs.setCurrentIndex(window._tab_index("Δσ(ω)"))
                window.redraw_all()
                app.processEvents()
                window.grab().save(args.out)
                grabbed = True
                break
            if tds.id in window.outcomes:
                break
            time.sleep(0.02)
        window.shutdown()
        station.close()
    if not grabbed:
        print(
            f"render_gui: no TDS fit of {args.sweeps} sweeps in time ({optp.state}, {tds.state}: "
            f"{tds.message})",
            file=sys.stderr,
        )
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
