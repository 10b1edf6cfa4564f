"""SR830 lock-in: simulator protocol and signal chain, labctl driver, third-party clients."""

from __future__ import annotations

import math
import socket
import sys
import threading
import time

import numpy as np
import pytest
import pyvisa
from pymeasure.instruments.srs import SR830
from pymeasure.instruments.srs.sr830 import LIAStatus
from pymeasure.test import expected_protocol
from scipy.special import gammaincc

from labctl.clock import VirtualClock
from labctl.drivers.sr830 import LockIn, open_instrument, settling_time_constants
from labctl.errors import CommunicationError, InstrumentError, StationError
from labctl.simulators.sr830 import (
    ENBW_TIMES_TAU,
    OUTPUT_CLIP,
    SENSITIVITIES_V,
    SR830Simulator,
)
from labctl.simulators.transport import SimAdapter, SimServer

# --- helpers -------------------------------------------------------------------


def ask(sim: SR830Simulator, command: str) -> str:
    return sim.handle((command + "\n").encode()).decode()


def set_sampling_stage(world, position_mm: float) -> float:
    """Jump the THz sampling stage (effectively instantly); return the new lock-in input."""
    with world.lock:
        world.advance()
        stage = world.stages[0]
        stage.velocity_mm_s = 1e9
        stage.move_to(position_mm, world.t)
    world.clock.sleep(1e-7)
    with world.lock:
        world.advance()
        return world.lockin_input_v("ref")


def strongest_signal_position(world) -> tuple[float, float]:
    """The sampling-stage position (mm) with the largest |input| near the THz pulse."""
    zero = world.params.table["sampling_zero_mm"]
    best = (zero, 0.0)
    for mm in np.linspace(zero - 1.0, zero + 1.0, 81):
        u = set_sampling_stage(world, float(mm))
        if abs(u) > abs(best[1]):
            best = (float(mm), u)
    return best


def quiet_signal_position(world) -> float:
    """Far from the THz pulse: (almost) no signal."""
    return world.stages[0].min_mm


# --- simulator: protocol ----------------------------------------------------------


def test_idn_and_settings_queries(quiet_world):
    sim = SR830Simulator(quiet_world, name="lockin_ref")
    idn = ask(sim, "*IDN?").strip()
    maker, model, serial, firmware = idn.split(",")
    assert (maker, model, firmware) == ("Stanford_Research_Systems", "SR830", "ver1.07")
    assert serial.startswith("s/n") and serial[3:].isdigit()
    # several commands per line, spaces and float-written indices tolerated
    assert ask(sim, "SENS 12; OFLT 7.0 ;ofsl3;SENS?;OFLT?;OFSL?") == "12\n7\n3\n"
    assert ask(sim, "SRAT14.000000;SRAT?") == "14\n"
    assert ask(sim, "PHAS 370;PHAS?") == "10\n"
    assert ask(sim, "AUXV1,1.5;;AUXV?1;") == "1.5\n"


def test_illegal_command_sets_cmd_bit_and_stays_silent(quiet_world):
    sim = SR830Simulator(quiet_world)
    ask(sim, "*ESR?")  # clear power-on bit
    assert ask(sim, "FOO 1") == ""
    assert ask(sim, "OUTP 1") == ""  # a query-only command used as a setter
    assert ask(sim, "SNAP? 1") == ""  # SNAP? needs 2..6 parameters
    assert ask(sim, "DDEF 1") == ""  # setting a display needs 2 or 3
    assert int(ask(sim, "*ESR?")) == 32
    assert int(ask(sim, "*ESR?")) == 0  # reading clears it


def test_out_of_range_sets_exe_bit_and_keeps_setting(quiet_world):
    sim = SR830Simulator(quiet_world)
    ask(sim, "*ESR?")
    assert ask(sim, "SENS 27") == ""
    assert ask(sim, "OFLT -1") == ""
    assert ask(sim, "OUTP? 5") == ""
    assert int(ask(sim, "*ESR?")) == 16
    assert ask(sim, "SENS?") == "26\n"
    assert ask(sim, "*ESR? 4") == "0\n"


def test_garbage_never_crashes(quiet_world):
    sim = SR830Simulator(quiet_world)
    rng = np.random.default_rng(7)
    for _ in range(300):
        out = sim.handle(rng.integers(0, 256, rng.integers(1, 60)).astype(np.uint8).tobytes())
        assert isinstance(out, bytes)
    sim.handle(b"\n" + b"X" * 10000)  # runaway line without terminator
    sim.handle(b"\n")
    assert ask(sim, "*IDN?").startswith("Stanford_Research_Systems,SR830")
    assert int(ask(sim, "*ESR?")) & 32


def test_frequency_follows_reference_source(quiet_world):
    sim = SR830Simulator(quiet_world, channel="pump")
    chopper = quiet_world.lockin_reference_hz("pump")
    assert float(ask(sim, "FREQ?")) == pytest.approx(chopper, rel=1e-6)
    ask(sim, "*ESR?")
    ask(sim, "FREQ 1234")  # not allowed with an external reference
    assert int(ask(sim, "*ESR?")) == 16
    ask(sim, "FMOD 1;FREQ 1234.5")
    assert float(ask(sim, "FREQ?")) == pytest.approx(1234.5)
    assert ask(sim, "FMOD?") == "1\n"


def test_phase_rotates_x_into_y(quiet_world):
    sim = SR830Simulator(quiet_world)
    pos, u = strongest_signal_position(quiet_world)
    set_sampling_stage(quiet_world, pos)
    quiet_world.clock.sleep(100.0)
    x, y = (float(v) for v in ask(sim, "SNAP? 1,2").split(","))
    assert x == pytest.approx(u, rel=1e-5) and abs(y) < 1e-5 * abs(u)
    ask(sim, "PHAS 90")
    quiet_world.clock.sleep(100.0)
    x, y, r = (float(v) for v in ask(sim, "SNAP? 1,2,3").split(","))
    assert abs(x) < 1e-5 * abs(u)
    assert y == pytest.approx(-u, rel=1e-5)
    assert r == pytest.approx(abs(u), rel=1e-5)


def test_unlocked_internal_reference_sees_no_signal(quiet_world):
    sim = SR830Simulator(quiet_world)
    pos, u = strongest_signal_position(quiet_world)
    set_sampling_stage(quiet_world, pos)
    ask(sim, "FMOD 1;FREQ 1000")  # internal oscillator, not the chopper
    quiet_world.clock.sleep(100.0)
    assert abs(float(ask(sim, "OUTP? 3"))) < 1e-3 * abs(u)
    ask(sim, "FMOD 0;HARM 2")  # a square-wave chopper has no 2nd harmonic
    quiet_world.clock.sleep(100.0)
    assert abs(float(ask(sim, "OUTP? 3"))) < 1e-6 * abs(u)


# --- simulator: filter, settling, noise, overload -----------------------------------


@pytest.mark.parametrize("slope_index", [0, 3])
def test_stage_move_settles_with_the_time_constant(quiet_world, slope_index):
    sim = SR830Simulator(quiet_world)
    stages = slope_index + 1
    tau = 0.1
    ask(sim, f"OFLT 8;OFSL {slope_index}")
    u_before = set_sampling_stage(quiet_world, quiet_signal_position(quiet_world))
    quiet_world.clock.sleep(60 * tau)
    pos, _ = strongest_signal_position(quiet_world)  # moves happen instantly in between
    set_sampling_stage(quiet_world, quiet_signal_position(quiet_world))
    quiet_world.clock.sleep(60 * tau)
    assert float(ask(sim, "OUTP? 1")) == pytest.approx(u_before, abs=1e-9)
    u_after = set_sampling_stage(quiet_world, pos)
    step = u_after - u_before
    assert abs(step) > 1e-6
    t0 = quiet_world.clock.now()
    for _ in range(1, 40):
        quiet_world.clock.sleep(tau / 4)
        x = float(ask(sim, "OUTP? 1"))
        elapsed = quiet_world.clock.now() - t0
        expected = u_after - step * gammaincc(stages, elapsed / tau)  # n-stage RC step
        assert x == pytest.approx(expected, abs=2e-3 * abs(step)), f"t = {elapsed:.3f} s"
    # the manual's 99 % settling table: 5/7/9/10 τ for 6/12/18/24 dB/oct
    t99_tau = settling_time_constants(-math.log(0.01), [6, 12, 18, 24][slope_index])
    assert gammaincc(stages, t99_tau) == pytest.approx(0.01, rel=1e-6)
    assert abs(t99_tau - [5, 7, 9, 10][slope_index]) < 0.7


def _noise_std(world, sim, spacing_s: float, n: int) -> tuple[float, np.ndarray]:
    xs = []
    for _ in range(n):
        world.clock.sleep(spacing_s)
        xs.append([float(v) for v in ask(sim, "SNAP? 1,2").split(",")])
    xs = np.array(xs)
    return float(np.std(xs - xs.mean(axis=0))), xs[:, 0]


@pytest.mark.parametrize("slope_index", [0, 3])
def test_noise_std_follows_enbw(world, slope_index):
    sim = SR830Simulator(world)
    set_sampling_stage(world, quiet_signal_position(world))
    e_n = world.lockin_noise_v_per_rthz("ref")
    assert e_n > 0
    stds = {}
    for oflt, tau in ((4, 0.001), (8, 0.1)):
        ask(sim, f"OFLT {oflt};OFSL {slope_index}")
        world.clock.sleep(50 * tau)
        std, _ = _noise_std(world, sim, 12 * tau, 400)
        expected = e_n * math.sqrt(ENBW_TIMES_TAU[slope_index + 1] / tau)
        assert std == pytest.approx(expected, rel=0.1)
        stds[tau] = std
    assert stds[0.001] / stds[0.1] == pytest.approx(10.0, rel=0.15)  # 1/√τ


def test_readings_closer_than_tau_are_correlated(world):
    sim = SR830Simulator(world)
    set_sampling_stage(world, quiet_signal_position(world))
    ask(sim, "OFLT 6;OFSL 0")  # 10 ms, 6 dB/oct: correlation exp(-Δt/τ)
    world.clock.sleep(0.5)
    _, close = _noise_std(world, sim, 0.001, 2000)
    _, apart = _noise_std(world, sim, 0.1, 400)

    def lag1(v):
        v = v - v.mean()
        return float(np.dot(v[:-1], v[1:]) / np.dot(v, v))

    assert lag1(close) == pytest.approx(math.exp(-0.1), abs=0.06)
    assert abs(lag1(apart)) < 0.15


def test_simulator_is_deterministic_given_the_seed(clock):
    from labctl.simulators.world import World

    runs = []
    for _ in range(2):
        world = World(VirtualClock(), seed=42, noise=True)
        sim = SR830Simulator(world)
        ask(sim, "OFLT 5")
        readings = []
        for _ in range(20):
            world.clock.sleep(0.001)
            readings.append(ask(sim, "SNAP? 1,2"))
        runs.append(readings)
    assert runs[0] == runs[1]
    assert len(set(runs[0])) > 10


def test_overload_latches_and_outputs_clip(quiet_world):
    sim = SR830Simulator(quiet_world)
    pos, u = strongest_signal_position(quiet_world)
    set_sampling_stage(quiet_world, pos)
    quiet_world.clock.sleep(5.0)
    assert int(ask(sim, "LIAS?")) == 0  # 1 V full scale: no overload
    small = max(i for i, fs in enumerate(SENSITIVITIES_V) if fs < abs(u) / 2)
    ask(sim, f"SENS {small}")
    quiet_world.clock.sleep(1.0)
    fs = SENSITIVITIES_V[small]
    x = float(ask(sim, "OUTP? 1"))
    assert abs(x) == pytest.approx(OUTPUT_CLIP * fs, rel=1e-5)  # saturated, not the input
    status = int(ask(sim, "LIAS?"))
    assert status & 1 and status & 4  # INPUT and OUTPUT overload
    set_sampling_stage(quiet_world, quiet_signal_position(quiet_world))  # overload ends
    quiet_world.clock.sleep(5.0)
    assert int(ask(sim, "LIAS?")) & 5  # latched overloads from before this read
    assert int(ask(sim, "LIAS?")) == 0  # … cleared by reading
    assert ask(sim, "LIAS? 2") == "0\n"


def test_auto_gain_takes_time_then_fits_the_signal(quiet_world):
    sim = SR830Simulator(quiet_world)
    pos, u = strongest_signal_position(quiet_world)
    set_sampling_stage(quiet_world, pos)
    quiet_world.clock.sleep(5.0)
    ask(sim, "AGAN")
    assert int(ask(sim, "*STB? 1")) == 0  # IFC: a command is executing
    quiet_world.clock.sleep(10.0)
    assert int(ask(sim, "*STB? 1")) == 1
    fs = SENSITIVITIES_V[int(ask(sim, "SENS?"))]
    assert abs(u) < 0.9 * fs and abs(u) >= 0.9 * SENSITIVITIES_V[int(ask(sim, "SENS?")) - 1]


# --- driver: expected protocol ------------------------------------------------------


def test_driver_protocol_read_xy_and_errors():
    with expected_protocol(
        LockIn,
        [
            ("SNAP? 1,2", "0.00123456,-4.5e-05"),
            ("LIAS?", "5"),
            ("SENS?", "17"),
            ("*ESR?", "48"),
            ("*ESR?", "0"),
            ("SNAP? 1,2", "0.1,garbage"),
            ("*IDN?", "Stanford_Research_Systems,SR830,s/n12345,ver1.07"),  # resync
            ("SNAP? 1,2", "0.2,0.3"),
        ],
        name="lockin_ref",
        clock=VirtualClock(),
    ) as lockin:
        assert lockin.read_xy() == (0.00123456, -4.5e-05)
        with pytest.raises(InstrumentError, match="lockin_ref.*INPUT.*OUTPUT.*0.001 V"):
            lockin.check_overload()
        with pytest.raises(InstrumentError, match=r"lockin_ref.*EXE.*CMD"):
            lockin.check_errors()
        assert lockin.check_errors() == []
        with pytest.raises(CommunicationError, match="lockin_ref: garbled"):
            lockin.read_xy()
        assert lockin.read_xy() == (0.2, 0.3)  # only after *IDN? proved the stream in step


@pytest.mark.parametrize(
    ("slope_index", "waited_tau"), [("0", 3.0), ("3", settling_time_constants(3, 24))]
)
def test_driver_protocol_settle_waits_on_the_clock(slope_index, waited_tau):
    clock = VirtualClock()
    with expected_protocol(LockIn, [("OFLT?", "9"), ("OFSL?", slope_index)], clock=clock) as lockin:
        waited = lockin.settle(3)
    assert waited == pytest.approx(0.3 * waited_tau)
    assert clock.now() == pytest.approx(waited)
    assert settling_time_constants(3, 24) > 7  # steeper slopes wait longer


def test_driver_protocol_settings():
    with expected_protocol(
        LockIn,
        [
            ("*IDN?", "Stanford_Research_Systems,SR830,s/n12345,ver1.07"),
            ("SENS?", "20"),
            ("OFLT?", "8"),
            ("OFSL?", "1"),
            ("FREQ?", "390"),
            ("PHAS?", "-12.5"),
            ("HARM?", "1"),
            ("FMOD?", "0"),
            ("RMOD?", "1"),
            ("ISRC?", "0"),
            ("ICPL?", "0"),
            ("IGND?", "1"),
            ("ILIN?", "3"),
        ],
        clock=VirtualClock(),
    ) as lockin:
        s = lockin.settings()
    assert s == {
        "idn": "Stanford_Research_Systems,SR830,s/n12345,ver1.07",
        "sensitivity_V": 0.01,
        "time_constant_s": 0.1,
        "slope_db_oct": 12,
        "frequency_hz": 390.0,
        "phase_deg": -12.5,
        "harmonic": 1,
        "reference_source": "External",
        "reserve": "Normal",
        "input_config": "A",
        "input_coupling": "AC",
        "input_grounding": "Ground",
        "input_notch": "Both",
    }


def test_open_instrument_refuses_unknown_options(quiet_world):
    with pytest.raises(StationError, match="lockin_ref.*bogus"):
        open_instrument(
            SimAdapter(SR830Simulator(quiet_world)),
            name="lockin_ref",
            clock=quiet_world.clock,
            bogus=1,
        )


# --- driver against the in-process simulator -------------------------------------------


@pytest.fixture
def lockin(quiet_world):
    sim = SR830Simulator(quiet_world, name="lockin_ref")
    return open_instrument(SimAdapter(sim), name="lockin_ref", clock=quiet_world.clock)


def test_driver_timeout_is_a_communication_error(lockin):
    with pytest.raises(CommunicationError, match="lockin_ref.*'FOO\\?'"):
        lockin.ask("FOO?")
    with pytest.raises(InstrumentError, match="CMD"):
        lockin.check_errors()
    lockin.write("SENS 40")
    with pytest.raises(InstrumentError, match="EXE"):
        lockin.check_errors()


def test_driver_settle_then_read_matches_input(lockin, quiet_world):
    pos, _ = strongest_signal_position(quiet_world)
    set_sampling_stage(quiet_world, quiet_signal_position(quiet_world))
    lockin.time_constant = 0.3
    lockin.filter_slope = 24
    lockin.settle(20)
    u = set_sampling_stage(quiet_world, pos)
    lockin.settle(4.6)  # 99 %
    x, y = lockin.read_xy()
    assert abs(x - u) <= 0.0101 * abs(u)
    assert abs(x - u) > 0.001 * abs(u)  # … but not settled to 99.9 % yet
    assert quiet_world.clock.now() > 10 * 0.3


def test_driver_auto_range_finds_the_most_sensitive_safe_range(lockin, quiet_world):
    pos, u = strongest_signal_position(quiet_world)
    set_sampling_stage(quiet_world, pos)
    lockin.sensitivity = 2e-9  # deep in overload
    chosen = lockin.auto_range()
    assert lockin.sensitivity == chosen
    assert abs(u) < 0.9 * chosen
    assert abs(u) >= 0.9 * SENSITIVITIES_V[SENSITIVITIES_V.index(chosen) - 1]
    lockin.check_overload()  # no overload latched at the chosen range
    lockin.sensitivity = 1.0
    assert lockin.auto_range() == chosen  # and downwards too


_HAMMER = (
    ("*IDN?", lambda r: r.startswith("Stanford")),
    ("SNAP? 1,2,9", lambda r: r.count(",") == 2),
    ("OFLT?", lambda r: r == "8"),
)


def _hammer(instrument, n: int = 200) -> list[str]:
    """Three threads querying one instrument; returns the replies that were not theirs.

    Every thread is joined with a timeout: a thread still running afterwards fails the
    test instead of hanging the suite.
    """
    wrong: list[str] = []
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    def run(query: str, check) -> None:
        for _ in range(n):
            try:
                reply = instrument.ask(query).strip()
            except Exception as exc:
                wrong.append(f"{query} -> {exc!r}")
                continue
            if not check(reply):
                wrong.append(f"{query} -> {reply}")

    threads = [threading.Thread(target=run, args=args, daemon=True) for args in _HAMMER]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60.0
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        sys.setswitchinterval(old)
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads {stuck} still querying after 60 s"
    return wrong


def _socket_of(instrument) -> socket.socket:
    """The TCP socket under a pyvisa-py SOCKET session."""
    connection = instrument.adapter.connection
    return connection.visalib.sessions[connection.session].interface


def test_driver_concurrent_queries_never_mix_replies(lockin):
    assert _hammer(lockin, 300) == []


@pytest.mark.tcp
def test_driver_concurrent_queries_over_tcp(quiet_world):
    with SimServer(SR830Simulator(quiet_world, name="lockin_ref")) as server:
        lockin = open_instrument(server.resource, name="lockin_ref", clock=quiet_world.clock)
        try:
            assert _hammer(lockin) == []
        finally:
            lockin.shutdown()
        # control: pymeasure's SR830 alone (no SerializedIO) gets other threads' replies
        bare = SR830(
            server.resource,
            read_termination="\n",
            write_termination="\n",
            timeout=500,
            visa_library="@py",
        )
        # pyvisa-py selects, then recv()s on a blocking socket: two unserialized threads
        # can both see "readable", one takes the bytes and the other blocks in recv() for
        # ever once the rest have finished — the hang of the whole suite. A socket timeout
        # turns that into an error the hammer records.
        _socket_of(bare).settimeout(1.0)
        try:
            assert len(_hammer(bare)) > 0
        finally:
            bare.adapter.close()


# --- station -------------------------------------------------------------------------


def _my_station():
    from labctl.station import Station, load_station_spec

    spec = load_station_spec("sim")
    spec.instruments = {k: v for k, v in spec.instruments.items() if k.startswith("lockin")}
    return Station(spec, time_scale="virtual")


def test_station_lockins_observe_their_channels():
    station = _my_station()
    try:
        world = station.world
        for role, channel in (("lockin_ref", "ref"), ("lockin_pump", "pump")):
            lockin = station[role]
            assert isinstance(lockin, LockIn)
            assert lockin.frequency == pytest.approx(world.lockin_reference_hz(channel))
            assert lockin.settings()["idn"].startswith("Stanford_Research_Systems,SR830")
    finally:
        station.close()


def test_sim_station_lockin_ref(sim_station):
    lockin = sim_station["lockin_ref"]
    world = sim_station.world
    pos, u = strongest_signal_position(world)
    set_sampling_stage(world, pos)
    lockin.time_constant = 0.1
    lockin.settle(10)
    x, _ = lockin.read_xy()
    noise = world.lockin_noise_v_per_rthz("ref") * math.sqrt(10)
    assert x == pytest.approx(u, abs=5 * noise + 1e-9)
    assert lockin.settings()["frequency_hz"] == pytest.approx(world.lockin_reference_hz("ref"))


# --- third-party clients over TCP ---------------------------------------------------------


@pytest.mark.tcp
def test_pymeasure_sr830_over_tcp(quiet_world):
    sim = SR830Simulator(quiet_world, name="lockin_ref")
    pos, u = strongest_signal_position(quiet_world)
    set_sampling_stage(quiet_world, pos)
    quiet_world.clock.sleep(10.0)
    with SimServer(sim) as server:
        lockin = SR830(
            server.resource,
            read_termination="\n",
            write_termination="\n",
            timeout=2000,
            visa_library="@py",
        )
        try:
            assert lockin.id.startswith("Stanford_Research_Systems,SR830")
            lockin.sensitivity = 0.1
            assert lockin.sensitivity == 0.1
            lockin.time_constant = 0.3
            assert lockin.time_constant == 0.3
            assert lockin.filter_slope == 12
            assert lockin.frequency == pytest.approx(quiet_world.lockin_reference_hz("ref"))
            lockin.phase = 0.0
            quiet_world.clock.sleep(10.0)
            x, y = lockin.xy
            assert x == pytest.approx(u, rel=1e-5)
            assert lockin.x == pytest.approx(u, rel=1e-5)
            assert lockin.magnitude == pytest.approx(abs(u), rel=1e-5)
            assert lockin.input_config == "A"
            assert lockin.reference_source == "External"
            lockin.aux_out_1 = 2.5
            assert lockin.aux_out_1 == 2.5
            # (pymeasure's channel1 is not checked: the real DDEF? i answers "j,k")
            assert lockin.lia_status == LIAStatus.NO_ERROR  # in range: nothing latched
            assert int(lockin.is_out_of_range()) == 0
            lockin.sensitivity = 2e-9  # far below the THz signal: the input overloads
            quiet_world.clock.sleep(1.0)
            assert LIAStatus.INPUT_OVERLOAD in lockin.lia_status
            lockin.sensitivity = 1.0  # back in range; the latch holds until read
            lockin.lia_status  # noqa: B018 (LIAS? clears the latch)
            quiet_world.clock.sleep(1.0)
            assert lockin.lia_status == LIAStatus.NO_ERROR
        finally:
            lockin.adapter.close()


@pytest.mark.tcp
def test_plain_pyvisa_client_over_tcp(quiet_world):
    sim = SR830Simulator(quiet_world, name="lockin_ref")
    with SimServer(sim) as server:
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(server.resource, read_termination="\n", write_termination="\n")
        try:
            inst.timeout = 300
            assert inst.query("*IDN?").startswith("Stanford_Research_Systems,SR830,")
            assert inst.query("OUTX 1;SENS 22;SENS?") == "22"
            assert int(inst.query("*ESR?")) & 128  # power-on bit, cleared by the read
            inst.write("BOGUS?")
            with pytest.raises(pyvisa.errors.VisaIOError):
                inst.read()  # the SR830 stays silent on an illegal command
            assert inst.query("*ESR?") == "32"
            inst.write("SENS 99")
            assert inst.query("*ESR?") == "16"
            inst.write_raw(b"\x00\xff\x13garbage;;;\r\n")
            x, y = (float(v) for v in inst.query("SNAP? 1,2").split(","))
            assert math.isfinite(x) and math.isfinite(y)
        finally:
            inst.close()
            rm.close()


@pytest.mark.tcp
def test_labctl_driver_over_tcp(quiet_world):
    sim = SR830Simulator(quiet_world, name="lockin_ref")
    with SimServer(sim) as server:
        lockin = open_instrument(server.resource, name="lockin_ref", clock=quiet_world.clock)
        try:
            assert lockin.settings()["harmonic"] == 1
            lockin.adapter.connection.timeout = 200
            with pytest.raises(CommunicationError, match="lockin_ref"):
                lockin.ask("NOPE?")
        finally:
            lockin.shutdown()


def test_quick_range_waits_on_the_station_clock(sim_station, monkeypatch):
    import time as _time

    lockin = sim_station["lockin_ref"]
    lockin.time_constant = 1.0  # pymeasure's version would sleep 5 s of wall time per step
    lockin.sensitivity = 2e-9  # far too sensitive: overload
    wall_sleeps = []
    real_sleep = _time.sleep
    monkeypatch.setattr(_time, "sleep", lambda s: (wall_sleeps.append(s), real_sleep(s)))
    v0 = sim_station.clock.now()
    chosen = lockin.quick_range()
    assert sum(wall_sleeps) < 0.5, wall_sleeps  # no settling in real time
    assert sim_station.clock.now() - v0 >= 5 * 1.0  # it settled on the station's clock
    assert chosen > 2e-9 and not lockin.read_overload()
