"""Furnace plant: overshoot under a default PID, slow natural cooling, sensor break, speed."""

import time

import pytest

from labctl.clock import VirtualClock
from labctl.simulators.physics.furnace import FurnacePlant
from labctl.simulators.physics.params import default_params
from labctl.simulators.world import World


def _controller(world):
    """The simulated Eurotherm (its default PID and programmer) through its driver."""
    from sim_furnace import furnace_station

    return furnace_station(world)["furnace"]


def test_ramp_to_350_overshoots_realistically_then_settles():
    from labctl.drivers.eurotherm import Dwell, Ramp

    world = World(VirtualClock(), seed=0, noise=False)
    furnace = _controller(world)
    trace = []  # thermocouple and sample, every world step (1 s)
    world.add_controller(
        lambda t, dt: trace.append((world.furnace.thermocouple_c, world.furnace.sample_c))
    )
    furnace.load_program([Ramp(10.0, 350.0), Dwell(60.0)])
    furnace.run_program()
    world.clock.sleep(32.5 * 60 + 60 * 60)
    world.advance()
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


def test_paper_anneal_integrates_with_lockins_polling():
    from labctl.procedures.anneal import anneal_program

    world = World(VirtualClock(), seed=0)
    furnace = _controller(world)
    world.add_controller(lambda t, dt: (world.lockin_input_v("ref"), world.lockin_input_v("pump")))
    world.stages[2].move_to(world.slot_position_mm(2), world.t)
    furnace.load_program(anneal_program(340.0, 30.0, 10.0, (340.0 - 25.0) / 120.0, 25.0))
    furnace.run_program()
    t0 = time.thread_time()  # CPU time of this thread: the bound holds however busy the machine is
    world.clock.sleep(3 * 3600)
    world.advance()
    assert time.thread_time() - t0 < 10.0  # a hang guard; the speed is benchmarks/' business
    assert world.slots[2].film.max_temperature_c > 339.0
    assert world.slots[1].film.max_temperature_c < 35.0  # the neighbour stays cool


def test_axial_profile_heats_only_the_slot_in_the_hot_zone():
    p = default_params().furnace
    plant = FurnacePlant(p)
    plant.zone_c = 350.0
    assert plant.local_temperature_c(0.0) == 350.0
    assert plant.local_temperature_c(40.0) < 35.0
    assert plant.local_temperature_c(-40.0) == plant.local_temperature_c(40.0)
