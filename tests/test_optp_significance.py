"""An OPTP peak that is noise is said to be noise, by every path (issue 16).

On the default world (a real table's detector floor, docs/physics.md "Noise floor") a
250 °C film's OPTP is below the floor: the analysis says "not significant" and nulls the
peak and φμ, and the pump-delay alignment refuses to park on a noise peak. On the
analysis-test table (tests/quiet_table.py) the same film is significant and aligns.
The false-positive rate on nulls is measured in benchmarks/optp_significance.py.
"""

import json

import numpy as np
import pytest
from quiet_table import QUIET_TABLE
from sim_furnace import annealed_station

from labctl.analysis.optp import decay_model
from labctl.analysis.optp_analysis import analyze_optp
from labctl.analysis.optp_significance import (
    FALSE_POSITIVE_RATE,
    SIGNIFICANCE_P,
    optp_peak_significance,
)
from labctl.cli import main
from labctl.errors import AnalysisError
from labctl.procedures.alignment import find_optp_peak
from labctl.procedures.optp import OPTP
from labctl.procedures.tds import TDS
from labctl.runs import FAILED, FINISHED, run_procedure

T = np.arange(-3.0, 8.0001, 0.05)


def test_white_noise_nulls_are_rarely_significant_and_a_known_signal_is():
    rng = np.random.default_rng(16)
    hits = 0
    for _ in range(400):
        hits += bool(optp_peak_significance(T, rng.standard_normal((4, T.size))).significant)
    assert hits <= 2  # 0.2 expected at p ≤ 5e-4; 3 or more has probability 0.001
    clean = decay_model(T, 0.2, 0.3, [1.0], [2.0])
    # peak 8σ of the mean above zero at 4 sweeps: significant; 1σ: not
    for z, want in ((8.0, True), (1.0, False)):
        sweeps = z * 0.5 * clean / clean.max() + rng.standard_normal((4, T.size))
        test = optp_peak_significance(T, sweeps)
        assert test.significant is want, test
    assert SIGNIFICANCE_P <= FALSE_POSITIVE_RATE == 1e-3


def test_one_trace_uses_its_pre_pump_baseline_and_else_is_not_assessable():
    rng = np.random.default_rng(3)
    clean = decay_model(T, 0.2, 0.3, [1.0], [2.0])
    strong = optp_peak_significance(T, 20 * clean + rng.standard_normal(T.size))
    assert strong.significant and strong.noise_source == "pre-pump baseline"
    short = T[T > -0.5]  # no baseline before the rise, no errors given
    test = optp_peak_significance(short, decay_model(short, 0.2, 0.3, [1.0], [2.0]))
    assert test.significant is None
    analysis = analyze_optp(short, decay_model(short, 0.2, 0.3, [1.0], [2.0]), fit=False)
    assert analysis.to_dict()["significant"] is None
    assert any("not assessable" in w for w in analysis.to_dict()["warnings"])


def _optp_run(tmp_path, **simulation):
    station = annealed_station(250.0, **simulation)
    try:
        path = tmp_path / "optp.csv"
        proc = OPTP(sweeps=4, absorptance_400nm=0.3, fluence_uj_cm2=5.0, sample_id="NPL 250")
        outcome = run_procedure(proc, path, station=station)
    finally:
        station.close()
    assert outcome.status == FINISHED, outcome.message
    return outcome, path


def test_real_floor_250c_optp_is_not_significant_in_every_output(tmp_path, capsys):
    outcome, path = _optp_run(tmp_path)
    r = outcome.results
    assert r["significant"] is False
    assert r["optp_peak"]["minus_dE_over_E"] is None
    assert r["optp_peak"]["per_absorbed_photon_m2"] is None
    assert r["phi_mu_cm2_Vs"] is None and r["phi_mu_cm2_Vs_err"] is None
    assert r["peak_of_noise"]["minus_dE_over_E"] is not None  # what was measured is kept
    assert r["peak_z"] < 5
    assert "not significant" in OPTP.summary_line(r)
    # labctl analyze optp on the run file: the same verdict, in JSON and in text
    assert main(["analyze", "optp", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["significant"] is False and out["phi_mu_cm2_Vs"] is None
    assert any("OPTP peak not significant" in w for w in out["warnings"])
    assert main(["analyze", "optp", str(path)]) == 0
    text = capsys.readouterr().out
    assert "not significant" in text and "φμ =" not in text


def test_quiet_table_250c_optp_is_significant_with_phi_mu(tmp_path):
    outcome, _path = _optp_run(tmp_path, **QUIET_TABLE)
    r = outcome.results
    assert r["significant"] is True and r["peak_z"] > 20
    assert r["phi_mu_cm2_Vs"] > 0 and r["optp_peak"]["minus_dE_over_E"] > 0
    assert r["peak_of_noise"] is None
    assert "not significant" not in OPTP.summary_line(r)


def test_alignment_refuses_a_noise_peak_on_the_real_floor_and_aligns_on_the_quiet_table():
    for simulation, refuses in (({}, True), (QUIET_TABLE, False)):
        station = annealed_station(250.0, **simulation)
        try:
            station["stages"].sampling.move_to_ps(0.0)  # the gate on the THz peak
            if refuses:
                with pytest.raises(
                    AnalysisError, match=r"no peak above the noise in -0\.6…1\.2 ps"
                ):
                    find_optp_peak(station["stages"], station["lockin_pump"])
            else:
                truth = station.world.optp_peak_delay_ps()
                scan = find_optp_peak(station["stages"], station["lockin_pump"])
                assert scan.peak_ps == pytest.approx(truth, abs=0.02)
                assert not any("above the noise" in n for n in scan.notes)
        finally:
            station.close()


def test_tds_on_the_real_floor_ends_with_the_alignment_message_not_a_scan(tmp_path):
    station = annealed_station(250.0)
    try:
        proc = TDS(min_sweeps=1, max_sweeps=1, step_ps=0.2, t_start_ps=-1.0, t_stop_ps=2.0)
        outcome = run_procedure(proc, tmp_path / "tds.csv", station=station)
    finally:
        station.close()
    assert outcome.status == FAILED
    assert "no peak above the noise" in outcome.message and "σ" in outcome.message
    assert "optp_peak_ps" not in outcome.results  # never parked


def test_series_summary_shows_a_noise_optp_peak_as_not_significant(tmp_path):
    from rich.console import Console

    from labctl.series.report import print_summary, summary_rows

    step = {"sample_id": "A", "state": "done", "kind": "optp"}
    noise = {"significant": False, "phi_mu_cm2_Vs": None, "optp_peak": {"pump_delay_ps": -0.2}}
    measured = {"significant": True, "phi_mu_cm2_Vs": 4.5, "optp_peak": {"pump_delay_ps": 0.2}}
    rows = summary_rows(
        [
            dict(step, temperature_c=250.0, results=noise),
            dict(step, temperature_c=350.0, results=measured),
        ]
    )
    assert [r["optp_significant"] for r in rows] == [False, True]
    (tmp_path / "summary.json").write_text(
        json.dumps({"series": "s", "state": "done", "rows": rows})
    )
    console = Console(record=True, width=200)
    print_summary(tmp_path, console=console)
    rows_text = {
        line.split()[1]: line for line in console.export_text().splitlines() if "│" in line
    }
    assert "not significant" in rows_text["250"]
    assert "4.5" in rows_text["350"] and "not significant" not in rows_text["350"]
