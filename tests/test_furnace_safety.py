"""Furnace safety holes (issue 11): what the Eurotherm driver and simulator must refuse.

Rates that round to zero, a stale decimal point, limits in the controller
itself, identity at connect, option checks, the over-temperature watch for
manual output, and Modbus resynchronisation in linear time outside the
handler lock. In-process first, then against ``labctl sim serve``.
"""

from __future__ import annotations

import math
import numbers
import socket
import struct
import subprocess
import sys
import threading
import time

import minimalmodbus
import pytest
import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modbus_frames import RecordingSerial, exception, read_reply, write_req

from labctl.drivers.eurotherm import (
    Dwell,
    Eurotherm2408,
    FurnaceInterlock,
    ProgramStatus,
    Ramp,
)
from labctl.errors import InstrumentError, LabctlError, SafetyLimitError
from labctl.simulators.base import ProtocolHandler
from labctl.simulators.eurotherm import PROGRAM_BASE, PROGRAM_STRIDE, Eurotherm2408Simulator
from labctl.simulators.modbus_rtu import crc_ok, with_crc
from labctl.simulators.transport import SimSerial, SimServer

LIMITS = {"max_setpoint_c": 400.0, "max_ramp_c_per_min": 20.0}


def is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def read_req(start: int, count: int = 1, slave: int = 1) -> bytes:
    return with_crc(struct.pack(">BBHH", slave, 3, start, count))


@pytest.fixture
def sim(quiet_world) -> Eurotherm2408Simulator:
    return Eurotherm2408Simulator(quiet_world, name="furnace")


@pytest.fixture
def port(sim) -> RecordingSerial:
    return RecordingSerial(sim)


@pytest.fixture
def furnace(port, clock):
    furnace = Eurotherm2408("furnace", port, 1, clock, **LIMITS)
    port.sent.clear()
    yield furnace
    furnace.close()


OTHER_CLIENT = object()  # a second Modbus client of the same simulator (its own framer)


def other_client(sim, request: bytes) -> bytes:
    return sim.handle(request, source=OTHER_CLIENT)


# --- 1. numbers the controller can represent --------------------------------------------


def test_rate_that_rounds_to_zero_is_refused_and_the_working_setpoint_does_not_step(
    furnace, sim, port, clock
):
    furnace.setpoint_c = 350.0  # sets the rate limit to 20 °C/min first
    clock.advance(60)
    wsp = furnace.working_setpoint_c
    assert wsp == pytest.approx(45.0, abs=0.5)
    writes = len(port.writes())
    with pytest.raises(SafetyLimitError, match=r"0\.04 °C/min would be written as 0.*0\.1 °C/min"):
        furnace.setpoint_rate_c_per_min = 0.04
    assert port.writes()[writes:] == []
    assert sim.rate_limit == 20.0
    clock.advance(1.5)
    assert furnace.working_setpoint_c - wsp <= 20.0 / 60 * 1.5 + 0.1  # no step to 350


def test_smallest_rate_follows_the_rate_units(furnace, sim):
    other_client(sim, write_req(531, 0))  # rate limit per second: one count is 6 °C/min
    with pytest.raises(SafetyLimitError, match=r"smallest non-zero rate .* is 6 °C/min"):
        furnace.setpoint_rate_c_per_min = 3.0
    furnace.setpoint_rate_c_per_min = 12.0  # 0.2 °C/s
    assert sim.rate_limit == pytest.approx(0.2)
    assert furnace.setpoint_rate_c_per_min == pytest.approx(12.0)


def test_program_ramp_that_rounds_to_zero_is_refused(furnace, sim, port):
    before = sim.program_words(1)
    with pytest.raises(SafetyLimitError, match=r"segment 1 ramp rate 0\.04 °C/min .*0\.1 °C/min"):
        furnace.load_program([Ramp(0.04, 300.0), Dwell(10)])
    assert port.writes() == []
    assert sim.program_words(1) == before


def test_rates_are_never_written_faster_than_asked(furnace, sim):
    furnace.setpoint_rate_c_per_min = 19.99  # one decimal: written as 19.9, not 20.0
    assert sim.rate_limit == pytest.approx(19.9)


@pytest.mark.parametrize(
    "action",
    [
        lambda f: setattr(f, "setpoint_c", True),
        lambda f: setattr(f, "setpoint_rate_c_per_min", True),
        lambda f: f.load_program([Ramp(10.0, 100.0)], program=True),
        lambda f: f.load_program([Ramp(True, 100.0)]),
        lambda f: f.load_program([Ramp(10.0, True)]),
        lambda f: f.load_program([Ramp(10.0, 100.0), Dwell(True)]),
        lambda f: f.load_program([Ramp(10.0, 100.0)], holdback_c=True),
        lambda f: f.load_program(5),
        lambda f: f.run_program(program=True),
    ],
)
def test_bool_and_non_numbers_are_refused(furnace, sim, port, action):
    with pytest.raises(InstrumentError):
        action(furnace)
    assert port.writes() == []
    assert sim.target_sp_c == 25.0 and sim.prog_status == 1


def test_manual_mode_wants_a_bool(furnace, sim):
    with furnace.over_temperature_watch():
        with pytest.raises(InstrumentError, match="True or False"):
            furnace.manual_mode = "False"  # bool("False") is True
        assert sim.manual is False


@pytest.mark.parametrize("holdback_c", [1e308, math.inf, 0.01])
def test_holdback_that_cannot_be_written_is_a_clear_error(furnace, port, holdback_c):
    with pytest.raises(SafetyLimitError, match="holdback band"):
        furnace.load_program([Ramp(10.0, 100.0)], holdback_c=holdback_c)
    assert port.writes() == []


def test_encode_refuses_values_the_register_cannot_hold(furnace):
    with pytest.raises(SafetyLimitError, match="does not fit the register"):
        furnace.encode_word(1e308, "temperature", "test value")
    with pytest.raises(SafetyLimitError, match="does not fit"):
        furnace.encode_word(3276.8, "temperature", "test value")  # 32768 at one decimal
    assert furnace.encode_word(-3276.8, "temperature", "test value") == 0x8000


# --- 2. no stale scaling -------------------------------------------------------------------


def test_setpoint_after_another_client_changes_the_decimal_point_is_never_ten_times(furnace, sim):
    assert furnace.decimal_places == 1
    assert other_client(sim, write_req(525, 0)) == write_req(525, 0)
    furnace.setpoint_c = 100.0
    assert sim.target_sp_c == 100.0  # not 1000 °C
    assert furnace.decimal_places == 0
    assert furnace.setpoint_c == 100.0
    assert other_client(sim, read_req(2)) == read_reply([100])


def test_interlock_check_rereads_the_decimal_point(furnace, sim):
    sim.pv_c = 500.0  # hot, above 400 + 25
    other_client(sim, write_req(525, 0))  # a stale 1 dp would read 50.0 °C
    with pytest.raises(FurnaceInterlock, match="over-temperature: PV 500 °C"):
        furnace.check_interlocks()


def test_stored_program_keeps_engineering_units_after_a_decimal_point_change(furnace, sim, clock):
    furnace.load_program([Ramp(10.0, 300.0), Dwell(30.0)], program=2)
    base = PROGRAM_BASE + PROGRAM_STRIDE * 2 + 8
    assert other_client(sim, read_req(base, 3)) == read_reply([1, 3000, 100])
    other_client(sim, write_req(525, 0))
    assert other_client(sim, read_req(base, 3)) == read_reply([1, 300, 10])  # not 3000 °C
    furnace.run_program(2)
    clock.advance(3600)
    assert furnace.programmer_setpoint_c == 300.0  # reached 300 °C and dwells there
    assert furnace.temperature_c < 310.0


# --- 3. limits in the controller too ----------------------------------------------------


def test_connect_writes_the_station_limits_into_the_controller(furnace, sim):
    assert (sim.sp_low_c, sim.sp_high_c) == (0.0, 400.0)
    assert furnace.setpoint_limits_c == (0.0, 400.0)
    assert other_client(sim, write_req(2, 5000)) == exception(6, 3)  # 500 °C by another client
    assert sim.target_sp_c == 25.0
    program_target = PROGRAM_BASE + PROGRAM_STRIDE * 3 + 8
    refused = with_crc(
        struct.pack(">BBHHB", 1, 16, program_target, 3, 6) + struct.pack(">3H", 1, 5000, 100)
    )
    assert other_client(sim, refused) == exception(16, 3)  # a programmer target too


def test_controller_limits_bind_a_program_stored_before_they_were_lowered(furnace, sim, clock):
    furnace.load_program([Ramp(20.0, 390.0), Dwell(60.0)])
    other_client(sim, write_req(111, 3000))  # SP high lowered to 300 °C afterwards
    furnace.run_program(1)
    highest = 0.0
    for _ in range(40):
        clock.advance(60)
        highest = max(highest, furnace.working_setpoint_c)
    assert highest == 300.0


def test_connect_refuses_to_run_when_the_controller_limits_cannot_be_set(sim, clock):
    sim.range_high_c = 350.0  # a controller whose input range ends below the station's max
    with pytest.raises(SafetyLimitError, match="cannot set the controller's own setpoint limits"):
        Eurotherm2408("furnace", SimSerial(sim), 1, clock, **LIMITS)


# --- 4. identity at connect ---------------------------------------------------------------


class Impostor(Eurotherm2408Simulator):
    """A Modbus slave that is not a 2400-series controller."""

    def __init__(self, world, ident: int | None):
        super().__init__(world, name="impostor")
        self.ident = ident

    def _read_word(self, a: int) -> int:
        if a == 122:
            if self.ident is None:
                return super()._read_word(600)  # exception 02: no such register
            return self.ident
        return super()._read_word(a)


@pytest.mark.parametrize(
    "ident, match",
    [
        (0x3504, r"furnace: slave 1 on sim://impostor answered ident 0x3504 .*not a Eurotherm"),
        (None, r"furnace: slave 1 on sim://impostor is not a Eurotherm 2400-series"),
    ],
)
def test_identity_at_connect(quiet_world, clock, ident, match):
    port = RecordingSerial(Impostor(quiet_world, ident))
    with pytest.raises(InstrumentError, match=match):
        Eurotherm2408("furnace", port, 1, clock, **LIMITS)
    assert port.writes() == []  # nothing written to a device we do not know


# --- 6. driver options --------------------------------------------------------------------


class Unplugged(ProtocolHandler):
    """Nothing on the line (the option tests must not get as far as any I/O)."""

    def __init__(self) -> None:
        self.name = "unplugged"

    def handle(self, data: bytes, source: object = None) -> bytes:
        return b""


@pytest.mark.parametrize(
    "option, value",
    [
        ("max_setpoint_c", math.inf),
        ("max_setpoint_c", 5000.0),
        ("max_setpoint_c", True),
        ("min_setpoint_c", -300.0),
        ("safe_setpoint_c", math.nan),
        ("over_temperature_margin_c", math.nan),
        ("over_temperature_margin_c", -5.0),
        ("max_ramp_c_per_min", math.inf),
        ("retries", 1e9),
        ("retries", True),
        ("retries", 2.5),
        ("retry_delay_s", math.nan),
        ("retry_delay_s", 1e9),
        ("modbus_address", math.inf),
    ],
)
def test_constructor_refuses_unsafe_options_before_any_io(clock, option, value):
    options = dict(LIMITS)
    address = 1
    if option == "modbus_address":
        address = value
    else:
        options[option] = value
    port = RecordingSerial(Unplugged())
    with pytest.raises(InstrumentError, match=option):
        Eurotherm2408("furnace", port, address, clock, **options)
    assert port.sent == []


def test_station_file_options_reach_the_driver_check(tmp_path):
    from labctl.errors import StationError
    from labctl.station import Station

    station = tmp_path / "bad.yaml"
    station.write_text(
        "name: bad\ninstruments:\n  furnace:\n    driver: eurotherm2408\n"
        "    address: sim://furnace\n"
        "    options: {max_setpoint_c: .inf, max_ramp_c_per_min: 20.0}\n"
    )
    with pytest.raises(StationError, match="max_setpoint_c"):
        Station.from_file(station, time_scale="virtual")


# --- 3. over-temperature watch for manual output -------------------------------------------


def test_manual_output_needs_a_running_watch(furnace, sim):
    with pytest.raises(SafetyLimitError, match="over-temperature watch"):
        furnace.manual_mode = True
    assert sim.manual is False
    furnace.manual_mode = False  # back to auto is always allowed
    with pytest.raises(SafetyLimitError, match="over-temperature watch"):
        furnace.output_percent = 100.0
    assert sim.manual_op_pct == 0.0


def test_watch_trips_at_over_temperature_and_leaves_the_furnace_safe(furnace, sim, clock):
    furnace.load_program([Ramp(5.0, 100.0)])
    furnace.run_program(1)
    with pytest.raises(FurnaceInterlock, match="over-temperature.*safe state"):
        with furnace.over_temperature_watch(poll_s=1.0) as watch:
            furnace.manual_mode = True
            furnace.output_percent = 100.0
            deadline = time.monotonic() + 30
            while watch.running and time.monotonic() < deadline:
                clock.advance(20)
                time.sleep(0.02)  # the watch polls every 10 ms of wall time on a virtual clock
            assert watch.tripped is not None
            with pytest.raises(SafetyLimitError, match="tripped"):
                furnace.output_percent = 100.0  # a tripped watch allows no more manual output
    assert sim.manual is False
    assert sim.target_sp_c == furnace.safe_setpoint_c
    assert sim.prog_status == ProgramStatus.RESET
    assert furnace.over_temperature_c < sim.pv_c < furnace.over_temperature_c + 30


def test_close_returns_a_watched_manual_furnace_to_auto(furnace, sim):
    furnace.over_temperature_watch()
    furnace.manual_mode = True
    furnace.output_percent = 10.0
    furnace.close()
    assert sim.manual is False


# --- property-based: driver encode/decode and limits --------------------------------------

BOUNDED = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
anything = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**6), 10**6),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)


def test_property_encode_round_trips_or_refuses(furnace):
    @BOUNDED
    @given(value=anything, decimals=st.sampled_from([0, 1, 2]))
    def check(value, decimals):
        furnace.decimal_places = decimals
        try:
            word = furnace.encode_word(value, "temperature", "value")
        except LabctlError:
            return
        assert is_number(value) and math.isfinite(value)
        assert 0 <= word <= 0xFFFF
        assert abs(furnace.decode_word(word, "temperature") - value) <= 10**-decimals

    check()


def test_property_setpoint_written_within_limits_and_one_count(furnace, sim):
    @BOUNDED
    @given(value=st.one_of(anything, st.floats(-50, 450)))
    def check(value):
        before = sim.target_sp_c
        try:
            furnace.setpoint_c = value
        except SafetyLimitError:
            assert sim.target_sp_c == before
            return
        assert is_number(value)  # True is not 1 °C
        assert 0.0 <= sim.target_sp_c <= 400.0
        assert abs(sim.target_sp_c - value) <= 0.1 + 1e-9
        assert 0 < sim.rate_limit <= 20.0

    check()


def test_property_rate_never_zero_never_above_max(furnace, sim):
    @BOUNDED
    @given(rate=st.one_of(anything, st.floats(0, 25)), units=st.sampled_from([0, 1, 2]))
    def check(rate, units):
        other_client(sim, write_req(531, units))
        before = sim.rate_limit
        try:
            furnace.setpoint_rate_c_per_min = rate
        except SafetyLimitError:
            assert sim.rate_limit == before
            return
        written = sim.rate_limit * 60.0 / {0: 1.0, 1: 60.0, 2: 3600.0}[units]
        assert 0 < written <= min(rate, 20.0) + 1e-9
        assert rate - written <= 60.0 / {0: 1.0, 1: 60.0, 2: 3600.0}[units] / 10 + 1e-9

    check()


# --- property-based: the Modbus simulator against random bytes ------------------------------


def split_replies(data: bytes) -> list[bytes]:
    """Cut a reply stream into frames; every one must be a CRC-valid reply from slave 1."""
    frames = []
    while data:
        assert data[0] == 1, data.hex(" ")
        function = data[1]
        if function & 0x80:
            length = 5
        elif function in (3, 4):
            length = 5 + data[2]
        else:
            assert function in (6, 16), data.hex(" ")
            length = 8
        frame, data = data[:length], data[length:]
        assert len(frame) == length and crc_ok(frame), frame.hex(" ")
        frames.append(frame)
    return frames


def test_property_simulator_answers_only_valid_frames_and_resynchronises(sim):
    @BOUNDED
    @given(garbage=st.binary(max_size=600), split=st.integers(0, 600))
    def check(garbage, split):
        source = object()  # a fresh client: its own framer
        out = sim.handle(garbage[:split], source) + sim.handle(garbage[split:], source)
        split_replies(out)
        for _ in range(3):  # a bad frame is discarded whole: the master's retry gets through
            reply = sim.handle(read_req(11), source)
            split_replies(reply)
            if reply.endswith(read_reply([0xF830])):  # input range low, −200.0 °C
                break
        else:
            pytest.fail(f"no resynchronisation after {garbage.hex(' ')}")

    check()


def test_property_crc_is_checked(sim):
    @BOUNDED
    @given(register=st.integers(0, 0xFFFF), where=st.integers(0, 7), flip=st.integers(1, 255))
    def check(register, where, flip):
        request = bytearray(read_req(register))
        request[where] ^= flip
        assert sim.handle(bytes(request), object()) == b""  # corrupted: silence
        assert sim.handle(read_req(register), object()) != b""  # intact: an answer

    check()

    check()


# --- 5. resynchronisation in linear time, outside the handler lock --------------------------

GARBAGE = b"\xf6\x10" * (2 * 1024 * 1024)  # 4 MB of crafted bytes


def test_four_megabytes_of_garbage_resynchronise_well_under_a_second(sim):
    source = object()
    start = time.thread_time()  # CPU time: the bound holds however busy the machine is
    for offset in range(0, len(GARBAGE), 65536):  # as a TCP server receives it
        assert sim.handle(GARBAGE[offset : offset + 65536], source=source) == b""
    assert sim.handle(read_req(2), source=source) == read_reply([250])
    assert time.thread_time() - start < 0.5


@pytest.mark.tcp
def test_garbage_client_does_not_starve_the_driver(sim, clock):
    with SimServer(sim) as server:
        done = threading.Event()

        def flood() -> None:
            with socket.create_connection((server.host, server.port), timeout=10) as sock:
                sock.sendall(GARBAGE)
                sock.sendall(read_req(2))
                sock.settimeout(10)
                reply = b""
                while not reply.endswith(read_reply([250])):
                    chunk = sock.recv(64)
                    if not chunk:
                        break
                    reply += chunk
                done.set()

        thread = threading.Thread(target=flood, daemon=True)
        furnace = Eurotherm2408("furnace", server.resource, 1, clock, **LIMITS)
        try:
            thread.start()
            start = time.process_time()  # CPU time (server threads too), not the busy wall
            readings = [furnace.temperature_c for _ in range(30)]  # no CommunicationError
            thread.join(timeout=10)
        finally:
            furnace.close()
        assert readings == [25.0] * 30
        assert done.is_set()  # the flooding client was answered too, once resynchronised
        assert time.process_time() - start < 5.0


# --- against `labctl sim serve` ----------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``labctl sim serve`` in a subprocess (once for this module); yields the furnace's URL."""
    where = tmp_path_factory.mktemp("served")
    errors = (where / "stderr.txt").open("w")  # a file: a full pipe would stall the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "sim", "serve", "--time-scale", "100"]
        + ["--write-station", str(where / "served.yaml")],
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.strip() == "ready":
            break
    if lines[-1:] != ["ready"]:
        proc.kill()
        errors.close()
        pytest.fail(f"sim serve did not get ready: {lines} {(where / 'stderr.txt').read_text()}")
    yield dict(line.split(" ", 1) for line in lines[:-1])["furnace"]
    proc.kill()
    proc.wait(timeout=10)
    errors.close()


@pytest.fixture
def served_pair(served):
    """Our driver (as the station opens it) and minimalmodbus as a second client, over TCP."""
    furnace = Eurotherm2408("furnace", served, 1, **LIMITS)
    link = serial.serial_for_url(served, baudrate=19200, timeout=0.2)
    second = minimalmodbus.Instrument(link, 1)
    try:
        yield furnace, second
    finally:
        link.close()
        furnace.close()


@pytest.mark.tcp
def test_served_rate_rounding_to_zero_refused_and_no_step(served_pair):
    furnace, second = served_pair
    furnace.setpoint_c = 350.0
    wsp = second.read_register(5, 1, signed=True)
    with pytest.raises(SafetyLimitError, match="would be written as 0"):
        furnace.setpoint_rate_c_per_min = 0.04
    time.sleep(0.5)  # 50 s at time scale 100: at 20 °C/min at most ~17 °C
    assert second.read_register(35, 1) == 20.0
    assert second.read_register(5, 1, signed=True) - wsp < 30.0


@pytest.mark.tcp
def test_served_decimal_point_changed_by_second_client(served_pair):
    furnace, second = served_pair
    second.write_register(525, 0, functioncode=6)
    try:
        try:
            furnace.setpoint_c = 100.0
        except LabctlError:
            pass  # refusing is allowed; writing 1000 °C is not
        target = second.read_register(2, 0, signed=True)
        assert target != 1000
        assert target == 100
    finally:
        second.write_register(525, 1, functioncode=6)


@pytest.mark.tcp
def test_served_controller_holds_the_station_limits(served_pair):
    furnace, second = served_pair
    assert second.read_register(111, 1, signed=True) == 400.0
    assert second.read_register(112, 1, signed=True) == 0.0
    with pytest.raises(minimalmodbus.IllegalRequestError):  # exception 03
        second.write_register(2, 500.0, 1, functioncode=6, signed=True)
    assert furnace.setpoint_c < 400.0
