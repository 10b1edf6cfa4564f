"""A world at rest is integrated in one step, an unheated (cooling) one in long steps:
same physics, O(1) / O(temperature travel) cost, a served world that answers at once.

The reference is the same world stepped second by second (``rest_in_one_step = False``,
``coast_in_long_steps = False``).
"""

from __future__ import annotations

import time

import pytest

from labctl.clock import VirtualClock
from labctl.simulators.world import _QUIESCENT_DT_C, COAST_TRAVEL_C, REST_C, World
from labctl.station import Station

HOUR_S = 3600.0


def heated_then_idle(one_step: bool, idle_h: float):
    """A quiet world: the furnace at 90 °C for 30 min with film 1 in it, back to 25 °C, idle."""
    from sim_furnace import furnace_station

    world = World(VirtualClock(), seed=0, noise=False)
    world.rest_in_one_step = one_step
    station = furnace_station(world)
    furnace = station["furnace"]
    station["stages"].sample.move_to_slot(1)
    steps = []  # a controller that is always at rest: counts the world's steps
    world.add_controller(lambda t, dt: steps.append(dt), at_rest=lambda: True)
    furnace.setpoint_c = 90.0
    world.clock.sleep(0.5 * HOUR_S)
    furnace.setpoint_c = 25.0
    checkpoints = []
    for _ in range(int(idle_h)):
        world.clock.sleep(HOUR_S)
        world.advance()
        plant, film = world.furnace, world.slots[1].film
        checkpoints.append(
            (
                plant.element_c,
                plant.zone_c,
                plant.thermocouple_c,
                plant.sample_c,
                film.temperature_c,
                film.loose_fraction,
                film.bound_fraction,
                film.distance_nm,
                furnace.temperature_c,
            )
        )
    return world, checkpoints, steps


def test_rest_in_one_step_follows_the_fine_stepped_trajectory():
    """Cooling is stepped as before; once at rest, one step lands where 1 s steps do."""
    idle_h = 11  # cooling from 90 °C reaches REST_C of the room after ~7.5 h
    _, fine, fine_steps = heated_then_idle(False, idle_h)
    world, jumped, jumped_steps = heated_then_idle(True, idle_h)
    assert len(fine_steps) >= (0.5 + idle_h) * HOUR_S  # the reference: 1 s steps throughout
    assert len(jumped_steps) < len(fine_steps) - 3 * HOUR_S  # hours at rest went in few steps
    assert max(jumped_steps) > HOUR_S / 2
    for a, b in zip(fine, jumped, strict=True):
        assert a[:4] == pytest.approx(b[:4], abs=2 * REST_C)  # the furnace's nodes, °C
        # a cold, settled film is held at its temperature, stepped or not (world.py's
        # quiescent films): the fine-stepped reference itself is exact to _QUIESCENT_DT_C
        assert a[4] == pytest.approx(b[4], abs=_QUIESCENT_DT_C)
        assert a[5:8] == pytest.approx(b[5:8], rel=1e-9, abs=1e-12)  # the film's state
        assert a[8] == pytest.approx(b[8], abs=0.1)  # PV as the driver reads it (0.1 °C)
    assert world.slots[1].film.max_temperature_c > 80.0  # the film was heated: not trivial


def test_days_at_rest_cost_a_few_steps_and_leave_the_room_as_it_was():
    from sim_furnace import furnace_station

    world = World(VirtualClock(), seed=0, noise=False)
    furnace = furnace_station(world)["furnace"]
    steps = []
    world.add_controller(lambda t, dt: steps.append(dt), at_rest=lambda: True)
    world.clock.sleep(1e6)  # 11.6 days
    world.advance()
    assert len(steps) <= 10 and sum(steps) == pytest.approx(1e6)
    assert world.furnace.thermocouple_c == pytest.approx(world.furnace.ambient_c, abs=REST_C)
    furnace.setpoint_c = 60.0  # and it heats as before afterwards
    world.clock.sleep(0.5 * HOUR_S)
    assert furnace.temperature_c > 50.0


def test_a_controller_without_a_rest_hook_keeps_one_second_steps():
    world = World(VirtualClock(), seed=0, noise=False)
    steps = []
    world.add_controller(lambda t, dt: steps.append(dt))
    world.clock.sleep(600.0)
    world.advance()
    assert steps == [1.0] * 600


@pytest.mark.slow
@pytest.mark.tcp
def test_served_world_idle_at_1e5_times_real_time_answers_at_once(serve):
    """The issue's failure: after an idle stretch a served world at 10⁵× gave "no answer"."""
    served = serve(100_000)
    time.sleep(3.0)  # the idle stretch under test: 3 wall seconds = 3.5 days of virtual time
    station = Station.from_file(served.station)  # opening reads the furnace's registers
    try:
        assert station["furnace"].temperature_c == pytest.approx(25.0, abs=0.1)
        time.sleep(1.0)  # idle again, now with a client connected
        assert station["furnace"].temperature_c == pytest.approx(25.0, abs=0.1)
    finally:
        station.close()


def cooled_from_an_anneal(long_steps: bool, left: str):
    """Film 1 held at 340 °C, then left to cool for 6 h (hourly snapshots) and the number
    of plant steps that took; ``left``: how the furnace is left to cool."""
    from sim_furnace import furnace_station

    from labctl.procedures.anneal import anneal_program

    world = World(VirtualClock(), seed=0, noise=False)
    world.coast_in_long_steps = long_steps
    station = furnace_station(world)
    furnace = station["furnace"]
    station["stages"].sample.move_to_slot(1)
    if left == "program complete":  # a program whose cooling ramp outran the furnace
        furnace.load_program(anneal_program(340.0, 10.0, 20.0, 20.0, 25.0))
        furnace.run_program()
    else:
        furnace.setpoint_c = 340.0
    world.clock.sleep(0.75 * HOUR_S)
    world.advance()
    if left == "setpoint lowered":
        furnace.setpoint_c = 25.0
    elif left == "sensor break":
        world.faults.inject("furnace", "sensor_break")
    steps = []
    plant_step = world.furnace.step
    world.furnace.step = lambda dt: (steps.append(dt), plant_step(dt))
    snapshots = []
    for _ in range(6):
        world.clock.sleep(HOUR_S)
        world.advance()
        plant, film = world.furnace, world.slots[1].film
        nodes = (plant.element_c, plant.zone_c, plant.tc_c, plant.sample_c, film.temperature_c)
        state = (film.loose_fraction, film.bound_fraction, film.residue_fraction)
        pv = None if left == "sensor break" else furnace.temperature_c
        snapshots.append((nodes, state + (film.fused_fraction, film.distance_nm), pv))
    return world, snapshots, steps


@pytest.mark.parametrize("left", ["setpoint lowered", "program complete", "sensor break"])
def test_an_unheated_furnace_cools_in_long_steps_along_the_fine_stepped_trajectory(left):
    """Before: every second of a cooling was a step (21 600 for these 6 h)."""
    _, fine, fine_steps = cooled_from_an_anneal(False, left)
    world, coasted, coasted_steps = cooled_from_an_anneal(True, left)
    assert len(fine_steps) == pytest.approx(6 * HOUR_S, abs=2)  # the reference: 1 s steps
    assert len(coasted_steps) < len(fine_steps) / 5
    assert world.slots[1].film.max_temperature_c > 330.0  # cooled from where chemistry runs
    assert coasted[0][0][1] > 50.0  # an hour in, still warm: the cooling is under test
    for (nodes_a, state_a, pv_a), (nodes_b, state_b, pv_b) in zip(fine, coasted, strict=True):
        assert nodes_a == pytest.approx(nodes_b, abs=COAST_TRAVEL_C)  # furnace and film, °C
        assert state_a == pytest.approx(state_b, rel=1e-5, abs=1e-9)  # the film's chemistry
        if pv_a is not None:  # PV as the driver reads it: 0.1 °C, one coasting step behind
            assert pv_a == pytest.approx(pv_b, abs=0.1 + COAST_TRAVEL_C + 1e-9)


@pytest.mark.slow
@pytest.mark.tcp
def test_served_world_cooling_at_1e5_times_real_time_answers_at_once(serve):
    """A film heated to 200 °C by a short program, then left cooling: one wall second at
    10⁵× is a day of virtual time, ~8 h of it cooling; the next request integrates it.
    Before: ~30 000 1-s steps (seconds of CPU) and "no answer" from the furnace."""
    from labctl.procedures.anneal import anneal_program
    from labctl.servesim import RemoteFaultBoard

    served = serve(100_000)
    board = RemoteFaultBoard.from_station_file(served.station)
    station = Station.from_file(served.station)
    try:
        furnace = station["furnace"]
        station["stages"].sample.move_to_slot(1)
        # ~20 min virtual of heating and regulation, then 0 % output: the program is
        # complete (holding 25 °C) long before the furnace has cooled
        furnace.load_program(anneal_program(200.0, 1.0, 20.0, 20.0, 25.0))
        furnace.run_program()
        time.sleep(1.0)  # ≥ 10⁵ s virtual: heated, cooled, at rest
        assert furnace.temperature_c == pytest.approx(25.0, abs=0.1)  # it answered
        assert furnace.program_status.name == "COMPLETE"
        film = next(f for f in board.films() if f["slot"] == 1)
        assert film["max_temperature_c"] > 150.0  # the stretch it integrated was a cooling
        assert film["heating_episodes"] == 1
        assert film["temperature_c"] == pytest.approx(25.0, abs=0.1)
    finally:
        station.close()
