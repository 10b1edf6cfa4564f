"""The README's demo: anneal, measure and fit on the simulators, files and summary written."""

import json

import pytest

from labctl import paper
from labctl.cli import main


def test_demo_one_temperature_recovers_table2_and_writes_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--temperatures", "300", "--out", str(out), "--quiet"]) == 0
    rows = json.loads((out / "summary.json").read_text())
    assert [r["anneal_c"] for r in rows] == [300.0]
    row, truth = rows[0], paper.TABLE2[300]
    for key in ("tau_fs", "c", "N_m3"):
        assert row[key] == pytest.approx(truth[key], abs=3 * truth[f"{key}_err"])
    assert 60 < row["mobility_cm2_Vs"] < 95  # science.md: 77 cm²/Vs at 300 °C
    assert 514 < row["hh_exciton_nm"] < 525  # red-shifted from 512 nm past 250 °C
    for name in (
        "summary.csv",
        "summary.png",
        "tds_300C.csv",
        "tds_300C.png",
        "absorption_300C.csv",
    ):
        assert (out / name).stat().st_size > 0
    assert "paper" in capsys.readouterr().out


def test_demo_rejects_impossible_temperature(tmp_path, capsys):
    assert main(["demo", "--temperatures", "900", "--out", str(tmp_path), "--quiet"]) == 1
    assert "25–400 °C" in capsys.readouterr().err
