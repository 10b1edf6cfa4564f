"""Shared fixtures. Qt runs offscreen: set before any Qt import."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

from labctl.clock import VirtualClock  # noqa: E402


@pytest.fixture
def clock() -> VirtualClock:
    """Deterministic virtual time: sleeping advances it instantly."""
    return VirtualClock()


@pytest.fixture
def world(clock):
    """A seeded simulated world on virtual time."""
    from labctl.simulators.world import World

    return World(clock, seed=1234, noise=True)


@pytest.fixture
def quiet_world(clock):
    """A noise-free simulated world, for exactness checks."""
    from labctl.simulators.world import World

    return World(clock, seed=0, noise=False)


@pytest.fixture
def sim_station():
    """The bundled simulated station, in-process, on virtual time."""
    from labctl.station import Station

    station = Station.from_file("sim", time_scale="virtual")
    yield station
    station.close()
