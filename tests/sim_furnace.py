"""Anneal films of a bare simulated World through its furnace controller, for physics tests.

``anneal_film`` is the :class:`~labctl.procedures.anneal.Anneal` recipe on bare
drivers, for tests that need an annealed film before another procedure: the
recipe, its interlocks and its safe state live in ``procedures/anneal.py``
only; rows go to ``on_poll`` instead of a run file. It is a test helper, so it
lives here and not in the package.

The simulated Eurotherm (PID and programmer) and ESP301 of the bundled sim
station are attached to the world once, in-process, and the paper's recipe
(:class:`labctl.procedures.anneal.Anneal`) runs through their drivers, exactly
as on the simulated station. It lives on the test side: simulators do not
import stations or procedures.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import replace

from labctl.clock import Clock
from labctl.procedures.anneal import COOL_MINUTES, READY_BELOW_C, Anneal

_STATIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def furnace_station(world):
    """The furnace and stages of the bundled sim station, attached to ``world`` (once)."""
    from labctl.station import Station, load_station_spec

    station = _STATIONS.get(world)
    if station is None:
        spec = load_station_spec("sim")
        roles = ("furnace", "stages")
        spec = replace(spec, instruments={r: spec.instruments[r] for r in roles})
        station = Station(spec, clock=world.clock, world=world)
        _STATIONS[world] = station
    return station


def anneal_slot(world, slot: int, anneal_c: float, **recipe) -> dict:
    """Anneal the film in ``slot`` the paper's way on the simulated furnace program."""

    station = furnace_station(world)
    return anneal_film(
        station["furnace"],
        station["stages"].sample,
        world.clock,
        slot,
        anneal_c,
        ambient_c=float(world.furnace.ambient_c),
        **recipe,
    )


def annealed_station(
    anneal_c: float = 300.0, slot: int = 1, *, through_furnace: bool = False, **simulation
):
    """The full sim station on virtual time with the film in ``slot`` annealed (and in the beam).

    For tests that are not about annealing, the film takes the physics shortcut: it is
    stepped through the paper's program on an ideal furnace
    (:func:`labctl.simulators.physics.scan.anneal_nominal`, ~0.1 s) instead of the
    full recipe over Modbus through the simulated controller's PID (~3.5 h of virtual
    time, seconds of wall time). ``through_furnace=True`` runs the full recipe.
    """
    from labctl.simulators.physics.scan import anneal_nominal
    from labctl.station import Station, load_station_spec

    spec = load_station_spec("sim")
    spec.simulation = dict(spec.simulation, **simulation)
    station = Station(spec, time_scale="virtual")
    if through_furnace:
        anneal_film(
            station["furnace"],
            station["stages"].sample,
            station.clock,
            slot,
            anneal_c,
            ambient_c=float(station.world.furnace.ambient_c),
        )
        return station
    with station.world.lock:
        anneal_nominal(station.world.slots[slot].film, anneal_c)
    station["stages"].sample.move_to_slot(slot)
    return station


def anneal_film(
    furnace,
    sample_stage,
    clock: Clock,
    slot: int,
    anneal_c: float,
    *,
    dwell_min: float = 30.0,
    ramp_c_per_min: float = 10.0,
    cool_min: float = COOL_MINUTES,
    ambient_c: float = 25.0,
    ready_below_c: float = READY_BELOW_C,
    poll_s: float = 600.0,
    on_poll: Callable[[dict], None] | None = None,
) -> dict:
    """Anneal the film in ``slot`` (see :class:`Anneal`); returns its ``run_results``.

    ``max_thermocouple_c`` repeats ``max_pv_c`` under its old name.
    """
    proc = Anneal(
        slot=slot,
        anneal_c=anneal_c,
        dwell_min=dwell_min,
        ramp_c_per_min=ramp_c_per_min,
        cool_min=cool_min,
        ambient_c=ambient_c,
        ready_below_c=ready_below_c,
        record_interval_s=poll_s,
    )

    def emit(topic: str, record) -> None:
        if topic == "results" and on_poll is not None:
            on_poll(record)

    proc.emit = emit
    proc.should_stop = lambda: False
    proc.anneal(furnace, sample_stage, clock)
    results = dict(proc.run_results)
    if "max_pv_c" in results:
        results["max_thermocouple_c"] = results["max_pv_c"]
    return results
