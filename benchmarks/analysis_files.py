"""Time and memory of each file reader and ``labctl analyze`` command, against pandas.

Each measurement runs in a fresh Python process that first imports everything it will
use, then resets the kernel's peak-RSS mark (``/proc/self/clear_refs`` ← ``5``) and
records its resident size; after the work it reads ``VmHWM``. The figure reported is
the reader's own peak, ``VmHWM − RSS before``: not the interpreter, not the imports,
and not the parent (``ru_maxrss`` of a child keeps the parent's size across ``exec`` on
Linux — a 320 MB parent made an 11 MB child report 331 MB — which is why the earlier
version's two identical "113.1 MB" figures were the parent's). Where ``clear_refs``
cannot be written the peak includes the imports (``peak_includes_imports`` is true).

Files (written once per size, outside the timed work):
- ``tds_run``: a ``labctl run tds`` file, ``sweep,time_ps,E_ref,dE``, 321 gate points per
  sweep (1 M rows = 3 116 sweeps), a Drude-Smith film with noise;
- ``absorption``: an excitonic spectrum over 350–720 nm; ``optp``: a two-exponential trace.

Readers per size: ``pandas`` (``read_csv(comment='#')`` of the TDS run file, the field's
reference), ``read_csv_table`` (labctl's strict reader), ``load_tds_csv`` (+ sweep
grouping), ``analyze_tds`` (the whole ``labctl analyze tds --json``), ``analyze_absorption``,
``analyze_optp``. Each runs ``--repeats`` times (default 3), interleaved with the others;
the fastest run's time is kept (load on a shared machine only adds), the largest peak.
The table gives s and MB per reader and size, their values per 1 M rows
(flat = linear) and the TDS readers' time as a multiple of pandas' in the same run. The
last line is one JSON object ``{"sizes": [...], "results": {reader: {rows: {...}}}}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HC_EV_NM = 1239.841984
POINTS_PER_SWEEP = 321

_CHILD = r"""
import json, sys, time
kind, path = sys.argv[1], sys.argv[2]
import numpy, pandas
from labctl.cli import main
from labctl.analysis.io import read_csv_table, load_tds_csv
import labctl.analysis.tds, labctl.analysis.fitting, labctl.cli.analyze, rich.table

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0

reset = True
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    reset = False
before = status("VmRSS:")
t0 = time.perf_counter()
rc = 0
if kind == "pandas":
    pandas.read_csv(path, comment="#")
elif kind == "read_csv_table":
    read_csv_table(path)
elif kind == "load_tds_csv":
    load_tds_csv(path)
else:
    import contextlib, io
    cmd = {"analyze_tds": ["tds", path, "--thickness-nm", "100", "--substrate-index", "1.95"],
           "analyze_absorption": ["absorption", path],
           "analyze_optp": ["optp", path]}[kind]
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(["analyze", *cmd, "--json"])
elapsed = time.perf_counter() - t0
peak = status("VmHWM:")
print("RESULT", json.dumps({"s": elapsed, "peak_mb": (peak - (before if reset else 0)) / 2**20,
      "peak_includes_imports": not reset, "exit": rc}), file=sys.stderr)
sys.exit(rc)
"""

#: reader → the file it reads
READERS = {
    "pandas": "tds_run",
    "read_csv_table": "tds_run",
    "load_tds_csv": "tds_run",
    "analyze_tds": "tds_run",
    "analyze_absorption": "absorption",
    "analyze_optp": "optp",
}


def write_tds_run(path: Path, n_rows: int, rng) -> None:
    from labctl.simulators.synthetic import synthetic_tds

    n_sweeps = max(3, n_rows // POINTS_PER_SWEEP)
    data = synthetic_tds(
        duration_ps=POINTS_PER_SWEEP * 0.05, n_sweeps=n_sweeps, noise_de=1e-4, noise_ref=1e-4,
        rng=rng,
    )  # fmt: skip
    k = np.repeat(np.arange(n_sweeps), data.time_ps.size)
    t = np.tile(data.time_ps, n_sweeps)
    rows = np.column_stack([k, t, data.e_ref.ravel(), data.delta_e.ravel()])
    np.savetxt(
        path, rows, delimiter=",", header="sweep,time_ps,E_ref,dE", comments="",
        fmt=["%d", "%.4f", "%.9g", "%.9g"],
    )  # fmt: skip


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


def _write(path: Path, header: str, rows: np.ndarray) -> None:
    np.savetxt(path, rows, delimiter=",", header=header, comments="", fmt="%.9g")


WRITERS = {"tds_run": write_tds_run, "absorption": write_absorption, "optp": write_optp}


def measure(kind: str, path: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, str(path)],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    line = next((x for x in proc.stderr.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        return {"exit": proc.returncode, "error": (proc.stderr.strip() or "no result")[-200:]}
    out = json.loads(line[len("RESULT ") :])
    out["s"], out["peak_mb"] = round(out["s"], 3), round(out["peak_mb"], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rows", type=float, nargs="+", default=[1e5, 3e5, 1e6], help="file sizes (rows)"
    )
    parser.add_argument("--readers", nargs="+", choices=list(READERS), default=list(READERS))
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per reader and size (the minimum is kept)"
    )
    args = parser.parse_args()
    sizes = [int(r) for r in args.rows]
    rng = np.random.default_rng(0)
    results: dict[str, dict[str, dict]] = {r: {} for r in args.readers}
    print(f"{'reader':<20}{'rows':>10}{'s':>9}{'s/1M rows':>11}{'peak MB':>9}"
          f"{'MB/1M rows':>12}{'× pandas':>10}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            files = {}
            for kind in {READERS[r] for r in args.readers}:
                files[kind] = Path(tmp) / f"{kind}_{n}.csv"
                WRITERS[kind](files[kind], n, rng)
            # repeats interleaved, so a burst of load on the shared machine hits every reader
            all_runs = {reader: [] for reader in args.readers}
            for _ in range(args.repeats):
                for reader in args.readers:
                    all_runs[reader].append(measure(reader, files[READERS[reader]]))
            for reader in args.readers:
                runs = all_runs[reader]
                ok = [x for x in runs if "s" in x]
                r = min(ok, key=lambda x: x["s"]) if ok else runs[0]
                if ok:
                    r = dict(r, s_all=[x["s"] for x in ok], peak_mb=max(x["peak_mb"] for x in ok))
                if "s" in r:
                    r["s_per_1M_rows"] = round(r["s"] * 1e6 / n, 3)
                    r["mb_per_1M_rows"] = round(r["peak_mb"] * 1e6 / n, 1)
                    base = results.get("pandas", {}).get(str(n), {}).get("s")
                    if base and READERS[reader] == "tds_run":
                        r["x_pandas"] = round(r["s"] / base, 2)
                results[reader][str(n)] = r
                if "s" not in r:
                    print(f"{reader:<20}{n:>10}  failed: {r['error']}")
                    continue
                ratio = f"{r['x_pandas']:.2f}" if "x_pandas" in r else "—"
                print(f"{reader:<20}{n:>10}{r['s']:>9.3f}{r['s_per_1M_rows']:>11.3f}"
                      f"{r['peak_mb']:>9.1f}{r['mb_per_1M_rows']:>12.1f}{ratio:>10}")  # fmt: skip
            for f in files.values():
                f.unlink()
    print(json.dumps({"sizes": sizes, "results": results}))


if __name__ == "__main__":
    main()
