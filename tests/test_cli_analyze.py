"""``labctl analyze``: JSON contract, tables, plots, clear errors on bad files."""

import json

import numpy as np
import pytest

from labctl import paper
from labctl.analysis import optp
from labctl.analysis.constants import HC_EV_NM
from labctl.cli import main
from labctl.simulators import synthetic

TDS_ARGS = ["--thickness-nm", "100", "--substrate-index", "1.95"]


@pytest.fixture(scope="module")
def tds_file(tmp_path_factory):
    p = paper.TABLE2[350]
    data = synthetic.synthetic_tds(
        tau_fs=p["tau_fs"], c=p["c"], n_m3=p["N_m3"], noise_de=3e-6, rng=0
    )
    path = tmp_path_factory.mktemp("tds") / "scan.csv"
    synthetic.write_tds_csv(path, data)
    return path


def _write(path, header, rows):
    lines = [header] + [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_tds_json_contract(tds_file, capsys):
    assert main(["analyze", "tds", str(tds_file), *TDS_ARGS, "--json"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0  # one JSON object, one line
    r = json.loads(out)
    for k in ("tau_fs", "c", "N_m3", "mobility_cm2_Vs"):
        assert isinstance(r[k], float) and isinstance(r[f"{k}_err"], float) and r[f"{k}_err"] > 0
    assert r["model"] == "drude-smith" and r["fmin_THz"] >= 0.3 and r["fmax_THz"] <= 2.2
    p = paper.TABLE2[350]
    assert abs(r["tau_fs"] - p["tau_fs"]) < 3 * r["tau_fs_err"]
    assert abs(r["mobility_cm2_Vs"] - 308) < 3 * r["mobility_cm2_Vs_err"] + 3


def test_tds_options_table_and_plot(tds_file, tmp_path, capsys):
    png = tmp_path / "fit.png"
    rc = main(
        [
            "analyze",
            "tds",
            str(tds_file),
            *TDS_ARGS,
            "--effective-mass",
            "0.2",
            "--fmin",
            "0.4",
            "--fmax",
            "2.0",
            "--model",
            "drude",
            "--plot",
            str(png),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "drude fit" in out and "cm²/Vs" in out
    assert png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG"
    rc = main(["analyze", "tds", str(tds_file), *TDS_ARGS, "--fit-method", "lmfit", "--json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["fit_method"] == "lmfit"


def _tds_rows(n=100, step=0.05):
    t = np.arange(n) * step
    return t, synthetic.thz_pulse(t, 2.0), np.zeros(n)


@pytest.mark.parametrize(
    "name,make,needle",
    [
        ("missing.csv", None, "no such file"),
        (
            "cols.csv",
            lambda t, e, d: ("time_ps,E_ref", zip(t, e, strict=True)),
            "missing column(s) dE",
        ),
        (
            "order.csv",
            lambda t, e, d: ("time_ps,E_ref,dE", zip(t[::-1], e, d, strict=True)),
            "not strictly increasing",
        ),
        (
            "nan.csv",
            lambda t, e, d: (
                "time_ps,E_ref,dE",
                [
                    (*r,) if i != 7 else (r[0], "nan", r[2])
                    for i, r in enumerate(zip(t, e, d, strict=True))
                ],
            ),
            "NaN",
        ),
        (
            "spacing.csv",
            lambda t, e, d: (
                "time_ps,E_ref,dE",
                zip(np.where(np.arange(t.size) > 50, t + 0.02, t), e, d, strict=True),
            ),
            "not equally spaced",
        ),
        (
            "short.csv",
            lambda t, e, d: ("time_ps,E_ref,dE", list(zip(t, e, d, strict=True))[:10]),
            "too few points",
        ),
        ("text.csv", lambda t, e, d: ("time_ps,E_ref,dE", [(0, "abc", 1)]), "not a number"),
    ],
)
def test_tds_bad_files(tmp_path, capsys, name, make, needle):
    path = tmp_path / name
    if make is not None:
        header, rows = make(*_tds_rows())
        _write(path, header, rows)
    rc = main(["analyze", "tds", str(path), *TDS_ARGS, "--json"])
    assert rc != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and needle in err
    assert capsys.readouterr().out == ""


def test_tds_window_without_points_is_an_error(tds_file, capsys):
    rc = main(["analyze", "tds", str(tds_file), *TDS_ARGS, "--fmin", "40", "--fmax", "45"])
    assert rc == 1 and "no frequency points" in capsys.readouterr().err


def test_optp_json(tmp_path, capsys):
    t = np.arange(-3, 20, 0.05)
    rng = np.random.default_rng(0)
    sig = optp.decay_model(t, 0.0, 0.3, [1e-3, 5e-4], [0.7, 4.0]) + 1e-5 * rng.standard_normal(
        t.size
    )
    e_ref = np.full(t.size, 2.0)
    path = _write(
        tmp_path / "optp.csv",
        "pump_delay_ps,E_ref_peak,dE_peak",
        zip(t, e_ref, -sig * e_ref, strict=True),
    )
    png = tmp_path / "optp.png"
    rc = main(
        [
            "analyze",
            "optp",
            str(path),
            "--fluence-uJcm2",
            "10",
            "--absorptance",
            "0.2",
            "--json",
            "--plot",
            str(png),
        ]
    )
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    assert r["fluence_uj_cm2"] == pytest.approx(10, rel=1e-12)  # echoed in its own unit
    # absorbed photons per m² (thickness-free): 1 µJ/cm² = 2.014e12 photons/cm² = 2.014e16 /m²
    assert r["absorbed_photons_m2"] == pytest.approx(10 * 0.2 * 2.014e16, rel=0.01)
    peak = r["optp_peak"]
    assert peak["minus_dE_over_E"] == pytest.approx(sig.max(), rel=0.05)
    assert peak["per_absorbed_photon_m2"] == pytest.approx(
        peak["minus_dE_over_E"] / r["absorbed_photons_m2"], rel=1e-12
    )
    assert r["phi_mu_cm2_Vs"] > 0
    lifetimes = r["decay"]["lifetimes_ps"]
    assert lifetimes[0] == pytest.approx(0.7, rel=0.1) and lifetimes[1] == pytest.approx(
        4.0, rel=0.1
    )
    assert png.exists()
    assert main(["analyze", "optp", str(path), "--no-fit"]) == 0
    assert "peak −ΔE/E" in capsys.readouterr().out
    # pump-power route: 1 mW at 1 kHz = 1 µJ on a 1 mm flat-top disc = 127.3 µJ/cm²
    power = ["--pump-power-mW", "1", "--rep-rate-kHz", "1", "--spot-diameter-mm", "1"]
    rc = main(["analyze", "optp", str(path), *power, "--absorptance", "0.2", "--no-fit", "--json"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    assert r["fluence_uj_cm2"] == pytest.approx(127.32, rel=1e-4)
    assert r["absorbed_photons_m2"] == pytest.approx(127.32 * 0.2 * 2.014e16, rel=0.01)


def test_optp_missing_signal_columns(tmp_path, capsys):
    path = _write(tmp_path / "o.csv", "pump_delay_ps,foo", [(i, 1) for i in range(20)])
    assert main(["analyze", "optp", str(path)]) == 2  # a bad file is bad input
    assert "minus_dE_over_E" in capsys.readouterr().err


def test_absorption_json_from_raw_counts(tmp_path, capsys):
    wl = np.arange(350.0, 720.01, 0.5)
    e = HC_EV_NM / wl
    a = (
        0.5 * np.exp(-0.5 * ((e - HC_EV_NM / 512) / 0.015) ** 2)
        + 0.3 * np.exp(-0.5 * ((e - HC_EV_NM / 480) / 0.025) ** 2)
        + 0.6 / (1 + np.exp(-(e - HC_EV_NM / 480 - 0.15) / 0.05))
        + 0.01
    )
    dark = np.full(wl.size, 100.0)
    ref = np.full(wl.size, 20000.0)
    sample = dark + (ref - dark) * 10 ** (-a)
    path = _write(
        tmp_path / "abs.csv",
        "wavelength_nm,sample,reference,dark",
        zip(wl, sample, ref, dark, strict=True),
    )
    png = tmp_path / "abs.png"
    assert main(["analyze", "absorption", str(path), "--json", "--plot", str(png)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["peaks"]["hh"]["wavelength_nm"] == pytest.approx(512, abs=0.5)
    assert r["peaks"]["lh"]["wavelength_nm"] == pytest.approx(480, abs=0.5)
    assert len(r["tauc"]["fit_range_eV"]) == 2 and "gap_eV" in r["tauc"]
    assert png.exists()
    assert main(["analyze", "absorption", str(path)]) == 0
    assert "heavy-hole exciton" in capsys.readouterr().out


def test_analyze_help_is_cheap(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "tds", "--help"])
    assert exc.value.code == 0
    assert "--thickness-nm" in capsys.readouterr().out


# ---------------------------------------------------------------- data quality


def test_tds_echo_and_bad_chi2_are_warned_and_flag_failure(tmp_path, capsys):
    from test_analysis_tds import _echo_scan

    t, ref, de = _echo_scan(noise=1e-6)
    path = _write(tmp_path / "echo.csv", "time_ps,E_ref,dE", zip(t, ref, de, strict=True))
    assert main(["analyze", "tds", str(path), *TDS_ARGS, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["echo"]["delay_ps"] == pytest.approx(13.0, abs=0.06)
    assert any("13.00 ps after the main pulse" in w and "truncate" in w for w in r["warnings"])
    assert r["chi2_red"] > 100 and r["success"] is False
    assert any("does not describe the data" in w for w in r["warnings"])
    assert main(["analyze", "tds", str(path), *TDS_ARGS]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "substrate echo" in out and "unsuccessful" in out


def test_tds_without_signal_is_an_error_or_not_significant(tmp_path, capsys):
    t = np.arange(500) * 0.05
    ref = synthetic.thz_pulse(t)
    path = _write(tmp_path / "zero.csv", "time_ps,E_ref,dE", zip(t, ref, 0 * t, strict=True))
    assert main(["analyze", "tds", str(path), *TDS_ARGS, "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and str(path) in captured.err and "zero everywhere" in captured.err
    # pure noise: an answer ("not significant"), but no carrier density presented as measured
    noise = 1e-6 * np.random.default_rng(0).standard_normal(t.size)
    path = _write(tmp_path / "noise.csv", "time_ps,E_ref,dE", zip(t, ref, noise, strict=True))
    assert main(["analyze", "tds", str(path), *TDS_ARGS, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["significant"] is False and r["success"] is False
    assert all(r[k] is None for k in ("tau_fs", "c", "N_m3", "mobility_cm2_Vs", "N_m3_err"))
    assert any("not significant" in w for w in r["warnings"])
    assert main(["analyze", "tds", str(path), *TDS_ARGS]) == 0
    assert "not significant" in capsys.readouterr().out
    header = "time_ps,E_ref,dE,dE"
    path = _write(tmp_path / "dup.csv", header, zip(t, ref, noise, noise, strict=True))
    assert main(["analyze", "tds", str(path), *TDS_ARGS, "--json"]) == 2
    assert "column 'dE' appears more than once" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--window", "nosuch"], "valid names: hann"),
        (["--window", "tukey,x"], "must be numbers"),
        (["--pad-factor", "inf"], "--pad-factor"),
        (["--pad-factor", "32"], "between 1 and 16"),
        (["--effective-mass", "inf"], "--effective-mass must be a finite positive"),
        (["--effective-mass", "nan"], "--effective-mass must be a finite positive"),
        (["--fmin", "-1"], "--fmin must be a finite positive"),
        (["--fmax", "inf"], "--fmax must be a finite positive"),
        (["--plot", "/nonexistent-dir/fit.png"], "does not exist"),
        (["--plot", "fit.nosuchformat"], "unknown image format"),
    ],
)
def test_tds_bad_options_fail_before_reading(tmp_path, capsys, extra, needle):
    missing = tmp_path / "not-there.csv"  # would be "no such file" if the options passed
    rc = main(["analyze", "tds", str(missing), *TDS_ARGS, *extra, "--json"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.count("\n") == 0 and needle in err, err


@pytest.mark.parametrize("bad", ["inf", "nan", "0", "-3"])
def test_tds_geometry_must_be_finite_positive(tds_file, capsys, bad):
    for opt in ("--thickness-nm", "--substrate-index"):
        args = {"--thickness-nm": "100", "--substrate-index": "1.95"} | {opt: bad}
        rc = main(["analyze", "tds", str(tds_file), *sum(args.items(), ()), "--json"])
        assert rc == 1 and f"{opt} must be a finite positive number" in capsys.readouterr().err


def test_tds_window_with_parameter(tds_file, capsys):
    assert (
        main(["analyze", "tds", str(tds_file), *TDS_ARGS, "--window", "tukey,0.3", "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["tau_fs"] > 0


@pytest.mark.parametrize(
    "kind,extra,needle",
    [
        ("optp", ["--fluence-uJcm2", "inf", "--absorptance", "0.2"], "--fluence-uJcm2"),
        ("optp", ["--fluence-uJcm2", "10", "--absorptance", "1.5"], "--absorptance must be in"),
        ("optp", ["--fluence-uJcm2", "10", "--absorptance", "nan"], "--absorptance must be in"),
        ("optp", ["--pump-power-mW", "1", "--absorptance", "0.2"], "needs all of"),
        ("optp", ["--irf-fwhm-ps", "-0.2"], "--irf-fwhm-ps"),
        ("optp", ["--photon-energy-eV", "nan"], "--photon-energy-eV"),
        ("optp", ["--n-exp", "0"], "--n-exp must be 1 to 4"),
        ("optp", ["--plot", "/nonexistent-dir/o.png"], "does not exist"),
        ("absorption", ["--search-nm", "700", "400"], "must be below"),
        ("absorption", ["--search-nm", "400", "inf"], "--search-nm (high)"),
        ("absorption", ["--tauc-range-eV", "nan", "2.6"], "--tauc-range-eV (low)"),
        ("absorption", ["--tauc-max-eV", "-1"], "--tauc-max-eV"),
        ("absorption", ["--thickness-nm", "inf"], "--thickness-nm"),
        ("absorption", ["--plot", "/nonexistent-dir/a.png"], "does not exist"),
    ],
)
def test_optp_and_absorption_bad_options(tmp_path, capsys, kind, extra, needle):
    missing = tmp_path / "not-there.csv"
    rc = main(["analyze", kind, str(missing), *extra, "--json"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.count("\n") == 0 and needle in err, err
