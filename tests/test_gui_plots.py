"""What the live plots draw still represents the data, however many points arrive.

The OPTP panel aggregates what it draws (mean ± scatter per delay, symbols for the latest
sweep only) so that a redraw costs the delay grid, not the points recorded
(``benchmarks/gui_redraw.py``); these tests pin down that the aggregate is the data's.
"""

import numpy as np
import pytest

pytest.importorskip("pytestqt")

N_DELAYS = 40
N_SWEEPS = 25


@pytest.fixture
def optp_rows():
    rng = np.random.default_rng(3)
    grid = np.round(np.linspace(-2.0, 30.0, N_DELAYS), 3)
    rows = []
    for s in range(N_SWEEPS):
        order = grid if s % 2 == 0 else grid[::-1]  # sweeps alternate direction
        for d in order:
            signal = (np.exp(-d / 5.0) if d > 0 else 0.0) * 1e-3 + 3e-5 * rng.standard_normal()
            rows.append({"sweep": s + 1, "pump_delay_ps": float(d), "minus_dE_over_E": signal})
    return grid, rows


def test_optp_draws_the_mean_and_scatter_per_delay_and_the_latest_sweep(qtbot, optp_rows):
    from labctl.gui.plots import OPTPPlot

    grid, rows = optp_rows
    panel = OPTPPlot()
    qtbot.addWidget(panel)
    for row in rows:
        panel.add_row(row)
    panel.redraw()

    delays = np.array([r["pump_delay_ps"] for r in rows])
    signal = np.array([r["minus_dE_over_E"] for r in rows])
    by_delay = [signal[delays == d] for d in grid]
    mean = np.array([v.mean() for v in by_delay])
    spread = np.array([v.std(ddof=1) for v in by_delay])

    x, y = panel.mean_curve.getData()
    np.testing.assert_allclose(x, grid)
    np.testing.assert_allclose(y, mean, rtol=1e-12, atol=1e-18)
    _, low = panel.band_low.getData()
    _, high = panel.band_high.getData()
    np.testing.assert_allclose(high - y, spread, rtol=1e-6)
    np.testing.assert_allclose(y - low, spread, rtol=1e-6)
    # symbols: the latest sweep's points only, as recorded
    sx, sy = panel.scatter.getData()
    latest = [r for r in rows if r["sweep"] == N_SWEEPS]
    np.testing.assert_array_equal(sx, [r["pump_delay_ps"] for r in latest])
    np.testing.assert_array_equal(sy, [r["minus_dE_over_E"] for r in latest])
    # nothing recorded is lost: every point is kept for the file view and export
    assert len(panel.points) == N_DELAYS * N_SWEEPS
    assert "1000 points" in panel.note.text()


def test_optp_without_a_sweep_column_starts_a_sweep_at_a_repeated_delay(qtbot, optp_rows):
    from labctl.gui.plots import OPTPPlot

    grid, rows = optp_rows
    panel = OPTPPlot()
    qtbot.addWidget(panel)
    for row in rows[: 3 * N_DELAYS]:
        panel.add_row({k: v for k, v in row.items() if k != "sweep"})
    panel.redraw()
    sx, _ = panel.scatter.getData()
    np.testing.assert_array_equal(sx, grid)  # the third sweep (forward) only


def test_a_new_live_fit_costs_one_paint(qtbot):
    """Auto-ranging happens with the new data, not in paint: a changed range (every new
    Δσ(ω) has one) would otherwise cost a second paint of the frame (it did, before)."""
    from qtpy import QtCore, QtWidgets

    from labctl.gui.plots import ConductivityPlot
    from labctl.livefit import LiveFitUpdate

    panel = ConductivityPlot()
    qtbot.addWidget(panel)
    panel.resize(800, 600)
    panel.show()
    paints = []

    class Count(QtCore.QObject):
        def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
            if event.type() == QtCore.QEvent.Paint:
                paints.append(1)
            return False

    counter = Count()
    panel.graphics.viewport().installEventFilter(counter)
    app = QtWidgets.QApplication.instance()
    f = np.linspace(0.3e12, 2.2e12, 40)

    def update(k):
        sigma = (1 + k) * 1e3 * (1 / (1 - 1j * f / 1e12))
        return LiveFitUpdate(
            sequence=k, n_sweeps=k, n_points=400 * k, fit=None, freq_hz=f, sigma=sigma,
            sigma_err=np.full(f.size, 50.0 / (1 + k)), model_sigma=sigma,
            noise_source="sweep-scatter", compute_ms=1.0,
        )  # fmt: skip

    counts = []
    for k in range(12):
        before = len(paints)
        panel.set_update(update(k))
        panel.redraw()
        app.processEvents()
        counts.append(len(paints) - before)
    assert max(counts[2:]) == 1 and min(counts[2:]) == 1, counts


def test_optp_note_says_a_noise_peak_is_not_significant(qtbot):
    """A fit record whose peak is not significant (value null, issue 16): said, no crash."""
    from labctl.gui.plots import OPTPPlot

    panel = OPTPPlot()
    qtbot.addWidget(panel)
    panel.add_row({"sweep": 1, "pump_delay_ps": 0.0, "minus_dE_over_E": 1e-5})
    record = {
        "sweeps": 4,
        "optp_peak": {"pump_delay_ps": 0.1, "minus_dE_over_E": None, "significant": False},
    }
    panel.set_fit(record)
    panel.redraw()
    assert "peak not significant" in panel.note.text()
