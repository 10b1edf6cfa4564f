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

from labctl.clock import Clock, make_clock
from labctl.errors import StationError
from labctl.registry import load, model
from labctl.schema import Invalid, show
from labctl.served_clock import ServedClock
from labctl.station_schema import SIMULATION, check_station, time_scale_value
from labctl.yamlfile import YamlDocument, load_document

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
    description: str = ""
    sim_control: str | None = None  # "127.0.0.1:PORT": fault injection of a served world

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
    """A clock's time scale from code or the command line: None/'real'/1 real,
    'virtual'/inf virtual, else a finite factor ≥ 1e-3."""
    if value is None or value == "real":
        return None
    if isinstance(value, str) and value in ("virtual", "inf") or value == math.inf:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StationError(
            f"{where}: time_scale must be a number, 'real' or 'virtual', got {show(value)}"
        )
    if not (math.isfinite(value) and value >= 1e-3):
        raise StationError(f"{where}: time_scale must be positive, ≥ 0.001, got {show(value)}")
    return None if value == 1 else float(value)


def _station_error(exc: Invalid, source: str, doc: YamlDocument | None) -> StationError:
    where = doc.where(exc.line_path) if doc is not None else source
    return StationError(f"{where}: {exc}")


def parse_station(
    data: Any, source: str = "<station>", doc: YamlDocument | None = None
) -> StationSpec:
    """Validate a station mapping (as loaded from YAML) against :mod:`labctl.station_schema`.

    Errors are one line, ``FILE:LINE: key.path: problem`` (the line when ``doc``,
    the loaded file, is given).
    """
    try:
        checked = check_station(data)
    except Invalid as exc:
        raise _station_error(exc, source, doc) from None
    specs = {
        role: InstrumentSpec(
            role=role,
            driver=entry["driver"],
            address=entry["address"],
            options=dict(entry.get("options", {})),
            simulator=dict(entry.get("simulator", {})),
        )
        for role, entry in checked["instruments"].items()
    }
    return StationSpec(
        name=checked.get("name", Path(source).stem),
        instruments=specs,
        time_scale=time_scale_value(checked.get("time_scale")),
        simulation=dict(checked.get("simulation", {})),
        source=source,
        description=checked.get("description", ""),
        sim_control=checked.get("sim_control"),
    )


def load_station_spec(name_or_path: str | Path | None = None) -> StationSpec:
    """Read and validate a station file (path or bundled name); StationError says where."""
    path = station_path(name_or_path)
    doc = load_document(path, "station file", StationError)
    return parse_station(doc.data, str(path), doc)


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
        self.clock = clock if clock is not None else self._make_clock(scale)
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

    def _make_clock(self, scale: float | None) -> Clock:
        """The clock for ``scale``; a world served on virtual time lends its own."""
        served_virtual = self.spec.sim_control is not None and self.spec.time_scale == math.inf
        if served_virtual:
            if scale != math.inf:
                raise StationError(
                    f"{self.spec.source}: the world served at {self.spec.sim_control} runs on "
                    f"its clients' virtual time; time scale {scale!r} would never move it "
                    "(use the station's own, or 'virtual')"
                )
            return ServedClock(self.spec.sim_control)
        return make_clock(scale)

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

    def settings(self) -> dict[str, Any]:
        """Every instrument's state by role (QCoDeS's ``snapshot()``), for run headers.

        An instrument that cannot report is recorded with the reason instead of
        failing the run that asked.
        """
        out: dict[str, Any] = {"station": self.spec.name, "source": self.spec.source}
        for role, inst in self.instruments.items():
            spec = self.spec.instruments[role]
            entry: dict[str, Any] = {"driver": spec.driver, "address": spec.address}
            reader = getattr(inst, "settings", None)
            if reader is not None:
                try:
                    entry.update(reader())
                except Exception as exc:
                    entry["error"] = str(exc) or type(exc).__name__
            out[role] = entry
        return out

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

    try:
        opts = SIMULATION.check(simulation, ("simulation",))
    except Invalid as exc:
        raise StationError(f"{source}: {exc}") from None
    seed = opts.pop("seed", 0)
    noise = opts.pop("noise", True)
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
    from labctl.simulators.transport import SimAdapter, SimSerial

    if handler.kind == "visa":
        return SimAdapter(handler)
    if handler.kind == "serial":
        return SimSerial(handler)
    return handler.connect()
