"""Every key a station file may hold, its type and its physical range — in one place.

The tables below are the station-file reference (``docs/stations.md`` prints
them, see :func:`markdown_tables`): the top level, an instrument entry, the
``options`` of each driver model and the ``simulator`` options of each
simulator (both keyed by the model names of :mod:`labctl.registry`), and the
simulated world's ``simulation`` options. Safety options of the furnace are
finite and within the type K thermocouple's range, counts and delays bounded,
so no station file can switch a limit off or make a driver wait for ever.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from labctl.registry import MODELS
from labctl.schema import (
    NO_DEFAULT,
    AnyOf,
    Choice,
    Field,
    Flag,
    Integer,
    Invalid,
    MapOf,
    Null,
    Number,
    Record,
    Text,
    show,
)

#: Type K thermocouple range used for every temperature a station sets (°C).
THERMOCOUPLE_MAX_C = 1372.0


def _celsius(doc: str, default: Any = NO_DEFAULT, lo: float = 0.0) -> Number:
    return Number(doc=doc, default=default, lo=lo, hi=THERMOCOUPLE_MAX_C, unit="°C")


# --- driver options (keyword arguments of each model's open_instrument) --------


def _setpoint_limits_in_order(opts: dict, path: tuple) -> None:
    lo = opts.get("min_setpoint_c", 0.0)
    hi = opts["max_setpoint_c"]
    if not lo < hi:
        raise Invalid(
            (*path, "min_setpoint_c"),
            f"must be below max_setpoint_c ({show(hi)} °C), got {show(lo)}",
        )
    safe = opts.get("safe_setpoint_c")
    if safe is not None and not lo <= safe <= hi:
        raise Invalid(
            (*path, "safe_setpoint_c"),
            f"must be within min_setpoint_c…max_setpoint_c ({show(lo)}…{show(hi)} °C), "
            f"got {show(safe)}",
        )


EUROTHERM_OPTIONS = Record(
    fields={
        "modbus_address": Integer(doc="Modbus slave address", default=1, lo=1, hi=247),
        "max_setpoint_c": _celsius("highest setpoint the driver accepts"),
        "min_setpoint_c": _celsius("lowest setpoint the driver accepts", 0.0),
        "safe_setpoint_c": _celsius(
            "setpoint of the safe state (after a fault, on shutdown)", 25.0
        ),
        "over_temperature_margin_c": Number(
            doc="PV above max_setpoint_c + margin → safe state",
            default=25.0,
            lo=0.0,
            hi=100.0,
            lo_open=True,
            unit="°C",
        ),
        "max_ramp_c_per_min": Number(
            doc="highest ramp rate the driver accepts",
            lo=0.0,
            hi=100.0,
            lo_open=True,
            unit="°C/min",
        ),
        "retries": Integer(doc="retries of a failed Modbus transaction", default=2, lo=0, hi=10),
        "retry_delay_s": Number(
            doc="least silence (wall time) the link waits for after a failed attempt; "
            "at least the 0.2 s read timeout is used",
            default=0.05,
            lo=0.0,
            hi=5.0,
            unit="s",
        ),
        # Serial line: the Eurotherm 2000-series factory settings (2000 Series
        # Communications Handbook HA026230; 2408 handbook HA025132): Modbus RTU at
        # 9600 baud, 8 data bits, no parity, 1 stop bit. Set them as on the controller.
        "baud_rate": Choice(
            doc="serial line speed, bit/s, as set on the controller (factory: 9600)",
            default=9600,
            values=(1200, 2400, 4800, 9600, 19200),
        ),
        "parity": Choice(
            doc="serial parity, as set on the controller (factory: none)",
            default="none",
            values=("none", "even", "odd"),
        ),
        "stop_bits": Choice(doc="serial stop bits (factory: 1)", default=1, values=(1, 2)),
        "byte_size": Choice(doc="data bits (Modbus RTU: always 8)", default=8, values=(8,)),
        "framing": Choice(
            doc="what delimits RTU frames on the port: silence (a serial line, or a "
            "transparent serial-to-TCP server) or packet (an RTU-over-TCP gateway, "
            "`labctl sim serve`): no 3.5-character wait before each request",
            default="silence",
            values=("silence", "packet"),
        ),
    },
    required=frozenset({"max_setpoint_c", "max_ramp_c_per_min"}),
    checks=(_setpoint_limits_in_order,),
)

SR830_OPTIONS = Record(
    fields={
        "sensitivity_v": Number(doc="initial sensitivity", lo=2e-9, hi=1.0, unit="V"),
        "time_constant_s": Number(doc="initial time constant", lo=1e-5, hi=3e4, unit="s"),
        "slope_db_oct": Choice(doc="low-pass filter slope (dB/oct)", values=(6, 12, 18, 24)),
        "reference_source": Choice(doc="reference source", values=("External", "Internal")),
    }
)

PM100_OPTIONS = Record(
    fields={
        "wavelength_nm": Number(
            doc="correction wavelength (the sensor checks its own range)",
            lo=100.0,
            hi=25000.0,
            unit="nm",
        ),
    }
)


def _axis(role: str) -> Field:
    return _SAMPLE_AXIS if role == "sample" else _AXIS


_AXIS_NUMBER = Choice(doc="controller axis", values=(1, 2, 3))
_KIND = Choice(
    doc="axis kind (default: translation for role `sample`, else delay)",
    values=("delay", "translation"),
)
DELAY_AXIS = Record(
    fields={
        "axis": _AXIS_NUMBER,
        "kind": _KIND,
        "zero_mm": Number(doc="stage position of zero delay", lo=-1000.0, hi=1000.0, unit="mm"),
        "ps_per_mm": Number(
            doc="delay per mm of travel (double pass)",
            default=6.671,
            lo=0.0,
            hi=100.0,
            lo_open=True,
            unit="ps/mm",
        ),
    },
    required=frozenset({"axis", "zero_mm"}),
)
TRANSLATION_AXIS = Record(
    fields={
        "axis": _AXIS_NUMBER,
        "kind": _KIND,
        "pitch_mm": Number(
            doc="slot spacing", default=40.0, lo=0.0, hi=1000.0, lo_open=True, unit="mm"
        ),
        "n_slots": Integer(doc="slots on the holder (slot 0: blank)", default=9, lo=1, hi=64),
        "first_slot_mm": Number(
            doc="position of slot 0", default=0.0, lo=-1000.0, hi=1000.0, unit="mm"
        ),
        "tolerance_mm": Number(
            doc="in-position tolerance", default=0.5, lo=0.0, hi=10.0, lo_open=True, unit="mm"
        ),
    },
    required=frozenset({"axis"}),
)


@dataclass(frozen=True, kw_only=True)
class _AxisByKind(Field):
    """A delay or translation axis, by its ``kind`` (default from the role's name)."""

    default_kind: str = "delay"

    def check(self, value: Any, path: tuple = ()) -> Any:
        kind = (
            value.get("kind", self.default_kind) if isinstance(value, dict) else self.default_kind
        )
        _KIND.check(kind, (*path, "kind"))
        return (DELAY_AXIS if kind == "delay" else TRANSLATION_AXIS).check(value, path)

    def describe(self) -> str:
        return "mapping"


_AXIS = _AxisByKind(default_kind="delay")
_SAMPLE_AXIS = _AxisByKind(default_kind="translation")


def _distinct_axes(axes: dict, path: tuple) -> None:
    seen: dict[int, str] = {}
    for role, spec in axes.items():
        axis = spec["axis"]
        if axis in seen:
            raise Invalid((*path, role, "axis"), f"axis {axis} is already used by {seen[axis]!r}")
        seen[axis] = role


_ROLE = Text(
    max_len=64,
    pattern=r"[A-Za-z][A-Za-z0-9_-]*",
    rule="a name of letters, digits, '_' and '-', starting with a letter",
)

ESP301_OPTIONS = Record(
    fields={
        "axes": MapOf(
            doc="stage role → axis (`sampling`, `pump`: delay lines; `sample`: translation)",
            key=_ROLE,
            value=_axis,
            min_items=1,
            max_items=3,
            checks=(_distinct_axes,),
        ),
        "poll_interval_s": Number(
            doc="motion polling interval", default=0.05, lo=0.0, hi=1.0, lo_open=True, unit="s"
        ),
        "visa": Record(
            doc="VISA session overrides (hardware only)",
            fields={
                "timeout": Integer(doc="I/O timeout", lo=1, hi=60000, unit="ms"),
                "baud_rate": Choice(
                    doc="serial baud rate",
                    values=(9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600),
                ),
                "read_termination": Text(doc="reply terminator", max_len=4),
                "write_termination": Text(doc="command terminator", max_len=4),
            },
        ),
    },
    required=frozenset({"axes"}),
)

SPECTROMETER_OPTIONS = Record(
    fields={
        "integration_time_s": Number(
            doc="initial integration time", default=0.1, lo=1e-3, hi=65.535, unit="s"
        ),
        "discard_after_change": Flag(
            doc="discard the first scan after an integration-time change", default=True
        ),
        "lamp_shutter": Flag(doc="the light source's shutter follows Lamp Enable", default=False),
        "backend": Choice(
            doc="seabreeze backend (hardware only)", values=("cseabreeze", "pyseabreeze")
        ),
        "tunnel_timeout_s": Number(
            doc="USB-tunnel addresses: link wait beyond the USB timeout",
            default=5.0,
            lo=0.05,
            hi=60.0,
            unit="s",
        ),
        "model": Text(
            doc="refuse any other model at connect (e.g. FLAMES)",
            max_len=32,
            pattern=r"[A-Za-z0-9+_-]+",
            rule="a seabreeze model name",
        ),
    }
)

#: ``options`` of each instrument model (the driver's keyword arguments).
DRIVER_OPTIONS: dict[str, Record] = {
    "eurotherm2408": EUROTHERM_OPTIONS,
    "sr830": SR830_OPTIONS,
    "esp301": ESP301_OPTIONS,
    "pm100": PM100_OPTIONS,
    "ocean_spectrometer": SPECTROMETER_OPTIONS,
}

# --- simulator options (keyword arguments of each simulator class) -------------

#: ``simulator`` options of each instrument model (only for ``sim://`` addresses).
SIMULATOR_OPTIONS: dict[str, Record] = {
    "eurotherm2408": Record(
        fields={
            "address": Integer(doc="Modbus slave address", default=1, lo=1, hi=247),
            "decimal_places": Choice(doc="display resolution", default=1, values=(0, 1, 2)),
            "model": Choice(doc="controller model", default="2408", values=("2408", "2416")),
            "programs": Integer(doc="stored setpoint programs", default=20, lo=1, hi=20),
            "segments": Integer(doc="segments per program", default=16, lo=1, hi=16),
            "proportional_band_c": Number(
                doc="PID proportional band", default=10.0, lo=0.1, hi=500.0, unit="°C"
            ),
            "integral_time_s": Number(
                doc="PID integral time (0: off)", default=240.0, lo=0.0, hi=9999.0, unit="s"
            ),
            "derivative_time_s": Number(
                doc="PID derivative time (0: off)", default=40.0, lo=0.0, hi=9999.0, unit="s"
            ),
            "input_filter_s": Number(
                doc="PV input filter (0: off)", default=1.6, lo=0.0, hi=60.0, unit="s"
            ),
            "setpoint_c": _celsius("setpoint at power-on (default: ambient)"),
        }
    ),
    "sr830": Record(
        fields={
            "channel": Choice(
                doc="which chopper the lock-in is locked to", default="ref", values=("ref", "pump")
            ),
        }
    ),
    "esp301": Record(),
    "pm100": Record(),
    "ocean_spectrometer": Record(
        fields={
            "model": Choice(
                doc="simulated model",
                default="FLAMES",
                values=("FLAMES", "USB2000PLUS"),
                ignore_case=True,
            ),
            "serial_number": Text(
                doc="serial number",
                max_len=14,
                pattern=r"[\x21-\x7e]+",
                rule="1–14 printable ASCII characters",
            ),
            "sensitivity": Number(
                doc="detector sensitivity factor", default=1.0, lo=0.0, hi=100.0, lo_open=True
            ),
            "lamp_shutter": Flag(
                doc="the light source's shutter follows Lamp Enable", default=False
            ),
        }
    ),
}

# --- the simulated world --------------------------------------------------------

#: Named noise models of the world (true is `realistic`, false none).
NOISE_MODELS = ("white", "realistic")

#: ``simulation`` options: ``seed`` and ``noise`` build the world, the rest go to
#: :meth:`labctl.simulators.world.World.configure` (whose keys must match).
SIMULATION = Record(
    doc="the simulated world (below); used when some address is `sim://`",
    fields={
        "seed": AnyOf(
            doc="seed of the world's noise (null: fresh entropy)",
            default=0,
            options=(Integer(lo=0, hi=2**63 - 1), Null()),
            rule="integer 0…2**63-1, or null",
        ),
        "noise": AnyOf(
            doc="simulated noise on or off (or a named noise model)",
            default=True,
            options=(Flag(), Choice(values=NOISE_MODELS)),
            rule="true, false, `white` or `realistic`",
        ),
        "n_films": Integer(doc="fresh film slots after the blank", default=8, lo=1, hi=64),
        "film_thickness_nm": Number(
            doc="thickness of every film",
            default=100.0,
            lo=0.0,
            hi=10000.0,
            lo_open=True,
            unit="nm",
        ),
        "pump_fluence_uj_cm2": Number(
            doc="pump fluence at the sample", default=5.0, lo=0.0, hi=1000.0, unit="µJ/cm²"
        ),
        "ambient_c": Number(doc="room temperature", default=25.0, lo=0.0, hi=50.0, unit="°C"),
        "substrate_thickness_mm": Number(
            doc="fused-silica substrate thickness",
            default=1.0,
            lo=0.0,
            hi=10.0,
            lo_open=True,
            unit="mm",
        ),
        "substrate_index": Number(
            doc="THz refractive index of the substrate", default=1.95, lo=1.0, hi=10.0
        ),
        "film_variation": Flag(
            doc="films of one batch differ in thickness and yield", default=False
        ),
        "noise_floor_v_per_rthz": Number(
            doc="detector noise floor, the same in both lock-ins (default: a real table's; "
            "2.5e-9: the analysis-test table)",
            default=1.94e-5,
            lo=0.0,
            hi=1e-3,
            unit="V/√Hz",
        ),
        "slot_pitch_mm": Number(
            doc="slot spacing on the holder",
            default=40.0,
            lo=0.0,
            hi=200.0,
            lo_open=True,
            unit="mm",
        ),
    },
)

# --- top level and instrument entries ---------------------------------------------

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def loopback_address(text: str) -> tuple[str, int]:
    """``"127.0.0.1:PORT"`` → (host, port); ValueError unless a loopback host and a valid port."""
    host, sep, port = text.rpartition(":")
    if not sep or host not in _LOOPBACK_HOSTS or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(text)
    return host.strip("[]"), int(port)


class _Loopback(Field):
    def check(self, value: Any, path: tuple = ()) -> Any:
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            loopback_address(value)
        except ValueError:
            raise Invalid(
                path,
                f"must be a loopback address '127.0.0.1:PORT' (port 1…65535), got {show(value)}",
            ) from None
        return value

    def describe(self) -> str:
        return "`127.0.0.1:PORT` (loopback only)"


_DRIVER = Choice(
    doc="instrument model (`labctl/registry.py`)", values=tuple(MODELS), what="instrument model"
)

INSTRUMENT = Record(
    fields={
        "driver": _DRIVER,
        "address": Text(
            doc="VISA resource, pyserial URL, device path, serial number, or `sim://ROLE`",
            max_len=512,
        ),
        "options": Record(doc="keyword arguments of the driver (by model, below)"),
        "simulator": Record(doc="keyword arguments of the simulator (by model, below)"),
    },
    required=frozenset({"driver", "address"}),
)


class _Instrument(Field):
    """An instrument entry; its ``options`` and ``simulator`` are checked by its model."""

    def check(self, value: Any, path: tuple = ()) -> Any:
        if not isinstance(value, dict):
            raise Invalid(path, f"must be a mapping with driver and address, got {show(value)}")
        plain = {k: v for k, v in value.items() if k not in ("options", "simulator")}
        entry = INSTRUMENT.check(plain, path)
        driver = entry["driver"]
        for key, table in (("options", DRIVER_OPTIONS), ("simulator", SIMULATOR_OPTIONS)):
            entry[key] = table[driver].check(value.get(key), (*path, key))
        return entry

    def describe(self) -> str:
        return "mapping"


_TIME_SCALE = AnyOf(
    doc="the station's clock: `real`, `virtual` (instant, deterministic) or virtual s per wall s",
    default="real",
    options=(Choice(values=("real", "virtual")), Number(lo=1e-3, hi=1e9), Null()),
    rule="`real`, `virtual` or a number within 0.001…1e+09",
)

STATION = Record(
    fields={
        "name": Text(doc="shown in run-file headers and the GUI (default: the file name)"),
        "description": Text(doc="free text", min_len=0, max_len=2000),
        "time_scale": _TIME_SCALE,
        "simulation": SIMULATION,
        "sim_control": _Loopback(
            doc="fault-injection port of a served world (written by `sim serve --write-station`)"
        ),
        "instruments": MapOf(
            doc="role → instrument entry", key=_ROLE, value=_Instrument(), min_items=1
        ),
    },
    required=frozenset({"instruments"}),
    null_is_empty=False,
)


def check_station(data: Any) -> dict:
    """The validated station mapping; :class:`~labctl.schema.Invalid` on the first problem."""
    if not isinstance(data, dict):
        raise Invalid(
            (), f"a station file is a mapping with an 'instruments' key, got {show(data)}"
        )
    return STATION.check(data)


def time_scale_value(value: Any) -> float | None:
    """A checked ``time_scale`` as the clock wants it: None real, inf virtual, else the factor."""
    if value is None or value == "real":
        return None
    if value == "virtual":
        return math.inf
    return None if value == 1 else float(value)


# --- reference tables for the docs ---------------------------------------------------


def _rows(record: Record) -> list[str]:
    rows = []
    for key, f in record.fields.items():
        if key in record.required:
            req = "**required**"
        else:
            req = "" if f.default is NO_DEFAULT else f"`{_yaml(f.default)}`"
        rows.append(f"| `{key}` | {f.describe()} | {req} | {f.doc} |")
    return rows


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def markdown_tables() -> str:
    """The reference tables of ``docs/stations.md`` (a test keeps the docs in step)."""
    head = "| key | type, range | default | meaning |\n|---|---|---|---|"
    out = ["### Top level", "", head, *_rows(STATION), "", "### `instruments.ROLE`", "", head]
    out += _rows(INSTRUMENT)
    out += ["", "### `simulation`", "", head, *_rows(SIMULATION)]
    for model in MODELS:
        out += ["", f"### `options` of `{model}`", ""]
        out += [head, *_rows(DRIVER_OPTIONS[model])] if DRIVER_OPTIONS[model].fields else ["none"]
        if model == "esp301":
            out += [
                "",
                "#### `axes.ROLE`: a delay line (the default)",
                "",
                head,
                *_rows(DELAY_AXIS),
            ]
            out += [
                "",
                "#### `axes.ROLE`: the sample holder (role `sample` or `kind: translation`)",
            ]
            out += ["", head, *_rows(TRANSLATION_AXIS)]
    for model in MODELS:
        table = SIMULATOR_OPTIONS[model]
        out += ["", f"### `simulator` of `{model}`", ""]
        out += [head, *_rows(table)] if table.fields else ["none"]
    return "\n".join(out) + "\n"
