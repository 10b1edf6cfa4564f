"""The README's demo: anneal, measure and fit on the simulators, files and summary written."""

import csv
import json

import numpy as np
import pytest

from labctl import paper
from labctl.analysis.constants import DEFAULT_EFFECTIVE_MASS, E_CHARGE, M_ELECTRON
from labctl.analysis.io import load_absorption_csv, load_tds_csv
from labctl.cli import main


def test_demo_recovers_table2_and_writes_report(tmp_path, capsys):
    """The demo as the README runs it (250, 300, 350 °C): every file, every fit, the table."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    rows = json.loads((out / "summary.json").read_text())
    assert [r["anneal_c"] for r in rows] == [250.0, 300.0, 350.0]
    for row in rows:
        t_c, truth = round(row["anneal_c"]), paper.TABLE2[round(row["anneal_c"])]
        tag = f"{row['anneal_c']:g}C"
        # fitted Drude-Smith parameters: the paper's Table 2 within its errors
        for key in ("tau_fs", "c", "N_m3"):
            assert row[key] == pytest.approx(truth[key], abs=3 * truth[f"{key}_err"]), (t_c, key)
            assert row[f"{key}_err"] > 0
        assert row["paper"] == truth
        # mobility μ = eτ(1+c)/m* (the analysis' default m*, as the demo fits)
        mu = E_CHARGE * row["tau_fs"] * 1e-15 * (1 + row["c"])
        mu /= DEFAULT_EFFECTIVE_MASS * M_ELECTRON
        assert row["mobility_cm2_Vs"] == pytest.approx(mu * 1e4, rel=1e-3)
        # the run files, as `labctl analyze` reads them: a THz-TDS scan −4…12 ps every
        # 0.05 ps with ΔE ≪ E_ref, and a UV-Vis spectrum over 380–850 nm
        tds = load_tds_csv(out / row["files"]["tds"])
        assert tds.time_ps.size == 321
        assert tds.time_ps[0] == pytest.approx(-4.0) and tds.time_ps[-1] == pytest.approx(12.0)
        assert np.abs(tds.e_ref).max() > 10 * np.abs(tds.delta_e).max() > 0
        spectrum = load_absorption_csv(out / row["files"]["absorption"])
        assert spectrum.wavelength_nm[0] == pytest.approx(380, abs=1)
        assert spectrum.wavelength_nm[-1] > 845
        for png in (f"tds_{tag}.png", f"absorption_{tag}.png"):
            assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # the printed table: the fitted values and the paper's, row by row
        assert f"{row['tau_fs']:.1f}±{row['tau_fs_err']:.1f}" in printed
        assert f"{row['N_m3'] / 1e21:.3f}±" in printed
        assert f"{truth['tau_fs']:.0f}±{truth['tau_fs_err']:.0f}" in printed
    by_t = {round(r["anneal_c"]): r for r in rows}
    # absorption: HH exciton at ~512 nm through 250 °C, red-shifted by 300 °C, bulk-like at 350
    assert by_t[250]["hh_exciton_nm"] == pytest.approx(paper.HH_EXCITON_NM, abs=3.0)
    assert 514 < by_t[300]["hh_exciton_nm"] < 525
    assert by_t[350]["hh_exciton_nm"] is None
    assert by_t[350]["tauc_gap_ev"] == pytest.approx(paper.TAUC_GAP_350C_EV, abs=0.05)
    # photoconductivity and mobility rise with anneal temperature
    assert by_t[250]["N_m3"] < by_t[300]["N_m3"] < by_t[350]["N_m3"]
    assert (
        by_t[250]["mobility_cm2_Vs"] < by_t[300]["mobility_cm2_Vs"] < by_t[350]["mobility_cm2_Vs"]
    )
    # summary.csv holds what summary.json holds
    with (out / "summary.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 3
    for line, row in zip(table, rows, strict=True):
        for key in ("anneal_c", "tau_fs", "c", "N_m3", "mobility_cm2_Vs", "tau_fs_err"):
            assert float(line[key]) == pytest.approx(row[key], rel=1e-9)
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "".join(printed.split()).endswith(f"in{out}/")  # (rich may wrap the path)


def test_demo_rejects_impossible_temperature(tmp_path, capsys):
    assert main(["demo", "--temperatures", "900", "--out", str(tmp_path), "--quiet"]) == 1
    assert "25–400 °C" in capsys.readouterr().err
