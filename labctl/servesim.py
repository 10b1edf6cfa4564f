"""Serve a station's simulators on loopback TCP, over one shared world.

The simulated world lives in the serving process, so it outlives a crash of
the program that drives it, exactly as real instruments do.

Beside the instruments, a small loopback *control* socket lets another process
inject and clear faults in the served world (``labctl sim fault``; see
:mod:`labctl.simulators.faults`). Its protocol is one line per request,
one line per reply::

    inject ROLE KIND [axis=N | delay_s=S]  ->  ok ROLE: KIND injected
    clear [ROLE [KIND]]         ->  ok cleared N fault(s)
    status                      ->  ok {"ROLE": ["KIND", ...], ...}
    films                       ->  ok [{"slot": N, ...}, ...]
    clock ...                   ->  (a world on its clients' virtual time: labctl.served_clock)
    (anything wrong)            ->  error WHAT

A world served with ``time_scale`` virtual (``math.inf``) runs on a
:class:`~labctl.served_clock.WorldClock` that its clients' waits advance; the station
file it writes says ``time_scale: virtual``, and a :class:`~labctl.station.Station`
opened on it drives that clock through the control socket.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import socket
import socketserver
import threading
import time
from pathlib import Path

import yaml

from labctl.clock import ScaledClock
from labctl.errors import LabctlError, StationError
from labctl.served_clock import WorldClock, clock_request, loopback_address
from labctl.simulators.faults import FaultError
from labctl.simulators.transport import LOOPBACK, STOP_POLL_S, SimServer
from labctl.station import build_world, load_station_spec, make_simulator, station_path

log = logging.getLogger(__name__)


class ServedStation:
    """Running servers for every simulated instrument of a station."""

    def __init__(self, station: str | None, time_scale: float = 1.0, seed: int | None = None):
        self.spec = load_station_spec(station)
        self.source = station_path(station)
        self.time_scale = float(time_scale)
        self.clock = WorldClock() if self.time_scale == math.inf else ScaledClock(self.time_scale)
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
        self.control = FaultControlServer(self.world.faults, world=self.world)

    @property
    def control_address(self) -> str:
        """``HOST:PORT`` of the fault-injection control socket."""
        return self.control.address

    @property
    def resources(self) -> dict[str, str]:
        return {role: server.resource for role, server in self.servers.items()}

    def station_data(self) -> dict:
        """The station file pointing at the served resources."""
        data = yaml.safe_load(Path(self.source).read_text())
        out = copy.deepcopy(data)
        out["name"] = f"{self.spec.name}-served"
        out["time_scale"] = {1.0: "real", math.inf: "virtual"}.get(self.time_scale, self.time_scale)
        out.pop("simulation", None)  # the world lives in the server
        out["sim_control"] = self.control_address
        for role, resource in self.resources.items():
            inst = out["instruments"][role]
            inst["address"] = resource
            inst.pop("simulator", None)
            served_options = getattr(self.handlers[role], "served_options", None)
            if served_options:
                inst["options"] = {**(inst.get("options") or {}), **served_options}
        return out

    def write_station(self, path: str | Path) -> None:
        Path(path).write_text(
            "# Written by `labctl sim serve`: these instruments are simulators served on loopback.\n"
            + yaml.safe_dump(self.station_data(), sort_keys=False)
        )

    def stop(self) -> None:
        control = getattr(self, "control", None)
        if control is not None:
            control.stop()
            self.control = None
        for server in self.servers.values():
            server.stop()
        self.servers.clear()

    def __enter__(self) -> ServedStation:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_station(station: str | None, time_scale: float = 1.0, seed: int | None = None):
    return ServedStation(station, time_scale=time_scale, seed=seed)


# --- fault-injection control socket ------------------------------------------------------------
MAX_REQUEST = 1024


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def films_reply(world) -> str:
    """``films``: each film slot's thermal history (what tests assert "annealed once" from)."""
    if world is None:
        return "error no world here"
    with world.lock:
        world.advance()  # the history up to now, not up to the last instrument request
        films = [
            {
                "slot": s.index,
                "label": s.label,
                "heating_episodes": s.film.heating.count,
                "temperature_c": s.film.temperature_c,
                "anneal_equivalent_c": s.film.anneal_equivalent_c(),
                "max_temperature_c": s.film.max_temperature_c,
            }
            for s in world.film_slots()
        ]
    return "ok " + json.dumps(films)


def fault_request(board, line: str, world=None) -> str:
    """Carry out one control request on a FaultBoard (``films``: read the world's films);
    returns the one-line reply."""
    words = line.split()
    if words == ["films"]:
        return films_reply(world)
    if words[:1] == ["clock"]:
        return "error no world here" if world is None else clock_request(world.clock, words[1:])
    if not words:
        return "error empty request (inject ROLE KIND [axis=N | delay_s=S] | clear [ROLE [KIND]] | status)"
    verb, args = words[0].lower(), words[1:]
    try:
        if verb == "inject":
            if len(args) not in (2, 3):
                return "error usage: inject ROLE KIND [axis=N | delay_s=SECONDS]"
            options = {}
            if len(args) == 3:
                key, _, value = args[2].partition("=")
                if key == "axis" and value.isdigit():
                    options["axis"] = int(value)
                elif key == "delay_s" and _is_float(value):
                    options["delay_s"] = float(value)
                else:
                    return f"error bad option {args[2]!r} (axis=N or delay_s=SECONDS)"
            board.inject(args[0], args[1], **options)
            return f"ok {args[0]}: {args[1]} injected"
        if verb == "clear":
            if len(args) > 2:
                return "error usage: clear [ROLE [KIND]]"
            before = sum(len(v) for v in board.summary().values())
            board.clear(*args)
            after = sum(len(v) for v in board.summary().values())
            return f"ok cleared {before - after} fault(s)"
        if verb == "status" and not args:
            return "ok " + json.dumps(board.summary())
    except FaultError as exc:
        return f"error {exc}"
    return f"error unknown request {words[0]!r} (inject, clear, status, films, clock)"


class _ControlConnection(socketserver.StreamRequestHandler):
    timeout = 30.0  # an idle client does not hold a thread forever

    def handle(self) -> None:
        try:
            while True:
                raw = self.rfile.readline(MAX_REQUEST)
                if not raw:
                    return
                line = raw.decode("utf-8", errors="replace").strip()
                reply = fault_request(
                    self.server.board,  # type: ignore[attr-defined]
                    line,
                    self.server.world,  # type: ignore[attr-defined]
                )
                self.wfile.write((reply + "\n").encode("utf-8"))
                self.wfile.flush()
        except OSError:
            pass  # client went away or idled out


class FaultControlServer:
    """Serves a FaultBoard's inject/clear/status on a loopback TCP port."""

    def __init__(self, board, port: int = 0, world=None) -> None:
        server = socketserver.ThreadingTCPServer((LOOPBACK, port), _ControlConnection)
        server.daemon_threads = True
        server.board = board  # type: ignore[attr-defined]
        server.world = world  # type: ignore[attr-defined]
        self._server = server
        self.address = f"{LOOPBACK}:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, args=(STOP_POLL_S,), name="sim-fault-control", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def send_fault_request(address: str, line: str, timeout_s: float = 5.0) -> str:
    """Send one request to a served station's control socket; returns the reply's text.

    Raises :class:`LabctlError` when the socket cannot be reached or answers ``error``.
    """
    where = loopback_address(address, "sim_control")
    try:
        with socket.create_connection(where, timeout=timeout_s) as sock:
            sock.sendall((line.strip() + "\n").encode("utf-8"))
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(4096)  # the socket has timeout_s
                if not chunk:
                    break
                reply += chunk
    except OSError as exc:
        raise LabctlError(
            f"cannot reach the simulators' control socket at {address} "
            f"(is `labctl sim serve` still running?): {exc}"
        ) from None
    text = reply.decode("utf-8", errors="replace").strip()
    if text.startswith("ok"):
        return text[2:].strip()
    if text.startswith("error"):
        raise FaultError(text[5:].strip())
    raise LabctlError(f"control socket at {address}: unexpected reply {text!r}")


class RemoteFaultBoard:
    """A served station's :class:`~labctl.simulators.faults.FaultBoard`, from another process.

    Same methods as ``world.faults``, carried over the control socket::

        faults = RemoteFaultBoard.from_station_file("served.yaml")
        faults.inject("furnace", "sensor_break")
    """

    def __init__(self, address: str) -> None:
        self.address = str(address)

    @classmethod
    def from_station_file(cls, path: str | Path) -> RemoteFaultBoard:
        """The board of the station ``labctl sim serve --write-station`` wrote to ``path``."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise StationError(f"{path}: cannot read the served station file: {exc}") from None
        address = data.get("sim_control") if isinstance(data, dict) else None
        if not address:
            raise StationError(
                f"{path}: no sim_control address (write it with `labctl sim serve --write-station`)"
            )
        return cls(address)

    def inject(
        self, role: str, kind: str, axis: int | None = None, delay_s: float | None = None
    ) -> str:
        request = f"inject {role} {kind}" + ("" if axis is None else f" axis={int(axis)}")
        if delay_s is not None:
            request += f" delay_s={float(delay_s)!r}"
        return send_fault_request(self.address, request)

    def clear(self, role: str | None = None, kind: str | None = None) -> str:
        if role is None and kind is not None:
            raise FaultError("clear: a fault kind needs its role")
        words = [w for w in ("clear", role, kind) if w is not None]
        return send_fault_request(self.address, " ".join(words))

    def summary(self) -> dict[str, list[str]]:
        return json.loads(send_fault_request(self.address, "status"))

    def active(self, role: str) -> frozenset[str]:
        return frozenset(self.summary().get(role, ()))

    def films(self) -> list[dict]:
        """Each film slot's thermal history in the served world (heating episodes, …)."""
        return json.loads(send_fault_request(self.address, "films"))


class RemoteWorldClock:
    """Hold and release a served world's virtual clock from another process.

    What a test uses to freeze the program driving the world at a known point of its
    timeline (see :mod:`labctl.served_clock`)::

        clock = RemoteWorldClock.from_station_file("served.yaml")
        clock.hold(clock.now() + 60.0)
        clock.wait_held(timeout_s=60)   # the program now waits at that time
    """

    def __init__(self, address: str) -> None:
        self.address = str(address)

    @classmethod
    def from_station_file(cls, path: str | Path) -> RemoteWorldClock:
        return cls(RemoteFaultBoard.from_station_file(path).address)

    def _ask(self, request: str) -> str:
        return send_fault_request(self.address, f"clock {request}")

    def now(self) -> float:
        return float(self._ask("now"))

    def hold(self, at_s: float) -> None:
        self._ask(f"hold {float(at_s)!r}")

    def release(self) -> None:
        self._ask("release")

    def wait_held(self, timeout_s: float) -> bool:
        """True once a client waits at the hold; False if none did within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            wait_s = min(max(left, 0.0), 2.0)  # well inside the request's 5 s
            state = self._ask(f"held {wait_s!r}").split()[0]
            if state == "held":
                return True
            if left <= 0:
                return False
