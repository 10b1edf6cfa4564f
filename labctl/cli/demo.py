"""``labctl demo``: a short annealing study on the simulators, start to finish.

For each temperature a fresh simulated film is annealed on the furnace
controller's own programmer (10 °C/min, 30 min dwell, 120 min controlled
cooling — hours of virtual time in seconds), then UV-Vis absorption and a
THz-TDS scan 0.2 ps after the OPTP peak are recorded through the simulated
instruments (``labctl sim measure``) and analysed with labctl's own analysis
(``labctl analyze``). The output directory holds every run file, one plot per
fit, ``summary.json``/``summary.csv`` and ``summary.png`` comparing the fitted
τ, c, N and μ with the paper's Table 2.

Until the overnight-series runner lands this is the README's demo; it uses
the same instruments, drivers and analysis the series will.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

DEFAULT_TEMPERATURES = (250.0, 300.0, 350.0)


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="anneal, measure and fit a few simulated films (no hardware)",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("--out", default="demo-out", help="output directory (default demo-out)")
    p.add_argument(
        "--temperatures",
        type=float,
        nargs="+",
        default=list(DEFAULT_TEMPERATURES),
        metavar="T_C",
        help="anneal temperatures, °C (default 250 300 350)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated noise")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _measure(kind: str, anneal_c: float, out: Path, args) -> dict:
    from labctl.cli import sim_measure

    ns = argparse.Namespace(
        measure_kind=kind,
        anneal_c=anneal_c,
        dwell_min=30.0,
        ramp_c_per_min=10.0,
        seed=args.seed,
        noise_free=False,
        # Table 2 from one averaged file: white noise (realistic noise needs the per-sweep
        # errors of a recorded run, see docs/analysis.md)
        noise="white",
        slot=1,
        station=None,
        out=str(out),
        quiet=args.quiet,
    )
    if kind == "tds":
        ns.__dict__.update(
            t_start_ps=-4.0, t_stop_ps=12.0, step_ps=0.05, sweeps=4, time_constant_s=0.1
        )
        sim_measure.run_tds(ns)
    else:
        ns.__dict__.update(integration_ms=100.0, averages=10, wl_min=380.0, wl_max=850.0)
        sim_measure.run_absorption(ns)
    return json.loads(out.with_suffix(".json").read_text())


def _analyze(argv: list[str]) -> dict:
    """Run ``labctl analyze … --json`` in-process and return its JSON object."""
    from labctl.cli import main
    from labctl.errors import LabctlError

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["analyze", *argv, "--json"])
    if code != 0:
        raise LabctlError(f"labctl analyze {' '.join(argv)} failed (exit {code})")
    return json.loads(buf.getvalue())


def run(args: argparse.Namespace) -> int:
    from labctl import paper
    from labctl.errors import LabctlError

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if any(not 25.0 <= t <= 400.0 for t in args.temperatures):
        raise LabctlError("--temperatures: anneal temperatures must lie in 25–400 °C")
    rows = []
    for t_c in args.temperatures:
        tag = f"{t_c:g}C"
        abs_csv, tds_csv = out / f"absorption_{tag}.csv", out / f"tds_{tag}.csv"
        abs_meta = _measure("absorption", t_c, abs_csv, args)
        tds_meta = _measure("tds", t_c, tds_csv, args)
        absorption = _analyze(
            ["absorption", str(abs_csv), "--plot", str(out / f"absorption_{tag}.png")]
        )
        fit = _analyze(
            [
                "tds",
                str(tds_csv),
                "--thickness-nm",
                f"{tds_meta['thickness_nm']:g}",
                "--substrate-index",
                f"{tds_meta['substrate_index']:g}",
                "--plot",
                str(out / f"tds_{tag}.png"),
            ]
        )
        hh = (absorption["peaks"] or {}).get("hh") or {}
        tauc = absorption.get("tauc") or {}
        row = {
            "anneal_c": t_c,
            "distance_nm_true": abs_meta["true"].get("distance_nm"),
            "hh_exciton_nm": hh.get("wavelength_nm"),
            "tauc_gap_ev": tauc.get("gap_eV"),
            **{k: fit.get(k) for k in ("tau_fs", "c", "N_m3", "mobility_cm2_Vs")},
            **{f"{k}_err": fit.get(f"{k}_err") for k in ("tau_fs", "c", "N_m3", "mobility_cm2_Vs")},
            "chi2_red": fit.get("chi2_red"),
            "paper": paper.TABLE2.get(round(t_c)),
            "files": {"absorption": abs_csv.name, "tds": tds_csv.name},
        }
        rows.append(row)
    (out / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    _write_csv(out / "summary.csv", rows)
    _plot(out / "summary.png", rows)
    _print_table(rows, out)
    return 0


def _write_csv(path: Path, rows: list[dict]) -> None:
    import csv

    keys = [k for k in rows[0] if k not in ("paper", "files")]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _plot(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from labctl import paper

    t = [r["anneal_c"] for r in rows]
    panels = (
        ("tau_fs", "τ (fs)"),
        ("c", "c"),
        ("N_m3", "N (m⁻³)"),
        ("mobility_cm2_Vs", "μ (cm²/Vs)"),
    )
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
    for ax, (key, label) in zip(axes, panels, strict=True):
        ax.errorbar(
            t,
            [r[key] for r in rows],
            yerr=[r[f"{key}_err"] or 0 for r in rows],
            fmt="o",
            label="labctl (simulated)",
        )
        if key in ("tau_fs", "c", "N_m3"):
            pt = sorted(paper.TABLE2)
            ax.errorbar(
                pt,
                [paper.TABLE2[k][key] for k in pt],
                yerr=[paper.TABLE2[k][f"{key}_err"] for k in pt],
                fmt="s",
                mfc="none",
                color="k",
                label="paper, Table 2",
            )
        ax.set_xlabel("anneal temperature (°C)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cell(value, error, scale=1.0, fmt=".1f") -> str:
    if value is None:
        return "–"
    if error is None:
        return f"{value / scale:{fmt}}"
    return f"{value / scale:{fmt}}±{error / scale:{fmt}}"


def _print_table(rows: list[dict], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Simulated annealing study: fits by labctl, paper's Table 2 below each")
    for col in ("anneal", "HH (nm)", "Eg (eV)", "τ (fs)", "c", "N (10²¹/m³)", "μ (cm²/Vs)"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            f"{r['anneal_c']:g} °C",
            f"{r['hh_exciton_nm']:.1f}" if r["hh_exciton_nm"] else "–",
            f"{r['tauc_gap_ev']:.2f}" if r["tauc_gap_ev"] and not r["hh_exciton_nm"] else "–",
            _cell(r["tau_fs"], r["tau_fs_err"]),
            _cell(r["c"], r["c_err"], fmt=".3f"),
            _cell(r["N_m3"], r["N_m3_err"], 1e21, ".3f"),
            _cell(r["mobility_cm2_Vs"], r["mobility_cm2_Vs_err"], fmt=".0f"),
        )
        p = r["paper"]
        if p:
            table.add_row(
                "[dim]paper[/dim]",
                "",
                "",
                f"[dim]{_cell(p['tau_fs'], p['tau_fs_err'], fmt='.0f')}[/dim]",
                f"[dim]{_cell(p['c'], p['c_err'], fmt='.2f')}[/dim]",
                f"[dim]{_cell(p['N_m3'], p['N_m3_err'], 1e21, '.2f')}[/dim]",
                "",
            )
    console = Console(width=max(Console().width, 100))
    console.print(table)
    console.print(f"run files, plots and summary.json/summary.csv/summary.png in {out}/")
