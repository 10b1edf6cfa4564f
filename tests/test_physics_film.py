"""Film physics against the paper: distances, history, irreversibility, TGA, EDX."""

import sys
import time

import numpy as np
import pytest
from sim_furnace import anneal_slot

from labctl.simulators.physics.film import Film, simulate_tga
from labctl.simulators.physics.params import TEM_DISTANCES_NM
from labctl.simulators.world import World


@pytest.fixture(scope="module")
def annealed():
    """One world; a fresh film per temperature, each annealed on the simulated furnace program."""
    from labctl.clock import VirtualClock

    world = World(VirtualClock(), seed=0, noise=False)
    slots = {80.0: 2, 250.0: 3, 300.0: 4, 340.0: 5, 350.0: 6}
    t0 = time.thread_time()  # CPU time: the bound holds however busy the machine is
    for temp, slot in slots.items():
        anneal_slot(world, slot, temp)
    cpu_s = time.thread_time() - t0
    films = {temp: world.slots[slot].film for temp, slot in slots.items()}
    films[25.0] = world.slots[1].film  # as made, parked in the cool end all along
    return world, films, cpu_s


def traced() -> bool:
    """Python runs under a tracer (coverage.py, a debugger): several times slower."""
    coverage = sys.modules.get("coverage")
    return sys.gettrace() is not None or (
        coverage is not None and coverage.Coverage.current() is not None
    )


def test_distances_match_tem_after_the_paper_anneal(annealed):
    _world, films, _ = annealed
    got = {t: films[t].distance_nm for t in TEM_DISTANCES_NM}
    for temp, (d_paper, err) in TEM_DISTANCES_NM.items():
        assert abs(got[temp] - d_paper) <= err, f"{temp} °C: {got[temp]:.2f} nm vs {d_paper}±{err}"
    assert films[350.0].fused_fraction > 0.95
    assert f"d={films[350.0].distance_nm:.2f} nm" in repr(films[350.0])  # as logs show it
    assert films[350.0].distance_nm < 0.1
    assert films[350.0].cdo_fraction > 0.1
    assert films[340.0].fused_fraction < 0.2


def test_anneals_integrate_fast_and_spare_the_neighbours(annealed):
    world, films, cpu_s = annealed
    if not traced():  # the CPU budget of untraced code (benchmarks/coverage_by_package.py)
        assert cpu_s < 5 * 1.5  # five ~3.5 h virtual anneals
    assert films[25.0].max_temperature_c < 40.0
    assert films[25.0].loose_fraction > 0.8  # ~20 h near room temperature: a little solvent goes
    assert world.slots[7].film.distance_nm > 3.5  # never annealed


def test_history_integrates_and_annealing_is_irreversible():
    """The film's history is the subject, so its anneals take the physics shortcut (the
    paper's program on an ideal furnace, ~0.1 s each); the anneals through the simulated
    controller are the ``annealed`` fixture's."""
    from labctl.clock import VirtualClock
    from labctl.simulators.physics.scan import anneal_nominal

    world = World(VirtualClock(), seed=0, noise=False)
    step_film, fresh = world.slots[1].film, world.slots[2].film
    anneal_nominal(step_film, 300.0)
    d300 = step_film.distance_nm
    anneal_nominal(step_film, 340.0)  # same film, again
    anneal_nominal(fresh, 340.0)  # a fresh one
    assert d300 > 1.3
    assert step_film.distance_nm == pytest.approx(fresh.distance_nm, abs=0.05)
    assert step_film.anneal_equivalent_c() == pytest.approx(fresh.anneal_equivalent_c(), abs=2.5)
    r_step, r_fresh = world.photoresponse(step_film), world.photoresponse(fresh)
    assert r_step.c == pytest.approx(r_fresh.c, abs=0.01)
    assert r_step.n_free_m3 == pytest.approx(r_fresh.n_free_m3, rel=0.02)
    # cooling and a milder anneal restore nothing
    d_before = step_film.distance_nm
    anneal_nominal(step_film, 250.0)
    assert step_film.distance_nm <= d_before + 1e-9
    assert step_film.bound_fraction < 0.05


def test_state_is_a_history_integral_not_a_lookup():
    from labctl.simulators.physics.params import default_params

    p = default_params().film
    short, long = Film(p), Film(p)
    for _ in range(600):
        short.step(1.0, 300.0)
    for _ in range(3600):
        long.step(1.0, 300.0)
    assert long.distance_nm < short.distance_nm - 0.3  # same temperature, longer dwell


def test_tga_steps_match_the_paper():
    from labctl.simulators.physics.params import default_params

    temps, mass = simulate_tga(default_params().film)

    def m(t):
        return float(np.interp(t, temps, mass))

    assert (m(250) - m(350)) * 100 == pytest.approx(62.0, abs=3.0)
    assert (m(355) - m(475)) * 100 == pytest.approx(11.0, abs=3.0)
    assert (1 - m(250)) * 100 < 3.0


def test_edx_carbon_follows_table_1(annealed):
    _world, films, _ = annealed
    assert films[25.0].carbon_wt_percent == pytest.approx(75.67, abs=3)
    assert films[250.0].carbon_wt_percent == pytest.approx(58.93, abs=3)
    assert films[300.0].carbon_wt_percent == pytest.approx(33.66, abs=4)


def test_the_noise_recursion_is_the_same_on_even_and_uneven_time_steps():
    """The table's 1/f noise steps x_i = x_{i-1}·d_i + k_i: by a filter where the points
    are evenly spaced, by a loop where they are not; both are the recursion itself."""
    from labctl.simulators.physics.noise import ar1_recursion

    rng = np.random.default_rng(7)
    for dts in (np.r_[5.0, np.full(299, 0.3)], np.r_[5.0, np.tile([0.3, 0.3, 0.5], 100)]):
        decay, kicks = np.exp(-dts / 2.0), rng.standard_normal(dts.size)
        expected, x = [], 0.7
        for d, k in zip(decay, kicks, strict=True):
            x = x * d + k
            expected.append(x)
        np.testing.assert_allclose(
            ar1_recursion(0.7, decay, kicks), expected, rtol=1e-12, atol=1e-12
        )
