"""Newport ESP301: simulator protocol, drivers (expected_protocol, in-process, TCP)."""

from __future__ import annotations

import random
import warnings

import pytest
import pyvisa
from pymeasure.instruments.newport.esp300 import ESP300, AxisError, GeneralError
from pymeasure.test import expected_protocol

from labctl.clock import VirtualClock
from labctl.drivers.esp301 import (
    PS_PER_MM_DOUBLE_PASS,
    DelayStage,
    ESPControllerError,
    MotionController,
    SampleTranslation,
    StageSet,
    open_instrument,
)
from labctl.errors import CommunicationError, InstrumentError, SafetyLimitError, StationError
from labctl.simulators.esp301 import ESP301Simulator
from labctl.simulators.transport import SimAdapter, SimServer
from labctl.simulators.world import World
from labctl.transport import visa_options

# --- helpers ------------------------------------------------------------------


@pytest.fixture
def sim(quiet_world) -> ESP301Simulator:
    return ESP301Simulator(quiet_world, name="stages")


def ask(sim: ESP301Simulator, line: str) -> str:
    """Send one line, return the reply without terminator ('' for silence)."""
    return sim.handle(line.encode("ascii") + b"\r").decode("ascii").rstrip("\n")


def tp(sim: ESP301Simulator, axis: int) -> float:
    return float(ask(sim, f"{axis}TP"))


def world_axes(world: World) -> dict:
    """Station axes whose zeros are the world's true zeros."""
    return {
        "sampling": {"axis": 1, "zero_mm": world.params.table["sampling_zero_mm"]},
        "pump": {"axis": 2, "zero_mm": world.params.table["pump_zero_mm"]},
        "sample": {
            "axis": 3,
            "pitch_mm": world.params.holder["pitch_mm"],
            "n_slots": len(world.slots),
        },
    }


@pytest.fixture
def stages(quiet_world, clock) -> StageSet:
    handler = ESP301Simulator(quiet_world, name="stages")
    s = open_instrument(
        SimAdapter(handler), name="stages", clock=clock, axes=world_axes(quiet_world)
    )
    yield s
    s.shutdown()


# --- simulator: protocol ------------------------------------------------------


def test_identification_and_version(sim):
    assert ask(sim, "VE?").startswith("ESP301 Version 3.")
    assert ask(sim, "1ID?").split(",")[0] == "ILS100CC"
    assert ask(sim, "TE?") == "0"


def test_move_takes_distance_over_velocity_and_reads_intermediate_positions(sim, clock):
    v = float(ask(sim, "1VA?"))
    assert v == pytest.approx(sim.world.stages[0].velocity_mm_s)
    ask(sim, "1PA60")
    duration = 60.0 / v
    clock.advance(duration / 2)
    assert ask(sim, "1MD?") == "0"
    assert tp(sim, 1) == pytest.approx(30.0, abs=1e-6)
    assert float(ask(sim, "1DP?")) == pytest.approx(60.0)
    clock.advance(duration / 2 - 1e-3)
    assert ask(sim, "1MD?") == "0"
    clock.advance(2e-3)
    assert ask(sim, "1MD?") == "1"
    assert tp(sim, 1) == pytest.approx(60.0)
    # relative move from the destination, slower after VA
    ask(sim, f"1VA{v / 2:g}")
    ask(sim, "1PR-10")
    clock.advance(10.0 / v)  # half of the time needed at v/2
    assert tp(sim, 1) == pytest.approx(55.0, abs=1e-6)


def test_several_commands_per_line_and_comma_separated_replies(sim, clock):
    ask(sim, "1PA10;2PA40 ; 3pa20")  # blanks and lower case accepted
    clock.advance(100)
    assert ask(sim, "1TP;2TP?;3TP;1MD?").split(",") == ["10.000000", "40.000000", "20.000000", "1"]


def test_out_of_limit_moves_are_refused_with_the_axis_error_and_no_motion(sim, clock):
    lo, hi = float(ask(sim, "1SL?")), float(ask(sim, "1SR?"))
    assert (lo, hi) == (sim.world.stages[0].min_mm, sim.world.stages[0].max_mm)
    ask(sim, f"1PA{hi + 1:g}")
    assert ask(sim, "1MD?") == "1"
    assert ask(sim, "TE?") == "106"  # axis 1, POSITIVE SOFTWARE LIMIT DETECTED
    ask(sim, "1SR50")
    assert float(ask(sim, "1SR?")) == 50.0
    ask(sim, "1PA70")
    ask(sim, "1PA-1")
    clock.advance(60)
    assert tp(sim, 1) == 0.0
    code, _, message = ask(sim, "TB?").split(", ")
    assert (code, message) == ("106", "POSITIVE SOFTWARE LIMIT DETECTED")
    code, _, message = ask(sim, "TB?").split(", ")
    assert (code, message) == ("107", "NEGATIVE SOFTWARE LIMIT DETECTED")
    assert ask(sim, "TB?").split(", ")[0] == "0"


def test_motor_off_refuses_moves_and_stops_a_moving_axis(sim, clock):
    ask(sim, "2PA100")
    clock.advance(1)
    ask(sim, "2MF")
    here = tp(sim, 2)
    assert 0 < here < 100
    assert ask(sim, "2MO?") == "0"
    ask(sim, "2PA10")
    clock.advance(10)
    assert tp(sim, 2) == here
    assert ask(sim, "TE?") == "213"  # axis 2, MOTOR NOT ENABLED
    ask(sim, "2MO")
    assert ask(sim, "2MO?") == "1"
    ask(sim, "2PA10")
    clock.advance(10)
    assert tp(sim, 2) == 10.0


def test_stop_halts_mid_move(sim, clock):
    ask(sim, "3PA80")
    clock.advance(2)
    ask(sim, "3ST")
    stopped = tp(sim, 3)
    clock.advance(20)
    assert ask(sim, "3MD?") == "1"
    assert tp(sim, 3) == stopped == pytest.approx(2 * sim.world.stages[2].velocity_mm_s)


def test_velocity_is_capped_by_the_maximum(sim):
    vu = float(ask(sim, "1VU?"))
    ask(sim, f"1VA{2 * vu:g}")
    assert ask(sim, "TE?") == "110"  # MAXIMUM VELOCITY EXCEEDED
    assert float(ask(sim, "1VA?")) == vu
    ask(sim, "1VA0")
    assert ask(sim, "TE?") == "101"  # PARAMETER OUT OF RANGE


def test_home_search_and_define_home(sim, clock):
    ask(sim, "1PA40")
    clock.advance(100)
    ask(sim, "1DH5")  # here is now 5
    assert tp(sim, 1) == 5.0
    assert float(ask(sim, "1DH?")) == 5.0
    ask(sim, "1OR1")
    assert ask(sim, "1MD?") == "0"
    clock.advance(100)
    assert ask(sim, "1MD?") == "1"
    assert tp(sim, 1) == 5.0  # the home position reads as the DH preset
    assert sim.world.stages[0].position_mm(sim.world.t) == 0.0  # the home switch
    ask(sim, "1DH")
    assert tp(sim, 1) == 0.0
    assert ask(sim, "TE?") == "0"


def test_general_error_codes(sim):
    ask(sim, "1XX5")
    ask(sim, "FOO?")  # unknown query: silent
    ask(sim, "9PA1")
    ask(sim, "PA1")
    ask(sim, "1PA")
    ask(sim, "1PAabc")
    codes = [ask(sim, "TE?") for _ in range(7)]
    assert codes == ["6", "6", "9", "37", "38", "101", "0"]


def test_error_buffer_keeps_the_last_ten(sim):
    for _ in range(15):
        ask(sim, "ZZ")
    ask(sim, "1PA1000")
    codes = [ask(sim, "TE?") for _ in range(11)]
    assert codes == ["6"] * 9 + ["106", "0"]


def test_garbage_never_crashes(sim):
    rng = random.Random(7)
    for _ in range(300):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
        sim.handle(junk)
    for junk in (b"\xff\xfe;;;\r", b"1PA1e999\r", b"1PAnan\r", b"99999999999999999999TP\r", b";\r"):
        sim.handle(junk)
    sim.handle(b"A" * 10000)  # runaway line without terminator: overflows, discarded
    assert ask(sim, "VE?") == ""  # …up to its terminator, this query included
    assert ask(sim, "VE?").startswith("ESP301")
    ask(sim, "RS")  # reset: clears the buffer, every axis stopped and enabled
    assert ask(sim, "TE?") == "0"
    assert ask(sim, "MO?") == "1,1,1"


# --- drivers: expected protocol ---------------------------------------------

INIT_AXIS_1 = [("1SL?", "0.000000"), ("1SR?", "100.000000"), ("1VA?", "5.000000")]


def test_delay_stage_move_bytes():
    clock = VirtualClock()
    target = 50.0 + 10.0 / PS_PER_MM_DOUBLE_PASS  # 51.49902…
    with expected_protocol(
        MotionController,
        [
            *INIT_AXIS_1,
            ("1PA51.499", None),
            ("TB?", "0, 1234, NO ERROR DETECTED"),
            ("1MD?", "0"),
            ("1MD?", "1"),
            ("1TP", "51.499000"),
            ("1TP", "51.499000"),
        ],
        name="stages",
        clock=clock,
    ) as controller:
        stage = DelayStage(controller, 1, zero_mm=50.0, name="sampling")
        assert stage.range_ps == pytest.approx((-333.55, 333.55))
        stage.move_to_ps(10.0)
        assert clock.now() == pytest.approx(controller.poll_interval_s)  # waited through the clock
        assert stage.delay_ps == pytest.approx(10.0, abs=1e-3)
        assert stage.mm_for_delay(10.0) == pytest.approx(target)


def test_delay_stage_out_of_range_sends_nothing():
    with expected_protocol(
        MotionController, INIT_AXIS_1, name="stages", clock=VirtualClock()
    ) as controller:
        stage = DelayStage(controller, 1, zero_mm=50.0, name="sampling")
        with pytest.raises(SafetyLimitError, match=r"400 ps.*0\.\.100 mm.*-333\.55\.\.333\.55 ps"):
            stage.move_to_ps(400.0)
        with pytest.raises(SafetyLimitError, match="finite"):
            stage.move_to_ps(float("nan"))


def test_sample_translation_move_bytes():
    with expected_protocol(
        MotionController,
        [
            ("3SL?", "-20.000000"),
            ("3SR?", "100.000000"),
            ("3VA?", "5.000000"),
            ("3PA40", None),
            ("TB?", "0, 77, NO ERROR DETECTED"),
        ],
        name="stages",
        clock=VirtualClock(),
    ) as controller:
        sample = SampleTranslation(controller, 3, pitch_mm=20.0, n_slots=4)
        sample.move_to_slot(2, wait=False)
        with pytest.raises(InstrumentError, match="slot 4 does not exist"):
            sample.move_to_slot(4, wait=False)


def test_check_errors_decodes_axis_and_message():
    with expected_protocol(
        MotionController,
        [
            ("1PA150", None),
            ("TB?", "106, 5000, POSITIVE SOFTWARE LIMIT DETECTED"),
            ("TB?", "6, 5001, COMMAND DOES NOT EXIST"),
            ("TB?", "0, 5002, NO ERROR DETECTED"),
        ],
        name="stages",
        clock=VirtualClock(),
    ) as controller:
        with pytest.raises(ESPControllerError) as err:
            controller.move_to_mm(1, 150)
        assert err.value.codes == [106, 6]
        assert err.value.errors[0].axis == 1 and err.value.errors[1].axis is None
        text = str(err.value)
        assert "stages" in text and "axis 1 error 106: POSITIVE SOFTWARE LIMIT DETECTED" in text


def test_garbled_replies_become_communication_errors():
    with expected_protocol(
        MotionController,
        [
            ("1TP", "#@!"),
            ("VE?", "ESP301 Version 3.0.2 7/28/11"),  # back in step before the next query
            ("TB?", "what?"),
            ("VE?", "ESP301 Version 3.0.2 7/28/11"),
            ("1MD?", "7"),
        ],
        name="stages",
        clock=VirtualClock(),
    ) as controller:
        with pytest.raises(CommunicationError, match=r"stages: garbled reply '#@!' to '1TP'"):
            controller.position_mm(1)
        with pytest.raises(CommunicationError, match="TB"):
            controller.check_errors()
        with pytest.raises(CommunicationError, match="MD"):
            controller.is_moving(1)


# --- drivers against the in-process simulator --------------------------------


def test_station_delay_lands_at_zero_plus_ps_over_6671(sim_station):
    stages = sim_station["stages"]
    clock, world = sim_station.clock, sim_station.world
    sampling = stages.sampling
    assert sampling.zero_mm == 50.0  # stations/sim.yaml
    start_mm = sampling.position_mm
    t0 = clock.now()
    sampling.move_to_ps(12.5)
    target_mm = 50.0 + 12.5 / 6.671
    assert world.stages[0].position_mm(world.t) == pytest.approx(target_mm, abs=1e-4)
    assert sampling.delay_ps == pytest.approx(12.5, abs=1e-3)
    v = sampling.velocity_mm_s
    elapsed = clock.now() - t0
    assert abs(target_mm - start_mm) / v <= elapsed <= abs(target_mm - start_mm) / v + 0.1
    header = stages.settings()
    assert header["axes"]["sampling"] == {
        "axis": 1,
        "zero_mm": 50.0,
        "ps_per_mm": 6.671,
        "velocity_mm_s": v,
        "limits_mm": [world.stages[0].min_mm, world.stages[0].max_mm],
        "range_ps": pytest.approx(
            [(world.stages[0].min_mm - 50.0) * 6.671, (world.stages[0].max_mm - 50.0) * 6.671]
        ),
    }
    assert header["version"].startswith("ESP301 Version 3")
    stages.sample.move_to_slot(3)  # station defaults describe the world's holder
    assert world.slot_in_beam().index == 3


@pytest.mark.parametrize("delay_ps", [-120.0, 0.0, 0.05, 250.0])
def test_world_delay_equals_requested_delay_when_zeros_match(stages, quiet_world, delay_ps):
    stages.sampling.move_to_ps(delay_ps)
    assert quiet_world.sampling_delay_ps() == pytest.approx(delay_ps, abs=1e-3)
    stages.pump.move_to_ps(delay_ps + 100)
    assert quiet_world.pump_delay_ps() == pytest.approx(delay_ps + 100, abs=1e-2)


def test_world_delay_is_off_when_the_zero_calibration_is_off(quiet_world, clock):
    axes = world_axes(quiet_world)
    axes["sampling"]["zero_mm"] += 0.1  # miscalibrated by 100 µm
    s = open_instrument(
        SimAdapter(ESP301Simulator(quiet_world)), name="stages", clock=clock, axes=axes
    )
    s.sampling.move_to_ps(5.0)
    assert quiet_world.sampling_delay_ps() == pytest.approx(5.0 + 0.1 * 6.671, abs=1e-3)


def test_md_reports_moving_midway_and_wait_for_stop_times_out(stages, clock):
    sampling = stages.sampling
    sampling.move_to_ps(0.0)
    sampling.move_to_ps(-300.0, wait=False)  # 50 → 5.03 mm at 5 mm/s: 9 s
    clock.advance(4.0)
    assert sampling.is_moving
    assert 25.0 < sampling.position_mm < 35.0
    with pytest.raises(InstrumentError, match=r"axis 1 still moving after 1 s \(at \d+\.\d+ mm\)"):
        stages.controller.wait_for_stop(1, timeout_s=1.0)
    assert sampling.wait() == pytest.approx(sampling.mm_for_delay(-300.0), abs=1e-4)
    assert not sampling.is_moving


def test_refused_moves_raise_the_controller_error(stages, quiet_world):
    controller = stages.controller
    controller.write("1SR60")
    stages.sampling.refresh()
    assert stages.sampling.range_ps[1] == pytest.approx(10 * 6.671)
    with pytest.raises(SafetyLimitError):
        stages.sampling.move_to_ps(100.0)  # the driver knows the new limit
    with pytest.raises(ESPControllerError) as err:
        controller.move_to_mm(1, 80.0)  # bypassing the driver's check: the controller refuses
    assert err.value.codes == [106]
    assert not controller.is_moving(1)
    controller.disable()  # pymeasure's ESP300.disable: MF on every axis
    with pytest.raises(ESPControllerError, match="axis 2 error 213: MOTOR NOT ENABLED"):
        stages.pump.move_to_ps(10.0)
    assert quiet_world.stages[1].position_mm(quiet_world.t) == 0.0


def test_unknown_query_times_out_with_the_controller_reason(stages):
    with pytest.raises(CommunicationError, match="'1ZZ\\?'.*6: COMMAND DOES NOT EXIST"):
        stages.controller.ask("1ZZ?")
    assert stages.controller.read_errors() == []


def test_sample_translation_slots(stages, quiet_world):
    sample = stages.sample
    n = len(quiet_world.slots)
    assert sample.n_slots == n
    for i in [*range(n)][::-1]:
        assert quiet_world.slots[i].position_mm == pytest.approx(i * sample.pitch_mm)
        sample.move_to_slot(i)
        assert sample.slot == i
        assert quiet_world.slot_in_beam().index == i
    stages.controller.move_to_mm(3, sample.pitch_mm / 2)
    stages.controller.wait_for_stop(3)
    assert sample.slot is None
    assert quiet_world.slot_in_beam() is None
    with pytest.raises(InstrumentError, match=rf"slot {n} does not exist.*0\.\.{n - 1}"):
        sample.move_to_slot(n)
    with pytest.raises(InstrumentError, match="slot -1"):
        sample.move_to_slot(-1)


def test_shutdown_stops_every_axis(quiet_world, clock):
    s = open_instrument(
        SimAdapter(ESP301Simulator(quiet_world)),
        name="stages",
        clock=clock,
        axes=world_axes(quiet_world),
    )
    s.sampling.move_to_ps(200, wait=False)
    s.pump.move_to_ps(1000, wait=False)
    clock.advance(1.0)
    s.shutdown()
    clock.advance(100.0)
    quiet_world.advance()
    for stage in quiet_world.stages[:2]:
        assert not stage.is_moving(quiet_world.t)
        assert stage.motor_on  # stopped and holding, not switched off
    v = quiet_world.stages[0].velocity_mm_s
    assert quiet_world.stages[0].position_mm(quiet_world.t) == pytest.approx(1.0 * v)


def test_open_instrument_rejects_bad_axes(quiet_world, clock):
    def open_with(axes):
        return open_instrument(
            SimAdapter(ESP301Simulator(quiet_world)), name="stages", clock=clock, axes=axes
        )

    with pytest.raises(StationError, match="axes"):
        open_with({})
    with pytest.raises(StationError, match="axis must be 1, 2 or 3"):
        open_with({"sampling": {"axis": 4, "zero_mm": 1.0}})
    with pytest.raises(StationError, match="zero_mm"):
        open_with({"sampling": {"axis": 1}})
    with pytest.raises(StationError, match="share one axis"):
        open_with({"sampling": {"axis": 1, "zero_mm": 0}, "pump": {"axis": 1, "zero_mm": 0}})
    with pytest.raises(StationError, match="unknown keys"):
        open_with({"sample": {"axis": 3, "zero_mm": 1.0}})


def test_silent_controller_is_a_communication_error(clock):
    class Dead(ESP301Simulator):
        def handle_line(self, line):
            return None

    with pytest.raises(CommunicationError, match="no reply to 'VE\\?'"):
        open_instrument(
            SimAdapter(Dead(World(clock))), name="stages", clock=clock, axes={"sample": {"axis": 3}}
        )


# --- over TCP: unmodified pymeasure ESP300 and plain pyvisa --------------------


@pytest.mark.tcp
def test_unmodified_pymeasure_esp300_over_tcp(quiet_world, clock):
    with SimServer(ESP301Simulator(quiet_world, name="stages")) as server:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            esp = ESP300(server.resource, visa_library="@py", **visa_options(server.resource))
        try:
            assert esp.error == 0
            assert esp.x.enabled is True
            assert esp.x.units == "millimeter"
            stage = quiet_world.stages[0]
            assert (esp.x.left_limit, esp.x.right_limit) == (stage.min_mm, stage.max_mm)
            esp.x.position = 30.0
            assert esp.x.motion_done is False  # a query also syncs: the write was handled
            clock.advance(3.0)
            assert esp.x.motion_done is False
            assert esp.x.position == pytest.approx(3.0 * stage.velocity_mm_s)
            clock.advance(30.0 / stage.velocity_mm_s)
            esp.x.wait_for_stop()  # WS0, then MD? (done: no sleeping)
            assert esp.x.position == pytest.approx(30.0)
            esp.x.zero()  # DH
            assert esp.x.position == 0.0
            esp.x.define_position(12.5)
            assert esp.x.position == 12.5
            esp.y.disable()
            esp.y.position = 5.0
            esp.phi.position = 500.0
            errors = esp.errors
            assert [type(e) for e in errors] == [AxisError, AxisError]
            assert [(e.axis, e.message) for e in errors] == [
                ("2", "MOTOR NOT ENABLED"),
                ("3", "POSITIVE SOFTWARE LIMIT DETECTED"),
            ]
            esp.write("NOPE")
            errors = esp.errors
            assert [(type(e), e.message) for e in errors] == [
                (GeneralError, "COMMAND DOES NOT EXIST")
            ]
            esp.y.enable()
            esp.y.position = 50.0
            assert esp.y.motion_done is False
            clock.advance(10.0)
            esp.y.home()  # OR1
            assert esp.y.motion_done is False
            clock.advance(100.0)
            assert esp.y.motion_done is True
            assert esp.y.position == 0.0
            esp.clear_errors()
        finally:
            esp.adapter.close()


@pytest.mark.tcp
def test_plain_pyvisa_client_over_tcp(quiet_world, clock):
    with SimServer(ESP301Simulator(quiet_world, name="stages")) as server:
        rm = pyvisa.ResourceManager("@py")
        res = rm.open_resource(server.resource, **visa_options(server.resource))
        try:
            assert res.query("VE?").startswith("ESP301 Version 3.")
            res.write("2PA40;2VA?")
            assert float(res.read()) == pytest.approx(quiet_world.stages[1].velocity_mm_s)
            assert res.query("2MD?") == "0"
            clock.advance(10.0)
            assert res.query("2MD?;2TP") == "1,40.000000"
            res.write("2PA-10")
            assert res.query("TB?").split(", ")[0::2] == ["207", "NEGATIVE SOFTWARE LIMIT DETECTED"]
            assert res.query("TE?") == "0"
        finally:
            res.close()
            rm.close()


@pytest.mark.tcp
def test_driver_over_tcp_with_a_visa_address(quiet_world, clock):
    with SimServer(ESP301Simulator(quiet_world, name="stages")) as server:
        stages = open_instrument(
            server.resource, name="stages", clock=clock, axes=world_axes(quiet_world)
        )
        try:
            stages.sampling.move_to_ps(3.0)
            assert quiet_world.sampling_delay_ps() == pytest.approx(3.0, abs=1e-3)
            stages.sample.move_to_slot(1)
            assert quiet_world.slot_in_beam().index == 1
        finally:
            stages.shutdown()


def test_silent_query_reports_every_buffered_controller_error(sim_station):
    controller = sim_station["stages"].controller
    controller.write("1PA999")  # beyond the software limit: refused, error buffered
    with pytest.raises(CommunicationError) as err:
        controller.ask("XYZ?")  # no such command: silence, second error buffered
    message = str(err.value)
    assert "no reply to 'XYZ?'" in message
    assert "controller errors" in message
    assert "COMMAND DOES NOT EXIST" in message  # the one that explains the silence
    assert controller.read_errors() == []  # drained into the report
