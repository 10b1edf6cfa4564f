"""Photoconductivity and the OPTP table: Table 2 truth, OPTP trends, lock-in contract."""

import numpy as np
import pytest

from labctl.clock import VirtualClock
from labctl.paper import TABLE2 as PAPER_TABLE2
from labctl.simulators.world import PS_PER_MM_DOUBLE_PASS, World

TEMPS = (250.0, 300.0, 325.0, 335.0, 350.0)

TABLE2 = [
    (float(t), float(r["tau_fs"]), r["c"], r["N_m3"]) for t, r in sorted(PAPER_TABLE2.items())
]
TABLE2_ERRORS = [
    (float(t), float(r["tau_fs_err"]), r["c_err"], r["N_m3_err"])
    for t, r in sorted(PAPER_TABLE2.items())
]


def ideal_anneal(film, anneal_c: float) -> None:
    for temp in film.kin.nominal_program(anneal_c, dt=10.0):
        film.step(10.0, float(temp))


def set_delays(world, sampling_ps=None, pump_ps=None, slot=None):
    """Put the stages there instantly (physics tests; the ESP301 simulator moves them for real)."""
    t = world.table.p
    if sampling_ps is not None:
        st = world.stages[0]
        st.start_mm = st.target_mm = t["sampling_zero_mm"] + sampling_ps / PS_PER_MM_DOUBLE_PASS
    if pump_ps is not None:
        st = world.stages[1]
        st.start_mm = st.target_mm = t["pump_zero_mm"] + pump_ps / PS_PER_MM_DOUBLE_PASS
    if slot is not None:
        st = world.stages[2]
        st.start_mm = st.target_mm = world.slot_position_mm(slot)


@pytest.fixture(scope="module")
def films():
    world = World(VirtualClock(), seed=0, noise=False)
    slots = {25.0: 1, 250.0: 2, 300.0: 3, 325.0: 4, 335.0: 5, 350.0: 6}
    for temp, slot in slots.items():
        if temp > 25:
            ideal_anneal(world.slots[slot].film, temp)
    return world, slots


def test_table2_is_the_ground_truth_after_the_paper_anneal(films):
    world, slots = films
    for (temp, tau, c, n), (_t, tau_e, c_e, n_e) in zip(TABLE2, TABLE2_ERRORS, strict=True):
        r = world.photoresponse(world.slots[slots[temp]].film)
        assert r.tau_s * 1e15 == pytest.approx(tau, abs=tau_e)
        assert r.c == pytest.approx(c, abs=c_e)
        assert r.n_free_m3 == pytest.approx(n, abs=n_e)


def test_as_made_response_is_exciton_like(films):
    world, slots = films
    r = world.photoresponse(world.slots[slots[25.0]].film)
    f = np.array([0.5e12, 1.0e12, 2.0e12])
    s = r.sigma(f)
    assert np.all(s.imag < 0) and np.all(s.real > 0)
    assert np.all(-s.imag > 2 * s.real)
    assert -s.imag[2] > -s.imag[0]  # grows with frequency (Lorentz far below resonance)
    assert r.exciton_weight > 0 and r.free_carrier_yield < 0.002


def test_density_scales_with_fluence_and_absorptance(films):
    world, slots = films
    film = world.slots[slots[300.0]].film
    n5 = world.photoresponse(film).n_free_m3
    world.set_pump_fluence(10.0)
    try:
        n10 = world.photoresponse(film).n_free_m3
        assert n10 == pytest.approx(2 * n5, rel=1e-9)
        assert world.pump_power_w() == pytest.approx(2 * 0.9817e-3, rel=1e-3)
    finally:
        world.set_pump_fluence(5.0)
    r = world.photoresponse(film)
    a400 = world.absorption.absorptance(film, 400.0)
    photons_m3 = 5e-6 * 1e4 / (3.10 * 1.602176634e-19) / 100e-9
    assert r.n_abs_m3 == pytest.approx(photons_m3 * a400, rel=1e-6)


def optp_trace(world, slot, delays):
    set_delays(world, sampling_ps=0.0, slot=slot)
    out = []
    for d in delays:
        set_delays(world, pump_ps=d)
        out.append(-world.lockin_input_v("pump") / world.lockin_input_v("ref"))
    return np.array(out)


def test_optp_peak_per_absorbed_photon_rises_past_250_and_jumps_at_350(films):
    world, slots = films
    delays = np.arange(-1.0, 3.0, 0.01)
    per_nabs = {}
    for temp in (25.0, *TEMPS):
        film = world.slots[slots[temp]].film
        per_nabs[temp] = (
            optp_trace(world, slots[temp], delays).max() / world.photoresponse(film).n_abs_m3
        )
    seq = [per_nabs[t] for t in (250.0, 300.0, 325.0, 335.0, 350.0)]
    assert all(b > a for a, b in zip(seq, seq[1:], strict=False)), seq
    assert per_nabs[350.0] > 1.8 * per_nabs[335.0]
    assert per_nabs[250.0] > 3 * abs(per_nabs[25.0])


def test_optp_dynamics_rise_with_the_irf_and_decay_within_10ps(films):
    world, slots = films
    delays = np.arange(-2.0, 20.0, 0.01)
    trace = optp_trace(world, slots[300.0], delays)
    peak = trace.max()
    t10 = delays[np.argmax(trace > 0.1 * peak)]
    t90 = delays[np.argmax(trace > 0.9 * peak)]
    assert 0.1 < t90 - t10 < 0.45
    assert delays[np.argmax(trace)] == pytest.approx(world.optp_peak_delay_ps(), abs=0.011)
    assert trace[np.searchsorted(delays, 10.0)] < 0.2 * peak
    assert np.all(
        np.abs(trace[delays < -1.0]) < 1e-6 * peak
    )  # (the echo, 13 ps later, is outside the gate)


def test_lockin_channels_and_thin_film_formula(films):
    world, slots = films
    film = world.slots[slots[350.0]].film
    set_delays(world, sampling_ps=0.0, pump_ps=world.tds_pump_delay_ps(), slot=slots[350.0])
    x_ref, x_pump = world.lockin_input_v("ref"), world.lockin_input_v("pump")
    set_delays(world, pump_ps=-5.0)
    e_ref = world.lockin_input_v("ref")
    assert abs(world.lockin_input_v("pump")) < 1e-9 * e_ref
    # the pump lock-in sees ΔE/2 of the doubly chopped signal, the ref one E_ref + ΔE/2
    assert x_ref - x_pump == pytest.approx(e_ref, rel=1e-12)
    assert e_ref == pytest.approx(world.params.table["thz_peak_v"], rel=1e-6)
    assert x_pump < 0  # photoconductivity absorbs THz
    # small-signal Tinkham: −ΔE/E ≈ Z0 d Re Δσ/(1+n) near the spectral centroid
    r = world.photoresponse(film)
    sheet = 376.73 * film.thickness_nm * 1e-9 * r.sigma(np.array([0.8e12]))[0].real / 2.95
    assert -2 * x_pump / e_ref == pytest.approx(sheet, rel=0.35)
    assert world.lockin_noise_v_per_rthz("pump") == 0.0  # noise-free world
    assert world.lockin_reference_hz("ref") != world.lockin_reference_hz("pump")
    with pytest.raises(KeyError):
        world.lockin_input_v("aux")


def test_noise_densities_and_seeded_world(world):
    assert world.lockin_noise_v_per_rthz("pump") > 0
    assert world.lockin_noise_v_per_rthz("ref") > world.lockin_noise_v_per_rthz("pump")
    a = World(VirtualClock(), seed=7).rng.standard_normal(3)
    b = World(VirtualClock(), seed=7).rng.standard_normal(3)
    assert np.array_equal(a, b)


def test_configure_rejects_unknown_options_and_applies_known_ones():
    from labctl.errors import StationError

    world = World(VirtualClock(), seed=0)
    with pytest.raises(StationError, match="unknown options"):
        world.configure(bogus=1)
    with pytest.raises(StationError, match="positive"):
        world.configure(film_thickness_nm=-5)
    world.configure(n_films=3, film_thickness_nm=150, pump_fluence_uj_cm2=2.0)
    assert len(world.films) == 3 and len(world.slots) == 4
    assert world.films[0].thickness_nm == 150
    assert world.pump_fluence_uj_cm2 == 2.0
