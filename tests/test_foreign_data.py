"""Data from other labs (issue 19 items 1, 2, 4): files written as other programs write them
give the numbers of the labctl file; what was detected is said; units and column meanings
are never guessed; reflection data analysed as reflection recover the simulated layer."""

import json

import numpy as np
import pytest

from labctl import paper
from labctl.analysis import formats
from labctl.analysis.models import drude_smith
from labctl.cli import main
from labctl.simulators import synthetic
from labctl.simulators.physics.params import default_params
from labctl.simulators.physics.reflection import ReflectionSetup
from labctl.simulators.physics.thz import THzPulse

SAMPLE = ["--thickness-nm", "100", "--substrate-index", "1.95"]
T350 = paper.TABLE2[350]


@pytest.fixture(scope="module")
def scan():
    """A single noisy scan of the 350 °C film and its labctl-format analysis."""
    return synthetic.synthetic_tds(
        tau_fs=T350["tau_fs"], c=T350["c"], n_m3=T350["N_m3"], noise_de=3e-6, rng=1
    )


def _run(args, capsys) -> tuple[int, dict | None, str]:
    rc = main(["analyze", "tds", *args])
    cap = capsys.readouterr()
    out = cap.out.strip()
    return rc, (json.loads(out) if out.startswith("{") else None), cap.err + cap.out


def _num(v, decimal):
    text = repr(float(v))
    return text.replace(".", ",") if decimal == "," else text


def _write(path, rows, sep, decimal=".", header=None, meta=(), crlf=False):
    nl = "\r\n" if crlf else "\n"
    lines = list(meta)
    if header:
        lines.append(sep.join(header) if sep != " " else "  ".join(header))
    lines += [sep.join(_num(v, decimal) for v in r) for r in rows]
    path.write_bytes((nl.join(lines) + nl).encode())
    return path


@pytest.fixture(scope="module")
def reference_result(scan, tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "scan.csv"
    synthetic.write_tds_csv(path, scan)
    rc = main(["analyze", "tds", str(path), *SAMPLE, "--json"])
    assert rc == 0
    return path


def _labctl_fit(path, capsys):
    rc, r, _ = _run([str(path), *SAMPLE, "--json"], capsys)
    assert rc == 0
    return r


@pytest.mark.parametrize(
    ("name", "sep", "decimal", "meta", "crlf", "layout"),
    [
        ("tab.txt", "\t", ".", ["Date\t2019-03-01", "Operator\tA. N. Other"], False, "tab"),
        ("semi.csv", ";", ",", ["# exported by LabVIEW", "# sample: CdSe"], True, "semicolon"),
        ("blank.dat", " ", ".", ["% gate scan", "lockin = SR830"], False, "whitespace"),
        ("comma_fs.csv", ",", ".", [], True, "comma"),
    ],
)
def test_layouts_give_the_labctl_numbers(
    scan, reference_result, tmp_path, capsys, name, sep, decimal, meta, crlf, layout
):
    want = _labctl_fit(reference_result, capsys)
    # back sweep (descending time), femtoseconds, E_pumped instead of ΔE
    t_fs = scan.time_ps[::-1] * 1e3
    ref, pumped = scan.e_ref[::-1], (scan.e_ref + scan.delta_e)[::-1]
    header = ["Delay (fs)" if sep != " " else "delay[fs]", "Eref", "Epumped"]
    path = _write(tmp_path / name, zip(t_fs, ref, pumped, strict=True), sep, decimal, header,
                  meta, crlf)  # fmt: skip
    rc, r, _ = _run([str(path), *SAMPLE, "--json"], capsys)
    assert rc == 0, r
    for k in ("tau_fs", "c", "N_m3", "mobility_cm2_Vs"):
        assert r[k] == pytest.approx(want[k], rel=1e-6)
    info = r["input"]
    assert info["layout"].startswith(layout)
    assert ("decimal comma" in info["layout"]) == (decimal == ",")
    assert info["line_ends"] == ("CRLF" if crlf else "LF")
    assert info["time_unit"].startswith("fs (from the header")
    assert info["time_order"] == "descending (reversed)"
    assert "E_pumped" in info["fields"]
    assert len(info["metadata"]) == len([m for m in meta if any(c in m for c in "\t:=")])


def test_headerless_needs_the_unit_and_the_columns(scan, tmp_path, capsys):
    rows = zip(scan.time_ps / 6.671, scan.e_ref, scan.delta_e, strict=True)  # stage mm
    path = _write(tmp_path / "plain.txt", rows, "\t")
    rc, _, err = _run([str(path), *SAMPLE], capsys)
    assert rc == 2 and "which column is time?" in err
    rc, _, err = _run([str(path), *SAMPLE, "--columns", "time=1"], capsys)
    assert rc == 2 and "not stated in the file: give --time-unit" in err
    rc, _, err = _run([str(path), *SAMPLE, "--time-unit", "mm-double",
                       "--columns", "time=1"], capsys)  # fmt: skip
    assert rc == 2 and "which columns are the fields?" in err and "--pumped-column" in err
    rc, r, out = _run([str(path), *SAMPLE, "--time-unit", "mm-double",
                       "--columns", "time=1,ref=2,dE=3", "--json"], capsys)  # fmt: skip
    assert rc == 0, out
    assert r["input"]["header"].startswith("none (numeric from line 1)")
    assert r["input"]["time_unit"] == "mm-double (from --time-unit)"
    assert abs(r["tau_fs"] - T350["tau_fs"]) < 4 * r["tau_fs_err"]
    # text output says what was detected
    rc, _, out = _run([str(path), *SAMPLE, "--time-unit", "mm-double",
                       "--columns", "time=1,ref=2,dE=3"], capsys)  # fmt: skip
    assert "input layout: tab-separated, decimal point" in out
    assert "input time unit: mm-double (from --time-unit)" in out


def test_stage_mm_in_header_asks_single_or_double_pass(scan, tmp_path, capsys):
    rows = zip(scan.time_ps / 6.671, scan.e_ref, scan.delta_e, strict=True)
    path = _write(tmp_path / "mm.csv", rows, ";", ",", ["position (mm)", "E_ref", "dE"])
    rc, _, err = _run([str(path), *SAMPLE], capsys)
    assert rc == 2 and "single or double pass? give --time-unit mm-single or mm-double" in err
    rc, _, err = _run([str(path), *SAMPLE, "--time-unit", "ps"], capsys)
    assert rc == 2 and "contradicts" in err


def test_doubly_chopped_lockins(scan, tmp_path, capsys, reference_result):
    want = _labctl_fit(reference_result, capsys)
    x_probe = scan.e_ref + scan.delta_e / 2
    x_pump = scan.delta_e / 2
    rows = zip(scan.time_ps, x_probe, x_pump, strict=True)
    path = _write(tmp_path / "lockins.txt", rows, "\t", ".", ["time_ps", "X1", "X2"])
    rc, r, _ = _run([str(path), *SAMPLE, "--doubly-chopped", "--json"], capsys)
    assert rc == 0
    assert r["tau_fs"] == pytest.approx(want["tau_fs"], rel=1e-6)
    assert r["input"]["fields"].startswith("doubly chopped")


def test_waveform_sets_pair_in_order_and_errors_from_scatter(tmp_path, capsys):
    sweeps = synthetic.synthetic_tds(
        tau_fs=T350["tau_fs"], c=T350["c"], n_m3=T350["N_m3"], n_sweeps=6,
        noise_de=2e-4, noise_ref=1e-4, rng=5,
    )  # fmt: skip
    ref_dir, pump_dir = tmp_path / "ref", tmp_path / "pump"
    ref_dir.mkdir(), pump_dir.mkdir()
    for k in range(6):
        t = sweeps.time_ps
        _write(ref_dir / f"scan{k:02d}.txt", zip(t, sweeps.e_ref[k], strict=True), "\t",
               header=["t (ps)", "signal"])  # fmt: skip
        pumped = sweeps.e_ref[k] + sweeps.delta_e[k]
        _write(pump_dir / f"scan{k:02d}.txt", zip(t, pumped, strict=True), "\t",
               header=["t (ps)", "signal"])  # fmt: skip
    rc, r, out = _run(["--reference", str(ref_dir), "--pumped", str(pump_dir), *SAMPLE,
                       "--json"], capsys)  # fmt: skip
    assert rc == 0, out
    assert r["n_sweeps"] == 6 and r["noise_source"] == "sweep-scatter"
    assert r["input"]["pairing"].startswith("6 pair(s) in order")
    assert abs(r["tau_fs"] - T350["tau_fs"]) < 4 * r["tau_fs_err"]
    # the same files listed one by one give the same result
    files = sorted(ref_dir.iterdir())
    rc2, r2, _ = _run(["--reference", *map(str, files), "--pumped", str(pump_dir), *SAMPLE,
                       "--json"], capsys)  # fmt: skip
    assert rc2 == 0 and r2["tau_fs"] == r["tau_fs"]
    # unequal counts: against the mean reference, said
    rc3, r3, _ = _run(["--reference", str(files[0]), str(files[1]), "--pumped", str(pump_dir),
                       *SAMPLE, "--json"], capsys)  # fmt: skip
    assert rc3 == 0 and "mean of 2 reference" in r3["input"]["pairing"]
    assert any("reference's scatter is not in the errors" in w for w in r3["warnings"])
    # a file on another grid is named
    _write(pump_dir / "scan99.txt", zip(sweeps.time_ps[:-5], pumped[:-5], strict=True), "\t",
           header=["t (ps)", "signal"])  # fmt: skip
    rc4, _, err = _run(["--reference", str(ref_dir), "--pumped", str(pump_dir), *SAMPLE],
                       capsys)  # fmt: skip
    assert rc4 == 2 and "scan99.txt" in err and "not on the time grid" in err


def test_negative_real_part_in_transmission_is_refused(scan, tmp_path, capsys):
    path = tmp_path / "flipped.csv"
    flipped = synthetic.SyntheticTDS(scan.time_ps, scan.e_ref, -scan.delta_e, 1e-7, 1.95)
    synthetic.write_tds_csv(path, flipped)
    rc, r, err = _run([str(path), *SAMPLE, "--json"], capsys)
    assert rc == 1 and r is None
    assert "Re Δσ is negative across the band" in err
    for word in ("sign of dE", "lock-in phase", "--geometry reflection"):
        assert word in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("angle", "pol", "kappa"), [(0.0, "s", 0.0), (45.0, "p", 0.0), (30.0, "s", 0.05)]
)
def test_reflection_end_to_end_recovers_the_simulated_layer(tmp_path, capsys, angle, pol, kappa):
    """The simulated world's reflection setup (its own Fresnel form) → files → analyze."""
    n_sub = 3.42 + 1j * kappa
    depth_nm, n_m3 = 50.0, 5e23
    setup = ReflectionSetup(THzPulse(default_params().table), n_sub, angle, pol)
    t = np.arange(-5.0, 20.0, 0.05)
    ref, pumped = setup.traces(t, lambda f: drude_smith(f, 44e-15, -0.87, n_m3, 0.13), depth_nm)
    rng = np.random.default_rng(2)
    rows = zip(t, ref + 1e-7 * rng.standard_normal(t.size),
               pumped - ref + 1e-7 * rng.standard_normal(t.size), strict=True)  # fmt: skip
    path = _write(tmp_path / "refl.csv", rows, ",", header=["time_ps", "E_ref", "dE"])
    args = [str(path), "--geometry", "reflection", "--substrate-index", "3.42",
            "--substrate-kappa", str(kappa), "--angle-deg", str(angle), "--polarization", pol,
            "--json"]  # fmt: skip
    rc, r, out = _run(args, capsys)
    assert rc == 0, out
    assert r["tau_fs"] == pytest.approx(44.0, rel=0.03)
    assert r["c"] == pytest.approx(-0.87, abs=0.01)
    assert r["N_sheet_m2"] == pytest.approx(n_m3 * depth_nm * 1e-9, rel=0.03)
    assert r["N_m3"] is None and any("--excitation-depth-nm" in w for w in r["warnings"])
    assert r["geometry"]["kind"] == "reflection"
    rc, r2, _ = _run([*args, "--excitation-depth-nm", str(depth_nm)], capsys)
    assert rc == 0 and r2["N_m3"] == pytest.approx(n_m3, rel=0.03)
    assert r2["excitation_depth_nm"] == depth_nm
    rc, _, err = _run([*args, "--thickness-nm", "100"], capsys)
    assert rc == 1 and "--excitation-depth-nm" in err
    # the same data through the transmission formula do not pass silently
    rc, r3, err = _run([str(path), *SAMPLE, "--json"], capsys)
    assert rc == 1 and "Re Δσ is negative across the band" in err and r3 is None


def test_substrate_index_table(tmp_path, capsys):
    setup = ReflectionSetup(THzPulse(default_params().table), lambda f: 3.0 + 0.1 * f / 1e12)
    t = np.arange(-5.0, 20.0, 0.05)
    ref, pumped = setup.traces(t, lambda f: drude_smith(f, 44e-15, -0.87, 5e23, 0.13), 50.0)
    path = _write(tmp_path / "refl.csv", zip(t, ref, pumped - ref, strict=True), ",",
                  header=["time_ps", "E_ref", "dE"])  # fmt: skip
    f = np.linspace(0.1, 5.0, 50)
    table = _write(tmp_path / "n.txt", zip(f, 3.0 + 0.1 * f, 0 * f, strict=True), "\t",
                   header=["freq_THz", "n", "kappa"])  # fmt: skip
    rc, r, out = _run([str(path), "--geometry", "reflection", "--substrate-index-table",
                       str(table), "--json"], capsys)  # fmt: skip
    assert rc == 0, out
    assert r["tau_fs"] == pytest.approx(44.0, rel=0.02)
    assert "table" in r["geometry"]["description"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("t (ps)\tE_ref\tdE\n0.0\t1.0\t0.1\n0.05\tnan\t0.1\n", r"line 3: E_ref is 'nan'"),
        ("t (ps);E_ref;dE\n0,0;1,0;0,1\n0,05;1,5;x\n", r"line 3: dE is not a number"),
        ("t (ps)\tE_ref\tdE\n0.0\t1.0\t0.1\n0.05\t1.0\n", r"line 3: 2 values, header has 3"),
        ("a\tb\nfoo\tbar\n", r"no rows of numbers in the first 2 lines"),
    ],
)
def test_bad_foreign_files_one_line_naming_file_line_column(tmp_path, capsys, text, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(text.encode())
    rc, _, err = _run([str(path), *SAMPLE], capsys)
    assert rc == 2
    assert err.count("\n") == 1 and "bad.txt" in err
    assert __import__("re").search(message, err), err


def test_sniffer_on_a_large_file_is_block_wise(tmp_path):
    """A 200 000-row semicolon/decimal-comma file reads with its line numbers."""
    n = 200_000
    t = np.arange(n) * 0.01
    lines = ["# header", "time_ps;E"] + [f"{x:.2f};{np.sin(x):.6f}".replace(".", ",")
                                         for x in t]  # fmt: skip
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    table = formats.read_text_table(path)
    assert table.values.shape == (n, 2) and table.line_numbers[-1] == n + 2
    assert table.column("time_ps")[-1] == pytest.approx(t[-1])
