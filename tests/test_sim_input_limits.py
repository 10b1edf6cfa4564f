"""Text simulators have the real instruments' input buffers (issue 11, item 7).

A command line longer than the instrument's input buffer is discarded whole — no
command of it runs, not even one after the next ``;`` — and the overflow is reported
the instrument's way: SR830 INP bit of ``*ESR?``, ESP301 error 6 in ``TE?``, PM100
``-363,"Input buffer overrun"`` in ``SYST:ERR?``. Work is linear in the input.
"""

from __future__ import annotations

import socket
import time

import pytest

from labctl.simulators.esp301 import ESP301Simulator
from labctl.simulators.pm100 import PM100Simulator
from labctl.simulators.sr830 import SR830Simulator
from labctl.simulators.transport import SimServer

MB = 1 << 20
CHUNK = 65536  # what one TCP recv() hands the handler


def feed(sim, data: bytes) -> bytes:
    """Hand ``data`` to the simulator in TCP-sized pieces; the concatenated reply."""
    return b"".join(sim.handle(data[i : i + CHUNK]) for i in range(0, len(data), CHUNK))


def ask(sim, line: str, term: bytes = b"\n") -> str:
    return sim.handle(line.encode("ascii") + term).decode("ascii").strip()


# ---------------------------------------------------------------- ESP301


def test_esp301_megabyte_line_then_move_does_not_move_and_reports_error(quiet_world):
    sim = ESP301Simulator(quiet_world, name="stages")
    stage = quiet_world.stages[0]
    before = stage.position_mm(quiet_world.t)
    assert feed(sim, b"x" * MB + b";1PA10\r") == b""
    assert not stage.is_moving(quiet_world.t) and stage.target_mm == before
    assert ask(sim, "1TP?", b"\r") == f"{before:.6f}"
    assert ask(sim, "TE?", b"\r") == "6"  # reported once for the line
    assert ask(sim, "TE?", b"\r") == "0"
    assert ask(sim, "1PA10", b"\r") == ""  # the next line works
    assert stage.target_mm == pytest.approx(10.0)


def test_esp301_line_limit_is_80_characters(quiet_world):
    sim = ESP301Simulator(quiet_world, name="stages")
    padded = "1PA5" + " " * (80 - 4)  # blanks are ignored: exactly 80 characters
    assert len(padded) == 80
    ask(sim, padded, b"\r")
    assert ask(sim, "TE?", b"\r") == "0"
    assert quiet_world.stages[0].target_mm == pytest.approx(5.0)
    ask(sim, padded + " ", b"\r")  # 81: the whole line is refused
    assert ask(sim, "TE?", b"\r") == "6"


def test_esp301_over_tcp_megabyte_garbage_then_move(quiet_world):
    server = SimServer(ESP301Simulator(quiet_world, name="stages")).start()
    try:
        with socket.create_connection((server.host, server.port), timeout=10) as s:
            s.settimeout(10)
            s.sendall(b"\xff" * MB + b";1PA10\r1TP?\rTE?\r")
            reply = b""
            while reply.count(b"\n") < 2:
                chunk = s.recv(4096)
                assert chunk, "server closed the connection"
                reply += chunk
        position, error = reply.decode().split()
        assert float(position) == pytest.approx(0.0) and error == "6"
        assert not quiet_world.stages[0].is_moving(quiet_world.t)
    finally:
        server.stop()


# ---------------------------------------------------------------- SR830


def test_sr830_overflow_sets_inp_and_runs_nothing_of_the_line(quiet_world):
    sim = SR830Simulator(quiet_world, name="li")
    assert ask(sim, "PHAS?") == "0"
    ask(sim, "*CLS")
    assert feed(sim, b"G" * MB + b";PHAS 45;*IDN?\n") == b""  # no reply, no phase change
    assert ask(sim, "PHAS?") == "0"
    assert ask(sim, "*ESR? 0") == "1"  # INP: input queue overflow
    assert ask(sim, "*ESR?") == "0"  # read-and-clear
    assert ask(sim, "PHAS 45;PHAS?") == "45"


def test_sr830_input_buffer_is_256_characters(quiet_world):
    sim = SR830Simulator(quiet_world, name="li")
    ask(sim, "*CLS")  # clear PON
    line = "PHAS 30" + " " * (256 - 7)
    ask(sim, line)
    assert ask(sim, "PHAS?") == "30" and ask(sim, "*ESR?") == "0"
    ask(sim, "PHAS 60" + " " * 250)  # 257 characters
    assert ask(sim, "PHAS?") == "30" and ask(sim, "*ESR?") == "1"


def test_sr830_overflow_across_fragments_is_one_line(quiet_world):
    sim = SR830Simulator(quiet_world, name="li")
    for _ in range(20):  # a long line arriving a few bytes at a time
        assert sim.handle(b"OUTP?1;" * 5) == b""
    assert sim.handle(b"*IDN?\n") == b""  # the end of the overflowed line
    assert ask(sim, "*IDN?").startswith("Stanford_Research_Systems,SR830")


# ---------------------------------------------------------------- PM100


def test_pm100_overflow_queues_minus_363(quiet_world):
    sim = PM100Simulator(quiet_world)
    assert feed(sim, b"Z" * MB + b";CORR:WAV 800;*IDN?\n") == b""
    assert float(ask(sim, "SENS:CORR:WAV?")) == pytest.approx(633.0)
    assert ask(sim, "SYST:ERR?") == '-363,"Input buffer overrun"'
    assert ask(sim, "SYST:ERR?") == '0,"No error"'
    assert ask(sim, "CORR:WAV 800;CORR:WAV?").startswith("8.0")


def test_pm100_overflow_sets_device_dependent_error_bit(quiet_world):
    sim = PM100Simulator(quiet_world)
    ask(sim, "*CLS")
    ask(sim, "X" * 2000)
    assert int(ask(sim, "*ESR?")) & 8  # DDE


# ---------------------------------------------------------------- all of them


@pytest.mark.parametrize("make", [SR830Simulator, ESP301Simulator, PM100Simulator])
def test_work_is_linear_and_memory_bounded(quiet_world, make):
    sim = make(quiet_world)
    garbage = bytes(range(256)) * (4 * MB // 256)  # 4 MB, a terminator every 128 bytes
    t0 = time.thread_time()  # CPU time: linear work, however busy the machine is
    feed(sim, garbage)
    feed(sim, b"Q" * 4 * MB)  # and one 4 MB line
    elapsed = time.thread_time() - t0
    assert elapsed < 20, f"{elapsed:.1f} s for 8 MB"
    assert sim.held_input_bytes <= sim.input_buffer_size


@pytest.mark.parametrize("make", [SR830Simulator, ESP301Simulator, PM100Simulator])
def test_each_client_has_its_own_buffer(quiet_world, make):
    sim = make(quiet_world)
    sim.handle(b"Q" * 5000, source="a")  # a overflows…
    reply = sim.handle(b"*IDN?\n" if make is not ESP301Simulator else b"VE?\r", source="b")
    assert reply.strip()  # …b is answered
