"""``labctl analyze absorption`` / ``optp`` and the CSV reader on large files.

Writes synthetic files of each size (an excitonic absorption spectrum over 350–720 nm,
a two-exponential OPTP trace over −3…20 ps, a ``time_ps,E_ref,dE`` TDS-shaped table
for the reader alone), runs each analysis in a fresh process and prints wall time and
peak memory (max RSS). The last line is one JSON object
``{"absorption": {"100000": {"s": …, "rss_mb": …}, …}, "optp": {…}, "read_tds_table": {…}}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HC_EV_NM = 1239.841984

_CHILD = """
import resource, sys
from labctl.cli import main
args = sys.argv[1:]
if args[0] == "read":
    from labctl.analysis.io import read_csv_table
    read_csv_table(args[1])
    rc = 0
else:
    rc = main(args)
print("RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(rc)
"""


def write_absorption(path: Path, n: int, rng) -> None:
    wl = np.linspace(350.0, 720.0, n)
    e = HC_EV_NM / wl
    a = (
        0.5 * np.exp(-0.5 * ((e - HC_EV_NM / 512) / 0.015) ** 2)
        + 0.3 * np.exp(-0.5 * ((e - HC_EV_NM / 480) / 0.025) ** 2)
        + 0.6 / (1 + np.exp(-(e - HC_EV_NM / 480 - 0.15) / 0.05))
        + 0.01
        + 2e-3 * rng.standard_normal(n)
    )
    _write(path, "wavelength_nm,absorbance", np.column_stack([wl, a]))


def write_optp(path: Path, n: int, rng) -> None:
    from labctl.analysis.optp import decay_model

    t = np.linspace(-3.0, 20.0, n)
    sig = decay_model(t, 0.0, 0.3, [1e-3, 5e-4], [0.7, 4.0]) + 1e-5 * rng.standard_normal(n)
    _write(path, "pump_delay_ps,minus_dE_over_E", np.column_stack([t, sig]))


def write_tds(path: Path, n: int, rng) -> None:
    t = np.arange(n) * 0.01
    ref = np.sin(t) * np.exp(-(((t - t.mean()) / (0.1 * np.ptp(t) + 1)) ** 2))
    _write(path, "time_ps,E_ref,dE", np.column_stack([t, ref, 1e-3 * ref]))


def _write(path: Path, header: str, rows: np.ndarray) -> None:
    np.savetxt(path, rows, delimiter=",", header=header, comments="", fmt="%.9g")


def run(args: list[str]) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, timeout=1800
    )
    elapsed = time.perf_counter() - t0
    rss_kb = next(
        (int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("RSS_KB")),
        0,
    )
    out = {"s": round(elapsed, 2), "rss_mb": round(rss_kb / 1024, 1), "exit": proc.returncode}
    if proc.returncode:
        out["error"] = proc.stderr.strip().splitlines()[0][:200]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--rows", type=float, nargs="+", default=[1e5, 1e6], help="file sizes (rows)"
    )
    sizes = [int(r) for r in parser.parse_args().rows]
    rng = np.random.default_rng(0)
    results: dict[str, dict[str, dict]] = {"absorption": {}, "optp": {}, "read_tds_table": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"abs_{n}.csv"
            write_absorption(path, n, rng)
            r = run(["analyze", "absorption", str(path), "--json"])
            results["absorption"][str(n)] = r
            print(f"analyze absorption {n:>9} rows: {r['s']:7.2f} s, {r['rss_mb']:7.1f} MB RSS")
            path.unlink()

            path = Path(tmp) / f"optp_{n}.csv"
            write_optp(path, n, rng)
            r = run(["analyze", "optp", str(path), "--json"])
            results["optp"][str(n)] = r
            print(f"analyze optp       {n:>9} rows: {r['s']:7.2f} s, {r['rss_mb']:7.1f} MB RSS")
            path.unlink()

            path = Path(tmp) / f"tds_{n}.csv"
            write_tds(path, n, rng)
            r = run(["read", str(path)])
            results["read_tds_table"][str(n)] = r
            print(f"read TDS table     {n:>9} rows: {r['s']:7.2f} s, {r['rss_mb']:7.1f} MB RSS")
            path.unlink()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
