import threading
import time

import pytest

from labctl.clock import RealClock, ScaledClock, VirtualClock, make_clock


def test_virtual_clock_sleep_advances_instantly(monkeypatch):
    def no_waiting(seconds):
        raise AssertionError(f"a virtual sleep waited {seconds} s of wall time")

    monkeypatch.setattr(time, "sleep", no_waiting)  # "instantly": it never waits on the wall
    clock = VirtualClock()
    clock.sleep(1800.0)  # a 30 min dwell
    assert clock.now() == pytest.approx(1800.0)
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


def test_scaled_clock_30_min_dwell_at_10000_takes_0_18_s(monkeypatch):
    clock = ScaledClock(10_000)
    asked = []
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda s: (asked.append(s), real_sleep(s)))
    t0 = time.time()
    v0 = clock.now()
    clock.sleep(1800.0)
    v1 = clock.now()
    t1 = time.time()
    assert asked == [pytest.approx(0.18)]  # the wall time it waits: 1800 s / 10 000
    # virtual time is wall time × scale: at least the dwell, at most the wall time that passed
    assert 1800.0 * (1 - 1e-6) <= v1 - v0 <= (t1 - t0) * 10_000 * (1 + 1e-9)


def test_scaled_clocks_with_one_origin_agree():
    a = ScaledClock(100.0, origin=time.time() - 1.0)
    b = ScaledClock(100.0, origin=a.origin)
    w0 = time.time()
    first, second = a.now(), b.now()
    w1 = time.time()
    # they differ by no more than the wall time between the two readings, × 100
    assert 0.0 <= second - first <= (w1 - w0) * 100.0 * (1 + 1e-9) + 1e-9
    assert first > 99.0


def test_scaled_clock_rejects_nonpositive_scale():
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(0)


def test_make_clock_kinds():
    assert isinstance(make_clock(None), RealClock)
    assert isinstance(make_clock(1), RealClock)
    assert isinstance(make_clock(float("inf")), VirtualClock)
    assert make_clock(50).scale == 50
