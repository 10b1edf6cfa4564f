"""Never a shifted reply: `labctl sim serve` paused (SIGSTOP) past the drivers' timeout
during queries, then resumed, while every driver keeps polling as a scan would.

Each later call must return its own correct reply or raise a clear CommunicationError;
none may return another query's reply. Also: identity at connect (a driver on the wrong
port fails at once, naming role, expected model and what answered), and the in-process
SimAdapter path of the same mechanism.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from pymeasure.adapters import VISAAdapter
from pymeasure.instruments.srs import SR830

from labctl.clock import RealClock
from labctl.errors import CommunicationError, InstrumentError
from labctl.locking import SerializedIO
from labctl.simulators.base import ProtocolHandler
from labctl.simulators.transport import SimAdapter

TIMEOUT_MS = 300  # every read in this file is bounded by this (resync discards: 0.1 s)


@pytest.fixture
def served():
    """`labctl sim serve` in a subprocess; yields (process, {role: resource})."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "sim", "serve", "--time-scale", "100"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline().strip()
        if not line or line == "ready":
            break
        lines.append(line)
    if line != "ready":
        proc.kill()
        proc.wait(timeout=10)
        pytest.fail(f"sim serve did not get ready: {lines}")
    try:
        yield proc, dict(line.split(" ", 1) for line in lines)
    finally:
        os.kill(proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGKILL's cleanup
        proc.kill()
        proc.wait(timeout=10)


def visa(resource: str) -> VISAAdapter:
    return VISAAdapter(
        resource,
        read_termination="\n",
        write_termination="\n",
        timeout=TIMEOUT_MS,
        visa_library="@py",
    )


def stop(proc: subprocess.Popen) -> None:
    """SIGSTOP, and wait (bounded) until the process is really stopped."""
    os.kill(proc.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with open(f"/proc/{proc.pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        time.sleep(0.005)
    pytest.fail("sim serve did not stop on SIGSTOP")


class BareSR830(SerializedIO, SR830):
    """pymeasure's SR830, wrapped exactly as labctl's drivers wrap theirs (nothing else)."""


def _close(*instruments) -> None:
    for inst in instruments:
        try:
            (getattr(inst, "shutdown", None) or inst.close)()
        except Exception:
            pass


def _drivers(res: dict[str, str]):
    from labctl.drivers import esp301, pm100, spectrometer, sr830

    clock = RealClock()
    lockin = sr830.open_instrument(visa(res["lockin_ref"]), name="lockin_ref", clock=clock)
    bare = BareSR830(visa(res["lockin_pump"]), name="lockin_pump")
    meter = pm100.open_instrument(
        visa(res["power_meter"]), name="power_meter", clock=clock, wavelength_nm=800.0
    )
    stages = esp301.open_instrument(
        res["stages"],
        name="stages",
        clock=clock,
        axes={"sampling": {"axis": 1, "zero_mm": 50.0}, "pump": {"axis": 2, "zero_mm": 20.0}},
        poll_interval_s=0.01,
        visa={"timeout": TIMEOUT_MS},
    )
    spec = spectrometer.open_instrument(
        res["spectrometer"],
        name="spectrometer",
        clock=clock,
        tunnel_timeout_s=TIMEOUT_MS / 1000,
        integration_time_s=0.01,
    )
    return lockin, bare, meter, stages, spec


def _queries(lockin, bare, meter, stages, spec) -> list[tuple[str, object, object]]:
    """(label, call, check) in scan order; consecutive replies differ, so a shift shows."""
    ctl = stages.controller
    lockin.sensitivity = 0.1
    lockin.time_constant = 0.03
    bare.sensitivity = 0.002
    bare.time_constant = 0.3
    ctl.move_to_mm(1, 30.0)
    ctl.move_to_mm(2, 70.0)
    ctl.wait_for_stop(1, timeout_s=10)
    ctl.wait_for_stop(2, timeout_s=10)
    v1 = ctl.velocity_mm_s(1)
    reference = np.mean(spec.acquire(correct_dark=False))  # raw counts

    def finite(value) -> bool:
        return isinstance(value, float) and math.isfinite(value)

    return [
        ("lockin id", lambda: lockin.id, lambda r: r.startswith("Stanford_Research_Systems,SR830")),
        ("lockin sens", lambda: lockin.sensitivity, lambda r: r == pytest.approx(0.1)),
        ("lockin xy", lockin.read_xy, lambda r: len(r) == 2 and all(map(finite, r))),
        ("lockin tau", lambda: lockin.time_constant, lambda r: r == pytest.approx(0.03)),
        ("lockin harm", lambda: lockin.harmonic, lambda r: r == 1),
        ("bare id", lambda: bare.id, lambda r: r.startswith("Stanford_Research_Systems,SR830")),
        ("bare sens", lambda: bare.sensitivity, lambda r: r == pytest.approx(0.002)),
        ("bare x", lambda: bare.x, finite),
        ("bare tau", lambda: bare.time_constant, lambda r: r == pytest.approx(0.3)),
        ("meter wl", lambda: meter.wavelength_nm, lambda r: r == pytest.approx(800.0)),
        ("meter P", lambda: meter.power_w, lambda r: finite(r) and 0 <= r < 1.0),
        ("meter idn", lambda: meter.ask("*IDN?"), lambda r: r.startswith("THORLABS,PM100")),
        ("stage 1", lambda: ctl.position_mm(1), lambda r: r == pytest.approx(30.0, abs=1e-3)),
        ("stage 2", lambda: ctl.position_mm(2), lambda r: r == pytest.approx(70.0, abs=1e-3)),
        ("stage v1", lambda: ctl.velocity_mm_s(1), lambda r: r == pytest.approx(v1)),
        ("stage id", lambda: ctl.id, lambda r: r.startswith("ESP301")),
        ("stage moving", lambda: ctl.is_moving(1), lambda r: r is False),
        ("spectrum", spec.acquire, lambda r: r.shape == (spec.pixels,) and np.all(np.isfinite(r))),
        (
            "spectrum level",
            lambda: np.mean(spec.acquire(correct_dark=False)) / reference,
            lambda r: 0.5 < r < 2,
        ),
    ]


PAUSED_QUERIES = {
    "lockin sens",
    "lockin harm",
    "bare x",
    "bare tau",
    "meter wl",
    "meter P",
    "stage 1",
    "stage v1",
    "spectrum",
    "spectrum level",
}


def _poll(queries, rounds: int) -> tuple[list[str], list[str]]:
    """Run every query ``rounds`` times; returns (wrong replies, clear errors)."""
    wrong, errors = [], []
    for _ in range(rounds):
        for label, call, check in queries:
            try:
                reply = call()
            except CommunicationError as exc:
                errors.append(f"{label}: {exc}")
                continue
            except Exception as exc:  # anything else is not a clear error
                wrong.append(f"{label}: {type(exc).__name__}: {exc}")
                continue
            if not check(reply):
                wrong.append(f"{label}: got {reply!r}")
    return wrong, errors


def _clean_round(queries, tries: int = 3) -> None:
    """Some round of every query without any error (a loaded machine may miss a 0.3 s timeout)."""
    for _ in range(tries):
        wrong, errors = _poll(queries, 1)
        assert wrong == []
        if not errors:
            return
    pytest.fail(f"no clean round of queries in {tries}: {errors}")


@pytest.mark.tcp
def test_pause_past_the_timeout_never_gives_a_shifted_reply(served):
    proc, res = served
    drivers = _drivers(res)
    try:
        queries = _queries(*drivers)
        _clean_round(queries)  # all correct before the pause
        t0 = time.monotonic()
        stop(proc)
        try:
            # every instrument gets queries it cannot answer in time: the replies come late
            # twice per instrument: the second finds the link out of step and cannot resync yet
            paused = [q for q in queries if q[0] in PAUSED_QUERIES]
            wrong, errors = _poll(paused, 1)
            assert wrong == []
            assert len(errors) == len(paused) == 10  # each a clear CommunicationError
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert time.monotonic() - t0 > TIMEOUT_MS / 1000  # paused past the drivers' timeout
        wrong, errors = _poll(queries, 3)
        assert wrong == [], f"shifted or unclear replies after the pause: {wrong}"
        _clean_round(queries)  # and every driver is back in step
    finally:
        _close(*drivers)


# --- identity at connect ----------------------------------------------------------------


@pytest.mark.tcp
def test_a_driver_on_the_wrong_port_fails_at_connect_naming_what_answered(served):
    from labctl.drivers import esp301, pm100, sr830

    _proc, res = served
    clock = RealClock()
    with pytest.raises(InstrumentError) as err:
        sr830.open_instrument(visa(res["power_meter"]), name="lockin_ref", clock=clock)
    text = str(err.value)
    assert text.startswith("lockin_ref: expected a Stanford Research SR830")
    assert "THORLABS,PM100USB" in text and res["power_meter"] in text

    with pytest.raises(InstrumentError) as err:
        pm100.open_instrument(visa(res["lockin_ref"]), name="power_meter", clock=clock)
    text = str(err.value)
    assert text.startswith("power_meter: expected a Thorlabs PM100")
    assert "Stanford_Research_Systems,SR830" in text

    with pytest.raises(InstrumentError) as err:
        esp301.open_instrument(
            res["lockin_ref"],
            name="stages",
            clock=clock,
            axes={"sampling": {"axis": 1, "zero_mm": 50.0}},
            visa={"timeout": TIMEOUT_MS},
        )
    text = str(err.value)
    assert text.startswith("stages: expected a Newport ESP301")
    assert "no reply to 'VE?'" in text and "Stanford_Research_Systems,SR830" in text

    # the right drivers on the same ports still connect
    lockin = sr830.open_instrument(visa(res["lockin_ref"]), name="lockin_ref", clock=clock)
    assert lockin.read_xy()
    lockin.shutdown()


@pytest.mark.tcp
def test_a_paused_instrument_fails_at_connect(served):
    from labctl.drivers import sr830

    proc, res = served
    stop(proc)
    try:
        with pytest.raises(
            CommunicationError, match=r"lockin_ref: expected .*no reply to '\*IDN\?'"
        ):
            sr830.open_instrument(visa(res["lockin_ref"]), name="lockin_ref", clock=RealClock())
    finally:
        os.kill(proc.pid, signal.SIGCONT)


# --- the same mechanism in process (SimAdapter) -------------------------------------------


class LateReplies(ProtocolHandler):
    """A handler whose replies, while ``stalled``, come only with the next reply (late)."""

    def __init__(self, inner: ProtocolHandler) -> None:
        super().__init__(inner.world, inner.name)
        self.inner = inner
        self.stalled = False
        self.held = b""

    def handle(self, data: bytes, source: object = None) -> bytes:
        reply = self.inner.handle(data, source)
        if self.stalled:
            self.held += reply
            return b""
        reply, self.held = self.held + reply, b""
        return reply


def test_late_replies_in_process_never_shift(quiet_world):
    from labctl.drivers import sr830
    from labctl.simulators.sr830 import SR830Simulator

    link = LateReplies(SR830Simulator(quiet_world, name="lockin_ref"))
    lockin = sr830.open_instrument(SimAdapter(link), name="lockin_ref", clock=quiet_world.clock)
    bare = BareSR830(SimAdapter(link), name="bare")
    lockin.sensitivity = 0.1
    lockin.time_constant = 0.03
    link.stalled = True
    for call in (lambda: lockin.sensitivity, lambda: lockin.harmonic, lambda: bare.x):
        with pytest.raises(CommunicationError):
            call()
    link.stalled = False  # the held replies now come first
    for _ in range(3):
        assert lockin.harmonic == 1
        assert lockin.sensitivity == pytest.approx(0.1)
        assert lockin.time_constant == pytest.approx(0.03)
        assert bare.id.startswith("Stanford_Research_Systems,SR830")
        assert bare.harmonic == 1
    assert lockin.out_of_step is None and bare.out_of_step is None
