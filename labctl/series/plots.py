"""The report's plots (PNG), from the summary rows and the run files of a series.

Sized to be read at a laptop's width (the page shows a figure at most ~1200 px
wide): many panels wrap into rows rather than shrink, and the paper's Table 2
is drawn only for the anneal temperatures this series has in common with it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from labctl.series.catalog import DONE

log = logging.getLogger(__name__)

MAX_PANELS_PER_ROW = 4  # Δσ(ω) panels: readable at a laptop's width (1280 px), then wrap


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _label(t) -> str:
    return "as made" if t is None else f"{t:g} °C"


def _run_frame(directory: Path, step: dict):
    """The run file of a finished step as a DataFrame, or None if unreadable."""
    import pandas as pd

    if step["state"] != DONE or not step["run_file"]:
        return None
    try:
        return pd.read_csv(directory / step["run_file"], comment="#")
    except (OSError, ValueError) as exc:
        log.warning("report: cannot read %s: %s", step["run_file"], exc)
        return None


def write_all(directory: Path, rows: list[dict], steps: list[dict]) -> list[Path]:
    """Every plot that has data; each is skipped (not failed) when nothing was measured."""
    plt = _pyplot()
    out = []
    for maker in (
        _exciton_vs_t,
        _absorption_spectra,
        _optp_traces,
        _optp_vs_t,
        _conductivity_spectra,
        _drude_smith_vs_t,
    ):
        try:
            path = maker(plt, directory, rows, steps)
        except Exception:  # one broken plot must not cost the morning report
            log.exception("report: %s failed", maker.__name__)
            plt.close("all")
            continue
        if path is not None:
            out.append(path)
    return out


def _points(rows, key, err=None):
    pts = [(r["temperature_c"], r[key], r[err] if err else None) for r in rows]
    pts = [(t, v, e) for t, v, e in pts if t is not None and v is not None]
    if not pts:
        return None
    t, v, e = zip(*pts, strict=True)
    return np.array(t), np.array(v, float), np.array([x or 0.0 for x in e], float)


def _exciton_vs_t(plt, directory, rows, steps):
    hh = _points(rows, "hh_peak_nm")
    gap = _points(rows, "tauc_gap_ev")  # only where it is a gap (a bulk-like edge)
    if hh is None and gap is None:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    if hh is not None:
        ax.plot(hh[0], hh[1], "o-", label="HH exciton peak")
        ax.axhline(512, color="0.6", ls=":", label="512 nm (paper, native)")
    if gap is not None:
        ax.plot(gap[0], 1239.84 / gap[1], "s", mfc="none", label="Tauc gap (as nm)")
    ax.set_xlabel("anneal temperature (°C)")
    ax.set_ylabel("wavelength (nm)")
    ax.legend(fontsize=8)
    return _save(plt, fig, directory / "exciton_peak_vs_T.png")


def _traces(plt, directory, steps, kind: str, x: str, y: str):
    """One curve per finished ``kind`` step (``y`` averaged over sweeps at each ``x``), or
    ``None`` (no figure) when no run file has those columns."""
    fig, ax = plt.subplots(figsize=(6, 4))
    n = 0
    for s in steps:
        if s["kind"] != kind:
            continue
        frame = _run_frame(directory, s)
        if frame is None or x not in frame or y not in frame:
            continue
        mean = frame.groupby(x)[y].mean()
        ax.plot(mean.index, mean.values, lw=1, label=_label(s["temperature_c"]))
        n += 1
    if not n:
        plt.close(fig)
        return None
    ax.legend(fontsize=7)
    return fig, ax


def _absorption_spectra(plt, directory, rows, steps):
    drawn = _traces(plt, directory, steps, "absorption", "wavelength_nm", "absorbance")
    if drawn is None:
        return None
    fig, ax = drawn
    ax.set_xlim(380, 850)
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel("absorbance")
    return _save(plt, fig, directory / "absorption_spectra.png")


def _optp_traces(plt, directory, rows, steps):
    drawn = _traces(plt, directory, steps, "optp", "pump_delay_ps", "minus_dE_over_E")
    if drawn is None:
        return None
    fig, ax = drawn
    ax.set_xlabel("pump delay (ps)")
    ax.set_ylabel("−ΔE/E")
    return _save(plt, fig, directory / "optp_traces.png")


def _optp_vs_t(plt, directory, rows, steps):
    key = "optp_peak_per_absorbed_photon_m2"
    pts = _points(rows, key) or _points(rows, "optp_peak_minus_dE_over_E")
    if pts is None:
        return None
    per_nabs = _points(rows, key) is not None
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(pts[0], pts[1], "o-")
    ax.set_xlabel("anneal temperature (°C)")
    ax.set_ylabel("OPTP peak −ΔE/E per absorbed photon (m²)" if per_nabs else "OPTP peak −ΔE/E")
    return _save(plt, fig, directory / "optp_peak_vs_T.png")


def _conductivity_spectra(plt, directory, rows, steps):
    tds = [s for s in steps if s["kind"] == "tds" and s["state"] == DONE]
    spectra = [(s, (s["results"] or {}).get("spectrum")) for s in tds]
    spectra = [(s, sp) for s, sp in spectra if sp]
    if not spectra:
        return None
    ncols = min(len(spectra), MAX_PANELS_PER_ROW)
    nrows = -(-len(spectra) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.0 * ncols + 0.6, 2.6 * nrows + 0.4), squeeze=False
    )
    flat = axes.ravel()
    for ax, (s, sp) in zip(flat, spectra, strict=False):
        f = np.asarray(sp["freq_THz"])
        ax.errorbar(f, sp["re"], yerr=sp.get("err"), fmt="o", ms=2, color="C3", label="Re Δσ")
        ax.errorbar(f, sp["im"], yerr=sp.get("err"), fmt="s", ms=2, color="k", label="Im Δσ")
        if sp.get("model_re") is not None:
            ax.plot(f, sp["model_re"], color="C3", label="Drude-Smith fit")
            ax.plot(f, sp["model_im"], color="k")
        ax.axhline(0, color="0.7", lw=0.8)
        ax.set_title(_label(s["temperature_c"]), fontsize=9)
    for ax in flat[len(spectra) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("frequency (THz)")
    for row in axes:
        row[0].set_ylabel("Δσ (S/m)")
    flat[0].legend(fontsize=7)
    return _save(plt, fig, directory / "conductivity_spectra.png")


def _drude_smith_vs_t(plt, directory, rows, steps):
    from labctl import paper

    panels = (
        ("tau_fs", "τ (fs)"),
        ("c", "c"),
        ("N_m3", "N (10²¹ m⁻³)"),
        ("mobility_cm2_Vs", "μ (cm²/Vs)"),
    )
    if all(_points(rows, key) is None for key, _ in panels):
        return None
    temperatures = {round(r["temperature_c"]) for r in rows if r["temperature_c"] is not None}
    paper_ts = sorted(t for t in paper.TABLE2 if t in temperatures)  # only where it applies
    fig, axes = plt.subplots(2, 2, figsize=(9, 6))
    for ax, (key, label) in zip(axes.ravel(), panels, strict=True):
        unit = 1e21 if key == "N_m3" else 1.0
        pts = _points(rows, key, f"{key}_err")
        if pts is not None:
            ax.errorbar(pts[0], pts[1] / unit, yerr=pts[2] / unit, fmt="o", label="this series")
        if key in ("tau_fs", "c", "N_m3") and paper_ts:
            ax.errorbar(
                paper_ts,
                [paper.TABLE2[t][key] / unit for t in paper_ts],
                yerr=[paper.TABLE2[t][f"{key}_err"] / unit for t in paper_ts],
                fmt="s",
                mfc="none",
                color="k",
                label="paper, Table 2",
            )
        ax.set_xlabel("anneal temperature (°C)")
        ax.set_ylabel(label)
    axes[0][0].legend(fontsize=8)
    return _save(plt, fig, directory / "drude_smith_vs_T.png")
