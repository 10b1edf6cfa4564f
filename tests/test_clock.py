import threading
import time

import pytest

from labctl.clock import RealClock, ScaledClock, VirtualClock, make_clock


def test_virtual_clock_sleep_advances_instantly():
    clock = VirtualClock()
    t0 = time.monotonic()
    clock.sleep(1800.0)  # a 30 min dwell
    assert clock.now() == pytest.approx(1800.0)
    assert time.monotonic() - t0 < 0.05
    clock.sleep(-5)  # negative waits are no waits
    assert clock.now() == pytest.approx(1800.0)


def test_virtual_clock_is_thread_safe():
    clock = VirtualClock()

    def worker():
        for _ in range(1000):
            clock.sleep(0.5)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert clock.now() == pytest.approx(2000.0)


def test_scaled_clock_30_min_dwell_at_10000_takes_0_18_s():
    clock = ScaledClock(10_000)
    t0 = time.monotonic()
    v0 = clock.now()
    clock.sleep(1800.0)
    wall = time.monotonic() - t0
    assert 0.17 <= wall < 0.5
    assert clock.now() - v0 == pytest.approx(1800.0, rel=0.2)


def test_scaled_clocks_with_one_origin_agree():
    a = ScaledClock(100.0, origin=time.time() - 1.0)
    b = ScaledClock(100.0, origin=a.origin)
    assert abs(a.now() - b.now()) < 1.0  # within 10 ms of wall jitter × 100
    assert a.now() > 99.0


def test_scaled_clock_rejects_nonpositive_scale():
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(0)


def test_make_clock_kinds():
    assert isinstance(make_clock(None), RealClock)
    assert isinstance(make_clock(1), RealClock)
    assert isinstance(make_clock(float("inf")), VirtualClock)
    assert make_clock(50).scale == 50
