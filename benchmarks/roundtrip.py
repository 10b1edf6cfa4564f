"""Query round trip to a simulated SR830: in-process vs loopback TCP, driver vs raw.

Prints medians in microseconds and, as its last line, one JSON object with
``inproc_us`` (raw query, in-process adapter), ``tcp_us`` (raw pyvisa query
over TCP), ``driver_us`` (pymeasure SR830 ``x`` over TCP) and
``driver_over_raw`` (driver-level query / raw pyvisa query on the same TCP
simulator, measured in this run) and ``write_then_query_us`` (a command, then a
query, over TCP: the pattern of every stage move, ``1PA…`` then ``TB?``, which a
delayed ACK on the server side would hold back ~40 ms by Nagle's rule).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import pyvisa
from pymeasure.instruments.srs import SR830

from labctl.clock import VirtualClock
from labctl.simulators.sr830 import SR830Simulator
from labctl.simulators.transport import SimAdapter, SimServer
from labctl.simulators.world import World
from labctl.transport import visa_options


def median_us(fn, n: int) -> float:
    for _ in range(min(50, n)):  # warm-up
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000, help="queries per measurement")
    n = parser.parse_args().n

    world = World(VirtualClock(), seed=0)
    sim = SR830Simulator(world, name="lockin")
    adapter = SimAdapter(sim)
    inproc = median_us(lambda: (adapter.write("OUTP? 1"), adapter.read()), n)

    with SimServer(SR830Simulator(world, name="lockin_tcp")) as server:
        rm = pyvisa.ResourceManager("@py")
        raw = rm.open_resource(server.resource, **visa_options(server.resource))
        tcp = median_us(lambda: raw.query("OUTP? 1"), n)
        write_query = median_us(lambda: (raw.write("PHAS 0"), raw.query("OUTP? 1")), n // 10)
        driver = SR830(server.resource, **visa_options(server.resource))
        driver_us = median_us(lambda: driver.x, n)
        driver.adapter.close()
        raw.close()
        rm.close()

    print(f"in-process raw query  {inproc:8.1f} us")
    print(f"TCP raw pyvisa query  {tcp:8.1f} us")
    print(f"TCP pymeasure SR830.x {driver_us:8.1f} us")
    print(f"driver / raw (TCP)    {driver_us / tcp:8.2f}")
    print(f"TCP command + query   {write_query:8.1f} us")
    print(
        json.dumps(
            {
                "inproc_us": round(inproc, 1),
                "tcp_us": round(tcp, 1),
                "driver_us": round(driver_us, 1),
                "driver_over_raw": round(driver_us / tcp, 3),
                "tcp_over_inproc": round(tcp / inproc, 1),
                "write_then_query_us": round(write_query, 1),
                "n": n,
            }
        )
    )


if __name__ == "__main__":
    main()
