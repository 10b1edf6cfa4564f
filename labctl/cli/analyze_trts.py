"""``labctl analyze trts PUMPED --reference REF``: 2D time-resolved THz spectroscopy.

One TDS analysis per pump delay (the same photoconductivity, significance test and fit
as ``labctl analyze tds``); ``--json`` prints one object whose ``delays`` list holds,
per pump delay, ``pump_delay_ps`` and the fit keys of ``analyze tds``. Delays where
Δσ changes within the THz pulse are flagged as fitted under a quasi-static assumption,
unless ``--frame constant-pump-probe`` moved the data to a constant pump-probe-delay
frame first (see :mod:`labctl.analysis.trts`). Geometry: transmission (thin film on a
substrate).
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from labctl.cli.analyze import MODEL_CHOICES, _bad_file_exits_2

    r = sub.add_parser(
        "trts",
        help="2D time-resolved THz: a fit per pump delay, τ(t), N(t), μ(t) (transmission)",
        description=(
            "PUMPED: a matrix, gate time down the first column, pump delays across the first "
            "row, cells E_pumped (or ΔE with --field dE); REF: the reference waveform on the "
            "same gate grid. Transmission geometry (thin film on a substrate)."
        ),
    )
    r.add_argument("pumped", metavar="PUMPED")
    r.add_argument("--reference", required=True, metavar="REF")
    r.add_argument("--field", choices=("pumped", "dE"), default="pumped",
                   help="what the matrix cells are (default: E_pumped)")  # fmt: skip
    r.add_argument("--time-unit", choices=("fs", "ps", "mm-single", "mm-double"),
                   help="gate-time unit (else from the headers)")  # fmt: skip
    r.add_argument("--pump-delay-unit", choices=("fs", "ps", "mm-single", "mm-double"),
                   default="ps", help="unit of the first row (default ps)")  # fmt: skip
    r.add_argument("--columns", metavar="ROLE=COL,...", help="reference file roles: time, field")
    r.add_argument("--thickness-nm", type=float, required=True)
    r.add_argument("--substrate-index", type=float, required=True)
    r.add_argument("--effective-mass", type=float, default=0.13)
    r.add_argument("--fmin", type=float, default=0.3)
    r.add_argument("--fmax", type=float, default=2.2)
    r.add_argument("--model", choices=MODEL_CHOICES, default="drude-smith")
    r.add_argument(
        "--frame", choices=("as-measured", "constant-pump-probe"), default="as-measured",
        help="constant-pump-probe: resample to t_pp = t_pump + t_gate before fitting",
    )  # fmt: skip
    r.add_argument("--json", action="store_true")
    r.add_argument("--plot", metavar="OUT.png", help="τ, N, μ against pump delay")
    r.set_defaults(func=_bad_file_exits_2(run_trts))


def _fit_delay(gate, e_ref, de, args) -> dict:
    """One pump delay: the one TDS analysis (``labctl.analysis.tds_analysis.analyze_tds``:
    significance first, null values when not significant)."""
    from labctl.analysis.tds_analysis import analyze_tds

    analysis = analyze_tds(
        gate, e_ref, de, thickness_m=args.thickness_nm * 1e-9,
        substrate_index=args.substrate_index, effective_mass=args.effective_mass,
        fmin_hz=args.fmin * 1e12, fmax_hz=args.fmax * 1e12, model=args.model,
    )  # fmt: skip
    return analysis.to_dict()


def run_trts(args: argparse.Namespace) -> int:
    import numpy as np

    from labctl.analysis import formats, trts
    from labctl.cli.analyze import _check_plot_path, _check_positive, _print_json
    from labctl.errors import AnalysisError

    for name in ("thickness_nm", "substrate_index", "effective_mass", "fmin", "fmax"):
        _check_positive("--" + name.replace("_", "-"), getattr(args, name))
    _check_plot_path(args.plot)
    data = trts.load_trts(
        args.pumped, args.reference, field=args.field, time_unit=args.time_unit,
        pump_unit=args.pump_delay_unit, columns=formats.parse_columns_option(args.columns),
    )  # fmt: skip
    width = trts.pulse_duration_ps(data.gate_ps, data.e_ref)
    change = trts.change_over_pulse(data)
    onset = trts.onset_ps(data)
    pumps, de = data.pump_delay_ps, data.delta_e
    if args.frame == "constant-pump-probe":
        peak = data.gate_ps[int(np.argmax(np.abs(data.e_ref)))]
        pumps, de = trts.constant_pump_probe_frame(data.gate_ps - peak, pumps, de)
        change = np.interp(pumps, data.pump_delay_ps, change)
    delays = []
    for j, t_pump in enumerate(pumps):
        try:
            r = _fit_delay(data.gate_ps, data.e_ref, de[:, j], args)
        except AnalysisError as exc:
            r = {"success": False, "error": str(exc), "warnings": []}
        fast = bool(np.isfinite(change[j]) and change[j] > trts.QUASI_STATIC_CHANGE)
        early = bool(onset - width <= t_pump <= onset + trts.EARLY_PS)
        assumed = args.frame == "as-measured" and (fast or early)
        r = {"pump_delay_ps": float(t_pump)} | r
        r["change_over_pulse"] = None if not np.isfinite(change[j]) else float(change[j])
        r["quasi_static_assumed"] = assumed
        if assumed:
            r["warnings"].append(
                f"Δσ changes by {100 * change[j]:.0f} % within the THz pulse ({width:.2f} ps) "
                if fast else f"within {trts.EARLY_PS:g} ps of the onset ({onset:g} ps) "
            )  # fmt: skip
            r["warnings"][-1] += (
                "at this delay: the fit assumes a quasi-static response (use --frame "
                "constant-pump-probe; Kindt & Schmuttenmaer 1999, Němec et al. 2002)"
            )
        delays.append(r)
    result = {
        "file": str(args.pumped),
        "reference": str(args.reference),
        "input": data.detected,
        "frame": args.frame,
        "pulse_duration_ps": width,
        "onset_ps": onset,
        "geometry": "transmission",
        "thickness_nm": args.thickness_nm,
        "substrate_index": args.substrate_index,
        "delays": delays,
    }
    if args.plot:
        _plot(args.plot, delays)
        result["plot"] = args.plot
    if args.json:
        _print_json(result)
    else:
        _table(result)
    return 0


_COLUMNS = (("τ (fs)", "tau_fs"), ("N (m⁻³)", "N_m3"), ("μ (cm²/Vs)", "mobility_cm2_Vs"))


def _plot(path, delays) -> None:
    from labctl.cli.analyze import _pyplot, _save_figure

    plt = _pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(6, 7), sharex=True)
    t = [d["pump_delay_ps"] for d in delays]
    for ax, (label, key) in zip(axes, _COLUMNS, strict=True):
        y = [d.get(key) if d.get(key) is not None else float("nan") for d in delays]
        e = [d.get(f"{key}_err") or 0.0 for d in delays]
        ax.errorbar(t, y, yerr=e, fmt="o-", ms=3, capsize=2)
        ax.set_ylabel(label)
    axes[-1].set_xlabel("pump delay (ps)")
    _save_figure(plt, fig, path)


def _table(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from labctl.cli.analyze import _fmt

    console = Console()
    info = r["input"]
    console.print(f"input: {info['layout']}; gate time {info['gate_time_unit']}; "
                  f"pump delay {info['pump_delay_unit']}; {info['fields']}")  # fmt: skip
    console.print(f"frame: {r['frame']}; THz pulse {r['pulse_duration_ps']:.2f} ps; "
                  f"onset {r['onset_ps']:g} ps")  # fmt: skip
    table = Table(title=f"TRTS fits of {r['file']}")
    table.add_column("pump delay (ps)", justify="right")
    for label, _ in _COLUMNS:
        table.add_column(label, justify="right")
    table.add_column("quasi-static assumed")
    for d in r["delays"]:
        cells = [" ± ".join(x for x in _fmt(d.get(k), d.get(f"{k}_err")) if x) for _, k in _COLUMNS]
        table.add_row(f"{d['pump_delay_ps']:g}", *cells, "yes" if d["quasi_static_assumed"] else "")
    console.print(table)
