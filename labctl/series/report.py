"""The morning report of a series: summary table (JSON/CSV), plots (PNG), tidy data
(``data/KIND.csv``, :mod:`labctl.series.tidy`) and report.html
(:mod:`labctl.series.report_page`).

Built only from the series directory (the catalog and the run files), so
``labctl series report DIR`` works at any time, from any process, also on a
series that stopped early: what was not measured is null.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from labctl.series.catalog import DONE, Catalog

#: Columns of summary.json/csv, in order; null where not measured. Every value is the
#: run's own result (the one analysis per measurement, :mod:`labctl.analysis`), so the
#: summary shows what ``labctl analyze`` shows for the same run file.
COLUMNS = (
    "temperature_c",
    "sample_id",
    "hh_peak_nm",
    "hh_peak_nm_err",
    "lh_peak_nm",
    "tauc_gap_ev",
    "tauc_gap_ev_err",
    "optp_peak_delay_ps",
    "optp_peak_minus_dE_over_E",
    "optp_absorbed_photons_m2",
    "optp_peak_per_absorbed_photon_m2",
    "optp_phi_mu_cm2_Vs",
    "optp_significant",
    "tds_significant",
    "tds_model",
    "tau_fs",
    "tau_fs_err",
    "c",
    "c_err",
    "N_m3",
    "N_m3_err",
    "mobility_cm2_Vs",
    "mobility_cm2_Vs_err",
    "chi2_red",
    "tds_sweeps",
    "optp_overloaded_points",
    "tds_overloaded_points",
)

#: Where each summary column comes from: (step kind, key paths into its run results).
SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "hh_peak_nm": ("absorption", ("hh_nm",)),
    "hh_peak_nm_err": ("absorption", ("hh_nm_err",)),
    "lh_peak_nm": ("absorption", ("lh_nm",)),
    # null for an excitonic spectrum: a Tauc fit there lands above the exciton, no gap
    "tauc_gap_ev": ("absorption", ("tauc_gap_ev",)),
    "tauc_gap_ev_err": ("absorption", ("tauc_gap_ev_err",)),
    "optp_peak_delay_ps": ("optp", ("optp_peak.pump_delay_ps",)),
    "optp_peak_minus_dE_over_E": ("optp", ("optp_peak.minus_dE_over_E",)),
    "optp_absorbed_photons_m2": ("optp", ("absorbed_photons_m2",)),
    "optp_peak_per_absorbed_photon_m2": ("optp", ("optp_peak.per_absorbed_photon_m2",)),
    "optp_phi_mu_cm2_Vs": ("optp", ("phi_mu_cm2_Vs",)),
    "optp_significant": ("optp", ("significant",)),
    "tds_significant": ("tds", ("fit.significant",)),
    "tds_model": ("tds", ("fit.model",)),
    "tau_fs": ("tds", ("fit.tau_fs",)),
    "tau_fs_err": ("tds", ("fit.tau_fs_err",)),
    "c": ("tds", ("fit.c",)),
    "c_err": ("tds", ("fit.c_err",)),
    "N_m3": ("tds", ("fit.N_m3",)),
    "N_m3_err": ("tds", ("fit.N_m3_err",)),
    "mobility_cm2_Vs": ("tds", ("fit.mobility_cm2_Vs",)),
    "mobility_cm2_Vs_err": ("tds", ("fit.mobility_cm2_Vs_err",)),
    "chi2_red": ("tds", ("fit.chi2_red",)),
    "tds_sweeps": ("tds", ("sweeps",)),
    # points that stayed overloaded after re-ranging (procedures/ranging.py): flagged rows
    "optp_overloaded_points": ("optp", ("overloaded_points",)),
    "tds_overloaded_points": ("tds", ("overloaded_points",)),
}


def _lookup(results: dict | None, path: str):
    value: Any = results
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary_rows(steps: list[dict]) -> list[dict]:
    """One row per (film, anneal temperature) from the finished steps' results."""
    rows: dict[tuple, dict] = {}
    for s in steps:
        key = (s["sample_id"], s["temperature_c"])
        row = rows.setdefault(key, dict.fromkeys(COLUMNS))
        row["temperature_c"] = s["temperature_c"]
        row["sample_id"] = s["sample_id"]
        if s["state"] != DONE or s["kind"] == "anneal":
            continue
        for column, (kind, paths) in SOURCES.items():
            if kind != s["kind"]:
                continue
            for path in paths:
                value = _lookup(s["results"], path)
                if value is not None:
                    row[column] = value
                    break
    return sorted(
        rows.values(), key=lambda r: (r["temperature_c"] is not None, r["temperature_c"] or 0)
    )


def write_report(directory: str | Path) -> dict[str, Path]:
    """summary.json, summary.csv, the plots, the tidy data and report.html in ``directory``."""
    directory = Path(directory)
    with Catalog.in_directory(directory) as catalog:
        series = catalog.series() or {}
        steps = catalog.steps()
        events = catalog.events()
    rows = summary_rows(steps)
    paths = {"dir": directory, "json": directory / "summary.json", "csv": directory / "summary.csv"}
    doc = {
        "series": series.get("name"),
        "state": series.get("state"),
        "message": series.get("message"),
        "rows": [_finite(r) for r in rows],
    }
    paths["json"].write_text(json.dumps(doc, indent=2) + "\n")
    with paths["csv"].open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    from labctl.series import plots, report_page, tidy

    paths["plots"] = plots.write_all(directory, rows, steps)
    paths["data"] = tidy.write_tidy(directory, steps)
    paths["html"] = directory / "report.html"
    page = report_page.render(
        directory, series, rows, steps, events, paths["plots"], [paths["csv"], *paths["data"]]
    )
    paths["html"].write_text(page, encoding="utf-8")
    return paths


def _finite(row: dict) -> dict:
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }


def _overload_mark(row: dict) -> str:
    """`` (N overloaded!)`` after the τ cell when the OPTP or TDS run kept overloaded points."""
    count = (row.get("optp_overloaded_points") or 0) + (row.get("tds_overloaded_points") or 0)
    return f" ({count} overloaded!)" if count else ""


def print_summary(directory: str | Path, console=None) -> None:
    """The summary table on the terminal, the paper's Table 2 below each row where it has one."""
    from rich.console import Console
    from rich.table import Table

    from labctl import paper

    doc = json.loads((Path(directory) / "summary.json").read_text())
    console = console or Console()
    if not console.is_terminal:
        console.width = max(console.width, 120)
    table = Table(
        title=f"series {doc['series']}: {doc['state']} (paper's Table 2 dimmed below; "
        "Tauc gap only for a bulk-like edge; +pol.: Drude-Smith + exciton polarizability)"
    )
    for col in (
        "T (°C)",
        "HH (nm)",
        "Tauc gap (eV)",
        "φμ (cm²/Vs)",
        "τ (fs)",
        "c",
        "N (10²¹/m³)",
        "μ (cm²/Vs)",
    ):
        table.add_column(col, justify="right")

    def pm(v, e, scale=1.0, fmt=".1f"):
        if v is None:
            return "–"
        return f"{v / scale:{fmt}}" + ("" if e is None else f"±{e / scale:{fmt}}")

    for r in doc["rows"]:
        t = r["temperature_c"]
        if r.get("tds_significant") is False:  # no photoconductivity measured: say so
            tds_cells = ["not significant", "", "", ""]
        else:
            tds_cells = [
                pm(r["tau_fs"], r["tau_fs_err"]),
                pm(r["c"], r["c_err"], fmt=".3f"),
                pm(r["N_m3"], r["N_m3_err"], 1e21, ".2f"),
                pm(r["mobility_cm2_Vs"], r["mobility_cm2_Vs_err"], fmt=".0f"),
            ]
            if r.get("tds_model") and r["tds_model"] != "drude-smith":
                tds_cells[0] += " (+pol.)"
            tds_cells[0] += _overload_mark(r)
        table.add_row(
            "as made" if t is None else f"{t:g}",
            pm(r["hh_peak_nm"], None),
            pm(r["tauc_gap_ev"], None, fmt=".2f"),
            (
                "not significant"
                if r.get("optp_significant") is False
                else pm(r["optp_phi_mu_cm2_Vs"], None, fmt=".3g")
            ),
            *tds_cells,
        )
        ref = paper.TABLE2.get(round(t)) if t is not None else None
        if ref:
            table.add_row(
                "[dim]paper[/dim]",
                "",
                "",
                "",
                f"[dim]{pm(ref['tau_fs'], ref['tau_fs_err'], fmt='.0f')}[/dim]",
                f"[dim]{pm(ref['c'], ref['c_err'], fmt='.2f')}[/dim]",
                f"[dim]{pm(ref['N_m3'], ref['N_m3_err'], 1e21, '.2f')}[/dim]",
                "",
            )
    console.print(table)
