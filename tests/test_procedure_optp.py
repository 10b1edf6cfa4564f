"""The OPTP procedure on the simulated station: peak where the world has it, live decay fit."""

import json

import numpy as np
import pandas as pd
import pytest
from pymeasure.experiment import Results

from labctl.analysis.peaks import parabolic_peak, quartic_peak, spline_vertex
from labctl.errors import AnalysisError, LabctlError
from labctl.procedures.annealing import anneal_film
from labctl.procedures.optp import OPTP, pump_delays
from labctl.runs import FINISHED, run_procedure, summary_path
from labctl.station import Station


def annealed_station(anneal_c=300.0, slot=1, **simulation):
    """The full sim station on virtual time with the film in ``slot`` annealed (and in the beam)."""
    from labctl.station import load_station_spec

    spec = load_station_spec("sim")
    spec.simulation = dict(spec.simulation, **simulation)
    station = Station(spec, time_scale="virtual")
    anneal_film(
        station["furnace"],
        station["stages"].sample,
        station.clock,
        slot,
        anneal_c,
        ambient_c=float(station.world.furnace.ambient_c),
    )
    return station


@pytest.fixture(scope="module")
def optp_run(tmp_path_factory):
    station = annealed_station()
    fits = []
    path = tmp_path_factory.mktemp("optp") / "optp.csv"
    proc = OPTP(sweeps=4, absorptance_400nm=0.3, sample_id="NPL 300")
    outcome = run_procedure(
        proc, path, station=station, on_emit=lambda t, r: fits.append(r) if t == "fit" else None
    )
    yield station, outcome, path, fits
    station.close()


def test_optp_peak_is_found_where_the_world_has_it(optp_run):
    station, outcome, _path, _fits = optp_run
    assert outcome.status == FINISHED, outcome.message
    truth = station.world.optp_peak_delay_ps()
    assert outcome.results["optp_peak"]["pump_delay_ps"] == pytest.approx(truth, abs=0.005)
    assert outcome.results["thz_peak_ps"] == pytest.approx(0.0, abs=0.01)  # the stage's zero


def test_rows_per_point_per_sweep_alternate_and_read_back(optp_run):
    _station, outcome, path, _fits = optp_run
    frame = pd.read_csv(path, comment="#")
    n = outcome.results["points_per_sweep"]
    assert len(frame) == 4 * n == outcome.points
    assert list(frame.columns[:7]) == [
        "sweep",
        "pump_delay_ps",
        "X_ref_V",
        "X_pump_V",
        "E_ref",
        "dE",
        "minus_dE_over_E",
    ]
    first, second = (frame[frame.sweep == s].pump_delay_ps.to_numpy() for s in (1, 2))
    assert np.all(np.diff(first) > 0) and np.all(np.diff(second) < 0)
    assert np.allclose(frame.E_ref, frame.X_ref_V - frame.X_pump_V)
    assert np.allclose(frame.dE, 2 * frame.X_pump_V)
    # denser near zero than after
    steps = np.diff(first)
    assert steps[first[:-1] < 1.0].max() < steps[first[:-1] > 3.0].min()
    assert len(Results.load(str(path), procedure_class=OPTP).data) == len(frame)


def test_live_decay_fit_after_every_sweep_and_normalised_signal(optp_run):
    station, outcome, path, fits = optp_run
    assert [f["sweeps"] for f in fits] == [1, 2, 3, 4]
    assert all("decay" in f for f in fits)
    fast, slow = outcome.results["fit"]["lifetimes_ps"]
    assert 0.1 < fast < 3.0 < slow
    peak = outcome.results["optp_peak"]
    assert peak["minus_dE_over_E"] > 0
    # per absorbed photon density: measured pump power (the power meter) → fluence
    assert outcome.results["fluence_uj_cm2"] == pytest.approx(
        station.world.pump_fluence_uj_cm2, rel=0.03
    )
    assert peak["minus_dE_over_E_per_abs_m3"] == pytest.approx(
        peak["minus_dE_over_E"] / outcome.results["absorbed_photon_density_m3"]
    )
    summary = json.loads(summary_path(path).read_text())
    assert summary["results"]["optp_peak"]["pump_delay_ps"] == peak["pump_delay_ps"]
    line = OPTP.summary_line(outcome.results)
    assert line.startswith(f"OPTP: peak at {peak['pump_delay_ps']:.2f} ps") and "decay" in line


def test_stages_stopped_when_the_run_ends(optp_run):
    station, *_ = optp_run
    for role in ("sampling", "pump"):
        assert not station["stages"][role].is_moving


def test_bad_scan_is_refused_before_anything_moves(tmp_path):
    with pytest.raises(LabctlError, match="stop > start"):
        pump_delays(5.0, 1.0, 0.05, 2.0, 0.25)
    with Station.from_file("sim", time_scale="virtual") as station:
        before = station["stages"].pump.delay_ps
        outcome = run_procedure(
            OPTP(start_ps=3.0, stop_ps=1.0), tmp_path / "o.csv", station=station
        )
        assert outcome.status == "failed" and "stop > start" in outcome.message
        assert station["stages"].pump.delay_ps == before


def test_peak_estimators():
    x = np.linspace(-1, 1, 21)
    assert parabolic_peak(x, -((x - 0.033) ** 2)) == pytest.approx(0.033, abs=1e-9)
    asym = np.where(x < 0.2, np.exp(-(((x - 0.2) / 0.1) ** 2)), np.exp(-(x - 0.2) / 0.5))
    assert spline_vertex(x, asym) == pytest.approx(0.2, abs=0.02)
    fine = np.linspace(0.1, 0.3, 21)
    rng = np.random.default_rng(1)
    noisy = -((fine - 0.21) ** 2) + 1e-5 * rng.standard_normal(fine.size)
    assert quartic_peak(fine, noisy, 0.2, 0.1) == pytest.approx(0.21, abs=0.005)
    with pytest.raises(AnalysisError, match="increasing"):
        parabolic_peak([0, 0, 1], [1, 2, 3])
    with pytest.raises(AnalysisError, match="NaN"):
        spline_vertex(x, np.full(x.size, np.nan))


def test_range_with_headroom_is_less_sensitive_than_auto_range():
    with Station.from_file("sim", time_scale="virtual") as station:
        lockin = station["lockin_ref"]
        station["stages"].sampling.move_to_ps(0.0)  # on the THz peak: a large signal
        auto = lockin.auto_range()
        ranges = list(lockin.SENSITIVITIES)
        assert lockin.range_with_headroom(steps=2) == ranges[ranges.index(auto) + 2]
        assert lockin.sensitivity == ranges[ranges.index(auto) + 2]
        assert abs(lockin.read_xy()[0]) < 0.25 * lockin.sensitivity
        assert lockin.range_with_headroom(steps=100) == ranges[-1]  # capped at 1 V
