"""Furnace plant: overshoot under a default PID, slow natural cooling, sensor break, speed."""

import time

import pytest

from labctl.clock import VirtualClock
from labctl.simulators.physics.furnace import FurnacePlant, ReferenceProgrammer, paper_program
from labctl.simulators.physics.params import default_params
from labctl.simulators.world import World


def _run(plant, ctl, seconds, dt=1.0):
    trace = []
    for i in range(int(seconds / dt)):
        ctl(i * dt, dt)
        plant.step(dt)
        trace.append((plant.thermocouple_c, plant.sample_c))
    return trace


def test_ramp_to_350_overshoots_realistically_then_settles():
    p = default_params().furnace
    plant = FurnacePlant(p)
    ctl = ReferenceProgrammer(plant, **p["reference_pid"])
    ctl.load([("ramp", 10.0, 350.0), ("dwell", 60.0)])
    trace = _run(plant, ctl, 32.5 * 60 + 60 * 60)
    tc = [t for t, _ in trace]
    overshoot = max(tc) - 350.0
    assert 1.0 < overshoot < 12.0
    ramp_end = int(32.5 * 60)
    assert max(s for _, s in trace[ramp_end:]) - 350.0 < overshoot  # the sample lags and smooths
    assert abs(tc[ramp_end + 40 * 60] - 350.0) < 1.0  # settled within the dwell
    assert (
        trace[ramp_end - 60][1] < tc[ramp_end - 60] - 5
    )  # sample lags the thermocouple on the ramp


def test_natural_cooling_takes_hours():
    p = default_params().furnace
    plant = FurnacePlant(p)
    plant.element_c = plant.zone_c = plant.tc_c = plant.sample_c = 350.0
    t = 0
    while plant.thermocouple_c > 30.0:
        plant.step(10.0)
        t += 10
    assert t > 2.5 * 3600
    assert plant.heater_fraction == 0.0


def test_sensor_break_reads_upscale():
    p = default_params().furnace
    plant = FurnacePlant(p)
    assert plant.thermocouple_c == pytest.approx(25.0)
    plant.sensor_broken = True
    assert plant.thermocouple_c == p["range_max_c"]
    plant.sensor_broken = False
    assert plant.thermocouple_c == pytest.approx(25.0)


def test_paper_anneal_integrates_in_well_under_a_second_with_lockins_polling():
    clock = VirtualClock()
    world = World(clock, seed=0)
    ctl = ReferenceProgrammer(world.furnace, **world.params.furnace["reference_pid"])
    world.add_controller(ctl)
    world.add_controller(lambda t, dt: (world.lockin_input_v("ref"), world.lockin_input_v("pump")))
    world.stages[2].move_to(world.slot_position_mm(2), 0.0)
    ctl.load(paper_program(340.0))
    t0 = time.perf_counter()
    clock.advance(3 * 3600)
    world.advance()
    assert time.perf_counter() - t0 < 1.0
    assert world.slots[2].film.max_temperature_c > 339.0
    assert world.slots[1].film.max_temperature_c < 35.0  # the neighbour stays cool


def test_axial_profile_heats_only_the_slot_in_the_hot_zone():
    p = default_params().furnace
    plant = FurnacePlant(p)
    plant.zone_c = 350.0
    assert plant.local_temperature_c(0.0) == 350.0
    assert plant.local_temperature_c(40.0) < 35.0
    assert plant.local_temperature_c(-40.0) == plant.local_temperature_c(40.0)
