"""Frames per second of the GUI's live plots with a 10 000-point trace, offscreen.

A frame is what the GUI does for a new point: append it to the panel's in-memory
buffers, redraw the panel (``setData`` from numpy views, no file read) and paint
the plot widget (``repaint``: synchronous, so the time includes rendering). The
trace is filled to ``--points - --frames`` first; the next ``--frames`` points
are then added one by one, each a frame, timed, so the rate is measured at the
full size. Panels: the THz waveform (E_ref(t) and ΔE(t) lines, running mean over
sweeps), and the OPTP plot (every point as a symbol, the mean, the decay fit).
In the GUI a timer redraws at most every 33 ms, so ≥ 30 frames/s means the plot
keeps up with any acquisition rate.

Last line: one JSON object with ``fps`` (the waveform trace), ``optp_fps``,
``points`` and ``frames``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def frame(app, panel, widget) -> None:
    """Redraw from the buffers, let the scene take the change, paint the whole view now."""
    panel.redraw()
    app.processEvents()
    widget.viewport().repaint()


def measure(app, panel, add, points: int, frames: int, widget) -> float:
    for i in range(points - frames):
        add(i)
    frame(app, panel, widget)
    start = time.perf_counter()
    for i in range(points - frames, points):
        add(i)
        frame(app, panel, widget)
    return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()

    import numpy as np
    from qtpy import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    from labctl.gui.plots import OPTPPlot, WaveformPlot

    t = np.linspace(-4.0, 12.0, args.points)
    e_ref = np.exp(-((t - 0.5) ** 2)) * np.sin(6 * t)
    waveform = WaveformPlot()
    waveform.resize(1000, 700)
    waveform.show()
    app.processEvents()
    fps = measure(
        app,
        waveform,
        lambda i: waveform.add_row(
            {"sweep": 1, "time_ps": t[i], "E_ref": e_ref[i], "dE": 1e-3 * e_ref[i]}
        ),
        args.points,
        args.frames,
        waveform.graphics,
    )
    print(f"THz waveform, {args.points} points: {fps:.1f} frames/s")

    delay = np.linspace(-2.0, 40.0, args.points)
    signal = np.where(delay > 0, np.exp(-np.clip(delay, 0, None) / 5.0), 0.0)
    optp = OPTPPlot()
    optp.resize(1000, 700)
    optp.show()
    app.processEvents()
    optp_fps = measure(
        app,
        optp,
        lambda i: optp.add_row(
            {"pump_delay_ps": delay[i], "minus_dE_over_E": 1e-3 * signal[i] + 1e-6 * (i % 7)}
        ),
        args.points,
        args.frames,
        optp.graphics,
    )
    print(f"OPTP trace (every point a symbol), {args.points} points: {optp_fps:.1f} frames/s")
    for panel in (waveform, optp):  # delete while Qt is up (PySide6 dislikes it at exit)
        panel.close()
        panel.deleteLater()
    app.processEvents()
    print(
        json.dumps(
            {
                "fps": round(fps, 1),
                "optp_fps": round(optp_fps, 1),
                "points": args.points,
                "frames": args.frames,
            }
        )
    )


if __name__ == "__main__":
    main()
