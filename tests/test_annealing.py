"""anneal_film: the Anneal recipe on bare drivers (labctl sim measure's entry), on the simulated station."""

import pytest
from sim_furnace import anneal_film

from labctl.errors import LabctlError, SafetyLimitError


def test_anneal_runs_on_the_controller_and_waits_for_room_temperature(sim_station):
    furnace, stages, clock = sim_station["furnace"], sim_station["stages"], sim_station.clock
    polls = []
    info = anneal_film(furnace, stages.sample, clock, 2, 300.0, on_poll=polls.append)
    assert stages.sample.slot == 2
    assert 299.0 < info["max_thermocouple_c"] < 310.0
    # 27.5 min ramp + 30 min dwell + 120 min cooling, then natural cooling below 30 °C
    assert info["anneal_hours"] > (27.5 + 30 + 120) / 60
    assert furnace.temperature_c <= 30.0
    assert polls and all("temperature_c" in p for p in polls)
    film = sim_station.world.slots[2].film
    assert film.distance_nm == pytest.approx(1.5, abs=0.4)  # TEM after 300 °C


def test_as_made_and_bad_recipes(sim_station):
    furnace, stages, clock = sim_station["furnace"], sim_station["stages"], sim_station.clock
    assert anneal_film(furnace, stages.sample, clock, 1, 25.0)["anneal_c"] is None
    with pytest.raises(LabctlError, match="ramp"):
        anneal_film(furnace, stages.sample, clock, 1, 300.0, ramp_c_per_min=0.0)
    with pytest.raises(SafetyLimitError, match="400"):  # the station's limit, in the driver
        anneal_film(furnace, stages.sample, clock, 1, 450.0)
    assert sim_station.world.slots[1].film.max_temperature_c < 35.0  # nothing was annealed
