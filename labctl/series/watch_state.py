"""What the watch page shows of a series directory, read without writing anything there.

The rule: the page is a reader. The catalog is opened with
:meth:`Catalog.read_only` (``mode=ro``, ``immutable`` once its writer is gone),
run files and ``series.log`` are opened for reading, and plots are drawn into
memory — so watching a series from a phone at 3 am cannot disturb the run or
its record. Everything is built from the directory alone, as ``series status``
and ``series report`` are, so the page works from any process and after a crash.

The ETA is learned from the night itself: the estimated durations of the steps
still to do, scaled by how long the finished steps actually took against their
estimates (a virtual-time series runs far faster than the estimate, a slow
furnace slower).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labctl.series.catalog import DONE, RUNNING, SKIPPED, Catalog

log = logging.getLogger(__name__)

LOG_NAME = "series.log"  # written by labctl.cli.series_session
LOG_TAIL_LINES = 40
#: The page's plots: name → (step kind, x column, y column, x label, y label).
TRACES = {
    "furnace": ("anneal", "elapsed_s", "temperature_c", "time (min)", "furnace (°C)"),
    "absorption": ("absorption", "wavelength_nm", "absorbance", "wavelength (nm)", "absorbance"),
    "optp": ("optp", "pump_delay_ps", "minus_dE_over_E", "pump delay (ps)", "−ΔE/E"),
}
PLOTS = (*TRACES, "conductivity")
#: The Drude-Smith fit of the latest THz-TDS step, shown as value ± error.
FIT_KEYS = (
    ("tau_fs", "τ", "fs", "{:.1f}"),
    ("c", "c", "", "{:.3f}"),
    ("N_m3", "N", "m⁻³", "{:.3g}"),
    ("mobility_cm2_Vs", "μ", "cm²/(V·s)", "{:.1f}"),
)
STEP_FIELDS = (
    "idx",
    "kind",
    "temperature_c",
    "sample_id",
    "state",
    "attempts",
    "started",
    "ended",
    "message",
)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _now_like(t: datetime) -> datetime:
    """Now, in the catalog's convention (naive local time, or aware UTC)."""
    return datetime.now(UTC) if t.tzinfo is not None else datetime.now()


def _estimate_s(row: dict) -> float | None:
    from labctl.series.estimate import step_duration_s
    from labctl.series.plan import Step

    step = Step(
        row["idx"], row["kind"], row["temperature_c"], row["slot"], row["sample_id"], row["params"]
    )
    try:
        return step_duration_s(step)
    except (KeyError, TypeError, ValueError, LookupError):
        return None


def eta(series: dict, steps: list[dict]) -> dict[str, Any]:
    """Steps done/total and the wall-time ETA learned from the finished steps."""
    finished = [s for s in steps if s["state"] in (DONE, SKIPPED)]
    doc: dict[str, Any] = {"done": len(finished), "total": len(steps), "remaining_s": None}
    if series.get("state") != RUNNING:
        doc["text"] = f"ended: {series.get('state')}"
        return doc
    estimated_done = actual_done = 0.0
    for s in steps:
        start, end = _parse_time(s["started"]), _parse_time(s["ended"])
        estimate = _estimate_s(s)
        if s["state"] == DONE and start and end and estimate:
            estimated_done += estimate
            actual_done += (end - start).total_seconds()
    left = [s for s in steps if s["state"] not in (DONE, SKIPPED)]
    estimate_left = sum(_estimate_s(s) or 0.0 for s in left)
    if estimated_done <= 0:
        doc["text"] = f"≈ {_duration(estimate_left)} at real time (no step finished yet)"
        return doc
    speed = actual_done / estimated_done
    remaining = estimate_left * speed
    running = next((s for s in steps if s["state"] == RUNNING), None)
    started = _parse_time(running["started"]) if running else None
    if started is not None:  # the running step's elapsed wall time is already spent
        elapsed = (_now_like(started) - started).total_seconds()
        remaining -= min(elapsed, (_estimate_s(running) or 0.0) * speed)
    doc["remaining_s"] = max(remaining, 0.0)
    doc["text"] = (
        f"≈ {_duration(doc['remaining_s'])} left "
        f"(steps so far took {speed:.2g}× their real-time estimate)"
    )
    return doc


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _latest(steps: list[dict], kind: str, *, running_ok: bool) -> dict | None:
    """The most recently started step of ``kind`` with a run file (running ones if allowed)."""
    states = (DONE, RUNNING) if running_ok else (DONE,)
    candidates = [s for s in steps if s["kind"] == kind and s["run_file"] and s["state"] in states]
    return max(candidates, key=lambda s: s["started"] or "", default=None)


def _fit(steps: list[dict]) -> dict | None:
    step = _latest(steps, "tds", running_ok=False)
    fit = ((step or {}).get("results") or {}).get("fit")
    if not fit:
        return None
    values = []
    if fit.get("significant") is False:  # the one TDS analysis: nothing measured, say so
        values.append({"key": "significant", "symbol": "Δσ", "unit": "", "text": "not significant"})
    for key, symbol, unit, fmt in FIT_KEYS:
        value, err = fit.get(key), fit.get(f"{key}_err")
        if value is None:
            continue
        text = fmt.format(value) + ("" if err is None else " ± " + fmt.format(err))
        values.append({"key": key, "symbol": symbol, "unit": unit, "text": text})
    t = step["temperature_c"]
    return {
        "label": f"{step['sample_id']}, {'as made' if t is None else f'{t:g} °C'}",
        "values": values,
    }


def log_tail(directory: Path, events: list[dict], lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of ``series.log`` (read from its end, however long it is),
    or of the catalog's events where the series was run without a log file."""
    path = directory / LOG_NAME
    try:
        with path.open("rb") as fh:
            fh.seek(0, io.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 200 * lines))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return [f"{e['t']} {e['level'].upper()} {e['message']}" for e in events[-lines:]]
    return text.splitlines()[-lines:]


def _file_key(directory: Path, run_file: str | None) -> str:
    if not run_file:
        return ""
    try:
        st = (directory / run_file).stat()
    except OSError:
        return run_file
    return f"{run_file}:{st.st_size}:{st.st_mtime_ns}"


def read_series(directory: str | Path) -> tuple[dict, list[dict], list[dict]]:
    """The series row, its steps and its events, read-only."""
    with Catalog.read_only(directory) as catalog:
        return catalog.series() or {}, catalog.steps(), catalog.events()


def snapshot(directory: str | Path) -> dict[str, Any]:
    """Everything the page shows, as one JSON-able document with a ``version`` digest."""
    directory = Path(directory)
    series, steps, events = read_series(directory)
    plot_keys = {}
    for name, (kind, *_rest) in TRACES.items():
        step = _latest(steps, kind, running_ok=True)
        plot_keys[name] = _file_key(directory, step["run_file"]) if step else ""
    tds = _latest(steps, "tds", running_ok=False)
    plot_keys["conductivity"] = f"tds:{tds['idx']}:{tds['ended']}" if tds else ""
    doc = {
        "series": {k: series.get(k) for k in ("name", "state", "message", "station", "created")},
        "steps": [{k: s.get(k) for k in STEP_FIELDS} for s in steps],
        "eta": eta(series, steps),
        "fit": _fit(steps),
        "log": log_tail(directory, events),
        "plots": {
            name: hashlib.sha256(key.encode()).hexdigest()[:12] if key else None
            for name, key in plot_keys.items()
        },
    }
    doc["version"] = hashlib.sha256(
        json.dumps({k: v for k, v in doc.items() if k != "eta"}, sort_keys=True).encode()
    ).hexdigest()[:16]
    return doc


_draw_lock = threading.Lock()  # matplotlib's font cache and mathtext are not thread-safe


def plot_png(directory: str | Path, name: str) -> bytes | None:
    """One of :data:`PLOTS` as PNG bytes (drawn in memory), or None when nothing to draw."""
    from matplotlib.figure import Figure

    directory = Path(directory)
    _series, steps, _events = read_series(directory)
    with _draw_lock:
        fig = Figure(figsize=(5.2, 3.0), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        if name == "conductivity":
            drawn = _conductivity(ax, steps)
        else:
            drawn = name in TRACES and _trace(ax, directory, steps, *TRACES[name])
        if not drawn:
            return None
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _trace(ax, directory: Path, steps, kind, x, y, xlabel, ylabel) -> bool:
    import pandas as pd

    step = _latest(steps, kind, running_ok=True)
    if step is None:
        return False
    try:  # a run file being written may end in half a line
        frame = pd.read_csv(directory / step["run_file"], comment="#", on_bad_lines="skip")
    except (OSError, ValueError) as exc:
        log.debug("watch: cannot read %s: %s", step["run_file"], exc)
        return False
    if x not in frame or y not in frame or frame.empty:
        return False
    frame = frame[[x, y]].apply(pd.to_numeric, errors="coerce").dropna()
    mean = frame.groupby(x)[y].mean()
    xs = mean.index / 60.0 if x == "elapsed_s" else mean.index
    ax.plot(xs, mean.values, lw=1.2, color="C3" if kind == "anneal" else "C0")
    t = step["temperature_c"]
    ax.set_title(
        f"{kind} {'as made' if t is None else f'{t:g} °C'}, {step['sample_id']} ({step['state']})",
        fontsize=9,
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return True


def _conductivity(ax, steps) -> bool:
    step = _latest(steps, "tds", running_ok=False)
    spectrum = ((step or {}).get("results") or {}).get("spectrum")
    if not spectrum:
        return False
    f = spectrum["freq_THz"]
    ax.errorbar(
        f, spectrum["re"], yerr=spectrum.get("err"), fmt="o", ms=2, color="C3", label="Re Δσ"
    )
    ax.errorbar(
        f, spectrum["im"], yerr=spectrum.get("err"), fmt="s", ms=2, color="k", label="Im Δσ"
    )
    if spectrum.get("model_re") is not None:
        ax.plot(f, spectrum["model_re"], color="C3", label="Drude-Smith fit")
        ax.plot(f, spectrum["model_im"], color="k")
    ax.axhline(0, color="0.7", lw=0.8)
    t = step["temperature_c"]
    ax.set_title(
        f"Δσ(ω), {step['sample_id']} {'as made' if t is None else f'{t:g} °C'}", fontsize=9
    )
    ax.set_xlabel("frequency (THz)")
    ax.set_ylabel("Δσ (S/m)")
    ax.legend(fontsize=7)
    return True
