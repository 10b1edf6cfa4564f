"""Continuing an interrupted anneal (what `labctl series run --resume` asks of Anneal).

The program runs on the controller, so a dead runner leaves it running, or
finished; an interlock resets it. Continuation attaches, watches the cooling, or
runs only the dwell still owed; the film's thermal history in the simulated world
(its anneal-equivalent temperature) shows that no anneal is repeated.
"""

import pytest

from labctl.drivers.eurotherm import ProgramStatus
from labctl.procedures.anneal import Anneal, anneal_program, dwell_done_min
from labctl.runs import FINISHED, run_procedure

T_C, SLOT = 300.0, 2
RAMP_MIN = (T_C - 25.0) / 10.0
FAST = {"record_interval_s": 120.0, "anneal_c": T_C, "slot": SLOT}


def start_program_as_a_dead_runner_left_it(station) -> None:
    """The paper's program loaded and started, the film in the hot zone; nobody watching."""
    station["stages"].sample.move_to_slot(SLOT)
    furnace = station["furnace"]
    furnace.load_program(anneal_program(T_C, 30.0, 10.0, (T_C - 25.0) / 120.0, 25.0))
    furnace.run_program()


def continue_anneal(station, tmp_path, **params):
    path = tmp_path / "continued.csv"
    proc = Anneal(continue_program=True, **{**FAST, **params})
    outcome = run_procedure(proc, path, station=station)
    assert outcome.status == FINISHED, outcome.message
    return outcome, path


def film(station):
    return station.world.slots[SLOT].film


@pytest.fixture(scope="module")
def once_annealed_t_eq(tmp_path_factory):
    """The anneal-equivalent temperature of a film annealed once, uninterrupted."""
    from labctl.station import Station

    with Station.from_file("sim", time_scale="virtual") as station:
        outcome = run_procedure(
            Anneal(**FAST), tmp_path_factory.mktemp("ref") / "a.csv", station=station
        )
        assert outcome.status == FINISHED
        return film(station).anneal_equivalent_c()


def test_attaches_to_the_program_still_running(sim_station, tmp_path, once_annealed_t_eq):
    start_program_as_a_dead_runner_left_it(sim_station)
    sim_station.clock.sleep(60 * (RAMP_MIN + 10.0))  # the runner died 10 min into the dwell
    outcome, path = continue_anneal(sim_station, tmp_path, dwell_done_min=8.0)
    r = outcome.results
    assert r["continued_from_status"] == "run"
    assert "attached" in r["continued"]
    assert r["ended_by"] == "ready"
    assert 15.0 <= r["minutes_within_2c"] <= 23.0  # the 20 min of dwell left, watched
    assert r["dwell_total_min"] == pytest.approx(8.0 + r["minutes_within_2c"])
    first = next(line for line in path.read_text().splitlines() if line[:1].isdigit())
    assert first.split(",")[5] == "2"  # recording started in the dwell: nothing reloaded
    assert film(sim_station).anneal_equivalent_c() == pytest.approx(once_annealed_t_eq, abs=1.0)


def test_program_finished_while_nobody_watched_is_recorded_not_repeated(
    sim_station, tmp_path, once_annealed_t_eq
):
    start_program_as_a_dead_runner_left_it(sim_station)
    sim_station.clock.sleep(60 * (RAMP_MIN + 30.0 + 120.0 + 5.0))  # program over, still warm?
    found = sim_station["furnace"].temperature_c
    outcome, path = continue_anneal(sim_station, tmp_path)
    r = outcome.results
    assert r["continued_from_status"] == "complete"
    assert "completed on the controller" in r["continued"]
    assert outcome.points >= 1  # the state found is on record
    assert r.get("max_pv_c", found) <= found + 0.5  # never heated again
    assert film(sim_station).anneal_equivalent_c() == pytest.approx(once_annealed_t_eq, abs=1.0)


def test_reset_program_runs_only_the_dwell_owed(sim_station, tmp_path, once_annealed_t_eq):
    start_program_as_a_dead_runner_left_it(sim_station)
    sim_station.clock.sleep(60 * (RAMP_MIN + 12.0))
    sim_station["furnace"].safe_state()  # an interlock reset the program 12 min into the dwell
    sim_station.clock.sleep(600.0)  # the film cools while the fault is found and cleared
    outcome, _ = continue_anneal(sim_station, tmp_path, dwell_done_min=12.0)
    r = outcome.results
    assert r["continued_from_status"] == "reset"
    assert r["dwell_owed_min"] == pytest.approx(18.0)
    assert "dwell still owed" in r["continued"] and "thermal history" in r["continued"]
    assert r["dwell_achieved_min"] == pytest.approx(18.0, abs=2.1)
    # one dwell in all (12 + 18 min); the re-heating adds a little thermal history, no more
    t_eq = film(sim_station).anneal_equivalent_c()
    assert once_annealed_t_eq - 1.0 <= t_eq <= once_annealed_t_eq + 4.0


def test_dwell_done_and_film_cool_anneals_nothing(sim_station, tmp_path, once_annealed_t_eq):
    start_program_as_a_dead_runner_left_it(sim_station)
    sim_station.clock.sleep(60 * (RAMP_MIN + 30.0 + 120.0 + 120.0))
    sim_station["furnace"].safe_state()
    before = film(sim_station).anneal_equivalent_c()
    outcome, _ = continue_anneal(sim_station, tmp_path, dwell_done_min=30.0)
    assert outcome.results["continued_from_status"] == "reset"
    assert "nothing to anneal" in outcome.results["continued"]
    assert outcome.points == 1
    assert sim_station["furnace"].program_status == ProgramStatus.RESET
    assert film(sim_station).anneal_equivalent_c() == before


def test_dwell_done_min_counts_the_rows_at_temperature(sim_station, tmp_path):
    path = tmp_path / "full.csv"
    outcome = run_procedure(Anneal(**FAST), path, station=sim_station)
    assert outcome.status == FINISHED
    params = {"anneal_c": T_C}
    assert dwell_done_min(path, params) == pytest.approx(outcome.results["minutes_within_2c"])
    # an attempt killed mid-dwell: its rows up to the kill, the last line cut short
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#") or line[:1].isalpha()]
    rows = [line for line in lines if line[:1].isdigit()]
    in_dwell = [i for i, line in enumerate(rows) if line.split(",")[5] == "2"]
    cut = rows[: in_dwell[len(in_dwell) // 2]]
    killed = tmp_path / "killed.csv"
    killed.write_text("".join(header + cut) + rows[len(cut)][:7])
    partial = dwell_done_min(killed, params)
    assert 0 < partial < outcome.results["minutes_within_2c"] - 5
    whole_rows = tmp_path / "whole-rows.csv"
    whole_rows.write_text("".join(header + cut))
    assert dwell_done_min(whole_rows, params) == partial  # the cut line is no row
    assert dwell_done_min(tmp_path / "never-written.csv", params) == 0.0
