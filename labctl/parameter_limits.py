"""The ranges a station allows its procedures' Parameters, narrower than their own.

A procedure's Parameter says what the procedure accepts (an anneal to 1200 °C); the
station's instruments say what this lab allows (a furnace whose driver refuses set
points above ``max_setpoint_c``). ``labctl run KIND --help`` and the GUI's inputs show
the narrower range, read from the station file alone (nothing is connected). One
declarative table, :data:`STATION_LIMITS`.
"""

from __future__ import annotations

from typing import Any

#: Limits a station sets on a Parameter, narrower than the procedure's own range:
#: parameter → (role, option path in the instrument's options, how the limit is read).
STATION_LIMITS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "anneal_c": ("furnace", ("max_setpoint_c",), "max"),
    "ramp_c_per_min": ("furnace", ("max_ramp_c_per_min",), "max"),
    "slot": ("stages", ("axes", "sample", "n_slots"), "count"),  # slots 0 … n − 1
}


def station_limits(station_name: str | None) -> dict[str, tuple[float | None, float | None]]:
    """Parameter → (lowest, highest) that the station allows, from its file (nothing is
    connected); {} when the file cannot be read (the run itself will say why)."""
    from labctl.station import load_station_spec

    try:
        spec = load_station_spec(station_name)
    except Exception:
        return {}
    out: dict[str, tuple[float | None, float | None]] = {}
    for name, (role, path, how) in STATION_LIMITS.items():
        inst = spec.instruments.get(role)
        value: Any = inst.options if inst is not None else None
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = (None, float(value - 1 if how == "count" else value))
    return out
