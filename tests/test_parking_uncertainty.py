"""N's error includes where the pump stage is parked (issue 16.6): a per-run offset of
g(t_pump) that no averaging reduces."""

import math

import pytest

from labctl.analysis import parking


def test_parking_adds_its_share_of_n_in_quadrature_once():
    sd_ps = parking.parking_delay_sd_ps(5.5, 6.67)
    assert sd_ps == pytest.approx(8.645e-3, rel=1e-3)
    rel = parking.density_rel_sd(-0.7, sd_ps)
    assert rel == pytest.approx(0.0061, rel=0.01)  # the issue's ≈ 0.6 % rms
    fit = {"N_m3": 8e21, "N_m3_err": 2e19, "tau_fs": 44.0, "tau_fs_err": 1.0}
    out = parking.with_parking_uncertainty(fit, rel)
    assert out["N_m3_err"] == pytest.approx(math.hypot(2e19, 8e21 * rel))
    assert out["N_m3_err_fit"] == 2e19 and out["tau_fs_err"] == 1.0
    assert parking.with_parking_uncertainty(out, rel)["N_m3_err"] == out["N_m3_err"]


def test_log_slope_of_a_decay():
    slope = parking.log_slope_per_ps(lambda t: [math.exp(-x / 1.5) for x in t], 0.5)
    assert slope == pytest.approx(-1 / 1.5, rel=1e-6)
    assert parking.log_slope_per_ps(lambda t: [0.0, 0.0], 0.5) == parking.DEFAULT_LOG_SLOPE_PER_PS
