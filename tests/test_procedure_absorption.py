"""The Absorption procedure on the simulated station: dark, blank and film spectra through
the spectrometer, of films annealed on the physics shortcut (the paper's program on an
ideal furnace: the subject is the spectra; ``labctl sim measure absorption`` runs the
Anneal procedure before Absorption on one station, ``tests/test_sim_measure.py``)."""

import threading

import numpy as np
import pandas as pd
import pytest
from pymeasure.experiment import Results

from labctl.procedures.absorption import Absorption
from labctl.runs import ABORTED, FAILED, FINISHED, run_procedure
from labctl.station import Station

ANNEALED = {2: 250.0, 3: 350.0}  # slot → anneal temperature; slot 1 stays as made


@pytest.fixture(scope="module")
def station():
    """One simulated station (all instruments, virtual time) with its films annealed."""
    from labctl.simulators.physics.scan import anneal_nominal

    with Station.from_file("sim", time_scale="virtual") as st:
        with st.world.lock:
            for slot, temp in ANNEALED.items():
                anneal_nominal(st.world.slots[slot].film, temp)
        yield st


def measure(station, path, **params):
    return run_procedure(Absorption(**params), path, station=station)


@pytest.mark.parametrize("slot", [1, 2])
def test_as_made_and_250c_films_show_the_heavy_hole_exciton(station, tmp_path, slot):
    path = tmp_path / "abs.csv"
    outcome = measure(station, path, slot=slot)
    assert outcome.status == FINISHED, outcome.message
    r = outcome.results
    assert r["hh_nm"] == pytest.approx(512.0, abs=2.0)  # Chen et al.: 4 ML platelets
    assert r["lh_nm"] is not None and r["lh_nm"] < r["hh_nm"] - 15.0
    assert any("Tauc gap assumes band-to-band" in w for w in r["warnings"])
    assert Absorption.summary_line(r).startswith(f"absorption slot {slot}: HH exciton 51")


def test_350c_film_has_a_bulk_like_edge(station, tmp_path):
    outcome = measure(station, tmp_path / "abs.csv", slot=3)
    assert outcome.status == FINISHED, outcome.message
    r = outcome.results
    assert r["hh_nm"] is None
    assert r["tauc_gap_ev"] == pytest.approx(1.70, abs=0.05)  # bulk CdSe after fusion
    assert "Tauc gap 1.7" in Absorption.summary_line(r)


def test_rows_are_the_spectra_and_their_absorbance(station, tmp_path):
    path = tmp_path / "abs.csv"
    outcome = measure(
        station, path, slot=1, averages=3, wavelength_min_nm=400, wavelength_max_nm=700
    )
    data = pd.read_csv(path, comment="#")
    assert list(data.columns) == Absorption.DATA_COLUMNS
    assert len(data) == outcome.points > 500
    assert data["wavelength_nm"].between(400, 700).all()
    s, r, d = data["sample_counts"], data["reference_counts"], data["dark_counts"]
    expected = -np.log10((s - d) / (r - d))
    assert np.allclose(data["absorbance"], expected, rtol=1e-5, atol=1e-5, equal_nan=True)
    assert (r - d).min() > 0 and d.abs().mean() < 0.05 * (r - d).mean()  # the shutter was shut
    assert len(Results.load(str(path), procedure_class=Absorption).data) == len(data)
    assert "spectrometer" in path.read_text().split("#Data:")[0]  # settings in the header
    spec = station["spectrometer"]
    assert spec.shutter_open is True and station.world.lamp_shutter_open
    assert station["stages"].sample.slot == 1  # the stage stays at the film


def test_saturation_is_warned_and_masked(station, tmp_path):
    path = tmp_path / "abs.csv"
    outcome = measure(station, path, slot=1, integration_time_ms=1000, averages=1)
    assert outcome.status == FINISHED
    r = outcome.results
    assert r["saturated_pixels"]["reference"] > 100
    assert any(w.startswith("reference spectrum: ") and "saturated" in w for w in r["warnings"])
    data = pd.read_csv(path, comment="#")
    assert data["absorbance"].isna().sum() >= r["saturated_pixels"]["reference"]
    at_ceiling = data["reference_counts"] >= data["reference_counts"].max() - 0.5
    assert at_ceiling.sum() > 10 and data.loc[at_ceiling, "absorbance"].isna().all()


def test_sample_in_the_reference_slot_is_refused_before_any_spectrum(station, tmp_path):
    outcome = measure(station, tmp_path / "abs.csv", slot=0)
    assert outcome.status == FAILED
    assert outcome.message.startswith("absorption: the sample slot 0 is the reference slot")
    assert outcome.points == 0


def test_abort_after_the_dark_leaves_the_lamp_shutter_open(station, tmp_path):
    stop = threading.Event()
    phases = []

    def on_emit(topic, record):
        if topic == "phase":
            phases.append(record)
        if topic == "progress" and record > 30:
            stop.set()

    outcome = run_procedure(
        Absorption(slot=1), tmp_path / "abs.csv", station=station, stop=stop, on_emit=on_emit
    )
    assert outcome.status == ABORTED and outcome.points == 0
    assert len(phases) == 1 and phases[0].startswith("dark spectrum")
    assert station["spectrometer"].shutter_open is True


@pytest.mark.parametrize("slot", [1, 3])
def test_analyze_absorption_of_the_run_file_gives_the_run_results(station, tmp_path, capsys, slot):
    """One analysis (issue 16, items 7 and 8): the CLI on the run file gives the run's
    numbers; a Tauc fit of an excitonic film is no gap (tauc_gap_ev null, is_gap false)."""
    import json

    from labctl.cli import main

    path = tmp_path / "abs.csv"
    outcome = measure(station, path, slot=slot)
    assert outcome.status == FINISHED, outcome.message
    r = outcome.results
    capsys.readouterr()
    assert main(["analyze", "absorption", str(path), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    for key in ("hh_nm", "lh_nm", "tauc_gap_ev", "excitonic"):
        assert cli[key] == r[key], key
    if r["excitonic"]:
        assert r["tauc_gap_ev"] is None and r["tauc"]["is_gap"] is False
        assert any("no tauc_gap_ev is reported" in w for w in r["warnings"])
    else:
        assert r["tauc_gap_ev"] == pytest.approx(1.70, abs=0.05) and r["tauc"]["is_gap"]
