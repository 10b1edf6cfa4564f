"""Shared fixtures. Qt runs offscreen: set before any Qt import."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")
# pyvisa-py, named: with no library named, every ResourceManager() (one per VISA instrument
# a station opens, here and in the CLI subprocesses) searched for an IVI binary first,
# 0.2 s each on the 2-core machine; the search finds none here and picks pyvisa-py anyway
os.environ.setdefault("PYVISA_LIBRARY", "@py")

import pytest  # noqa: E402

from labctl.clock import VirtualClock  # noqa: E402


# --------------------------------------------------------------- running in parallel
def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker more than the CPUs. Part of the suite waits on served
    worlds, subprocesses and sockets; the extra worker computes meanwhile. Measured on
    the idle 2-core machine: 2 workers ~230 s, 3 workers 193 s, 4 workers 206 s."""
    return (os.cpu_count() or 1) + 1


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


@pytest.fixture
def one_try_station():
    """The bundled simulated station whose furnace link tries each request once (the
    station option ``retries: 0``), for tests of a lost, silent or garbled controller.

    There every retry only waits out the link's reply horizon (wall time, 0.25 s in
    process) before it fails again, and a safe state makes a dozen requests: the
    default two retries tripled a dead-link test's wall time and tested nothing more.
    What a retry recovers is tested on its own (tests/test_eurotherm.py, test_modbus.py).
    """
    from labctl.station import Station, load_station_spec

    spec = load_station_spec("sim")
    spec.instruments["furnace"].options["retries"] = 0
    station = Station(spec, time_scale="virtual")
    yield station
    station.close()


@pytest.fixture(scope="session", autouse=True)
def no_user_notifications(tmp_path_factory):
    """The tests' series never tell the developer's own targets (their notify.yaml) nor pop
    up on their desktop: a config directory of the session's own, subprocesses included."""
    config = tmp_path_factory.mktemp("labctl-config")
    (config / "notify.yaml").write_text("desktop: false\n")
    os.environ["LABCTL_CONFIG"] = str(config)
    os.environ.pop("LABCTL_WATCH_TOKEN", None)


@pytest.fixture
def serve(tmp_path):
    """Start ``labctl sim serve`` (returns once ``ready``); stopped at teardown, bounded.

    ``serve(time_scale=100, *extra)`` returns a :class:`served.Served` (``.station`` the
    written station file, ``.resources``, ``.proc``, ``.stderr_text()``). See tests/served.py.
    """
    from served import start_served

    started = []

    def start(time_scale=100, *extra, **options):
        where = tmp_path / f"served-{len(started)}"
        where.mkdir()
        started.append(start_served(where, time_scale, *extra, **options))
        return started[-1]

    yield start
    for served in started:
        served.stop()
