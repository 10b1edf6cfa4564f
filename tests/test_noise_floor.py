"""The simulated table's additive noise floor is a real table's, and common to both lock-ins.

One balanced EO detector feeds both lock-ins (the THz chopper's at 500 Hz, the pump
chopper's at 250 Hz), so both see the same white additive density. A real table's is
measured as the lab measures it: an air scan (nothing in the beam), the standard
deviation of the readings before the pulse arrives, per reading at τ = 100 ms,
12 dB/oct, 3 τ settling per point — 0.10 % of the scan's peak (docs/physics.md
"Noise floor"; real tables: 0.10–0.28 %).
"""

from __future__ import annotations

import numpy as np
import pytest

from labctl.clock import VirtualClock
from labctl.simulators.physics.params import DETECTOR_FLOOR_V_PER_RTHZ
from labctl.simulators.sr830 import SR830Simulator
from labctl.simulators.world import PS_PER_MM_DOUBLE_PASS, World

TAU_S = 0.1


def ask(sim: SR830Simulator, command: str) -> str:
    return sim.handle((command + "\n").encode()).decode()


def _jump(world, axis: int, position_mm: float) -> None:
    with world.lock:
        world.advance()
        stage = world.stages[axis]
        stage.velocity_mm_s = 1e9
        stage.move_to(position_mm, world.t)


def _air_scan(world, lockin, delays_ps) -> np.ndarray:
    """X of ``lockin`` at each sampling delay, 3 τ after the stage arrives (an air scan)."""
    zero = world.params.table["sampling_zero_mm"]
    out = []
    for d in delays_ps:
        _jump(world, 0, zero + d / PS_PER_MM_DOUBLE_PASS)
        world.clock.sleep(3 * TAU_S)
        out.append(float(ask(lockin, "OUTP?1")))
    return np.array(out)


def _lockins(world):
    sims = []
    for channel in ("ref", "pump"):
        sim = SR830Simulator(world, name=channel, channel=channel)
        ask(sim, "OFLT 8")  # 100 ms
        ask(sim, "OFSL 1")  # 12 dB/oct
        ask(sim, "SENS 22")  # 50 mV
        sims.append(sim)
    return sims


@pytest.fixture
def air_world():
    """The default world (realistic noise), sample holder between two slots: air."""
    world = World(VirtualClock(), seed=7, noise=True)
    pitch = world.params.holder["pitch_mm"]
    _jump(world, 2, 0.5 * pitch)  # between the blank (slot 0) and slot 1
    world.clock.sleep(1.0)
    with world.lock:
        world.advance()
        assert world.slot_in_beam() is None
    return world


def test_both_lockins_see_the_same_additive_density():
    world = World(VirtualClock(), seed=0, noise=True)
    _jump(world, 2, 0.5 * world.params.holder["pitch_mm"])  # air: no field-borne part far out
    _jump(world, 0, 0.0)  # 50 mm before zero: hundreds of ps before the pulse
    world.clock.sleep(1.0)
    with world.lock:
        world.advance()
        ref = world.lockin_noise_v_per_rthz("ref")
        pump = world.lockin_noise_v_per_rthz("pump")
    assert ref == pytest.approx(pump, rel=1e-9)
    assert ref == pytest.approx(DETECTOR_FLOOR_V_PER_RTHZ, rel=1e-3)
    # the station option sets the one floor of both channels
    quiet = World(VirtualClock(), seed=0, noise=True)
    quiet.configure(noise_floor_v_per_rthz=3e-6)
    assert quiet.table.p["noise_floor_v_per_rthz"] == 3e-6
    with quiet.lock:
        quiet.advance()
        assert quiet.lockin_noise_v_per_rthz("pump") >= 3e-6


def test_air_scan_baseline_is_a_tenth_of_a_percent_of_the_peak(air_world):
    world = air_world
    ref, pump = _lockins(world)
    near = np.arange(-6.0, 1.0, 0.05)  # the air pulse arrives 3.2 ps before the film's
    trace = _air_scan(world, ref, near)
    peak = float(np.max(np.abs(trace)))
    peak_delay = float(near[np.argmax(np.abs(trace))])
    baseline_delays = peak_delay + np.arange(-16.0, -6.0, 0.05)  # 200 points before the pulse
    baseline = _air_scan(world, ref, baseline_delays)
    relative = float(np.std(baseline, ddof=1)) / peak
    assert 0.00085 < relative < 0.00115, relative
    # the pump lock-in, demodulating the same detector, has the same baseline noise
    baseline_pump = _air_scan(world, pump, baseline_delays)
    ratio = float(np.std(baseline_pump, ddof=1) / np.std(baseline, ddof=1))
    assert 0.8 < ratio < 1.25, ratio
