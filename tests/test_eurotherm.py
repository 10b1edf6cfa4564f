"""Eurotherm 2408: Modbus RTU simulator, minimalmodbus driver, safety limits, control physics."""

from __future__ import annotations

import random
import struct

import minimalmodbus
import pytest
from modbus_frames import RecordingSerial, exception, read_reply, write_req

from labctl.drivers.eurotherm import (
    Dwell,
    End,
    Eurotherm2408,
    FurnaceInterlock,
    ProgramStatus,
    Ramp,
    StatusWord,
    Step,
    open_instrument,
)
from labctl.errors import CommunicationError, InstrumentError, SafeStateError, SafetyLimitError
from labctl.simulators.eurotherm import Eurotherm2408Simulator
from labctl.simulators.modbus_rtu import crc16, with_crc
from labctl.simulators.transport import SimSerial, SimServer
from labctl.transport import open_serial

# --- helpers ------------------------------------------------------------------------


def read_req(address: int, start: int, count: int = 1, slave: int = 1, fn: int = 3) -> bytes:
    return with_crc(struct.pack(">BBHH", slave, fn, start, count))


def write_many_req(start: int, values: list[int], slave: int = 1) -> bytes:
    body = struct.pack(">BBHHB", slave, 16, start, len(values), 2 * len(values))
    body += b"".join(struct.pack(">H", v & 0xFFFF) for v in values)
    return with_crc(body)


@pytest.fixture
def sim(quiet_world) -> Eurotherm2408Simulator:
    return Eurotherm2408Simulator(quiet_world, name="furnace")


@pytest.fixture
def port(sim) -> RecordingSerial:
    return RecordingSerial(sim)


@pytest.fixture
def furnace(port, clock) -> Eurotherm2408:
    furnace = Eurotherm2408(
        "furnace", port, 1, clock, max_setpoint_c=400.0, max_ramp_c_per_min=20.0
    )
    port.sent.clear()  # what connect wrote (the controller's SP limits) is tested on its own
    yield furnace
    furnace.close()


# --- wire protocol ------------------------------------------------------------------


def test_crc_matches_the_spec_and_pymodbus():
    from pymodbus.framer.rtu import FramerRTU

    frame = bytes.fromhex("01 03 00 01 00 01")  # read register 1 of slave 1
    assert struct.pack("<H", crc16(frame)) == bytes.fromhex("D5 CA")  # low byte first
    rng = random.Random(5)
    for n in range(1, 40):
        frame = bytes(rng.randrange(256) for _ in range(n))
        assert struct.pack("<H", crc16(frame)) == struct.pack(">H", FramerRTU.compute_CRC(frame))


def test_read_pv_and_setpoint_scaled(sim):
    assert sim.handle(read_req(0, 1, 2)) == read_reply([250, 250])  # 25.0 °C at 1 dp


def test_input_registers_read_the_same(sim):
    assert sim.handle(read_req(0, 2, 1, fn=4)) == read_reply([250], fn=4)


def test_bad_crc_is_silent_and_next_request_answers(sim):
    bad = bytearray(read_req(0, 1))
    bad[-1] ^= 0xFF
    assert sim.handle(bytes(bad)) == b""
    assert sim.handle(read_req(0, 1)) == read_reply([250])


def test_other_slave_is_silent_broadcast_writes_without_reply(sim):
    assert sim.handle(read_req(0, 1, slave=2)) == b""
    assert sim.handle(write_req(2, 1000, slave=2)) == b""
    assert sim.target_sp_c == 25.0
    assert sim.handle(write_req(2, 1000, slave=0)) == b""  # broadcast: executed, no reply
    assert sim.target_sp_c == 100.0
    assert sim.handle(read_req(0, 2, slave=0)) == b""  # a broadcast read makes no sense


def test_illegal_address_gives_exception_02(sim):
    assert sim.handle(read_req(0, 600)) == exception(3, 2)
    assert sim.handle(read_req(0, 1, 10)) == exception(3, 2)  # block runs into a hole
    assert sim.handle(write_req(600, 1)) == exception(6, 2)


def test_out_of_range_and_read_only_give_exception_03(sim):
    assert sim.handle(write_req(2, 20000)) == exception(6, 3)  # 2000.0 °C > SP high limit
    assert sim.handle(write_req(1, 500)) == exception(6, 3)  # PV is read-only
    assert sim.handle(write_req(3, 500)) == exception(6, 3)  # OP in auto mode
    assert sim.handle(read_req(0, 1, 126)) == exception(3, 3)  # too many registers
    assert sim.target_sp_c == 25.0


def test_write_single_echoes_and_multiple_is_atomic(sim):
    req = write_req(2, 3500)
    assert sim.handle(req) == req
    assert sim.target_sp_c == 350.0
    # SP high limit 390.0 and SP 395.0 in one request: the SP is refused, so neither changes
    assert sim.handle(write_many_req(111, [3900, 0])) == with_crc(
        bytes.fromhex("01 10 00 6F 00 02")
    )
    assert sim.sp_high_c == 390.0
    assert sim.handle(write_many_req(1, [0, 3950])) == exception(16, 3)
    assert sim.target_sp_c == 350.0


def test_unknown_function_is_silent(sim):
    assert sim.handle(with_crc(bytes.fromhex("01 2B 0E 01 00"))) == b""
    assert sim.handle(with_crc(bytes.fromhex("01 05 00 01 FF 00"))) == b""
    assert sim.handle(read_req(0, 1)) == read_reply([250])


def test_fragmented_and_glued_frames(sim):
    req = read_req(0, 2)
    replies = [sim.handle(req[i : i + 1]) for i in range(len(req))]
    assert replies[:-1] == [b""] * (len(req) - 1)
    assert replies[-1] == read_reply([250])
    many = write_many_req(111, [3800, 100])
    assert sim.handle(many[:5]) == b""
    assert sim.handle(many[5:] + read_req(0, 111, 2)) == (
        with_crc(bytes.fromhex("01 10 00 6F 00 02")) + read_reply([3800, 100])
    )


def test_garbage_never_crashes_and_resynchronises(sim):
    rng = random.Random(7)
    for _ in range(200):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        sim.handle(junk)  # must not raise
    sim.handle(b"\x01\x10\x00\x01\x00\x7b\xf6")  # a header promising 246 more bytes
    assert sim.handle(read_req(0, 2)).endswith(read_reply([250]))
    assert sim.handle(read_req(0, 2)) == read_reply([250])


def test_decimal_places_scaling_and_negative_values(sim):
    assert sim.handle(write_req(2, 3500)) == write_req(2, 3500)  # 350.0 °C at 1 dp
    assert sim.target_sp_c == 350.0
    assert sim.handle(write_req(525, 0)) == write_req(525, 0)
    assert sim.handle(read_req(0, 2)) == read_reply([350])  # integer display
    assert sim.handle(write_req(525, 2)) == exception(6, 3)  # 1372.00 does not fit 16 bits
    sim.handle(write_req(525, 1))
    sim.handle(write_req(112, -1000))  # SP low limit −100.0 °C, two's complement
    assert sim.sp_low_c == -100.0
    sim.handle(write_req(2, -505))
    assert sim.target_sp_c == -50.5
    assert sim.handle(read_req(0, 2)) == read_reply([0xFE07])


# --- driver: bytes on the wire ----------------------------------------------------


class ScriptedSerial:
    """A serial port that checks each request against a script and plays the reply."""

    port = "scripted"
    baudrate = 19200
    timeout = 0.05
    is_open = True

    def __init__(self, script: list[tuple[bytes, bytes]]):
        self.script = list(script)
        self._rx = b""

    def open(self):
        pass

    def close(self):
        pass

    def write(self, data):
        expected, reply = self.script.pop(0)
        assert bytes(data) == expected, f"sent {bytes(data).hex(' ')}, expected {expected.hex(' ')}"
        self._rx += reply
        return len(data)

    def read(self, size=1):
        out, self._rx = self._rx[:size], self._rx[size:]
        return out

    def reset_input_buffer(self):
        self._rx = b""

    def reset_output_buffer(self):
        pass

    def flush(self):
        pass


CONNECT = [
    (read_req(0, 122), read_reply([0x2480])),
    (read_req(0, 107), read_reply([0x0461])),
    (read_req(0, 525), read_reply([1])),
    (read_req(0, 531), read_reply([1])),
    (read_req(0, 211), read_reply([16])),
    (read_req(0, 112), read_reply([0])),  # the controller's SP limits := the station's
    (write_req(111, 4000), write_req(111, 4000)),
    (write_req(112, 0), write_req(112, 0)),
    (read_req(0, 111, 2), read_reply([4000, 0])),
]
SCALING = [(read_req(0, 525), read_reply([1])), (read_req(0, 531), read_reply([1]))]


def test_driver_protocol_setpoint_write(clock):
    script = (
        CONNECT
        + SCALING
        + [  # the scaling is re-read before a setpoint write
            (read_req(0, 35), read_reply([0])),  # rate limit off → the driver sets it first
            (write_req(35, 200), write_req(35, 200)),
            (read_req(0, 35), read_reply([200])),  # every safety-relevant write is read back
            (write_req(2, 3000), write_req(2, 3000)),
            (read_req(0, 2), read_reply([3000])),
            (read_req(0, 1), read_reply([0xFF9C])),  # −10.0 °C
        ]
    )
    port = ScriptedSerial(script)
    furnace = Eurotherm2408("furnace", port, 1, clock, max_setpoint_c=400, max_ramp_c_per_min=20)
    assert furnace.model == "2408" and furnace.decimal_places == 1
    furnace.setpoint_c = 300.0
    assert furnace.temperature_c == -10.0
    assert port.script == []


def test_driver_retries_a_lost_reply(clock):
    marker = (read_req(0, 1, fn=4), read_reply([2500], fn=4))  # the link back in step
    script = CONNECT + [(read_req(0, 1), b""), marker, (read_req(0, 1), read_reply([2500]))]
    furnace = Eurotherm2408(
        "furnace", ScriptedSerial(script), 1, clock, max_setpoint_c=400, max_ramp_c_per_min=20
    )
    assert furnace.temperature_c == 250.0


def test_driver_garbled_reply_becomes_communication_error(clock):
    garbled = bytearray(read_reply([2500]))
    garbled[3] ^= 0x01
    marker = (read_req(0, 1, fn=4), read_reply([2500], fn=4))  # the link back in step
    script = CONNECT + [(read_req(0, 1), bytes(garbled)), marker] * 2
    script += [(read_req(0, 1), bytes(garbled))]
    furnace = Eurotherm2408(
        "furnace", ScriptedSerial(script), 1, clock, max_setpoint_c=400, max_ramp_c_per_min=20
    )
    with pytest.raises(CommunicationError, match=r"furnace: reading register 1 .*3 attempts"):
        furnace.temperature_c  # noqa: B018


def test_silent_slave_is_communication_error(sim, clock):
    with pytest.raises(CommunicationError, match="furnace: .*no valid reply after 3 attempts"):
        Eurotherm2408(
            "furnace", SimSerial(sim), 7, clock, max_setpoint_c=400, max_ramp_c_per_min=20
        )


# --- driver against the in-process simulator ---------------------------------------


def test_connect_reads_configuration(furnace, sim):
    assert furnace.decimal_places == 1
    assert furnace.model == "2408"
    assert furnace.max_segments == sim.n_segments
    assert furnace.temperature_c == pytest.approx(25.0)
    s = furnace.settings()
    assert s["model"] == "Eurotherm 2408" and s["max_setpoint_c"] == 400.0
    assert s["program_status"] == "reset" and s["manual_mode"] is False


def test_setpoint_above_limit_refused_nothing_written(furnace, sim, port):
    before = len(port.writes())
    with pytest.raises(SafetyLimitError) as err:
        furnace.setpoint_c = 450.0
    message = str(err.value)
    assert "furnace" in message and "450" in message and "400" in message
    assert port.writes()[before:] == []
    assert sim.target_sp_c == 25.0
    with pytest.raises(SafetyLimitError, match="below min_setpoint_c"):
        furnace.setpoint_c = -5.0
    with pytest.raises(SafetyLimitError, match="not a finite"):
        furnace.setpoint_c = float("nan")


def test_ramp_rate_limits(furnace, sim, port):
    with pytest.raises(SafetyLimitError, match=r"furnace: .*25 °C/min exceeds .*20 °C/min"):
        furnace.setpoint_rate_c_per_min = 25.0
    with pytest.raises(SafetyLimitError, match="0 means unlimited"):
        furnace.setpoint_rate_c_per_min = 0
    assert port.writes() == []
    furnace.setpoint_rate_c_per_min = 12.5
    assert sim.rate_limit == 12.5
    assert furnace.setpoint_rate_c_per_min == 12.5


def test_setpoint_write_enforces_rate_limit(furnace, sim):
    assert sim.rate_limit == 0.0
    furnace.setpoint_c = 300.0
    assert sim.rate_limit == 20.0 and sim.target_sp_c == 300.0
    assert furnace.setpoint_c == 300.0


@pytest.mark.parametrize(
    "segments, match",
    [
        ([Ramp(10, 450), Dwell(30), End()], "segment 1 target 450 °C exceeds"),
        ([Ramp(30, 300), End()], "segment 1 ramp rate 30 °C/min exceeds"),
        ([Ramp(10, 300), Dwell(30), Ramp(50, 25)], "segment 3 ramp rate 50"),
        ([Step(300)], "a step is an unlimited ramp rate"),
    ],
)
def test_program_violating_limits_refused_before_writing(furnace, sim, port, segments, match):
    program_before = sim.program_words(1)
    with pytest.raises(SafetyLimitError, match=match):
        furnace.load_program(segments)
    assert port.writes() == []
    assert sim.program_words(1) == program_before


def test_program_layout_in_controller(furnace, sim):
    furnace.load_program([Ramp(10.0, 300.0), Dwell(30), Ramp(5.0, 25.0), End()], program=2)
    words = sim.program_words(2)
    assert words[:5] == [0, 0, 1, 0, 1]  # no holdback, ramp per min, dwell in s, 1 cycle
    assert words[8:11] == [1, 3000, 100]  # ramp rate to 300.0 at 10.0/min
    assert words[16:18] == [3, 1800]  # dwell 1800 s
    assert words[24:27] == [1, 250, 50]  # cooling ramp to 25.0 at 5.0/min
    assert words[32] == 0  # end


def test_program_listing_has_the_working_copy_and_the_stored_programs_only(sim):
    assert sim.program_words(0)[:5] == sim.program_words(sim.n_programs)[:5] == [0, 0, 1, 1, 1]
    for number in (-1, sim.n_programs + 1):
        with pytest.raises(ValueError, match=f"no program {number}"):
            sim.program_words(number)


def test_modbus_exception_names_register_and_code(furnace):
    with furnace.over_temperature_watch():
        with pytest.raises(InstrumentError, match=r"register 3 \(output power\).*exception 03"):
            furnace.output_percent = 50.0  # the controller refuses OP in auto mode
        with pytest.raises(InstrumentError, match="outside 0..100"):
            furnace.output_percent = 150.0


def test_manual_mode_drives_heater(furnace, sim, quiet_world, clock):
    with furnace.over_temperature_watch():
        furnace.manual_mode = True
        furnace.output_percent = 40.0
        clock.advance(60)
        assert furnace.output_percent == 40.0
        assert quiet_world.furnace.heater_fraction == pytest.approx(0.4)
        assert StatusWord.MANUAL in furnace.status
        assert furnace.temperature_c > 25.5
    assert furnace.manual_mode is False  # leaving the watch returns the controller to auto


# --- control physics (virtual time) ------------------------------------------------


def test_programmed_ramp_and_dwell(furnace, clock):
    furnace.load_program([Ramp(10.0, 300.0), Dwell(30.0), End()], holdback_c=2.0)
    furnace.run_program(1)
    assert furnace.program_status == ProgramStatus.RUN
    assert furnace.link.read_register(77) & 0b1  # extended status word: program running
    samples = []

    def record(reading):
        samples.append(
            (clock.now(), furnace.segment, reading["temperature_c"], reading["working_setpoint_c"])
        )

    state = furnace.wait_for_program(poll_s=20.0, timeout_s=3 * 3600, on_poll=record)
    assert state == ProgramStatus.COMPLETE
    assert furnace.link.read_register(77) == 0b1000  # extended status word: program end
    ramp = [s for s in samples if s[1] == 1 and s[0] > 180]
    dwell = [s for s in samples if s[1] == 2]
    assert ramp and dwell
    assert max(abs(pv - wsp) for _, _, pv, wsp in ramp) < 4.0  # PV follows the ramp
    rising = [(t, pv) for t, _, pv, _ in ramp if 60 < pv < 200]
    (t0, pv0), (t1, pv1) = rising[0], rising[-1]
    assert (pv1 - pv0) / ((t1 - t0) / 60) == pytest.approx(10.0, abs=1.0)  # °C/min
    dwell_time_min = (dwell[-1][0] - dwell[0][0]) / 60
    assert 28 <= dwell_time_min <= 32
    settled = [pv for t, _, pv, _ in dwell if t - dwell[0][0] > 300]
    assert all(298.0 <= pv <= 302.0 for pv in settled)
    assert all(296.0 <= pv <= 304.0 for _, _, pv, _ in dwell)  # incl. the approach
    assert StatusWord.PROGRAM_COMPLETE in furnace.status
    assert furnace.working_setpoint_c == pytest.approx(300.0)  # end type: hold last SP


def test_sensor_break(furnace, sim, quiet_world, clock):
    furnace.setpoint_c = 200.0
    clock.advance(600)
    assert furnace.output_percent > 0
    quiet_world.furnace.sensor_broken = True
    clock.advance(5)
    assert furnace.sensor_broken is True
    assert StatusWord.SENSOR_BREAK in furnace.status
    assert furnace.temperature_c == sim.range_high_c  # upscale: PV at the range limit
    assert furnace.output_percent == 0.0  # configured sensor-break output
    assert quiet_world.furnace.heater_fraction == 0.0
    with pytest.raises(FurnaceInterlock, match="furnace: sensor break"):
        furnace.check_interlocks()


def test_deviation_interlock(furnace, clock):
    with furnace.over_temperature_watch():
        furnace.manual_mode = True
        furnace.output_percent = 0.0
        furnace.setpoint_c = 100.0
        clock.advance(600)
        with pytest.raises(FurnaceInterlock, match="deviation"):
            furnace.check_interlocks(max_deviation_c=10.0)
        assert furnace.check_interlocks()["temperature_c"] == pytest.approx(25.0, abs=0.5)


def test_safe_state_drives_setpoint_down(furnace, clock):
    furnace.load_program([Ramp(20.0, 250.0), Dwell(60.0)])
    furnace.run_program()
    clock.advance(20 * 60)
    hot = furnace.temperature_c
    assert hot > 150.0
    watch = furnace.over_temperature_watch()
    furnace.manual_mode = True
    furnace.safe_state()
    watch.stop()
    assert furnace.program_status == ProgramStatus.RESET
    assert furnace.setpoint_c == 25.0
    assert furnace.manual_mode is False
    wsp0 = furnace.working_setpoint_c
    clock.advance(5 * 60)
    wsp1 = furnace.working_setpoint_c
    assert wsp1 < wsp0 and (wsp0 - wsp1) / 5 <= 20.0 + 0.5  # down at the rate limit
    clock.advance(30 * 60)
    assert furnace.working_setpoint_c == 25.0
    assert furnace.temperature_c < hot


def test_safe_state_is_read_back_and_says_so(furnace, clock):
    furnace.load_program([Ramp(20.0, 250.0), Dwell(60.0)])
    furnace.run_program()
    clock.advance(5 * 60)
    assert (
        furnace.safe_state()
        == "safe state confirmed (read back): program reset, setpoint 25.0 °C, auto"
    )


class StuckController(Eurotherm2408Simulator):
    """Acknowledges writes to ``stuck`` registers (as a write echo) but does not act on them."""

    def __init__(self, world, stuck: set[int]):
        super().__init__(world, name="furnace")
        self.stuck = stuck

    def _apply_write(self, a: int, w: int) -> None:
        if a not in self.stuck:
            super()._apply_write(a, w)


@pytest.mark.parametrize(
    ("stuck", "unsafe"),
    [
        ({23}, "program run, not reset"),
        ({23, 2}, "setpoint 250.0 °C, not 25 °C"),
        ({273}, "manual mode (output not under the PID)"),
    ],
)
def test_safe_state_not_reached_raises_what_is_not_safe(quiet_world, clock, stuck, unsafe):
    sim = StuckController(quiet_world, stuck=set())
    furnace = Eurotherm2408(
        "furnace", SimSerial(sim), 1, clock, max_setpoint_c=400.0, max_ramp_c_per_min=20.0
    )
    furnace.load_program([Ramp(20.0, 250.0), Dwell(60.0)])
    furnace.run_program()
    furnace.setpoint_c = 250.0
    watch = furnace.over_temperature_watch()
    furnace.manual_mode = True
    sim.stuck = stuck  # from now on the controller ignores these writes
    try:
        with pytest.raises(SafeStateError) as err:
            furnace.safe_state()
    finally:
        watch.stop()
    text = str(err.value)
    assert text.startswith("furnace: safe state NOT confirmed (read back): ")
    assert unsafe in text and "\n" not in text
    assert isinstance(err.value, InstrumentError)


def test_safe_state_of_a_silent_furnace_is_not_confirmed(one_try_station):
    sim_station = one_try_station
    sim_station.world.faults.inject("furnace", "silent")
    with pytest.raises(SafeStateError, match="furnace: safe state NOT confirmed: cannot read"):
        sim_station["furnace"].safe_state()


def test_run_hold_reset(furnace, clock):
    furnace.load_program([Ramp(5.0, 100.0), Dwell(10.0)])
    furnace.run_program()
    clock.advance(120)
    furnace.hold_program()
    assert furnace.program_status == ProgramStatus.HOLD
    sp = furnace.programmer_setpoint_c
    clock.advance(300)
    assert furnace.programmer_setpoint_c == sp
    furnace.run_program()
    clock.advance(60)
    assert furnace.programmer_setpoint_c > sp
    assert furnace.segment == 1 and furnace.segment_time_remaining_s > 0
    with pytest.raises(InstrumentError, match="reset it first"):
        furnace.load_program([Ramp(5.0, 50.0)])
    furnace.reset_program()
    assert furnace.program_status == ProgramStatus.RESET and furnace.segment == 0


# --- station and TCP ------------------------------------------------------------------


def test_station_furnace_refuses_setpoint_above_station_limit(sim_station):
    furnace = sim_station["furnace"]
    sim = sim_station.simulators["furnace"]
    before = sim.target_sp_c
    with pytest.raises(SafetyLimitError, match=r"furnace: setpoint 401 °C exceeds .*400 °C"):
        furnace.setpoint_c = 401.0
    assert sim.target_sp_c == before
    assert furnace.setpoint_c == before


@pytest.fixture
def served(sim):
    with SimServer(sim) as server:
        yield server


@pytest.mark.tcp
def test_minimalmodbus_over_tcp(served):
    port = open_serial(served.resource)
    try:
        inst = minimalmodbus.Instrument(port, 1)
        assert inst.read_register(1, 1, signed=True) == 25.0
        inst.write_register(2, 123.4, 1, functioncode=6, signed=True)
        assert inst.read_register(2, 1, signed=True) == 123.4
    finally:
        port.close()


@pytest.mark.tcp
def test_serial_line_settings_are_the_options_and_factory_8n1_by_default(served, clock):
    limits = {"max_setpoint_c": 400.0, "max_ramp_c_per_min": 20.0}
    furnace = open_instrument(served.resource, name="furnace", clock=clock, **limits)
    try:
        assert furnace.settings()["serial_line"] == "9600 baud, 8N1"  # the 2408's factory line
    finally:
        furnace.close()
    furnace = open_instrument(
        served.resource,
        name="furnace",
        clock=clock,
        baud_rate=4800,
        parity="even",
        stop_bits=2,
        **limits,
    )
    try:
        assert (furnace.port.baudrate, furnace.port.parity, furnace.port.stopbits) == (4800, "E", 2)
        assert furnace.settings()["serial_line"] == "4800 baud, 8E2"
    finally:
        furnace.close()
    with pytest.raises(InstrumentError, match="furnace: option baud_rate = 115200 must be one of"):
        open_instrument(served.resource, name="furnace", clock=clock, baud_rate=115200, **limits)


@pytest.mark.tcp
def test_pymodbus_over_tcp(served):
    from pymodbus.client import ModbusSerialClient
    from pymodbus.framer import FramerType

    client = ModbusSerialClient(
        port=served.resource, framer=FramerType.RTU, baudrate=19200, timeout=1, retries=1
    )
    assert client.connect()
    try:
        rr = client.read_holding_registers(1, count=2, device_id=1)
        assert not rr.isError()
        assert [r / 10 for r in rr.registers] == [25.0, 25.0]  # PV, target SP
        rr = client.read_holding_registers(600, count=1, device_id=1)
        assert rr.isError() and rr.exception_code == 2
    finally:
        client.close()


@pytest.mark.tcp
def test_driver_over_tcp(served, sim, clock):
    furnace = open_instrument(
        served.resource, name="furnace", clock=clock, max_setpoint_c=400, max_ramp_c_per_min=20
    )
    try:
        furnace.setpoint_c = 200.0
        assert sim.target_sp_c == 200.0
        assert furnace.temperature_c == pytest.approx(25.0)
    finally:
        furnace.close()


@pytest.mark.parametrize("check", ["check_interlocks", "check_over_temperature"])
def test_a_break_during_the_check_is_a_sensor_break_not_an_over_temperature(
    furnace, quiet_world, clock, check, monkeypatch
):
    """The thermocouple opening between the check's reads showed as 'over-temperature:
    PV 1372 °C' (the range limit), and the series named the wrong cause: every check
    reads PV first and the break flags after it."""
    furnace.setpoint_c = 200.0
    clock.advance(600)
    pv_register = type(furnace).temperature_c

    def pv_then_break(instrument):
        value = pv_register.__get__(instrument)
        quiet_world.furnace.sensor_broken = True  # the break lands right after this read
        clock.advance(5)
        return value

    monkeypatch.setattr(type(furnace), "temperature_c", property(pv_then_break))
    with pytest.raises(FurnaceInterlock, match="furnace: sensor break"):
        getattr(furnace, check)()


def test_framing_is_silence_or_packet(sim, clock):
    """The driver's own check (a station file's is in the schema): nothing is asked of
    the controller with a framing it does not know."""
    with pytest.raises(InstrumentError, match="furnace: framing must be 'silence' or 'packet'"):
        Eurotherm2408(
            "furnace", SimSerial(sim), 1, clock, max_setpoint_c=400, max_ramp_c_per_min=20,
            framing="gap",
        )  # fmt: skip
