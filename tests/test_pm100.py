"""Thorlabs PM100: SCPI simulator, labctl driver, pymeasure's own driver and pyvisa over TCP."""

from __future__ import annotations

import numpy as np
import pytest
import pyvisa
from pymeasure.instruments.thorlabs import ThorlabsPM100USB
from pymeasure.test import expected_protocol

from labctl.clock import VirtualClock
from labctl.drivers.pm100 import PowerMeter, open_instrument
from labctl.errors import CommunicationError, InstrumentError, StationError
from labctl.simulators.pm100 import PM100Simulator, responsivity_a_per_w
from labctl.simulators.transport import SimAdapter, SimServer

SENSOR_IDN = "S120VC,18012345,12-Mar-2021,1,18,289"
PM100_IDN = "THORLABS,PM100USB,P2000123,1.6.0"


def ask(sim: PM100Simulator, command: str) -> str:
    return sim.handle((command + "\n").encode()).decode()


def pump_wavelength(world) -> float:
    return PM100Simulator(world).pump_wavelength_nm()


def true_power_w(world) -> float:
    with world.lock:
        world.advance()
        return world.pump_power_w(pump_wavelength(world))


# --- simulator -------------------------------------------------------------------------


def test_scpi_long_short_and_optional_forms(quiet_world):
    sim = PM100Simulator(quiet_world)
    assert ask(sim, "*IDN?").startswith("THORLABS,PM100USB,P")
    assert ask(sim, "SYST:SENSOR:IDN?").startswith("S120VC,")
    ask(sim, "SENSE:CORR:WAV 532")
    assert float(ask(sim, "sens:correction:wavelength?")) == 532
    assert float(ask(sim, "CORR:WAVE?")) == 532  # the manual's own spelling
    assert float(ask(sim, "SENS:CORR:WAV? MIN")) == 200
    assert float(ask(sim, "SENS:CORR:WAV? MAX")) == 1100
    assert ask(sim, "SENS:AVER 10;:SENS:AVER:COUN?;POW:RANG:AUTO?") == "10\n1\n"
    assert ask(sim, "SYST:ERR?") == '0,"No error"\n'


def test_unknown_command_queues_error_and_stays_silent(quiet_world):
    sim = PM100Simulator(quiet_world)
    assert ask(sim, "FOO:BAR?") == ""
    assert ask(sim, "SENS:CORR:WAV 5000") == ""  # out of the sensor's range
    assert ask(sim, "SENS:CORR:WAV abc") == ""
    assert int(ask(sim, "*ESR?")) == 32 | 16  # CMD and EXE
    assert ask(sim, "SYST:ERR?") == '-113,"Undefined header"\n'
    assert ask(sim, "SYST:ERR?") == '-222,"Data out of range"\n'
    assert ask(sim, "SYST:ERR?") == '-104,"Data type error"\n'
    assert ask(sim, "SYST:ERR?") == '0,"No error"\n'
    assert float(ask(sim, "SENS:CORR:WAV?")) == 633  # unchanged


def test_garbage_never_crashes(quiet_world):
    sim = PM100Simulator(quiet_world)
    rng = np.random.default_rng(3)
    for _ in range(300):
        out = sim.handle(rng.integers(0, 256, rng.integers(1, 60)).astype(np.uint8).tobytes())
        assert isinstance(out, bytes)
    sim.handle(b"\n")
    assert ask(sim, "*IDN?").startswith("THORLABS,PM100USB")
    for _ in range(40):
        if ask(sim, "SYST:ERR?").startswith("0,"):
            break
    else:
        pytest.fail("error queue never drains")


def test_reading_is_right_only_at_the_right_wavelength(quiet_world):
    sim = PM100Simulator(quiet_world)
    lam = pump_wavelength(quiet_world)
    truth = true_power_w(quiet_world)
    assert truth > 0
    ask(sim, f"SENS:CORR:WAV {lam}")
    assert float(ask(sim, "MEAS:POW?")) == pytest.approx(truth, rel=1e-8)
    ask(sim, "SENS:CORR:WAV 800")
    wrong = float(ask(sim, "MEAS:POW?"))
    ratio = responsivity_a_per_w(lam) / responsivity_a_per_w(800)
    assert wrong == pytest.approx(truth * ratio, rel=1e-8)
    assert abs(wrong / truth - 1) > 0.3  # a photodiode cares about the wavelength
    ask(sim, "SENS:POW:UNIT DBM")
    assert float(ask(sim, "MEAS:POW?")) == pytest.approx(10 * np.log10(wrong / 1e-3), rel=1e-8)


def test_noise_and_averaging(world):
    sim = PM100Simulator(world)
    ask(sim, f"SENS:CORR:WAV {pump_wavelength(world)}")
    single = [float(ask(sim, "MEAS:POW?")) for _ in range(300)]
    ask(sim, "SENS:AVER:COUN 100")
    averaged = [float(ask(sim, "MEAS:POW?")) for _ in range(300)]
    truth = true_power_w(world)
    assert np.mean(single) == pytest.approx(truth, rel=2e-3)
    assert np.std(single) > 0
    assert np.std(single) / np.std(averaged) == pytest.approx(10, rel=0.25)


# --- driver: expected protocol -----------------------------------------------------------


def test_driver_protocol():
    with expected_protocol(
        PowerMeter,
        [
            ("*IDN?", PM100_IDN),  # identity at connect
            ("SYST:SENSOR:IDN?", SENSOR_IDN),
            ("SENS:CORR:WAV? MIN", "2.0E+02"),
            ("SENS:CORR:WAV? MAX", "1.1E+03"),
            ("SENS:CORR:WAV 400", None),
            ("SYST:ERR?", '0,"No error"'),
            ("SENS:CORR:WAV?", "4.000000E+02"),
            ("MEAS:POW?", "1.0E-02"),
            ("MEAS:POW?", "1.2E-02"),
            ("MEAS:POW?", "1.1E-02"),
            ("MEAS:POW?", "garbled"),
            ("*IDN?", PM100_IDN),  # back in step before the next query
            ("SYST:ERR?", '-113,"Undefined header"'),
            ("SYST:ERR?", '0,"No error"'),
        ],
        name="power_meter",
        clock=VirtualClock(),
    ) as meter:
        assert meter.sensor_name == "S120VC" and meter.is_power_sensor
        meter.wavelength_nm = 400
        assert meter.wavelength_nm == 400.0
        mean, sem = meter.average_power_w(3)
        assert mean == pytest.approx(0.011)
        assert sem == pytest.approx(np.std([0.010, 0.012, 0.011], ddof=1) / np.sqrt(3))
        with pytest.raises(CommunicationError, match="power_meter: garbled"):
            _ = meter.power_w
        with pytest.raises(InstrumentError, match="power_meter.*-113 Undefined header"):
            meter.check_errors()


def test_driver_refuses_wavelength_outside_the_sensor():
    with expected_protocol(
        PowerMeter,
        [
            ("*IDN?", PM100_IDN),  # identity at connect
            ("SYST:SENSOR:IDN?", SENSOR_IDN),
            ("SENS:CORR:WAV? MIN", "2.0E+02"),
            ("SENS:CORR:WAV? MAX", "1.1E+03"),
        ],
        name="power_meter",
    ) as meter:
        with pytest.raises(InstrumentError, match="power_meter: wavelength 1550 nm outside"):
            meter.wavelength_nm = 1550


# --- driver against the in-process simulator ----------------------------------------------


def test_driver_against_simulator(quiet_world):
    sim = PM100Simulator(quiet_world, name="power_meter")
    lam = pump_wavelength(quiet_world)
    meter = open_instrument(
        SimAdapter(sim), name="power_meter", clock=quiet_world.clock, wavelength_nm=lam
    )
    assert meter.wavelength_nm == lam
    assert meter.power_w == pytest.approx(true_power_w(quiet_world), rel=1e-8)
    settings = meter.settings()
    assert settings["sensor"] == "S120VC" and settings["wavelength_nm"] == lam
    assert settings["idn"].startswith("THORLABS,PM100USB")
    with pytest.raises(CommunicationError, match="power_meter.*'NOPE\\?'"):
        meter.ask("NOPE?")
    with pytest.raises(InstrumentError, match="-113"):
        meter.check_errors()
    with pytest.raises(StationError, match="unknown PM100 options"):
        open_instrument(SimAdapter(sim), name="power_meter", clock=quiet_world.clock, gain=3)


def test_station_power_meter():
    from labctl.station import Station, load_station_spec

    spec = load_station_spec("sim")
    spec.instruments = {k: v for k, v in spec.instruments.items() if k == "power_meter"}
    station = Station(spec, time_scale="virtual")
    try:
        meter = station["power_meter"]
        assert meter.wavelength_nm == spec.instruments["power_meter"].options["wavelength_nm"]
        mean, sem = meter.average_power_w(20)
        assert mean == pytest.approx(true_power_w(station.world), rel=0.01)
    finally:
        station.close()


def test_sim_station_power_meter(sim_station):
    meter = sim_station["power_meter"]
    mean, _ = meter.average_power_w(10)
    assert mean == pytest.approx(true_power_w(sim_station.world), rel=0.01)


# --- third-party clients over TCP -----------------------------------------------------------


@pytest.mark.tcp
def test_pymeasure_thorlabs_driver_over_tcp(quiet_world):
    sim = PM100Simulator(quiet_world, name="power_meter")
    lam = pump_wavelength(quiet_world)
    with SimServer(sim) as server:
        with pytest.warns(FutureWarning):  # pymeasure's own note about SCPI support
            meter = ThorlabsPM100USB(
                server.resource,
                read_termination="\n",
                write_termination="\n",
                timeout=2000,
                visa_library="@py",
            )
        try:
            assert meter.sensor_name == "S120VC"
            assert meter.is_power_sensor and meter.wavelength_settable
            meter.wavelength = lam
            assert meter.wavelength == lam
            assert meter.power == pytest.approx(true_power_w(quiet_world), rel=1e-8)
            with pytest.raises(AttributeError):
                _ = meter.energy  # a photodiode is no energy sensor
        finally:
            meter.adapter.close()


@pytest.mark.tcp
def test_plain_pyvisa_client_over_tcp(quiet_world):
    sim = PM100Simulator(quiet_world, name="power_meter")
    with SimServer(sim) as server:
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(server.resource, read_termination="\n", write_termination="\n")
        try:
            inst.timeout = 300
            assert inst.query("*IDN?").startswith("THORLABS,PM100USB,")
            inst.write("NOT:A:COMMAND")
            with pytest.raises(pyvisa.errors.VisaIOError):
                inst.read()
            assert inst.query("SYST:ERR?") == '-113,"Undefined header"'
            assert float(inst.query("MEAS:POW?")) > 0
        finally:
            inst.close()
            rm.close()


def test_initiate_then_fetch_returns_the_reading_initiate_took(quiet_world):
    """SCPI INITiate takes a reading, FETCh? returns it (again and again) without a new
    one; MEASure? does both."""
    sim = PM100Simulator(quiet_world)
    ask(sim, "INIT")
    first = ask(sim, "FETC?")
    assert float(first) > 0 and ask(sim, "FETCH?") == first
    assert float(ask(sim, "MEAS:POW?")) > 0
    assert ask(sim, "SYST:ERR?") == '0,"No error"\n'
