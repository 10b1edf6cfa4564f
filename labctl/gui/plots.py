"""Live plots (pyqtgraph), fed from memory: each panel keeps numpy buffers that the
run's emits append to, and redraws at most once per GUI timer tick when changed."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from qtpy import QtCore, QtWidgets

from labctl.gui.buffers import Columns

pg.setConfigOptions(antialias=False, background="w", foreground="k")

PEN_DATA = pg.mkPen("#1f77b4", width=1)
PEN_FIT = pg.mkPen("#d62728", width=2)
PEN_SECOND = pg.mkPen("#2ca02c", width=1)
PEN_OP = pg.mkPen("#ff7f0e", width=1)


def fast_curve(plot: pg.PlotItem, pen, name: str | None = None, **kw) -> pg.PlotDataItem:
    """A curve that stays fluid with many points: clipped to view, peak-downsampled."""
    curve = plot.plot(pen=pen, name=name, **kw)
    curve.setClipToView(True)
    curve.setDownsampling(auto=True, method="peak")
    curve.setSkipFiniteCheck(True)
    return curve


def steady_axis(plot: pg.PlotItem, width_px: int = 68) -> None:
    """A left axis of fixed width: tick labels that change length as the data arrive do
    not re-lay the panel out (which would cost a second paint per frame and make the
    plot jump sideways)."""
    plot.getAxis("left").setWidth(width_px)


class GridMean:
    """Running mean and scatter over sweeps of values on a grid of x (pump delay, gate
    time): sums and sums of squares per grid point, so a redraw costs the grid, not the
    points recorded (a night of sweeps draws as fast as the first)."""

    def __init__(self, n_values: int) -> None:
        self._index: dict[float, int] = {}
        self.x = Columns("x", capacity=256)
        self._sums = np.zeros((n_values, 256))
        self._squares = np.zeros((n_values, 256))
        self._counts = np.zeros(256)
        self._order: np.ndarray | None = None  # sorted order of x, until a new x arrives

    def add(self, x: float, *values: float) -> None:
        key = round(float(x), 6)
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self.x)
            self.x.append(key)
            self._order = None
            if i >= self._counts.size:
                grow = np.zeros_like(self._sums)
                self._sums = np.concatenate([self._sums, grow], axis=1)
                self._squares = np.concatenate([self._squares, grow], axis=1)
                self._counts = np.concatenate([self._counts, np.zeros_like(self._counts)])
        v = np.asarray(values, float)
        self._sums[:, i] += v
        self._squares[:, i] += v * v
        self._counts[i] += 1

    def __len__(self) -> int:
        return len(self.x)

    def _sorted(self) -> np.ndarray:
        if self._order is None or self._order.size != len(self.x):
            self._order = np.argsort(self.x["x"], kind="stable")
        return self._order

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted x and the mean of each value there: (x, values[n_values, len])."""
        n = len(self.x)
        order = self._sorted()
        return self.x["x"][order], self._sums[:, :n][:, order] / self._counts[:n][order]

    def scatter(self) -> np.ndarray:
        """Sample standard deviation over sweeps at each sorted x (0 where one sweep)."""
        n = len(self.x)
        order = self._sorted()
        count = self._counts[:n][order]
        mean = self._sums[:, :n][:, order] / count
        var = (self._squares[:, :n][:, order] - count * mean**2) / np.maximum(count - 1, 1)
        return np.sqrt(np.clip(var, 0.0, None))

    def counts(self) -> np.ndarray:
        """Sweeps recorded at each sorted x."""
        return self._counts[: len(self.x)][self._sorted()]

    def clear(self) -> None:
        self.__init__(self._sums.shape[0])


class Panel(QtWidgets.QWidget):
    """A plot panel: ``dirty`` after new data, ``redraw()`` draws it."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.dirty = False
        self.graphics = pg.GraphicsLayoutWidget()
        self.note = QtWidgets.QLabel("")
        self.note.setWordWrap(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.note)

    #: what the panel shows: "" (the monitor / nothing yet), a live run's file, or a
    #: reopened file — said first in the note, so a plot always says which file it is
    source = ""

    def show_source(self, source: str) -> None:
        self.source = source
        self.dirty = True

    def redraw(self) -> None:
        self.dirty = False
        self.note.setText("")  # draw() says what it has to say; the source goes first
        self.draw()
        self.settle_ranges()
        if self.source:
            own = self.note.text()
            self.note.setText(f"{self.source} · {own}" if own else self.source)

    def draw(self) -> None:
        """Put the panel's data into its plot items (subclasses)."""

    def settle_ranges(self) -> None:
        """Auto-range every plot now, after new data: pyqtgraph otherwise does it while
        painting, and the changed range then costs a second paint of the frame."""
        for item in self.graphics.ci.items:
            if isinstance(item, pg.PlotItem):
                item.vb.updateAutoRange()


class FurnaceTrend(Panel):
    """Furnace PV and setpoint (°C) and output (%) against the station clock."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.data = Columns("t_min", "pv", "sp", "op")
        self.temp_plot = self.graphics.addPlot(row=0, col=0)
        self.temp_plot.setLabel("left", "T", units="°C")
        steady_axis(self.temp_plot)
        self.temp_plot.addLegend(offset=(5, 5))
        self.pv = fast_curve(self.temp_plot, PEN_DATA, "PV")
        self.sp = fast_curve(self.temp_plot, pg.mkPen("#7f7f7f", style=QtCore.Qt.DashLine), "SP")
        self.op_plot = self.graphics.addPlot(row=1, col=0)
        self.op_plot.setLabel("left", "OP", units="%")
        steady_axis(self.op_plot)
        self.op_plot.setLabel("bottom", "station time (min)")
        self.op_plot.setXLink(self.temp_plot)
        self.op = fast_curve(self.op_plot, PEN_OP, "OP")
        self.graphics.ci.layout.setRowStretchFactor(0, 3)

    def add(self, clock_s: float, pv: float, sp: float, op: float) -> None:
        self.data.append(clock_s / 60.0, pv, sp, op)
        self.dirty = True

    def draw(self) -> None:
        d = self.data
        self.pv.setData(d["t_min"], d["pv"])
        self.sp.setData(d["t_min"], d["sp"])
        self.op.setData(d["t_min"], d["op"])
        if len(d):
            self.note.setText(
                f"PV {d['pv'][-1]:.1f} °C · SP {d['sp'][-1]:.1f} °C · OP {d['op'][-1]:.1f} %"
            )


class OPTPPlot(Panel):
    """−ΔE/E at the THz peak against pump delay: the mean over sweeps with a band of ±1
    standard deviation of their scatter, the latest sweep's points as symbols, the decay
    fit. Every point is kept (``points``), but what is drawn is aggregated per delay: a
    redraw costs the delay grid, not the sweeps done, so 100 000 points stay fluid
    (``benchmarks/gui_redraw.py``)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.points = Columns("delay", "signal")
        self.latest = Columns("delay", "signal")  # the sweep being recorded
        self.latest_sweep: int | None = None
        self.mean = GridMean(1)
        self.fit: dict | None = None
        self.absorbed_photons_m2: float | None = None
        self.plot = self.graphics.addPlot()
        self.plot.setLabel("bottom", "pump delay (ps)")
        self.plot.setLabel("left", "−ΔE/E")
        steady_axis(self.plot)
        self.plot.addLegend(offset=(-5, 5))
        band_pen = pg.mkPen((31, 119, 180, 60), width=1)
        self.band_low = fast_curve(self.plot, band_pen)
        self.band_high = fast_curve(self.plot, band_pen)
        self.band = pg.FillBetweenItem(self.band_low, self.band_high, brush=(31, 119, 180, 50))
        self.plot.addItem(self.band)
        self.mean_curve = fast_curve(self.plot, PEN_DATA, "mean of sweeps ± scatter")
        self.scatter = self.plot.plot(
            pen=None,
            symbol="o",
            symbolSize=4,
            symbolPen=None,
            symbolBrush=(31, 119, 180, 150),
            name="latest sweep",
        )
        self.scatter.setClipToView(True)
        self.fit_curve = fast_curve(self.plot, PEN_FIT, "decay fit")

    def clear(self) -> None:
        self.points.clear()
        self.latest.clear()
        self.latest_sweep = None
        self.mean.clear()
        self.fit = None
        self.absorbed_photons_m2 = None
        self.dirty = True

    def add_row(self, row: dict) -> None:
        s = row.get("minus_dE_over_E")
        if s is None or not math.isfinite(s):
            return
        delay = row["pump_delay_ps"]
        sweep = row.get("sweep")
        if sweep is not None and not (isinstance(sweep, float) and math.isnan(sweep)):
            new_sweep = sweep != self.latest_sweep
            self.latest_sweep = sweep
        else:  # no sweep column: a delay seen already in this sweep starts a new one
            new_sweep = len(self.latest) and delay in self.latest["delay"]
        if new_sweep:
            self.latest.clear()
        self.points.append(delay, s)
        self.latest.append(delay, s)
        self.mean.add(delay, s)
        self.dirty = True

    def set_fit(self, record: dict) -> None:
        """A record of the OPTP analysis (``optp_peak``, ``decay``, ``absorbed_photons_m2``)."""
        self.fit = record
        n_abs = record.get("absorbed_photons_m2")
        if n_abs is not None and math.isfinite(n_abs) and n_abs > 0:
            self.absorbed_photons_m2 = n_abs
        self.dirty = True

    def fit_curve_data(self) -> tuple[np.ndarray, np.ndarray] | None:
        from labctl.analysis.optp import decay_model

        decay = (self.fit or {}).get("decay")
        if not decay or not len(self.mean):
            return None
        x, _ = self.mean.means()
        grid = np.linspace(x[0], x[-1], 800)
        y = decay_model(
            grid,
            decay["t0_ps"],
            decay["irf_fwhm_ps"],
            decay["amplitudes"],
            decay["lifetimes_ps"],
            decay.get("offset") or 0.0,
        )
        return grid, y

    def draw(self) -> None:
        self.scatter.setData(self.latest["delay"], self.latest["signal"])
        if len(self.mean):
            x, m = self.mean.means()
            spread = self.mean.scatter()[0]
            self.mean_curve.setData(x, m[0])
            self.band_low.setData(x, m[0] - spread)
            self.band_high.setData(x, m[0] + spread)
        else:
            for curve in (self.mean_curve, self.band_low, self.band_high):
                curve.setData([], [])
        curve = self.fit_curve_data()
        self.fit_curve.setData(*(curve if curve else ([], [])))
        n_abs = self.absorbed_photons_m2
        if n_abs:  # right axis: the same trace per absorbed photon per m² (thickness-free)
            self.plot.showAxis("right")
            right = self.plot.getAxis("right")
            right.setScale(1.0 / n_abs)
            right.setLabel(f"per N_abs (m²), N_abs = {n_abs:.3g} m⁻²")
        else:
            self.plot.hideAxis("right")
        self.note.setText(self._describe())

    def _describe(self) -> str:
        if not self.fit:
            return f"{len(self.points)} points" if len(self.points) else "no OPTP data yet"
        parts = [f"{self.fit.get('sweeps', '?')} sweeps"]
        peak = self.fit.get("optp_peak") or {}
        if peak and peak.get("minus_dE_over_E") is None:  # noise is no peak (optp_significance)
            parts.append("peak not significant")
        elif peak:
            parts.append(f"peak {peak['minus_dE_over_E']:.3g} at {peak['pump_delay_ps']:.2f} ps")
            if peak.get("per_absorbed_photon_m2") is not None:
                parts.append(f"per N_abs {peak['per_absorbed_photon_m2']:.3g} m²")
        decay = self.fit.get("decay")
        if decay:
            lifetimes = ", ".join(
                f"{t:.3g} ± {e:.2g}" if e is not None else f"{t:.3g}"
                for t, e in zip(decay["lifetimes_ps"], decay["lifetimes_ps_err"], strict=False)
            )
            parts.append(f"τ = {lifetimes} ps, IRF {decay['irf_fwhm_ps']:.3g} ps")
        elif self.fit.get("error"):
            parts.append(f"no decay fit: {self.fit['error']}")
        return " · ".join(parts)


class WaveformPlot(Panel):
    """THz waveform E_ref(t) and the pump-induced change ΔE(t), averaged over sweeps."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.mean = GridMean(2)
        self.sweep = 0
        self.ref_plot = self.graphics.addPlot(row=0, col=0)
        self.ref_plot.setLabel("left", "E_ref", units="V")
        steady_axis(self.ref_plot)
        self.de_plot = self.graphics.addPlot(row=1, col=0)
        self.de_plot.setLabel("left", "ΔE", units="V")
        steady_axis(self.de_plot)
        self.de_plot.setLabel("bottom", "gate delay (ps)")
        self.de_plot.setXLink(self.ref_plot)
        self.ref_curve = fast_curve(self.ref_plot, PEN_DATA)
        self.de_curve = fast_curve(self.de_plot, PEN_SECOND)

    def clear(self) -> None:
        self.mean.clear()
        self.sweep = 0
        self.dirty = True

    def add_row(self, row: dict) -> None:
        self.mean.add(row["time_ps"], row["E_ref"], row["dE"])
        self.sweep = int(row.get("sweep", self.sweep))
        self.dirty = True

    def draw(self) -> None:
        if len(self.mean):
            x, m = self.mean.means()
            self.ref_curve.setData(x, m[0])
            self.de_curve.setData(x, m[1])
            self.note.setText(f"sweep {self.sweep}, {len(x)} gate delays (mean of sweeps)")
        else:
            self.ref_curve.setData([], [])
            self.de_curve.setData([], [])
            self.note.setText("no THz waveform yet")


class ConductivityPlot(Panel):
    """Re and Im Δσ(ω) with errors, and the live Drude-Smith fit overlaid."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.last_update = None  # the last LiveFitUpdate with arrays
        self.re_plot = self.graphics.addPlot(row=0, col=0)
        self.re_plot.setLabel("left", "Re Δσ", units="S/m")
        steady_axis(self.re_plot)
        self.re_plot.addLegend(offset=(-5, 5))
        self.im_plot = self.graphics.addPlot(row=1, col=0)
        self.im_plot.setLabel("left", "Im Δσ", units="S/m")
        steady_axis(self.im_plot)
        self.im_plot.setLabel("bottom", "frequency (THz)")
        self.im_plot.setXLink(self.re_plot)
        self.curves = {}
        for part, plot in (("re", self.re_plot), ("im", self.im_plot)):
            errors = pg.ErrorBarItem(pen=pg.mkPen((31, 119, 180, 120)))
            plot.addItem(errors)
            data = plot.plot(pen=None, symbol="o", symbolSize=5, symbolBrush="#1f77b4", name="data")
            model = plot.plot(pen=PEN_FIT, name="Drude-Smith fit")
            self.curves[part] = (errors, data, model)

    def clear(self) -> None:
        self.last_update = None
        self.dirty = True

    def set_update(self, update) -> None:
        if update.freq_hz is not None:
            self.last_update = update
            self.dirty = True

    def draw(self) -> None:
        u = self.last_update
        if u is None:
            for errors, data, model in self.curves.values():
                errors.setData(x=np.array([]), y=np.array([]), height=np.array([]))
                data.setData([], [])
                model.setData([], [])
            return
        f = np.asarray(u.freq_hz) / 1e12
        sigma = np.asarray(u.sigma)
        err = np.asarray(u.sigma_err) if u.sigma_err is not None else None
        for part, take in (("re", np.real), ("im", np.imag)):
            errors, data, model = self.curves[part]
            y = take(sigma)
            data.setData(f, y)
            if err is not None:
                e = take(err) if np.iscomplexobj(err) else err
                errors.setData(x=f, y=y, height=2 * np.abs(e))
            if u.model_sigma is not None:
                model.setData(f, take(np.asarray(u.model_sigma)))
            else:
                model.setData([], [])


class FitPanel(QtWidgets.QGroupBox):
    """The live fit's parameters with errors, χ²_red, sweeps and the precision target."""

    ROWS = (
        ("tau_fs", "τ", "fs", "{:.3g}"),
        ("c", "c", "", "{:.3f}"),
        ("N_m3", "N", "m⁻³", "{:.3g}"),
        ("mobility_cm2_Vs", "μ", "cm²/Vs", "{:.3g}"),
    )

    def __init__(self, parent=None) -> None:
        super().__init__("Live Drude-Smith fit", parent)
        form = QtWidgets.QFormLayout(self)
        self.labels: dict[str, QtWidgets.QLabel] = {}
        for key, name, _unit, _fmt in self.ROWS:
            self.labels[key] = QtWidgets.QLabel("—")
            form.addRow(name, self.labels[key])
        for key, name in (("chi2_red", "χ²_red"), ("sweeps", "sweeps"), ("noise", "errors from")):
            self.labels[key] = QtWidgets.QLabel("—")
            form.addRow(name, self.labels[key])
        self.target_bar = QtWidgets.QProgressBar()
        self.target_bar.setRange(0, 100)
        self.target_bar.setFormat("no target")
        self.target_bar.setValue(0)
        form.addRow("target", self.target_bar)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        form.addRow(self.status)
        self.target: dict[str, float] = {}
        self.fit: dict | None = None

    def clear(self, target: dict[str, float] | None = None) -> None:
        self.target = dict(target or {})
        self.fit = None
        for label in self.labels.values():
            label.setText("—")
        self.status.setText("")
        self.target_bar.setValue(0)
        self.target_bar.setFormat(
            ", ".join(f"{k} ≤ {v:g}" for k, v in self.target.items()) or "no target"
        )

    def set_record(self, record: dict) -> None:
        """A ``fit`` record of the TDS procedure (LiveFitUpdate.to_dict())."""
        self.labels["sweeps"].setText(str(record.get("n_sweeps", "—")))
        self.labels["noise"].setText(str(record.get("noise_source") or "—"))
        fit = record.get("fit")
        if record.get("error") or not fit:
            self.status.setText(f"fit: {record.get('error') or 'no fit'}")
            return
        self.fit = fit
        for key, _name, unit, fmt in self.ROWS:
            value, err = fit.get(key), fit.get(f"{key}_err")
            if value is None:
                self.labels[key].setText("—")
                continue
            text = fmt.format(value) + (f" ± {err:.2g}" if err is not None else "")
            self.labels[key].setText(f"{text} {unit}".strip())
        self.labels["chi2_red"].setText(f"{fit.get('chi2_red', float('nan')):.3g}")
        warnings = list(record.get("warnings") or []) + list(fit.get("warnings") or [])
        significant = record.get("significant")
        note = "" if significant is not False else "ΔE not yet significant; "
        self.status.setText(note + "; ".join(warnings))
        self.target_bar.setValue(int(round(100 * self.target_progress(fit))))

    def target_progress(self, fit: dict) -> float:
        """1 when every target error is met; else the worst ratio target/error."""
        if not self.target:
            return 0.0
        ratios = []
        for name, limit in self.target.items():
            err = fit.get(name)
            ratios.append(0.0 if not err or not math.isfinite(err) else min(1.0, limit / err))
        return min(ratios)


class AbsorptionPlot(Panel):
    """Absorbance spectrum with the exciton peaks marked."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.data = Columns("wl", "a")
        self.peaks: dict[str, float] = {}
        self.plot = self.graphics.addPlot()
        self.plot.setLabel("bottom", "wavelength (nm)")
        self.plot.setLabel("left", "absorbance")
        steady_axis(self.plot)
        self.curve = fast_curve(self.plot, PEN_DATA)
        self.markers: list[pg.InfiniteLine] = []

    def clear(self) -> None:
        self.data.clear()
        self.peaks = {}
        self.dirty = True

    def add_batch(self, batch: dict) -> None:
        self.data.extend(wl=batch["wavelength_nm"], a=batch["absorbance"])
        self.dirty = True

    def add_row(self, row: dict) -> None:
        self.data.append(row["wavelength_nm"], row["absorbance"])
        self.dirty = True

    def set_results(self, results: dict) -> None:
        self.peaks = {
            name: results[key]
            for name, key in (("HH", "hh_nm"), ("LH", "lh_nm"))
            if results.get(key) is not None
        }
        self.dirty = True

    def draw(self) -> None:
        self.curve.setData(self.data["wl"], self.data["a"])
        for marker in self.markers:
            self.plot.removeItem(marker)
        self.markers = []
        for name, wl in self.peaks.items():
            line = pg.InfiniteLine(
                pos=wl,
                angle=90,
                pen=PEN_FIT,
                label=f"{name} {wl:.1f} nm",
                labelOpts={"position": 0.9, "color": "#d62728"},
            )
            self.plot.addItem(line)
            self.markers.append(line)
        if self.peaks:
            self.note.setText(
                "exciton peaks: " + ", ".join(f"{k} {v:.1f} nm" for k, v in self.peaks.items())
            )
        elif len(self.data):
            self.note.setText(f"{len(self.data)} wavelengths")
        else:
            self.note.setText("no spectrum yet")
