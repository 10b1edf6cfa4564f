"""The Modbus link (labctl/modbus.py): a late reply is never the answer to the next request.

Against the simulated Eurotherm in process (``SimSerial``), register 2 (target
setpoint) and register 35 (setpoint rate limit) hold different words, so a
shifted reply shows as the other register's value.
"""

from __future__ import annotations

import struct
import time

import pytest

from labctl.errors import CommunicationError, InstrumentError
from labctl.modbus import ModbusLink, drain_until_quiet
from labctl.simulators.base import ProtocolHandler
from labctl.simulators.eurotherm import Eurotherm2408Simulator
from labctl.simulators.modbus_rtu import with_crc
from labctl.simulators.transport import SimSerial

SETPOINT_WORD = 1234  # 123.4 °C at one decimal place
RATE_WORD = 200  # 20.0 °C/min


class TrailingBytes(ProtocolHandler):
    """Appends ``extra`` to the next reply only (bytes behind a reply, as from a late one)."""

    kind = "serial"

    def __init__(self, inner: ProtocolHandler) -> None:
        super().__init__(inner.world, inner.name)
        self.inner = inner
        self.extra = b""

    def handle(self, data: bytes, source: object = None) -> bytes:
        reply, self.extra = self.inner.handle(data, source) + self.extra, b""
        return reply


@pytest.fixture
def furnace_sim(quiet_world):
    sim = Eurotherm2408Simulator(quiet_world, name="furnace")
    port = SimSerial(sim, timeout=0.1)
    link = ModbusLink("furnace", port, 1)
    link.write_register(35, RATE_WORD)
    link.write_register(2, SETPOINT_WORD)
    return quiet_world, sim, port, link


def test_late_replies_are_drained_not_taken_for_the_next_request(furnace_sim):
    world, _sim, _port, link = furnace_sim
    world.faults.inject("furnace", "late", delay_s=0.3)  # three read timeouts late
    with pytest.raises(
        CommunicationError, match=r"furnace: reading register 2: no valid reply after 3 attempts"
    ):
        link.read_register(2)
    world.faults.clear("furnace", "late")
    # the three late replies to register 2 are still on their way: none answers this
    assert link.read_register(35) == RATE_WORD
    assert link.read_register(2) == SETPOINT_WORD
    assert link.discarded_bytes == 3 * 7  # three whole replies (7 bytes each) drained
    assert link.out_of_step is None


def test_a_reply_with_bytes_behind_it_is_refused_and_retried(quiet_world):
    sim = TrailingBytes(Eurotherm2408Simulator(quiet_world, name="furnace"))
    link = ModbusLink("furnace", SimSerial(sim, timeout=0.1), 1)
    link.write_register(35, RATE_WORD)
    sim.extra = b"\x01\x03\x02\x04\xd2"  # the start of another reply
    assert link.read_register(35) == RATE_WORD
    assert link.failed_attempts == 1 and link.discarded_bytes > 0


def test_the_drain_is_wall_time_and_waits_for_silence(quiet_world):
    sim = Eurotherm2408Simulator(quiet_world, name="furnace")
    port = SimSerial(sim, timeout=0.1)
    quiet_world.faults.inject("furnace", "late", delay_s=0.2)
    port.write(with_crc(struct.pack(">BBHH", 1, 3, 2, 1)))  # read register 2: its reply comes late
    start = time.monotonic()
    discarded, quiet = drain_until_quiet(port, 0.1, limit_s=5.0, not_before=start + 0.25)
    elapsed = time.monotonic() - start
    assert quiet and discarded == 7  # the late reply arrived and was dropped
    assert elapsed >= 0.2 + 0.1  # its delay, then the silence
    assert drain_until_quiet(port, 0.05, limit_s=5.0) == (0, True)


def test_modbus_exception_is_an_instrument_error_naming_the_register(furnace_sim):
    _world, _sim, _port, link = furnace_sim
    with pytest.raises(
        InstrumentError, match=r"furnace: reading register 600: Modbus exception 02"
    ):
        link.read_register(600)


@pytest.mark.tcp
def test_replies_later_than_the_horizon_never_answer_the_next_request(quiet_world):
    """A served controller stalled longer than the reply horizon (5 read timeouts: 0.5 s on
    this 0.1 s link), as a served world catching up after idling under load: the late reply
    to register 2 arrives while register 35 is being asked. The link proves it is back in step with a
    function-4 marker first, so the read fails clearly instead of returning 1234.
    (Without the marker it returned register 2's word.)"""
    from labctl.simulators.transport import SimServer
    from labctl.transport import open_serial

    sim = Eurotherm2408Simulator(quiet_world, name="furnace")
    with SimServer(sim) as server:
        port = open_serial(server.resource, timeout=0.1)  # half the production 0.2 s
        try:
            link = ModbusLink("furnace", port, 1, retries=0)
            link.write_register(35, RATE_WORD)
            link.write_register(2, SETPOINT_WORD)
            quiet_world.faults.inject("furnace", "late", delay_s=0.55)  # 5.5 timeouts
            with pytest.raises(CommunicationError):
                link.read_register(2)
            try:
                assert link.read_register(35) == RATE_WORD
            except CommunicationError:
                pass  # a clear failure is right; another register's value never is
            assert link.markers > 0
            quiet_world.faults.clear("furnace", "late")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # back in step once the late replies are in
                try:
                    assert link.read_register(35) == RATE_WORD
                    assert link.read_register(2) == SETPOINT_WORD
                    break
                except CommunicationError:
                    continue
            assert link.out_of_step is None
        finally:
            port.close()


class SerialLine(SimSerial):
    """The same simulator behind a port that is a serial line: frames end in silence."""

    frames_delimited_by_silence = True


@pytest.mark.parametrize(("port_class", "waits"), [(SimSerial, False), (SerialLine, True)])
def test_the_inter_frame_silence_is_kept_on_a_line_and_skipped_in_process(
    quiet_world, monkeypatch, port_class, waits
):
    """minimalmodbus waits 3.5 character times (≥ 1.75 ms) after a reply before the next
    request, which RTU framing on a line needs; the in-process port hands over whole frames,
    so it has no such wait (it was ~2000 sleeps per in-process anneal)."""
    import types

    import minimalmodbus

    port = port_class(Eurotherm2408Simulator(quiet_world, "furnace"))
    link = ModbusLink("furnace", port, 1)
    sleeps: list[float] = []
    # minimalmodbus's own clock stands still (every request comes at once after the last
    # reply, however busy the machine) and its sleeps are recorded, not slept; its record
    # of this port's last read starts (and is left) as it was before the test
    frozen = types.SimpleNamespace(monotonic=lambda: 1e12, sleep=sleeps.append)
    monkeypatch.setattr(minimalmodbus, "time", frozen)
    monkeypatch.setitem(minimalmodbus._latest_read_times, port.port, 0.0)
    link.write_register(2, SETPOINT_WORD)
    for _ in range(5):
        assert link.read_register(2) == SETPOINT_WORD
    # 3.5 characters of 11 bits at the port's 19200 baud, before each request after the first
    assert sleeps == ([pytest.approx(3.5 * 11 / 19200)] * 5 if waits else [])
