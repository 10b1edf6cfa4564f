"""``labctl analyze``: JSON contract, tables, plots, clear errors on bad files."""

import json

import numpy as np
import pytest

from labctl.analysis import optp, synthetic
from labctl.analysis.constants import HC_EV_NM
from labctl.cli import main

TDS_ARGS = ["--thickness-nm", "100", "--substrate-index", "1.95"]


@pytest.fixture(scope="module")
def tds_file(tmp_path_factory):
    p = synthetic.TABLE2[350]
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
    p = synthetic.TABLE2[350]
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
    assert r["N_abs_per_cm2"] == pytest.approx(10 * 0.2 * 2.014e12, rel=0.01)
    assert r["peak_minus_dE_over_E"] == pytest.approx(sig.max(), rel=0.05)
    lifetimes = r["decay"]["lifetimes_ps"]
    assert lifetimes[0] == pytest.approx(0.7, rel=0.1) and lifetimes[1] == pytest.approx(
        4.0, rel=0.1
    )
    assert png.exists()
    assert main(["analyze", "optp", str(path), "--no-fit"]) == 0
    assert "peak −ΔE/E" in capsys.readouterr().out


def test_optp_missing_signal_columns(tmp_path, capsys):
    path = _write(tmp_path / "o.csv", "pump_delay_ps,foo", [(i, 1) for i in range(20)])
    assert main(["analyze", "optp", str(path)]) == 1
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
