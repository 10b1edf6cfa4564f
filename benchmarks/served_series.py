"""Wall and CPU time of one short annealing series against a served world, per clock.

A two-film series (anneal at 300 and 335 °C, 20 °C/min, 15 min dwell, ready below
95 °C: ~2.7 h of furnace time; absorption and a 2-sweep TDS after each anneal) run by
``labctl series run`` against ``labctl sim serve`` on the bundled station:

* ``virtual``  -- the served world on its clients' virtual time (``--time-scale virtual``,
  labctl/served_clock.py); the furnace link framed by packet, as ``sim serve`` writes it;
* ``scaled``   -- the served world at ``--scale`` (default 600×), the furnace link keeping
  the RTU inter-frame silence (``framing: silence``), as before virtual time existed;
* ``in-process`` -- the same series on the in-process simulators at virtual time.

CPU is the runner's plus the server's (their rusage as children of this script).

    .venv/bin/python benchmarks/served_series.py [--scale 600]

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import queue
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

LABCTL = [sys.executable, "-m", "labctl.cli"]
PLAN = """\
name: served-benchmark
sample: F
slots: [1, 2]
temperatures_c: [300, 335]
anneal: {ramp_c_per_min: 20, dwell_min: 15, cool_min: 16, record_interval_s: 60,
         ready_below_c: 95}
measurements:
  - absorption: {averages: 4}
  - tds: {step_ps: 0.05, t_start_ps: -1.0, t_stop_ps: 5.0, min_sweeps: 2, max_sweeps: 2,
          optp_peak_ps: 0.16, thz_peak_ps: 0.0}
retries: 0
on_failure: stop
"""


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def serve(directory: Path, scale: str) -> tuple[subprocess.Popen, Path]:
    station = directory / "served.yaml"
    proc = subprocess.Popen(
        [*LABCTL, "sim", "serve", "--time-scale", scale, "--write-station", str(station)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    while lines.get(timeout=120).strip() != "ready":
        pass
    return proc, station


def run_series(directory: Path, *station_args: str) -> float:
    plan = directory / "plan.yaml"
    plan.write_text(PLAN)
    start = time.monotonic()
    done = subprocess.run(
        [*LABCTL, "series", "run", str(plan), "--out", str(directory / "out"), "--quiet"]
        + list(station_args),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise SystemExit(f"series run failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.monotonic() - start


def measure(mode: str, scale: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        cpu0 = children_cpu_s()
        if mode == "in-process":
            wall = run_series(directory, "--time-scale", "virtual")
        else:
            server, station = serve(directory, "virtual" if mode == "virtual" else scale)
            try:
                if mode == "scaled":  # the serial line's silence, as before
                    data = yaml.safe_load(station.read_text())
                    data["instruments"]["furnace"]["options"]["framing"] = "silence"
                    station.write_text(yaml.safe_dump(data, sort_keys=False))
                wall = run_series(directory, "--station", str(station))
            finally:
                server.terminate()
                server.wait(timeout=30)
        return {"wall_s": round(wall, 2), "cpu_s": round(children_cpu_s() - cpu0, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="600", help="speed-up of the scaled served world")
    args = parser.parse_args()
    figures = {}
    for mode in ("virtual", "scaled", "in-process"):
        figures[mode] = measure(mode, args.scale)
        print(
            f"{mode:11s} wall {figures[mode]['wall_s']:7.2f} s   cpu {figures[mode]['cpu_s']:7.2f} s"
        )
    ratio = figures["scaled"]["wall_s"] / figures["virtual"]["wall_s"]
    print(f"served on virtual time: {ratio:.1f}× less wall time than at {args.scale}×")
    figures["scaled_over_virtual_wall"] = round(ratio, 2)
    figures["scale"] = float(args.scale)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
