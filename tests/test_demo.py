"""The README's demo: the paper's annealing series on the simulators, asserted against the paper.

``labctl demo`` runs the bundled plan (a fresh film per temperature, 200–350 °C;
absorption, OPTP and THz-TDS after each anneal) through the series runner. The
summary must show the trends of Chen et al., Small 2023 and recover Table 2.
"""

import csv
import json
import math
import time

import pytest

from labctl import paper
from labctl.analysis.constants import E_CHARGE, M_ELECTRON
from labctl.cli import main
from labctl.series.catalog import Catalog

TEMPERATURES = [200.0, 250.0, 300.0, 325.0, 335.0, 340.0, 350.0]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo-out"
    t0 = time.process_time()  # CPU seconds the demo costs; a busy machine stretches only the wall
    code = main(["demo", "--out", str(out), "--quiet"])
    wall = time.process_time() - t0
    rows = json.loads((out / "summary.json").read_text())["rows"]
    return code, out, {round(r["temperature_c"]): r for r in rows}, rows, wall


def test_demo_runs_the_paper_series_quickly(demo):
    code, out, by_t, rows, wall = demo
    assert code == 0
    assert [r["temperature_c"] for r in rows] == TEMPERATURES
    assert wall < 60, wall  # "under a minute" (CPU time: the wall on an idle machine)
    with Catalog.in_directory(out) as catalog:
        assert catalog.series()["state"] == "done"
        steps = catalog.steps()
    assert len(steps) == 4 * len(TEMPERATURES)
    assert {s["state"] for s in steps} == {"done"}
    assert all(s["attempts"] == 1 for s in steps)
    # one film per temperature, each annealed once in its own slot
    anneals = [s for s in steps if s["kind"] == "anneal"]
    assert [s["slot"] for s in anneals] == list(range(1, 8))
    assert len({s["sample_id"] for s in anneals}) == 7
    for s in anneals:
        assert s["results"]["ended_by"] == "ready"
        assert s["results"]["max_pv_c"] == pytest.approx(s["temperature_c"], abs=6)
        assert 25 <= s["results"]["minutes_within_2c"] <= 31


def test_demo_absorption_trends(demo):
    _, _, by_t, _, _ = demo
    # HH exciton of the native platelets near 512 nm at low anneal temperatures
    for t in (200, 250):
        assert by_t[t]["hh_peak_nm"] == pytest.approx(paper.HH_EXCITON_NM, abs=3.0)
    # red shift past 250 °C, growing with temperature
    hh = [by_t[t]["hh_peak_nm"] for t in (250, 300, 325, 335, 340)]
    assert hh[1] > hh[0] + 2
    assert all(b > a for a, b in zip(hh, hh[1:], strict=False))
    # bulk-like at 350 °C: no exciton, the Tauc gap of bulk CdSe
    assert by_t[350]["hh_peak_nm"] is None
    assert by_t[350]["tauc_gap_ev"] == pytest.approx(paper.TAUC_GAP_350C_EV, abs=0.05)
    # a Tauc fit of an excitonic spectrum is no gap: not shown where there is an exciton
    assert all(r["tauc_gap_ev"] is None for r in by_t.values() if r["hh_peak_nm"] is not None)


def test_demo_photoconductivity_trends(demo):
    _, _, by_t, _, _ = demo
    per_nabs = {t: by_t[t]["optp_peak_per_absorbed_photon_m2"] for t in by_t}
    assert all(v is not None and v > 0 for v in per_nabs.values())
    # OPTP peak per absorbed photon density rises with T past 250 °C
    assert per_nabs[250] < per_nabs[300] < per_nabs[335] < per_nabs[350]
    assert per_nabs[350] > 2 * per_nabs[300]
    # c rises toward 0, τ jumps at 350 °C, N rises about 3× from 250 to 350 °C
    assert by_t[250]["c"] < by_t[300]["c"] < by_t[350]["c"] < 0
    assert by_t[350]["c"] > -0.75
    assert by_t[350]["tau_fs"] > 1.3 * max(by_t[t]["tau_fs"] for t in (250, 300, 325, 335, 340))
    assert 2.5 < by_t[350]["N_m3"] / by_t[250]["N_m3"] < 3.5


@pytest.mark.parametrize("t", sorted(paper.TABLE2))
def test_demo_recovers_table2(demo, t):
    _, _, by_t, _, _ = demo
    row, truth = by_t[t], paper.TABLE2[t]
    for key in ("tau_fs", "c", "N_m3"):
        assert row[f"{key}_err"] > 0
        # within three combined standard errors (fit and paper)
        tolerance = 3 * math.hypot(row[f"{key}_err"], truth[f"{key}_err"])
        assert row[key] == pytest.approx(truth[key], abs=tolerance), key
    # μ = eτ(1+c)/m* with the TDS procedure's effective mass (0.13 mₑ)
    mu = E_CHARGE * row["tau_fs"] * 1e-15 * (1 + row["c"]) / (0.13 * M_ELECTRON)
    assert row["mobility_cm2_Vs"] == pytest.approx(mu * 1e4, rel=1e-3)


def test_demo_writes_the_report(demo, capsys):
    _, out, _, rows, _ = demo
    for png in (
        "exciton_peak_vs_T.png",
        "absorption_spectra.png",
        "optp_traces.png",
        "optp_peak_vs_T.png",
        "conductivity_spectra.png",
        "drude_smith_vs_T.png",
    ):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert png in (out / "report.html").read_text()
    with (out / "summary.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(rows)
    for line, row in zip(table, rows, strict=True):
        for key in ("temperature_c", "tau_fs", "c", "N_m3", "mobility_cm2_Vs"):
            assert float(line[key]) == pytest.approx(row[key], rel=1e-9)
    assert (out / "series.log").read_text().count("anneal") >= 7


def test_demo_refuses_a_used_directory_and_reports_again(capsys, demo):
    _, out, by_t, _, _ = demo
    # a second demo into the same directory is refused (its world lived in that process)
    assert main(["demo", "--out", str(out), "--quiet"]) == 2
    assert "already holds a series" in capsys.readouterr().err
    assert main(["series", "report", str(out)]) == 0
    assert main(["series", "status", str(out), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["state"] == "done" and len(status["steps"]) == 28
