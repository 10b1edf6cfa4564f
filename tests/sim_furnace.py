"""Anneal films of a bare simulated World through its furnace controller, for physics tests.

The simulated Eurotherm (PID and programmer) and ESP301 of the bundled sim
station are attached to the world once, in-process, and the paper's recipe
(:class:`labctl.procedures.anneal.Anneal`) runs through their drivers, exactly
as on the simulated station. It lives on the test side: simulators do not
import stations or procedures.
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
