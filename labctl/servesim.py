"""Serve a station's simulators on loopback TCP, over one shared world.

The simulated world lives in the serving process, so it outlives a crash of
the program that drives it, exactly as real instruments do.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import yaml

from labctl.clock import ScaledClock
from labctl.errors import StationError
from labctl.station import build_world, load_station_spec, make_simulator, station_path
from labctl.transport import SimServer

log = logging.getLogger(__name__)


class ServedStation:
    """Running servers for every simulated instrument of a station."""

    def __init__(self, station: str | None, time_scale: float = 1.0, seed: int | None = None):
        self.spec = load_station_spec(station)
        self.source = station_path(station)
        self.time_scale = float(time_scale)
        self.clock = ScaledClock(self.time_scale)
        sim = dict(self.spec.simulation)
        if seed is not None:
            sim["seed"] = seed
        self.world = build_world(sim, self.clock, self.spec.source)
        self.servers: dict[str, SimServer] = {}
        self.handlers: dict = {}
        try:
            for role, inst in self.spec.instruments.items():
                if not inst.simulated_in_process:
                    continue
                handler = make_simulator(self.spec, inst, self.world)
                self.handlers[role] = handler
                self.servers[role] = SimServer(handler).start()
        except Exception:
            self.stop()
            raise
        if not self.servers:
            raise StationError(f"{self.source}: no simulated (sim://) instruments to serve")

    @property
    def resources(self) -> dict[str, str]:
        return {role: server.resource for role, server in self.servers.items()}

    def station_data(self) -> dict:
        """The station file pointing at the served resources."""
        data = yaml.safe_load(Path(self.source).read_text())
        out = copy.deepcopy(data)
        out["name"] = f"{self.spec.name}-served"
        out["time_scale"] = self.time_scale if self.time_scale != 1 else "real"
        out.pop("simulation", None)  # the world lives in the server
        for role, resource in self.resources.items():
            out["instruments"][role]["address"] = resource
            out["instruments"][role].pop("simulator", None)
        return out

    def write_station(self, path: str | Path) -> None:
        Path(path).write_text(
            "# Written by `labctl sim serve`: these instruments are simulators served on loopback.\n"
            + yaml.safe_dump(self.station_data(), sort_keys=False)
        )

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()

    def __enter__(self) -> ServedStation:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_station(station: str | None, time_scale: float = 1.0, seed: int | None = None):
    return ServedStation(station, time_scale=time_scale, seed=seed)
