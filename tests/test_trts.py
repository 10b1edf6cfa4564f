"""2D TRTS (issue 19 item 3, analysis): a fit per pump delay recovers N(t) and τ; delays
where Δσ changes within the THz pulse are flagged quasi-static; the constant
pump-probe-delay transform puts a t_pp-only field on constant columns."""

import json

import numpy as np
import pytest
from scipy.special import erf

from labctl.analysis import trts
from labctl.analysis.models import drude_smith
from labctl.cli import main
from labctl.simulators import synthetic

N0, TAU_FS, C = 8.35e21, 44.0, -0.87
PUMPS = np.arange(-1.0, 8.01, 0.5)


def _density(t_ps, decay_ps=20.0):
    return N0 * 0.5 * (1 + erf(t_ps / 0.3)) * np.exp(-np.clip(t_ps, 0, None) / decay_ps)


def _write_set(tmp_path, decay_ps=20.0, corner="time_ps"):
    base = synthetic.synthetic_tds(noise_de=0.0)
    t, ref = base.time_ps, base.e_ref
    cols = []
    for tp in PUMPS:
        n = _density(tp, decay_ps)
        pumped = synthetic.transmit_film(
            t, ref, lambda f, n=n: drude_smith(f, TAU_FS * 1e-15, C, max(n, 1.0), 0.13)
        )
        cols.append(
            pumped + 2e-6 * np.random.default_rng(int(tp * 10 + 100)).standard_normal(t.size)
        )
    lines = [corner + "\t" + "\t".join(f"{p:g}" for p in PUMPS)]
    lines += [
        f"{float(t[i])!r}\t" + "\t".join(repr(float(c[i])) for c in cols) for i in range(t.size)
    ]
    matrix = tmp_path / "trts.txt"
    matrix.write_text("\n".join(lines) + "\n")
    reference = tmp_path / "ref.txt"
    reference.write_text(
        "time_ps\tE\n"
        + "\n".join(f"{float(a)!r}\t{float(b)!r}" for a, b in zip(t, ref, strict=True))
        + "\n"
    )
    return matrix, reference


ARGS = ["--thickness-nm", "100", "--substrate-index", "1.95"]


def test_fit_per_delay_recovers_density_and_flags_the_rise(tmp_path, capsys):
    matrix, reference = _write_set(tmp_path)
    png = tmp_path / "trts.png"
    rc = main(["analyze", "trts", str(matrix), "--reference", str(reference), *ARGS,
               "--json", "--plot", str(png)])  # fmt: skip
    out = capsys.readouterr().out.strip()
    assert rc == 0 and out.count("\n") == 0
    r = json.loads(out)
    assert [d["pump_delay_ps"] for d in r["delays"]] == pytest.approx(list(PUMPS))
    assert r["input"]["gate_time_unit"].startswith("ps (from the corner cell")
    assert png.stat().st_size > 0
    late = [d for d in r["delays"] if d["pump_delay_ps"] >= 3.0]
    for d in late:
        for k in ("tau_fs", "c", "N_m3", "mobility_cm2_Vs"):
            assert k in d and f"{k}_err" in d
        assert d["N_m3"] == pytest.approx(_density(d["pump_delay_ps"]), rel=0.03)
        assert d["tau_fs"] == pytest.approx(TAU_FS, rel=0.05)
        assert not d["quasi_static_assumed"]
    rise = [d for d in r["delays"] if -0.5 <= d["pump_delay_ps"] <= 0.5]
    assert rise and all(d["quasi_static_assumed"] for d in rise)
    assert all(any("quasi-static" in w for w in d["warnings"]) for d in rise)
    before = [d for d in r["delays"] if d["pump_delay_ps"] == -1.0][0]
    assert before["significant"] is False and before["N_m3"] is None


def test_fast_decay_is_flagged_and_the_table_prints(tmp_path, capsys):
    matrix, reference = _write_set(tmp_path, decay_ps=1.0)
    rc = main(["analyze", "trts", str(matrix), "--reference", str(reference), *ARGS])
    out = capsys.readouterr().out
    assert rc == 0 and "TRTS fits of" in out and "yes" in out and "gate time ps" in out
    data = trts.load_trts(matrix, reference)
    change = trts.change_over_pulse(data)
    i = int(np.argmin(np.abs(data.pump_delay_ps - 3.0)))
    assert change[i] > trts.QUASI_STATIC_CHANGE  # a 1 ps decay moves Δσ within the pulse


def test_unit_never_guessed(tmp_path, capsys):
    matrix, reference = _write_set(tmp_path, corner="")
    reference.write_text(reference.read_text().replace("time_ps\tE", "t\tE"))
    rc = main(["analyze", "trts", str(matrix), "--reference", str(reference), *ARGS])
    err = capsys.readouterr().err
    assert rc == 2 and "gate-time unit is not stated" in err and err.count("\n") == 1
    rc = main(["analyze", "trts", str(matrix), "--reference", str(reference), *ARGS,
               "--time-unit", "ps", "--json"])  # fmt: skip
    assert rc == 0


def test_constant_pump_probe_frame_makes_tpp_only_fields_constant():
    gate = np.arange(-1.0, 1.0, 0.05)
    pumps = np.arange(-3.0, 6.0, 0.05)
    tpp_field = np.add.outer(gate, pumps)  # t_pp = t_gate + t_pump
    values = np.tanh(tpp_field)
    t_pp, out = trts.constant_pump_probe_frame(gate, pumps, values)
    assert t_pp[0] >= pumps[0] + gate.max() and t_pp[-1] <= pumps[-1] + gate.min()
    np.testing.assert_allclose(out, np.tanh(t_pp)[None, :].repeat(gate.size, 0), atol=1e-9)
    with pytest.raises(Exception, match="do not span the gate window"):
        trts.constant_pump_probe_frame(gate, np.arange(0.0, 1.0, 0.1), np.zeros((gate.size, 10)))
