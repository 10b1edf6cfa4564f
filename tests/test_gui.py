"""The operator GUI on the simulated station (offscreen, pytest-qt)."""

import math
from pathlib import Path

import numpy as np
import pytest
from quiet_table import QUIET_TABLE
from sim_furnace import annealed_station

from labctl.drivers.eurotherm import ProgramStatus
from labctl.station import Station

pytest.importorskip("pytestqt")

WAIT_MS = 60_000


@pytest.fixture
def window(qtbot, tmp_path):
    from labctl.gui.window import MainWindow

    # the analysis-test table (tests/quiet_table.py): the GUI's fit is compared with the
    # simulator's truth, which a real table's floor hides in a few sweeps
    station = annealed_station(**QUIET_TABLE)
    win = MainWindow(
        station, station_name="sim", data_dir=tmp_path / "runs", monitor_interval_s=0.2
    )
    qtbot.addWidget(win)
    win.show()
    yield win
    win.shutdown(timeout_s=20)
    station.close()


def wait_done(qtbot, win, request):
    """Until the window has handled the end of ``request``'s run."""
    qtbot.waitUntil(lambda: request.id in win.outcomes, timeout=WAIT_MS)


def test_optp_and_tds_runs_fill_the_plots_and_the_fit_matches_the_simulator(qtbot, window):
    optp = window.queue_run("optp", sweeps=2, sample_id="NPL 300", absorptance_400nm=0.6)
    tds = window.queue_run("tds", max_sweeps=4, target="tau_fs_err=3", sample_id="NPL 300")
    wait_done(qtbot, window, optp)
    wait_done(qtbot, window, tds)
    assert optp.state == "finished", optp.message
    assert tds.state == "finished", tds.message
    qtbot.waitUntil(lambda: window.conductivity.last_update is not None, timeout=10_000)
    window.redraw_all()

    # OPTP: every point kept, the mean ± scatter drawn, the latest sweep as symbols
    x, y = window.optp.points["delay"], window.optp.points["signal"]
    assert len(x) == 2 * len(np.unique(x)) > 100
    sx, _ = window.optp.scatter.getData()
    assert len(sx) == len(np.unique(x))
    mx, my = window.optp.mean_curve.getData()
    assert my[np.argmin(np.abs(mx - x[0]))] == pytest.approx(np.mean(y[x == x[0]]))
    fx, fy = window.optp.fit_curve.getData()
    assert len(fx) > 100 and np.nanmax(fy) > 0
    assert "τ =" in window.optp.note.text()
    # with the pump power (power meter) and the absorptance: per absorbed photon per m²
    n_abs = window.outcomes[optp.id].results["absorbed_photons_m2"]
    assert window.optp.absorbed_photons_m2 == pytest.approx(n_abs, rel=1e-9)
    assert window.optp.plot.getAxis("right").isVisible()
    assert "per N_abs" in window.optp.note.text()

    # THz waveform: E_ref(t) and ΔE(t) over the gate window (with a target and the grid
    # unset: the coarse TARGET_GATE_PS, −2…8 ps in 0.15 ps)
    tx, ty = window.waveform.ref_curve.getData()
    assert len(tx) == 67 and np.ptp(ty) > 0
    _dx, dy = window.waveform.de_curve.getData()
    assert np.ptp(dy) > 0

    # Δσ(ω): data with the live fit overlaid
    for part in ("re", "im"):
        _err, data, model = window.conductivity.curves[part]
        assert len(data.getData()[0]) > 10
        assert len(model.getData()[0]) == len(data.getData()[0])

    # the parameter panel shows the simulator's film within the fit's errors
    station = window.station
    truth = station.world.true_parameters(station.world.slots[1].film)
    fit = window.fit_panel.fit
    for key in ("tau_fs", "c", "N_m3"):
        allowed = 4 * fit[f"{key}_err"] + 0.02 * abs(truth[key])
        assert abs(fit[key] - truth[key]) <= allowed, (key, fit[key], truth[key])
    assert window.fit_panel.labels["tau_fs"].text().startswith(f"{fit['tau_fs']:.3g} ±")
    assert window.fit_panel.target_bar.value() == 100  # the τ target was reached
    assert "target" in window.fit_panel.status.text()

    # the furnace trend has the monitor's readings
    qtbot.waitUntil(lambda: len(window.furnace.data) >= 2, timeout=10_000)
    window.redraw_all()
    assert len(window.furnace.pv.getData()[0]) >= 2
    furnace = station["furnace"]
    assert window.instruments.value("furnace", "program") == furnace.program_status.name.lower()
    assert window.instruments.value("furnace", "pv_c") == pytest.approx(
        furnace.temperature_c, abs=1.0
    )

    # both runs are in the browser and reopen with their data and fit
    window.browser.refresh()
    assert window.browser.tree.topLevelItemCount() == 2
    listed = [window.browser.tree.topLevelItem(i) for i in range(2)]
    assert {it.text(1) for it in listed} == {"optp", "tds"}
    assert all(it.text(2) == "NPL 300" for it in listed)  # sample
    assert all(it.text(3).startswith("finished") for it in listed)
    tds_item = next(it for it in listed if it.text(1) == "tds")
    assert tds_item.text(4).startswith("TDS: τ")  # the headline result
    window.optp.clear()
    window.browser.open(optp.data_file)
    qtbot.waitUntil(lambda: len(window.optp.points) > 0, timeout=10_000)
    assert len(window.optp.points) == len(x)
    assert window.optp.fit_curve_data() is not None


def test_abort_of_an_anneal_leaves_the_furnace_safe(qtbot, tmp_path):
    """Abort mid-program: the run stops, make_safe() runs, the GUI reads the furnace back."""
    from labctl.gui.window import MainWindow

    station = Station.from_file("sim", time_scale=2000.0)
    win = MainWindow(station, station_name="sim", data_dir=tmp_path, monitor_interval_s=0.1)
    qtbot.addWidget(win)
    try:
        furnace = station["furnace"]
        run = win.queue_run("anneal", anneal_c=300.0, dwell_min=30.0, record_interval_s=10.0)
        qtbot.waitUntil(
            lambda: win.instruments.value("furnace", "program") == "run", timeout=WAIT_MS
        )
        assert furnace.program_status == ProgramStatus.RUN
        win.abort_button.click()
        wait_done(qtbot, win, run)
        assert run.state == "aborted", run.message
        qtbot.waitUntil(lambda: win.safety_label.text() != "", timeout=10_000)
        assert win.safety_label.text().startswith("furnace safe: program reset")
        # read back independently of the GUI
        assert furnace.program_status == ProgramStatus.RESET
        assert furnace.setpoint_c == pytest.approx(furnace.safe_setpoint_c, abs=0.5)
        assert furnace.manual_mode is False
        # the rows recorded before the abort are on disk, the outcome beside them
        assert "aborted" in win.phase_label.text()
    finally:
        win.shutdown(timeout_s=20)
        station.close()


def test_the_safe_state_is_restored_when_a_run_left_the_furnace_programmed(sim_station):
    """After a failed or aborted run the GUI checks the furnace and, if need be, makes it safe."""
    from labctl.drivers.eurotherm import Dwell, Ramp
    from labctl.gui.runner import ensure_furnace_safe, furnace_is_safe

    furnace = sim_station["furnace"]
    furnace.load_program([Ramp(10.0, 200.0), Dwell(30.0)], 1)
    furnace.run_program(1)
    assert furnace_is_safe(furnace)[0] is False
    safe, message = ensure_furnace_safe(sim_station)
    assert safe, message
    assert furnace.program_status == ProgramStatus.RESET
    assert furnace.setpoint_c == pytest.approx(furnace.safe_setpoint_c, abs=0.5)
    # a run that never drives the furnace reports a program it finds, and leaves it
    furnace.run_program(1)
    safe, message = ensure_furnace_safe(sim_station, restore=False)
    assert not safe and "program run" in message
    assert furnace.program_status == ProgramStatus.RUN
    # an unreachable controller is reported, never called safe
    sim_station.world.faults.inject("furnace", "silent")
    safe, message = ensure_furnace_safe(sim_station)
    assert not safe and "NOT confirmed" in message


def test_instrument_panel_shows_readings_and_a_tripped_interlock(qtbot, tmp_path, sim_station):
    from labctl.gui.window import MainWindow

    win = MainWindow(sim_station, data_dir=tmp_path, monitor_interval_s=0.1)
    qtbot.addWidget(win)
    try:
        qtbot.waitUntil(lambda: win.instruments.value("lockin_ref", "ok") is True, timeout=10_000)
        assert win.instruments.value("lockin_ref", "time_constant_s") == pytest.approx(
            sim_station["lockin_ref"].time_constant
        )
        assert win.instruments.value("stages", "sample_slot") == sim_station["stages"].sample.slot
        assert win.instruments.value("power_meter", "power_w") > 0
        assert win.instruments.banner.isHidden()
        sim_station.world.faults.inject("furnace", "sensor_break")
        sim_station.world.faults.inject("lockin_pump", "silent")
        qtbot.waitUntil(lambda: bool(win.instruments.interlock), timeout=10_000)
        assert not win.instruments.banner.isHidden()
        assert "sensor break" in win.instruments.banner.text()
        qtbot.waitUntil(lambda: win.instruments.value("lockin_pump", "ok") is False, timeout=10_000)
        assert "lockin_pump" in win.instruments.value("lockin_pump", "error")
        assert "INTERLOCK" in win.error_label.text()  # said in the status bar and the log
        assert "INTERLOCK" in win.log_view.toPlainText()
    finally:
        win.shutdown()


def test_bad_parameters_are_refused_with_a_readable_message(qtbot, tmp_path, sim_station):
    from labctl.gui.window import MainWindow

    win = MainWindow(sim_station, data_dir=tmp_path, monitor_interval_s=5.0)
    qtbot.addWidget(win)
    try:
        # refused at the inputs by the procedures' shared rules, before it is queued
        run = win.queue_run("tds", t_start_ps=5.0, t_stop_ps=1.0, optp_peak_ps=0.5, thz_peak_ps=0.0)
        assert run is None
        assert "gate stop" in win.error_label.text()
        assert win.queue_run("tds", t_start_ps=-4.0, min_sweeps=10, max_sweeps=2) is None
        assert "min_sweeps must not exceed max_sweeps" in win.error_label.text()
        assert not math.isnan(sim_station["furnace"].temperature_c)  # the station still answers
        # an error stays while other causes report success; the inputs' own next success
        # (a run queued) clears it
        win.say("series: plan loaded", False, source="series")
        assert "min_sweeps must not exceed max_sweeps" in win.error_label.text()
        good = win.queue_run("absorption", averages=1)
        assert good is not None and win.error_label.text() == ""
        wait_done(qtbot, win, good)
        assert good.state == "finished", good.message
    finally:
        win.shutdown()


def test_absorption_spectrum_marks_the_exciton_peaks_and_a_tds_run_reopens_with_its_fit(
    qtbot, window
):
    absorption = window.queue_run("absorption", averages=2)
    tds = window.queue_run("tds", max_sweeps=3, target="", optp_peak_ps=0.25, thz_peak_ps=None)
    wait_done(qtbot, window, absorption)
    wait_done(qtbot, window, tds)
    assert absorption.state == "finished", absorption.message
    outcome = window.outcomes[absorption.id]
    window.redraw_all()
    wl, a = window.absorption.curve.getData()
    assert len(wl) == outcome.points > 100 and np.nanmax(a) > 0
    assert [m.value() for m in window.absorption.markers][:1] == [outcome.results["hh_nm"]]
    assert "HH" in window.absorption.note.text()

    # reopen the TDS run: the waveform and a recomputed Δσ fit equal to the live one
    live_fit = window.outcomes[tds.id].results["fit"]
    window.waveform.clear()
    window.conductivity.clear()
    window.browser.open(tds.data_file)
    qtbot.waitUntil(lambda: window.conductivity.last_update is not None, timeout=20_000)
    assert window.conductivity.last_update.n_sweeps == 3
    assert len(window.waveform.mean) == 321
    assert window.fit_panel.fit["tau_fs"] == pytest.approx(live_fit["tau_fs"], rel=1e-3)
    # the plots say which file they show
    window.redraw_all()
    name = Path(tds.data_file).name
    assert window.waveform.note.text().startswith(f"file: {name} · ")
    window.redraw_all()  # said once, however often it redraws
    assert window.conductivity.note.text() == f"file: {name}"
    assert window.waveform.note.text().count("file:") == 1


def test_columns_grow_in_place_and_give_views():
    from labctl.gui.buffers import Columns
    from labctl.gui.plots import GridMean

    c = Columns("x", "y", capacity=16)
    for i in range(1000):
        c.append(i, 2 * i)
    c.extend(x=np.arange(1000, 1500), y=2 * np.arange(1000, 1500))
    assert len(c) == 1500
    assert np.array_equal(c["y"], 2 * np.arange(1500))
    assert c["x"].base is not None  # a view, not a copy
    g = GridMean(1)
    for sweep in range(3):
        for x in (0.2, 0.1, 0.0):
            g.add(x, x + sweep)
    x, m = g.means()
    assert np.allclose(x, [0.0, 0.1, 0.2]) and np.allclose(m[0], [1.0, 1.1, 1.2])


def test_quit_mid_anneal_waits_for_the_safe_state_even_with_an_hour_between_rows(qtbot, tmp_path):
    """Issue 15: Quit ('Abort it (safe state) and quit? — Yes') exited after 15 s with the
    furnace program still running. An hour between rows: shutdown returns only when the
    anneal's safe state is done, its summary written, the furnace read back safe. At 100×
    the hour is still 36 s of wall time, past the old 15 s give-up (at real time the
    stage's move to the slot alone took 4.6 s)."""
    import json

    from labctl.drivers.eurotherm import ProgramStatus
    from labctl.gui.window import MainWindow
    from labctl.station import Station

    with Station.from_file("sim", time_scale=100.0) as station:
        win = MainWindow(station, data_dir=tmp_path, monitor_interval_s=5.0)
        qtbot.addWidget(win)
        rows = []
        win.queue.emitted.connect(
            lambda req, topic, rec: rows.append(rec) if topic == "results" else None
        )
        run = win.queue_run("anneal", anneal_c=300.0, record_interval_s=3600.0, slot=1)
        assert run is not None
        qtbot.waitUntil(lambda: bool(rows), timeout=WAIT_MS)  # the first row; then an hour's wait
        assert station["furnace"].program_status == ProgramStatus.RUN
        win.shutdown()  # Quit → Yes
        assert win.queue.close(timeout_s=0)  # the worker has ended: nothing left running
        assert station["furnace"].program_status == ProgramStatus.RESET
        summary = json.loads(next(tmp_path.glob("anneal_*.json")).read_text())
        assert summary["status"] == "aborted"
        assert summary["safe_state"].startswith("safe state")


def test_a_stop_signal_quits_from_the_event_loop_not_inside_its_handler(qtbot, monkeypatch):
    """SIGTERM/Ctrl-C while the main thread was inside logging (holding the stream handler's
    lock): the handler quit at once, which closed the window, whose shutdown joined the
    monitor thread, whose next log record waited for that lock: `labctl gui` took 5 s more
    to stop in half the runs of test_gui_cli. The handler now only asks the event loop."""
    import signal

    from qtpy import QtCore, QtWidgets

    from labctl.gui.app import _quit_on_signals

    app = QtWidgets.QApplication.instance()
    order: list[str] = []
    monkeypatch.setattr(app, "quit", lambda: order.append("quit"))  # closes no window here
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    timers = set(app.findChildren(QtCore.QTimer))
    try:
        seen = _quit_on_signals(app, [])
        signal.raise_signal(signal.SIGTERM)  # its handler runs here, in the main thread
        order.append("handler returned")
        qtbot.waitUntil(lambda: "quit" in order, timeout=WAIT_MS)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for timer in set(app.findChildren(QtCore.QTimer)) - timers:
            timer.stop()
    assert seen == [signal.SIGTERM]
    assert order == ["handler returned", "quit"]


def test_a_run_refused_because_the_furnace_is_in_use_names_the_holder_and_touches_nothing(
    qtbot, tmp_path, serve, monkeypatch
):
    """The GUI's queue while a series anneals on the same served station: the anneal is
    refused naming the holder, and the other run's program is left running (checking
    or "restoring" the safe state here would reset that run's anneal)."""
    from labctl.drivers.eurotherm import Dwell, Ramp
    from labctl.gui.window import MainWindow
    from labctl.ownership import claim_station

    monkeypatch.setenv("LABCTL_LOCK_DIR", str(tmp_path / "locks"))
    served = serve(100)
    station = Station.from_file(served.station)
    win = MainWindow(
        station, station_name="served", data_dir=tmp_path / "runs", monitor_interval_s=0.2
    )
    qtbot.addWidget(win)
    other_run = claim_station(station, ["furnace"], owner=object())  # a series' claim
    try:
        furnace = station["furnace"]
        furnace.load_program([Ramp(10.0, 200.0), Dwell(30.0)], 1)  # the series' anneal
        furnace.run_program(1)
        run = win.queue_run("anneal", anneal_c=300.0, dwell_min=30.0, sample_id="NPL-x")
        wait_done(qtbot, win, run)
        assert run.state == "failed"
        assert win.outcomes[run.id].ending.value == "in use"
        assert "in use by" in win.phase_label.text() and "nothing touched" in win.phase_label.text()
        assert "in use by" in win.safety_label.text()
        assert furnace.program_status == ProgramStatus.RUN  # the series' anneal goes on
    finally:
        other_run.release()
        win.shutdown(timeout_s=20)
        station.close()
