"""report.html: the page a scientist reads in the morning.

The rule: everything on it says what it is. The summary table is declared in
:data:`TABLE` (summary column → heading, unit, format, scale), so a renamed
summary column is a one-line change here; a value with an ``_err`` column is
shown as value ± error in one cell. The page says where the data came from —
the plan (name, digest, text), the station (simulated or real instruments, the
clock: real time or virtual) and the software version, as the run files
recorded them — and compares with the paper's Table 2 only for the anneal
temperatures the paper has. The tidy CSV files (:mod:`labctl.series.tidy`)
and the summary are linked.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

from labctl.series.catalog import DONE


@dataclass(frozen=True)
class Column:
    key: str  #: summary column (its error, if any, is ``key + "_err"``)
    label: str
    unit: str = ""
    fmt: str = "{:.3g}"
    scale: float = 1.0  #: shown value = value / scale (the unit says so)


#: The summary table, in order.
TABLE = (
    Column("temperature_c", "anneal T", "°C", "{:g}"),
    Column("sample_id", "film", "", "{}"),
    Column("hh_peak_nm", "HH exciton", "nm", "{:.1f}"),
    Column("lh_peak_nm", "LH exciton", "nm", "{:.1f}"),
    # only where it is a gap (a bulk-like edge): null for an excitonic spectrum
    Column("tauc_gap_ev", "Tauc gap", "eV", "{:.3f}"),
    # per absorbed photon per m² of film (thickness-free), and the yield-mobility product
    Column("optp_peak_per_absorbed_photon_m2", "OPTP peak / N_abs", "10⁻²¹ m²", "{:.2f}", 1e-21),
    Column("optp_phi_mu_cm2_Vs", "φμ", "cm²/(V·s)", "{:.3g}"),
    # false: no photoconductivity measured, so τ, c, N, μ are not shown ("–")
    Column("tds_significant", "Δσ significant", "", "{}"),
    Column("tds_model", "model", "", "{}"),
    Column("tau_fs", "τ", "fs", "{:.1f}"),
    Column("c", "c", "", "{:.3f}"),
    Column("N_m3", "N", "10²¹ m⁻³", "{:.2f}", 1e21),
    Column("mobility_cm2_Vs", "μ", "cm²/(V·s)", "{:.0f}"),
    Column("chi2_red", "χ²_red", "", "{:.2g}"),
    Column("tds_sweeps", "sweeps", "", "{:.0f}"),
    # points left overloaded after re-ranging (procedures/ranging.py): a flagged fit
    Column("optp_overloaded_points", "OPTP overloaded points", "", "{:.0f}"),
    Column("tds_overloaded_points", "TDS overloaded points", "", "{:.0f}"),
)
#: The paper's comparison: Drude-Smith parameters of its Table 2.
PAPER_COLUMNS = (
    Column("tau_fs", "τ", "fs", "{:.0f}"),
    Column("c", "c", "", "{:.2f}"),
    Column("N_m3", "N", "10²¹ m⁻³", "{:.2f}", 1e21),
)
PAPER_CITATION = "Chen et al., Small 2023, DOI 10.1002/smll.202308951, Table 2"
STEP_FIELDS = ("idx", "kind", "temperature_c", "sample_id", "state", "attempts", "started", "ended")


def heading(column: Column) -> str:
    unit = f" ({column.unit})" if column.unit else ""
    return html.escape(column.label + unit)


def plus_minus(value: float, err: float) -> str:
    """``value ± err`` with the error to one significant digit (two when it starts with 1)
    and the value to the same decimal place: 2.494 ± 0.007, 512.83 ± 0.04, 43 ± 3."""
    exponent = math.floor(math.log10(err))
    digits = 2 if err / 10**exponent < 2 else 1
    decimals = max(0, digits - 1 - exponent)
    return f"{value:.{decimals}f} ± {err:.{decimals}f}"


def value_text(column: Column, row: dict) -> str:
    """``value ± error`` in the column's scale; "–" where not measured."""
    value = row.get(column.key)
    if value is None:
        return "–"
    if column.key == "temperature_c":
        return f"{value:g}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    err = row.get(f"{column.key}_err")
    try:
        value = value / column.scale if column.scale != 1.0 else value
        if isinstance(err, int | float) and math.isfinite(err) and err > 0:
            return html.escape(plus_minus(value, err / column.scale))
        return html.escape(column.fmt.format(value))
    except (TypeError, ValueError):
        return html.escape(str(value))


def _table(columns, rows) -> str:
    head = "".join(f"<th>{heading(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{value_text(c, r)}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def paper_comparison(rows: list[dict]) -> str:
    """This series beside the paper's Table 2 for the temperatures the paper has; "" if none."""
    from labctl import paper

    pairs = [
        (r, paper.TABLE2[round(r["temperature_c"])])
        for r in rows
        if r.get("temperature_c") is not None
        and round(r["temperature_c"]) in paper.TABLE2
        and r["temperature_c"] == round(r["temperature_c"])
    ]
    if not pairs:
        return ""
    head = "<th>anneal T (°C)</th><th>film</th>" + "".join(
        f"<th>{heading(c)} this series</th><th>{heading(c)} paper</th>" for c in PAPER_COLUMNS
    )
    body = "".join(
        f"<tr><td>{r['temperature_c']:g}</td><td>{html.escape(str(r['sample_id']))}</td>"
        + "".join(
            f"<td>{value_text(c, r)}</td><td class='paper'>{value_text(c, ref)}</td>"
            for c in PAPER_COLUMNS
        )
        + "</tr>"
        for r, ref in pairs
    )
    return (
        f"<h2>Beside the paper</h2><p>Drude-Smith parameters for the anneal temperatures "
        f"of {html.escape(PAPER_CITATION)}.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def provenance(directory: Path, series: dict, steps: list[dict]) -> dict[str, str]:
    """Plan, station, clock and software as recorded: the catalog and the first run file."""
    import labctl
    from labctl.analysis.io import read_csv_table
    from labctl.errors import LabctlError

    header: dict[str, str] = {}
    for s in steps:
        if s["state"] == DONE and s["run_file"]:
            try:
                header = read_csv_table(directory / s["run_file"]).header
            except (LabctlError, ValueError, OSError):
                continue
            break
    doc = {
        "plan": f"{series.get('name')} ({series.get('plan_path')}, digest "
        f"{series.get('plan_digest')})",
        "station": str(series.get("station") or "unknown"),
        "instruments": "unknown (no finished run file)",
        "clock": _clock_text(header.get("Clock", "")),
        "software": header.get("Software version", "unknown")
        + f" (this report: labctl {labctl.__version__})",
        "started": str(series.get("created") or ""),
    }
    try:
        settings = json.loads(header.get("Instrument settings", ""))
    except ValueError:
        settings = {}
    addresses = {
        role: entry.get("address", "")
        for role, entry in settings.items()
        if isinstance(entry, dict) and "address" in entry
    }
    if addresses:
        simulated = [r for r, a in addresses.items() if str(a).startswith("sim://")]
        if len(simulated) == len(addresses):
            doc["instruments"] = "simulated (every instrument sim://: the data are not measured)"
        elif simulated:
            doc["instruments"] = f"mixed: simulated {', '.join(sorted(simulated))}"
        else:
            doc["instruments"] = "real addresses: " + ", ".join(
                f"{r} {a}" for r, a in sorted(addresses.items())
            )
        if settings.get("station"):
            doc["station"] = f"{settings['station']} ({doc['station']})"
    return doc


def _clock_text(clock: str) -> str:
    if clock.startswith("VirtualClock"):
        return "virtual time, instant (a simulation: waits take no wall time)"
    if clock.startswith("ScaledClock"):
        scale = clock.partition("scale=")[2].rstrip(")")
        return f"virtual time at {scale}× real time"
    if clock.startswith("RealClock"):
        return "real time"
    return clock or "unknown"


def render(
    directory: Path,
    series: dict,
    rows: list[dict],
    steps: list[dict],
    events: list[dict],
    plots: list[Path],
    data_files: list[Path],
) -> str:
    title = html.escape(f"Series {series.get('name')}: {series.get('state')}")
    message = html.escape(series.get("message") or "")
    info = provenance(directory, series, steps)
    facts = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in info.items()
    )
    files = " · ".join(
        f"<a href='{html.escape(p.relative_to(directory).as_posix())}'>"
        f"{html.escape(p.relative_to(directory).as_posix())}</a>"
        for p in data_files
    )
    figures = "".join(
        f"<figure class='{'wide' if _wide(p) else ''}'><img src='{html.escape(p.name)}' "
        f"alt='{html.escape(p.stem)}'><figcaption>{html.escape(p.stem.replace('_', ' '))}"
        "</figcaption></figure>"
        for p in plots
    )
    step_rows = "".join(
        "<tr>"
        + "".join(f"<td>{_cell(s.get(k))}</td>" for k in STEP_FIELDS)
        + f"<td><a href='{html.escape(s['run_file'] or '')}'>"
        f"{_cell(Path(s['run_file']).name if s['run_file'] else None)}</a></td>"
        + f"<td>{_cell(s['message'])}</td></tr>"
        for s in steps
    )
    log = "".join(
        f"<li>{html.escape(e['t'])} {html.escape(e['level'])}: {html.escape(e['message'])}</li>"
        for e in events
        if e["level"] != "debug"
    )
    plan_text = html.escape(series.get("plan_text") or "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 32px;color:#222}}
h1{{font-size:1.5em}}h2{{font-size:1.15em;margin-top:1.6em}}
table{{border-collapse:collapse;font-size:90%;margin:4px 0}}
td,th{{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top}}
td{{white-space:nowrap}}.scroll{{overflow-x:auto}}
th{{background:#f4f4f4}}table.facts th,table.facts td{{text-align:left}}
td.paper{{color:#666}}.plots{{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px}}
figure{{margin:0}}figure.wide{{grid-column:1/-1}}img{{width:100%;height:auto}}
figcaption{{font-size:85%;color:#555}}pre{{background:#f6f6f6;padding:8px;font-size:85%}}
.steps td{{text-align:left}}
</style></head><body>
<h1>{title}</h1><p>{message}</p>
<table class="facts">{facts}</table>
<h2>Summary (one row per film and anneal temperature)</h2>
<div class="scroll">{_table(TABLE, rows)}</div>
<p>Data: {files}</p>
{paper_comparison(rows)}
<h2>Plots</h2><div class="plots">{figures}</div>
<h2>Plan</h2><details><summary>plan file as run</summary><pre>{plan_text}</pre></details>
<h2>Steps</h2>
<div class="scroll"><table class="steps"><thead><tr><th>#</th><th>step</th><th>T (°C)</th><th>film</th><th>state</th>
<th>tries</th><th>start</th><th>end</th><th>run file</th><th>message</th></tr></thead>
<tbody>{step_rows}</tbody></table></div>
<h2>Log</h2><ul>{log}</ul>
</body></html>
"""


def _wide(path: Path) -> bool:
    return path.stem in ("conductivity_spectra", "drude_smith_vs_T")


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))
