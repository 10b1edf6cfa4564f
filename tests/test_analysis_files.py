"""Analysis data files (issue 11, item 10): linear time, strict numbers, bounded
messages, physically impossible inputs refused, pymeasure headers read."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from labctl.analysis import io, optp, uvvis
from labctl.analysis.constants import HC_EV_NM
from labctl.cli import main
from labctl.errors import AnalysisError, DataFileError

TDS_HEADER = "time_ps,E_ref,dE"


def _tds_text(n=40, header=TDS_HEADER) -> str:
    t = np.arange(n) * 0.05
    return header + "\n" + "".join(f"{x:.4f},{np.sin(x):.6f},{0.01 * np.cos(x):.6f}\n" for x in t)


def _absorption_rows(n=400, lo=350.0, hi=720.0, noise=0.0, seed=0):
    wl = np.linspace(lo, hi, n)
    e = HC_EV_NM / wl
    a = (
        0.5 * np.exp(-0.5 * ((e - HC_EV_NM / 512) / 0.015) ** 2)
        + 0.3 * np.exp(-0.5 * ((e - HC_EV_NM / 480) / 0.025) ** 2)
        + 0.6 / (1 + np.exp(-(e - HC_EV_NM / 480 - 0.15) / 0.05))
        + 0.01
    )
    if noise:
        a = a + noise * np.random.default_rng(seed).standard_normal(n)
    return wl, a


def _write_columns(path, header, *cols):
    np.savetxt(path, np.column_stack(cols), delimiter=",", header=header, comments="", fmt="%.9g")
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


# ---------------------------------------------------------------- strict numbers


@pytest.mark.parametrize(
    "cell", ["3.5000_0", "1_000", "nan", "-inf", "Infinity", "1e999", "0x10", "١٢", "1,5", ""]
)
def test_numbers_are_parsed_strictly(tmp_path, cell):
    text = _tds_text()
    lines = text.splitlines()
    t, _, de = lines[5].split(",")
    lines[5] = f"{t},{cell},{de}"
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"bad\.csv: line 6: ") as err:
        io.read_csv_table(p)
    assert len(str(err.value)) < 200


def test_decimal_forms_are_accepted(tmp_path):
    p = tmp_path / "ok.csv"
    p.write_text("a,b,c\n.5,-1e-3,+2\n5.,1E+2, 3 \r\n")
    cols = io.read_csv_columns(p)
    assert cols["a"].tolist() == [0.5, 5.0]
    assert cols["b"].tolist() == [-1e-3, 100.0]
    assert cols["c"].tolist() == [2.0, 3.0]


def test_underscore_number_exits_2_via_cli(tmp_path, capsys):
    wl, a = _absorption_rows(60)
    rows = [f"{w:.3f},{x:.6f}" for w, x in zip(wl, a, strict=True)]
    rows[10] = "3.5000_0,0.1"
    p = tmp_path / "abs.csv"
    p.write_text("wavelength_nm,absorbance\n" + "\n".join(rows) + "\n")
    assert main(["analyze", "absorption", str(p)]) == 2
    err = _one_line_error(capsys)
    assert "line 12" in err and "3.5000_0" in err


# ---------------------------------------------------------------- bounded messages


def test_a_20_mb_line_gives_a_short_message(tmp_path, capsys):
    p = tmp_path / "huge.csv"
    text = _tds_text()
    with p.open("w") as f:
        f.write(text)
        f.write("1.0," + "9" * (20 << 20) + "x,0.1\n")
    with pytest.raises(DataFileError) as err:
        io.read_csv_table(p)
    assert len(str(err.value)) < 300 and "line 42" in str(err.value)
    assert main(["analyze", "optp", str(p)]) == 2
    assert len(_one_line_error(capsys)) < 400


def test_a_20_mb_header_gives_a_short_message(tmp_path):
    p = tmp_path / "wide.csv"
    p.write_text("time_ps," + "E" * (20 << 20) + ",dE\n1,2,3\n")
    with pytest.raises(DataFileError, match="column name of 20971520 characters") as err:
        io.read_csv_table(p)
    assert len(str(err.value)) < 300
    p.write_text(",".join(f"c{i}" for i in range(500_000)) + "\n" + ",".join(["1"] * 500_000))
    with pytest.raises(DataFileError, match="missing column") as err:
        io.read_csv_table(p, ("wavelength_nm",))
    assert len(str(err.value)) < 300


def test_cr_only_line_ends_are_named(tmp_path):
    p = tmp_path / "mac.csv"
    p.write_bytes(_tds_text().replace("\n", "\r").encode())
    with pytest.raises(DataFileError, match="line 1: a carriage return inside a line") as err:
        io.read_csv_table(p)
    assert len(str(err.value)) < 200


def test_files_above_the_size_limit_are_refused(tmp_path, monkeypatch):
    p = tmp_path / "big.csv"
    p.write_text(_tds_text(200))
    monkeypatch.setattr(io, "MAX_FILE_BYTES", 1000)
    with pytest.raises(DataFileError, match="reads at most"):
        io.read_csv_table(p)


# ---------------------------------------------------------------- comments, pymeasure


def test_comment_lines_before_the_header_are_skipped(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("# made by hand\n\n#another: note\n" + _tds_text())
    table = io.read_csv_table(p, ("time_ps",))
    assert table.columns["time_ps"].size == 40
    assert table.line_numbers[0] == 5  # the file's own line numbers
    assert table.header == {} and table.procedure is None


def test_a_comment_after_the_header_is_an_error(tmp_path):
    p = tmp_path / "c.csv"
    lines = _tds_text().splitlines()
    lines.insert(3, "# a late comment")
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFileError, match="line 4: a comment after the header"):
        io.read_csv_table(p)


def test_pymeasure_results_file_is_read_with_its_header(tmp_path):
    from pymeasure.experiment import FloatParameter, Metadata, Procedure, Results

    class FilmScan(Procedure):
        film_thickness = FloatParameter("Film thickness", units="nm", default=100.0)
        pump_power = FloatParameter("Pump power", units="mW", default=1.5)
        sample = Metadata("Sample", default="CdSe NPL 4ML")
        DATA_COLUMNS = ["time_ps", "E_ref", "dE"]

    procedure = FilmScan()
    path = tmp_path / "run.csv"
    results = Results(procedure, str(path))
    procedure.evaluate_metadata()
    results.store_metadata()
    t = np.arange(40) * 0.05
    with path.open("a") as f:
        for x in t:
            f.write(results.format({"time_ps": x, "E_ref": np.sin(x), "dE": 0.01 * x}) + "\n")
    text = path.read_text()
    assert text.startswith("#Procedure: <") and "#Parameters:" in text and "#Data:" in text
    table = io.read_csv_table(path, ("time_ps", "E_ref", "dE"))
    assert table.header["Film thickness"] == "100 nm"
    assert table.header["Pump power"] == "1.5 mW"
    assert table.header["Sample"] == "CdSe NPL 4ML"
    assert table.procedure is not None and table.procedure.endswith("FilmScan")
    assert np.allclose(table.columns["time_ps"], t)
    data = io.load_tds_csv(path)  # the TDS loader reads it through the same reader
    assert data.time_ps.size == 40


# ---------------------------------------------------------------- impossible inputs


@pytest.mark.parametrize("bad_wl", ["0", "-5"])
def test_non_positive_wavelength_exits_2(tmp_path, capsys, bad_wl):
    wl, a = _absorption_rows(60)
    rows = [f"{w:.3f},{x:.6f}" for w, x in zip(wl, a, strict=True)]
    rows[3] = f"{bad_wl},0.2"
    p = tmp_path / "abs.csv"
    p.write_text("wavelength_nm,absorbance\n" + "\n".join(rows) + "\n")
    assert main(["analyze", "absorption", str(p), "--json"]) == 2
    err = _one_line_error(capsys)
    assert "line 5" in err and "wavelengths must be positive" in err


def test_negative_absorbance_everywhere_exits_2(tmp_path, capsys):
    wl = np.linspace(350, 720, 300)
    p = _write_columns(tmp_path / "neg.csv", "wavelength_nm,absorbance", wl, -np.ones(wl.size))
    assert main(["analyze", "absorption", str(p), "--json"]) == 2
    err = _one_line_error(capsys)
    assert "absorbance is ≤ 0 at every wavelength" in err
    assert capsys.readouterr().out == ""


def test_tauc_ignores_negative_absorbance():
    wl, a = _absorption_rows(400)
    with pytest.raises(AnalysisError, match="no positive absorbance"):
        uvvis.tauc_gap(wl, -a)  # squared, −A would look like absorption
    res = uvvis.tauc_gap(wl, np.where(wl > 600, -0.05, a))  # a negative baseline is not α
    assert res.gap_ev == pytest.approx(uvvis.tauc_gap(wl, a).gap_ev, abs=0.02)


def test_optp_signal_of_one_or_more_exits_2(tmp_path, capsys):
    t = np.arange(-3, 20, 0.1)
    sig = 5.0 * optp.decay_model(t, 0.0, 0.3, [1.0], [2.0])  # in percent by mistake
    p = _write_columns(tmp_path / "o.csv", "pump_delay_ps,minus_dE_over_E", t, sig)
    assert main(["analyze", "optp", str(p), "--json"]) == 2
    err = _one_line_error(capsys)
    assert "must stay below 1" in err and "line " in err


# ---------------------------------------------------------------- linear time


def test_running_mean_is_exact_and_linear():
    # reads the private kernel: its exactness at every window and its O(n) cost are the
    # subject, and no public function reaches a 500 000-point window (spectra are binned)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(1000)
    for half in (0, 1, 7, 600):
        expected = [x[max(0, i - half) : i + half + 1].mean() for i in range(x.size)]
        assert np.allclose(uvvis._running_mean(x, half), expected)
    big = rng.standard_normal(2_000_000)
    t0 = time.thread_time()  # CPU time: the bound holds however busy the machine is
    uvvis._running_mean(big, 500_000)
    assert time.thread_time() - t0 < 5


def test_fine_spectra_are_binned_to_the_analysis_step():
    wl, a = _absorption_rows(200_000, noise=2e-3)
    grid_wl, sigma = uvvis.local_noise(wl, a)  # σ on the analysis grid
    assert grid_wl.size < 10_000 and np.median(np.diff(grid_wl)) >= uvvis.MIN_STEP_NM * 0.99
    assert np.median(sigma) == pytest.approx(2e-3 / np.sqrt(wl.size / grid_wl.size), rel=0.2)
    peaks = uvvis.find_exciton_peaks(wl, a)
    assert peaks.heavy_hole.wavelength_nm == pytest.approx(512, abs=0.3)
    assert peaks.light_hole.wavelength_nm == pytest.approx(480, abs=0.3)


def test_long_optp_trace_is_fitted_in_bins():
    t = np.linspace(-3, 20, 200_000)
    rng = np.random.default_rng(2)
    sig = optp.decay_model(t, 0.0, 0.3, [1e-3, 5e-4], [0.7, 4.0])
    sig = sig + 1e-5 * rng.standard_normal(t.size)
    fit = optp.fit_decay(t, sig, np.full(t.size, 1e-5))
    assert fit.lifetimes_ps == pytest.approx([0.7, 4.0], rel=0.05)
    assert any("averages of" in w for w in fit.warnings)
    tb, yb, eb, k = optp.bin_trace(t, sig, np.full(t.size, 1e-5))
    assert k == 40 and tb.size == 5000 and eb[0] == pytest.approx(1e-5 / np.sqrt(40))


@pytest.mark.parametrize("kind", ["absorption", "optp"])
def test_200k_row_files_are_analysed_in_seconds(tmp_path, capsys, kind):
    n = 200_000
    if kind == "absorption":  # ~2000 points per nm: the old running mean was O(n²/range)
        wl, a = _absorption_rows(n, lo=460.0, hi=560.0, noise=2e-3)
        p = _write_columns(tmp_path / "a.csv", "wavelength_nm,absorbance", wl, a)
    else:
        t = np.linspace(-3, 20, n)
        sig = optp.decay_model(t, 0.0, 0.3, [1e-3, 5e-4], [0.7, 4.0])
        sig = sig + 1e-5 * np.random.default_rng(3).standard_normal(n)
        p = _write_columns(tmp_path / "o.csv", "pump_delay_ps,minus_dE_over_E", t, sig)
    t0 = time.thread_time()  # CPU time of the analysis, not the (busy) wall
    assert main(["analyze", kind, str(p), "--json"]) == 0
    elapsed = time.thread_time() - t0
    assert elapsed < 8, f"analyze {kind} on {n} rows took {elapsed:.1f} s"  # ~1 s here
    r = json.loads(capsys.readouterr().out)
    if kind == "absorption":
        assert r["peaks"]["hh"]["wavelength_nm"] == pytest.approx(512, abs=0.3)
        assert r["tauc"] is None or r["tauc"]["gap_eV"] > 2
    else:
        assert r["decay"]["lifetimes_ps"] == pytest.approx([0.7, 4.0], rel=0.05)
