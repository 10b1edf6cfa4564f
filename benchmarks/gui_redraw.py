"""Frames per second of every live plot panel of the GUI, offscreen, at several sizes.

A frame is what the GUI does for new data: append it to the panel's in-memory
buffers, redraw the panel (``setData`` from numpy views, no file read) and paint
the plot widget once (the update Qt posts, or ``repaint`` if none was posted), so the
time includes one full rendering. Each
panel is filled to ``size - frames`` points first; the next ``frames`` points are
then added one by one, each a frame, timed, so the rate is measured at the full size.

Panels (all the GUI has; ``labctl.gui.window.MainWindow``):

- furnace: PV, setpoint and output against time, one reading a point;
- waveform: E_ref(t) and ΔE(t), the running mean over sweeps (a single sweep of
  ``size`` gate delays here: the worst case, every point its own delay);
- optp: −ΔE/E against pump delay, recorded as sweeps over a grid of 500 delays
  (alternate directions, as the OPTP procedure does); drawn as the mean ± scatter
  per delay and the latest sweep's symbols;
- absorption: an absorbance spectrum of ``size`` wavelengths, one a point;
- conductivity: a live-fit update (Re/Im Δσ with error bars and the model) per
  frame; what it draws is the fit window's frequencies, whatever ``size`` is.

In the GUI a timer redraws at most every 33 ms, so ≥ 30 frames/s keeps up with any
acquisition rate; the goal is ≥ 60 at 100 000 points. The output is a table (panel
× size); the last line is one JSON object: ``fps`` (waveform, at ``--points``),
``optp_fps``, ``furnace_fps``, ``absorption_fps``, ``conductivity_fps``,
``min_fps``, ``min_cpu_fps``, ``load_average_1min``, ``points``, ``frames``, ``table``
(fps by panel and size) and ``cpu_table`` (frames per CPU second of this process: on a
machine shared with other work, the wall rate measures the others' load as well).

    .venv/bin/python benchmarks/gui_redraw.py --points 100000
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

OPTP_GRID = 500  # pump delays per OPTP sweep


class PaintCounter:
    """Counts the paint events of a widget (an event filter), so each frame paints once."""

    def __init__(self, widget) -> None:
        from qtpy import QtCore

        class Filter(QtCore.QObject):
            def eventFilter(inner, obj, event):  # noqa: N805 (Qt's signature)
                if event.type() == QtCore.QEvent.Paint:
                    self.count += 1
                return False

        self.count = 0
        self.filter = Filter()
        widget.installEventFilter(self.filter)


def frame(app, panel, widget, painted: PaintCounter) -> None:
    """Redraw from the buffers and let Qt take the change and paint it — exactly once:
    the posted update normally paints in ``processEvents``; if it did not, paint now
    (``repaint``, synchronous), so the time always includes one full rendering."""
    before = painted.count
    panel.redraw()
    app.processEvents()
    if painted.count == before:
        widget.viewport().repaint()


def measure(app, panel, add, points: int, frames: int) -> tuple[float, float]:
    """(frames per wall second, frames per CPU second of this process)."""
    widget = panel.graphics
    painted = PaintCounter(widget.viewport())
    for i in range(points - frames):
        add(i)
    frame(app, panel, widget, painted)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(points - frames, points):
        add(i)
        frame(app, panel, widget, painted)
    return frames / (time.perf_counter() - start), frames / (time.process_time() - cpu)


def panels(np, size: int):
    """(name, make panel, add(i) for that panel) for every live plot of the GUI."""
    from labctl.gui import plots
    from labctl.livefit import LiveTDSFit
    from labctl.simulators import synthetic

    t = np.linspace(-4.0, 12.0, size)
    e_ref = np.exp(-((t - 0.5) ** 2)) * np.sin(6 * t)

    grid = np.linspace(-2.0, 40.0, OPTP_GRID)
    k = np.arange(size)
    sweep = k // OPTP_GRID
    pos = k % OPTP_GRID
    idx = np.where(sweep % 2 == 0, pos, OPTP_GRID - 1 - pos)  # alternate directions
    delay = grid[idx]
    clean = np.where(delay > 0, np.exp(-np.clip(delay, 0, None) / 5.0), 0.0)
    noisy = 1e-3 * clean + 2e-5 * np.random.default_rng(0).standard_normal(size)

    wl = np.linspace(350.0, 800.0, size)
    absorbance = 0.2 + np.exp(-(((wl - 512.0) / 8.0) ** 2))

    data = synthetic.synthetic_tds(
        tau_fs=30.0, c=-0.8, n_m3=1e24, duration_ps=20.0, n_sweeps=6,
        noise_de=1e-5, noise_ref=1e-4, rng=1,
    )  # fmt: skip
    live = LiveTDSFit(100e-9, 1.95, threaded=False)
    updates = []
    live.subscribe(updates.append)
    for s in range(data.e_ref.shape[0]):
        live.add_sweep(data.time_ps, data.e_ref[s], data.delta_e[s])
    good = [u for u in updates if u.freq_hz is not None]

    def furnace(panel, i):
        panel.add(6.0 * i, 25 + 0.003 * i, 25 + 0.003 * i, 50.0 + (i % 13))

    def waveform(panel, i):
        panel.add_row({"sweep": 1, "time_ps": t[i], "E_ref": e_ref[i], "dE": 1e-3 * e_ref[i]})

    def optp(panel, i):
        panel.add_row(
            {"sweep": int(sweep[i]) + 1, "pump_delay_ps": delay[i], "minus_dE_over_E": noisy[i]}
        )

    def absorption(panel, i):
        panel.add_row({"wavelength_nm": wl[i], "absorbance": absorbance[i]})

    def conductivity(panel, i):
        panel.set_update(good[i % len(good)])

    return [
        ("furnace", plots.FurnaceTrend, furnace),
        ("waveform", plots.WaveformPlot, waveform),
        ("optp", plots.OPTPPlot, optp),
        ("absorption", plots.AbsorptionPlot, absorption),
        ("conductivity", plots.ConductivityPlot, conductivity),
    ]


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument(
        "--sizes", default="10000,30000", help="smaller sizes for the table (comma-separated)"
    )
    args = parser.parse_args()

    import numpy as np
    from qtpy import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    sizes = sorted({int(s) for s in args.sizes.split(",") if s} | {args.points})
    sizes = [n for n in sizes if n > args.frames]
    table: dict[str, dict[str, float]] = {}
    cpu_table: dict[str, dict[str, float]] = {}
    for size in sizes:
        for name, make, add in panels(np, size):
            panel = make()
            panel.resize(1000, 700)
            panel.show()
            app.processEvents()
            fps, cpu_fps = measure(app, panel, lambda i, p=panel, a=add: a(p, i), size, args.frames)
            table.setdefault(name, {})[str(size)] = round(fps, 1)
            cpu_table.setdefault(name, {})[str(size)] = round(cpu_fps, 1)
            panel.close()
            panel.deleteLater()  # while Qt is up (PySide6 dislikes it at exit)
            app.processEvents()

    width = max(len(n) for n in table)
    for title, rows in (("wall", table), ("CPU (this process)", cpu_table)):
        print(f"frames per {title} second by panel and points recorded ({args.frames} frames):")
        print(f"  {'panel':<{width}}  " + "  ".join(f"{n:>9d}" for n in sizes))
        for name, row in rows.items():
            print(f"  {name:<{width}}  " + "  ".join(f"{row[str(n)]:9.1f}" for n in sizes))
    full = {name: row[str(args.points)] for name, row in table.items()}
    cpu_full = {name: row[str(args.points)] for name, row in cpu_table.items()}
    result = {
        "fps": full["waveform"],
        "optp_fps": full["optp"],
        "furnace_fps": full["furnace"],
        "absorption_fps": full["absorption"],
        "conductivity_fps": full["conductivity"],
        "min_fps": min(full.values()),
        "min_cpu_fps": min(cpu_full.values()),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "points": args.points,
        "frames": args.frames,
        "table": table,
        "cpu_table": cpu_table,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
