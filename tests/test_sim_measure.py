"""``labctl sim measure``: synthetic data through the simulated instruments, checked against the paper."""

import csv
import json

import numpy as np
import pytest
import yaml

from labctl.cli import main
from labctl.simulators.physics.params import TABLE2, TABLE2_ERRORS


def measure(tmp_path, kind, anneal_c, *extra, seed=0):
    out = tmp_path / f"{kind}_{anneal_c:g}.csv"
    rc = main(
        [
            "sim",
            "measure",
            kind,
            "--anneal-c",
            str(anneal_c),
            "--seed",
            str(seed),
            "--quiet",
            "--out",
            str(out),
            *extra,
        ]
    )
    assert rc == 0
    return out, json.loads(out.with_suffix(".json").read_text())


def analyze_tds(path, meta, capsys):
    capsys.readouterr()
    rc = main(
        [
            "analyze", "tds", str(path),
            "--thickness-nm", str(meta["thickness_nm"]),
            "--substrate-index", str(meta["substrate_index"]),
            "--json",
        ]
    )  # fmt: skip
    assert rc == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("row", "err"),
    list(zip(TABLE2, TABLE2_ERRORS, strict=True)),
    ids=[f"{r[0]:g}C" for r in TABLE2],
)
def test_table2_recovered_by_labctls_own_analysis(tmp_path, capsys, row, err):
    temp, tau_fs, c, n_m3 = row
    _t, tau_err, c_err, n_err = err
    path, meta = measure(tmp_path, "tds", temp, "--sweeps", "3", "--noise", "white")
    with path.open() as fh:
        header = fh.readline().strip()
    assert header == "time_ps,E_ref,dE"
    fit = analyze_tds(path, meta, capsys)
    assert fit["tau_fs"] == pytest.approx(tau_fs, abs=3 * tau_err)
    assert fit["c"] == pytest.approx(c, abs=3 * c_err)
    assert fit["N_m3"] == pytest.approx(n_m3, abs=3 * n_err)
    assert meta["overloads"] == {"lockin_ref": [], "lockin_pump": []}
    assert meta["true"]["tau_fs"] == pytest.approx(tau_fs, abs=tau_err)
    assert abs(meta["optp_peak_delay_ps"] - meta["true_optp_peak_delay_ps"]) < 0.02
    assert meta["pump_power_w_measured"] == pytest.approx(0.98e-3, rel=0.03)


def test_absorption_after_350_is_bulk_like_and_metadata_is_the_stations(tmp_path):
    from labctl.station import station_path

    station = yaml.safe_load(station_path("sim").read_text())
    station["simulation"].update(
        film_thickness_nm=80.0, substrate_index=2.1, pump_fluence_uj_cm2=3.0
    )
    station_file = tmp_path / "thin-films.yaml"
    station_file.write_text(yaml.safe_dump(station))
    path, meta = measure(tmp_path, "absorption", 350, "--station", str(station_file))
    with path.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["wavelength_nm", "absorbance"]
    wl, a = np.array(rows[1:], dtype=float).T
    e = 1239.842 / wl
    y = (a * e) ** 2
    ymax = y[(e > 1.6) & (e < 2.4)].max()
    sel = (y > 0.15 * ymax) & (y < 0.5 * ymax) & (e < 2.3)
    slope, icept = np.polyfit(e[sel], y[sel], 1)
    assert -icept / slope == pytest.approx(1.70, abs=0.05)
    # the run records the sample and table the station describes, not defaults
    assert meta["thickness_nm"] == pytest.approx(80.0)
    assert meta["substrate_index"] == pytest.approx(2.1)
    assert meta["pump_fluence_uj_cm2"] == pytest.approx(3.0)
    assert meta["true"]["fused_fraction"] > 0.95
    assert meta["anneal"]["anneal_c"] == 350


def test_as_made_absorption_and_distance_through_the_eurotherm(tmp_path):
    path, meta = measure(tmp_path, "absorption", 25)
    wl, a = np.loadtxt(path, delimiter=",", skiprows=1).T
    sel = (wl > 500) & (wl < 525)
    assert wl[sel][np.argmax(a[sel])] == pytest.approx(512.0, abs=1.0)
    assert meta["true"]["distance_nm"] == pytest.approx(3.8, abs=0.5)
    _path, meta300 = measure(tmp_path, "absorption", 300, "--averages", "1")
    assert meta300["true"]["distance_nm"] == pytest.approx(1.5, abs=0.4)
    assert meta300["anneal"]["max_thermocouple_c"] < 310


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    rc = main(
        ["sim", "measure", "tds", "--anneal-c", "300", "--out", str(tmp_path / "x.txt"), "--quiet"]
    )
    assert rc == 1
    assert ".csv" in capsys.readouterr().err
    rc = main(
        [
            "sim",
            "measure",
            "absorption",
            "--anneal-c",
            "300",
            "--slot",
            "0",
            "--out",
            str(tmp_path / "x.csv"),
            "--quiet",
        ]
    )
    assert rc == 1
    assert "blank" in capsys.readouterr().err
