"""Anneal films of a bare :class:`~labctl.simulators.world.World` through its instruments.

For physics tests and benchmarks: the simulated Eurotherm (PID and programmer)
and ESP301 are attached to the world once, in-process, and the paper's recipe
(:func:`labctl.procedures.annealing.anneal_film`) runs through their drivers,
exactly as a procedure would on the simulated station.
"""

from __future__ import annotations

import weakref
from dataclasses import replace

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
    from labctl.procedures.annealing import anneal_film

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
