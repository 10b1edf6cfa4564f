"""Station files: YAML → connected instruments by role.

A station names each instrument by role (``furnace``, ``lockin_ref``, …) with
its model (``driver``), ``address`` and driver ``options``. An address
``sim://`` builds the model's simulator in-process over one shared
:class:`~labctl.simulators.world.World`; any other address (VISA resource,
``socket://`` URL, device path) is handed to the driver as for hardware.
The reference is ``docs/stations.md``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from labctl.clock import Clock, RealClock, ScaledClock, VirtualClock
from labctl.errors import StationError
from labctl.registry import load, model

log = logging.getLogger(__name__)

DEFAULT_STATION = "sim"


@dataclass
class InstrumentSpec:
    role: str
    driver: str
    address: str
    options: dict = field(default_factory=dict)
    simulator: dict = field(default_factory=dict)

    @property
    def simulated_in_process(self) -> bool:
        return self.address.startswith("sim://")


@dataclass
class StationSpec:
    name: str
    instruments: dict[str, InstrumentSpec]
    time_scale: float | None = None  # None: real time; math.inf: virtual (instant) time
    simulation: dict = field(default_factory=dict)
    source: str = ""

    @property
    def needs_world(self) -> bool:
        return any(i.simulated_in_process for i in self.instruments.values())


def station_path(name_or_path: str | Path | None) -> Path:
    """Resolve a station argument: a file path, or the name of a bundled station."""
    if name_or_path is None:
        name_or_path = DEFAULT_STATION
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise StationError(f"station file {p} does not exist")
        return p
    bundled = resources.files("labctl.stations") / f"{name_or_path}.yaml"
    if not bundled.is_file():
        raise StationError(
            f"no station file {name_or_path!r} (neither a path nor a bundled station)"
        )
    return Path(str(bundled))


def _parse_time_scale(value: Any, where: str) -> float | None:
    if value is None or value == "real":
        return None
    if value in ("virtual", "inf", math.inf):
        return math.inf
    try:
        scale = float(value)
    except (TypeError, ValueError):
        raise StationError(
            f"{where}: time_scale must be a number, 'real' or 'virtual', got {value!r}"
        ) from None
    if not scale > 0:
        raise StationError(f"{where}: time_scale must be positive, got {value!r}")
    return None if scale == 1 else scale


def parse_station(data: Any, source: str = "<station>") -> StationSpec:
    """Validate a station mapping (as loaded from YAML); errors say where."""
    if not isinstance(data, dict):
        raise StationError(f"{source}: a station file is a mapping with an 'instruments' key")
    unknown = set(data) - {"name", "instruments", "time_scale", "simulation", "description"}
    if unknown:
        raise StationError(f"{source}: unknown top-level keys {sorted(unknown)}")
    insts = data.get("instruments")
    if not isinstance(insts, dict) or not insts:
        raise StationError(f"{source}: 'instruments' must map roles to instrument entries")
    specs: dict[str, InstrumentSpec] = {}
    for role, entry in insts.items():
        where = f"{source}: instruments.{role}"
        if not isinstance(entry, dict):
            raise StationError(f"{where}: expected a mapping with driver and address")
        bad = set(entry) - {"driver", "address", "options", "simulator"}
        if bad:
            raise StationError(f"{where}: unknown keys {sorted(bad)}")
        for key in ("driver", "address"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise StationError(f"{where}: '{key}' is required (a string)")
        try:
            model(entry["driver"])
        except StationError as exc:
            raise StationError(f"{where}: {exc}") from None
        for key in ("options", "simulator"):
            if not isinstance(entry.get(key, {}) or {}, dict):
                raise StationError(f"{where}: '{key}' must be a mapping")
        specs[str(role)] = InstrumentSpec(
            role=str(role),
            driver=entry["driver"],
            address=entry["address"],
            options=dict(entry.get("options") or {}),
            simulator=dict(entry.get("simulator") or {}),
        )
    sim = data.get("simulation") or {}
    if not isinstance(sim, dict):
        raise StationError(f"{source}: 'simulation' must be a mapping")
    return StationSpec(
        name=str(data.get("name", Path(source).stem)),
        instruments=specs,
        time_scale=_parse_time_scale(data.get("time_scale"), source),
        simulation=dict(sim),
        source=source,
    )


def load_station_spec(name_or_path: str | Path | None = None) -> StationSpec:
    path = station_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StationError(f"{where}: not valid YAML: {problem}") from None
    except OSError as exc:
        raise StationError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_station(data, str(path))


def make_clock(time_scale: float | None) -> Clock:
    if time_scale is None:
        return RealClock()
    if math.isinf(time_scale):
        return VirtualClock()
    return ScaledClock(time_scale)


class Station:
    """Connected instruments by role, plus the clock (and world, if simulated)."""

    def __init__(
        self,
        spec: StationSpec,
        *,
        time_scale: float | None | str = "station",  # "virtual", a factor, or None (real)
        clock: Clock | None = None,
        world=None,
    ) -> None:
        self.spec = spec
        if time_scale == "station":
            scale = spec.time_scale
        else:
            scale = _parse_time_scale(time_scale, "time scale")
        self.clock = clock if clock is not None else make_clock(scale)
        self.world = world
        if self.world is None and spec.needs_world:
            self.world = build_world(spec.simulation, self.clock, spec.source)
        self.simulators: dict[str, Any] = {}
        self.instruments: dict[str, Any] = {}
        try:
            for role, inst in spec.instruments.items():
                self.instruments[role] = self._connect(inst)
        except Exception:
            self.close()
            raise

    @classmethod
    def from_file(cls, name_or_path: str | Path | None = None, **kwargs) -> Station:
        return cls(load_station_spec(name_or_path), **kwargs)

    def _connect(self, inst: InstrumentSpec):
        m = model(inst.driver)
        try:
            factory = load(m.driver)
        except StationError as exc:
            raise StationError(f"{self.spec.source}: {inst.role}: {exc}") from None
        connection: Any = inst.address
        if inst.simulated_in_process:
            handler = make_simulator(self.spec, inst, self.world)
            self.simulators[inst.role] = handler
            connection = in_process_connection(handler)
        try:
            return factory(connection, name=inst.role, clock=self.clock, **inst.options)
        except StationError:
            raise
        except Exception as exc:
            raise StationError(
                f"{self.spec.source}: cannot connect {inst.role} ({inst.driver} at {inst.address}): {exc}"
            ) from exc

    def __getitem__(self, role: str):
        try:
            return self.instruments[role]
        except KeyError:
            raise StationError(
                f"station {self.spec.name!r} has no instrument {role!r} "
                f"(it has: {', '.join(self.instruments)})"
            ) from None

    def __contains__(self, role: str) -> bool:
        return role in self.instruments

    def close(self) -> None:
        for role, inst in list(self.instruments.items()):
            try:
                closer = getattr(inst, "shutdown", None) or getattr(inst, "close", None)
                if closer:
                    closer()
            except Exception:  # closing must not mask the original problem
                log.warning("closing %s failed", role, exc_info=True)

    def __enter__(self) -> Station:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def build_world(simulation: dict, clock: Clock, source: str = "<station>"):
    """The shared simulated world for a station's ``simulation`` section."""
    from labctl.simulators.world import World

    opts = dict(simulation)
    seed = opts.pop("seed", 0)
    noise = opts.pop("noise", True)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise StationError(
            f"{source}: simulation.seed must be a non-negative integer, got {seed!r}"
        )
    if noise not in (True, False, "realistic", "white"):
        raise StationError(
            f"{source}: simulation.noise must be true or false (or 'realistic', 'white'), "
            f"got {noise!r}"
        )
    world = World(clock, seed=seed, noise=noise)
    try:
        world.configure(**opts)
    except StationError as exc:
        raise StationError(f"{source}: {exc}") from None
    return world


def make_simulator(spec: StationSpec, inst: InstrumentSpec, world):
    """Build the simulator of a ``sim://`` instrument; bad options name file and role."""
    m = model(inst.driver)
    if m.simulator is None:
        raise StationError(f"{spec.source}: {inst.role}: model {inst.driver!r} has no simulator")
    cls = load(m.simulator)
    try:
        return cls(world, name=inst.role, **inst.simulator)
    except (TypeError, ValueError, KeyError) as exc:
        detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise StationError(f"{spec.source}: instruments.{inst.role}.simulator: {detail}") from None


def in_process_connection(handler):
    """The in-process transport a driver gets for a simulator, by the simulator's kind."""
    from labctl.transport import SimAdapter, SimSerial

    if handler.kind == "visa":
        return SimAdapter(handler)
    if handler.kind == "serial":
        return SimSerial(handler)
    return handler.connect()
