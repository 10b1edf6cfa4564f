"""The analysis-test table: a detector floor 7800× below a real table's, declared.

Since params 1.4 the simulated world's additive floor is a real table's (0.10 % of the
THz peak per 100 ms reading, in both lock-ins): at it, the 300 °C film's ΔE/E ≈ 3e-4 is
not seen in a few sweeps (tests/test_noise_floor.py, docs/physics.md "Noise floor").
Tests about the ANALYSIS — does it recover known parameters, are its errors calibrated,
does a procedure stop on its target — need a signal they can see; they run on this
table and say so where they use it. Tests about the table itself never do.
"""

from __future__ import annotations

from pathlib import Path

from labctl.simulators.physics.params import ANALYSIS_FLOOR_V_PER_RTHZ

#: ``simulation`` options of the analysis-test table
QUIET_TABLE = {"noise_floor_v_per_rthz": ANALYSIS_FLOOR_V_PER_RTHZ}


def quiet_sim_station(**kwargs):
    """The bundled sim station (virtual time unless given) on the analysis-test table."""
    from labctl.station import Station, load_station_spec

    spec = load_station_spec("sim")
    spec.simulation = {**spec.simulation, **QUIET_TABLE}
    return Station(spec, **{"time_scale": "virtual", **kwargs})


def write_quiet_station(path: Path) -> Path:
    """A copy of the bundled sim station file on the analysis-test table (for the CLI)."""
    from labctl.station import station_path

    text = station_path("sim").read_text(encoding="utf-8")
    assert "\n  noise: true\n" in text, "stations/sim.yaml changed its simulation block"
    text = text.replace(
        "\n  noise: true\n",
        f"\n  noise: true\n  noise_floor_v_per_rthz: {ANALYSIS_FLOOR_V_PER_RTHZ!r}\n",
    )
    path.write_text(text, encoding="utf-8")
    return path
