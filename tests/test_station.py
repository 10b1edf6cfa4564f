"""Station files: validation with errors that say where, and the bundled sim station."""

import math

import pytest
import yaml

from labctl.errors import StationError
from labctl.station import Station, load_station_spec, parse_station

GOOD = {
    "name": "bench",
    "time_scale": 100,
    "instruments": {
        "lockin_ref": {"driver": "sr830", "address": "GPIB0::8::INSTR"},
        "furnace": {
            "driver": "eurotherm2408",
            "address": "/dev/ttyUSB0",
            "options": {"max_setpoint_c": 380, "max_ramp_c_per_min": 10},
        },
    },
}


def test_parse_good_station():
    spec = parse_station(GOOD, "bench.yaml")
    assert spec.name == "bench"
    assert spec.time_scale == 100
    assert spec.instruments["furnace"].options == {"max_setpoint_c": 380, "max_ramp_c_per_min": 10}
    assert not spec.needs_world


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("instruments"), "missing required key 'instruments'"),
        (lambda d: d.update(instruments={}), "instruments: must have 1…64 entries, got 0"),
        (
            lambda d: d["instruments"]["furnace"].pop("driver"),
            "instruments.furnace: missing required key 'driver'",
        ),
        (
            lambda d: d["instruments"]["furnace"].update(driver="eurotherm9999"),
            "unknown instrument model 'eurotherm9999'",
        ),
        (
            lambda d: d["instruments"]["furnace"].update(adress="x"),
            "instruments.furnace: unknown key 'adress' (did you mean 'address'?)",
        ),
        (
            lambda d: d["instruments"]["furnace"].update(options=[1]),
            "instruments.furnace.options: must be a mapping",
        ),
        (lambda d: d.update(time_scale=-3), "time_scale: must be `real`, `virtual` or a number"),
        (lambda d: d.update(time_scale="fast"), "time_scale: must be `real`, `virtual`"),
        (
            lambda d: d.update(instrumnets={}),
            "unknown key 'instrumnets' (did you mean 'instruments'?)",
        ),
    ],
)
def test_malformed_station_says_what_and_where(mutate, message):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    mutate(data)
    with pytest.raises(StationError, match="bench.yaml") as err:
        parse_station(data, "bench.yaml")
    assert message in str(err.value)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(StationError, match="does not exist"):
        load_station_spec(tmp_path / "nope.yaml")
    with pytest.raises(StationError, match="no station file 'nope'"):
        load_station_spec("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("instruments: [unclosed\n")
    with pytest.raises(StationError, match="not valid YAML"):
        load_station_spec(bad)


def test_bundled_sim_station_spec():
    spec = load_station_spec(None)
    assert spec.name == "sim"
    assert spec.needs_world
    assert {"furnace", "lockin_ref", "lockin_pump", "stages", "spectrometer", "power_meter"} <= set(
        spec.instruments
    )
    assert all(i.simulated_in_process for i in spec.instruments.values())


def test_time_scale_override():
    spec = load_station_spec("sim")
    assert spec.time_scale is None  # real time by default, like hardware
    from labctl.clock import RealClock, VirtualClock

    for time_scale, clock_type in (
        ("station", RealClock),
        (None, RealClock),
        ("virtual", VirtualClock),
        (math.inf, VirtualClock),
    ):
        with Station(spec, time_scale=time_scale) as station:
            assert type(station.clock) is clock_type, time_scale
    with Station(spec, time_scale=250) as station:
        assert station.clock.scale == 250


def test_unreachable_hardware_address_gives_station_error(tmp_path):
    station = tmp_path / "hw.yaml"
    station.write_text(
        yaml.safe_dump(
            {
                "instruments": {
                    "meter": {"driver": "pm100", "address": "TCPIP0::127.0.0.1::9::SOCKET"}
                }
            }
        )
    )
    with pytest.raises(
        StationError, match=r"cannot connect meter \(pm100 at TCPIP0::127.0.0.1::9::SOCKET\)"
    ):
        Station.from_file(station)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda d: d["instruments"]["lockin_ref"].update(simulator={"channel": "bogus"}),
            "instruments.lockin_ref.simulator.channel: must be one of 'ref', 'pump', got 'bogus'",
        ),
        (
            lambda d: d["instruments"]["lockin_ref"].update(simulator={"nosuchopt": 1}),
            "instruments.lockin_ref.simulator: unknown key 'nosuchopt' (known: channel)",
        ),
        (lambda d: d["simulation"].update(seed="abc"), "simulation.seed: must be integer 0…"),
        (lambda d: d["simulation"].update(seed=-1), "simulation.seed: must be integer 0…"),
        (
            lambda d: d["simulation"].update(noise="false"),
            "simulation.noise: must be true, false, `white` or `realistic`, got 'false'",
        ),
        (
            lambda d: d["simulation"].update(n_flims=3),
            "simulation: unknown key 'n_flims' (did you mean 'n_films'?)",
        ),
    ],
)
def test_bad_simulator_options_name_file_and_role(tmp_path, mutate, message):
    from labctl.station import station_path

    data = yaml.safe_load(station_path("sim").read_text())
    mutate(data)
    path = tmp_path / "mysim.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(StationError, match="mysim.yaml") as err:
        Station.from_file(path, time_scale="virtual")
    assert message in str(err.value)


def test_yaml_syntax_error_is_one_line_with_position(tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text("name: x\ninstruments:\n  furnace: {driver: eurotherm2408\n")
    with pytest.raises(StationError) as err:
        load_station_spec(bad)
    text = str(err.value)
    assert text.startswith(f"{bad}:") and "not valid YAML" in text
    assert "\n" not in text
