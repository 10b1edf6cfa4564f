"""UV-Vis through the world's light path: exciton peaks, red shift, Tauc gap, counts contract."""

import numpy as np
import pytest
from scipy.signal import find_peaks

from labctl.clock import VirtualClock
from labctl.simulators.world import World

WL = np.linspace(380.0, 850.0, 2351)


def ideal_anneal(film, anneal_c: float) -> None:
    """The paper's program on an ideal furnace (the furnace itself is tested elsewhere)."""
    for temp in film.kin.nominal_program(anneal_c, dt=10.0):
        film.step(10.0, float(temp))


def measured_absorbance(world, slot: int) -> np.ndarray:
    """A = −log10(film/blank) from the light the spectrometer would see (noise-free)."""
    clock = world.clock

    def light_at(index):
        world.stages[2].move_to(world.slot_position_mm(index), world.t)
        clock.advance(60.0)
        world.advance()
        return world.spectrum_counts(WL, 0.1)

    return -np.log10(light_at(slot) / light_at(world.blank_slot.index))


@pytest.fixture(scope="module")
def spectra():
    world = World(VirtualClock(), seed=0, noise=False)
    temps = {25.0: 1, 250.0: 2, 300.0: 3, 325.0: 4, 340.0: 5, 350.0: 6}
    for temp, slot in temps.items():
        if temp > 25:
            ideal_anneal(world.slots[slot].film, temp)
    return {temp: measured_absorbance(world, slot) for temp, slot in temps.items()}


def exciton_peaks(a):
    idx, _ = find_peaks(a)
    return WL[idx]


def test_as_made_heavy_and_light_hole_excitons(spectra):
    peaks = exciton_peaks(spectra[25.0])
    hh = peaks[(peaks > 495) & (peaks < 560)]
    lh = peaks[(peaks > 460) & (peaks < 495)]
    assert len(hh) == 1 and hh[0] == pytest.approx(512.0, abs=1.0)
    assert len(lh) == 1 and lh[0] == pytest.approx(480.0, abs=2.0)


def test_red_shift_is_monotonic_beyond_250(spectra):
    hh = []
    for temp in (250.0, 300.0, 325.0, 340.0):
        peaks = exciton_peaks(spectra[temp])
        hh.append(peaks[(peaks > 495) & (peaks < 600)][0])
    assert all(b > a + 1.0 for a, b in zip(hh, hh[1:], strict=False)), hh
    assert hh[0] < 514.0  # little shift up to 250 °C


def tauc_gap_ev(a):
    e = 1239.842 / WL
    y = (a * np.log(10) * e) ** 2  # (αd·E)², a direct gap
    ymax = y[(e > 1.6) & (e < 2.4)].max()
    sel = (y > 0.15 * ymax) & (y < 0.5 * ymax) & (e < 2.3)
    slope, intercept = np.polyfit(e[sel], y[sel], 1)
    return -intercept / slope


def test_bulk_like_edge_after_350(spectra):
    assert exciton_peaks(spectra[350.0])[(exciton_peaks(spectra[350.0]) > 495)].size == 0
    assert tauc_gap_ev(spectra[350.0]) == pytest.approx(1.70, abs=0.05)
    onset = WL[np.nonzero(spectra[350.0] > 0.1)[0].max()]
    assert 680 < onset < 760
    onset_340 = WL[np.nonzero(spectra[340.0] > 0.1 * spectra[340.0][WL < 560].max())[0].max()]
    assert onset_340 < 560  # still excitonic at 340 °C


def test_spectrum_counts_contract(world):
    wl = np.array([400.0, 500.0, 600.0, 700.0])
    world.stages[2].move_to(world.slot_position_mm(1) + 20.0, 0.0)  # between slots
    world.clock.advance(30)
    world.advance()
    assert world.slot_in_beam() is None and world.film_in_beam() is None
    open_beam = world.spectrum_counts(wl, 0.1)
    assert np.all(world.spectrum_counts(wl, 0.1, dark=True) == 0)
    assert np.allclose(world.spectrum_counts(wl, 0.2), 2 * open_beam)  # linear in time, no noise
    world.stages[2].move_to(world.slot_position_mm(0), world.t)
    world.clock.advance(30)
    world.advance()
    blank = world.spectrum_counts(wl, 0.1)
    assert np.allclose(blank, open_beam * world.params.optics["substrate_transmittance"])
    world.stages[2].move_to(world.slot_position_mm(1), world.t)
    world.clock.advance(30)
    world.advance()
    film = world.spectrum_counts(wl, 0.1)
    assert np.all(film < blank)
    world.lamp_shutter_open = False
    assert np.all(world.spectrum_counts(wl, 0.1) == 0)
