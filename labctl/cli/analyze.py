"""``labctl analyze``: THz-TDS photoconductivity fits, OPTP traces, UV-Vis absorption.

numpy/scipy/lmfit/matplotlib are imported inside the command functions so
``labctl --help`` stays fast. Errors are :class:`labctl.errors.LabctlError`s, printed
as one line: a data file that is malformed or physically impossible
(:class:`~labctl.errors.DataFileError`) exits with code 2, like other bad input; an
analysis that cannot give an answer exits with code 1.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
from pathlib import Path

from labctl.cli import analyze_trts
from labctl.cli.analyze_input import add_input_options

MODEL_CHOICES = (
    "auto",
    "drude-smith",
    "drude-smith+polarizability",
    "drude",
    "lorentz",
    "drude-smith+lorentz",
)
#: ``--noise``: photoconductivity's noise modes a user may ask for
NOISE_CHOICES = ("auto", "sweeps", "model", "baseline")


#: Exit code for a data file refused as malformed or physically impossible.
EXIT_BAD_INPUT = 2


def _bad_file_exits_2(run):
    """Wrap a ``run_*``: a :class:`DataFileError` is printed as one line, exit code 2."""

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        from labctl.errors import DataFileError

        try:
            return run(args)
        except DataFileError as exc:
            print(f"labctl analyze: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT

    return wrapper


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="analyse TDS, OPTP and absorption data files",
        description="Analyse THz-TDS, OPTP and UV-Vis data files (CSV, header line first).",
    )
    sub = p.add_subparsers(dest="analysis", metavar="KIND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    t = sub.add_parser(
        "tds",
        help="complex photoconductivity from a TDS scan (transmission or reflection), with a fit",
        description=(
            "FILE columns: time_ps,E_ref,dE (dE = E_pumped - E_ref), equally spaced; or a "
            "'labctl run tds' file (sweeps averaged; thickness and substrate index from its "
            "header); or another program's table (tab/blank/comma/semicolon separated, decimal "
            "comma, metadata lines; what was detected is printed); or waveform sets "
            "(--reference/--pumped). Geometries: transmission (thin film on a substrate) and "
            "reflection (thin excited layer on a bulk substrate), normal or oblique incidence."
        ),
    )
    t.add_argument("file", metavar="FILE", nargs="?")
    t.add_argument(
        "--thickness-nm", type=float, help="film thickness, nm (default: the run file's header)"
    )
    t.add_argument(
        "--substrate-index",
        type=float,
        help="substrate THz index (default: the run file's header)",
    )
    t.add_argument(
        "--effective-mass",
        type=float,
        help="m*/m_e (default: the run file's header, else 0.13)",
    )
    t.add_argument("--fmin", type=float, default=0.3, help="lowest fitted frequency, THz")
    t.add_argument("--fmax", type=float, default=2.2, help="highest fitted frequency, THz")
    t.add_argument(
        "--model",
        choices=MODEL_CHOICES,
        default="auto",
        help="auto (default): Drude-Smith, with a bound-charge polarizability when the data need it",
    )
    t.add_argument(
        "--fit-method", choices=("fast", "lmfit"), default="fast", help="least_squares or lmfit"
    )
    t.add_argument(
        "--window",
        default=None,
        help="FFT window: scipy name (e.g. hann), or NAME,PARAM (e.g. tukey,0.2, kaiser,8.6)",
    )
    t.add_argument(
        "--pad-factor", type=float, default=1.0, help="zero-padding factor, 1 to 16 (default 1)"
    )
    t.add_argument(
        "--small-signal", action="store_true", help="use -(1+n)/(Z0 d)·dE/E_ref, not the exact form"
    )
    t.add_argument(
        "--noise",
        choices=NOISE_CHOICES,
        default=None,
        help="where the errors come from: auto (the scatter of ≥ 3 sweeps, the noise model "
        "with 2, the baseline with 1), sweeps, model (the time-domain noise model, ≥ 2 "
        "sweeps) or baseline; default: model for a 'labctl run tds --target' file (what "
        "the run reported), else auto",
    )
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.add_argument("--plot", metavar="OUT.png", help="write Re/Im Δσ with the fit")
    add_input_options(t)
    t.set_defaults(func=_bad_file_exits_2(run_tds))

    analyze_trts.register(sub)

    o = sub.add_parser(
        "optp",
        help="OPTP trace: peak, normalisation by absorbed photons, decay fit",
        description=(
            "FILE columns: pump_delay_ps and either minus_dE_over_E or E_ref_peak,dE_peak "
            "(optional minus_dE_over_E_err). Normalise with --fluence-uJcm2 or "
            "--pump-power-mW/--rep-rate-kHz/--spot-diameter-mm, and --absorptance."
        ),
    )
    o.add_argument("file", metavar="FILE.csv")
    o.add_argument("--fluence-uJcm2", type=float, help="pump fluence, µJ/cm²")
    o.add_argument("--pump-power-mW", type=float, help="average pump power, mW")
    o.add_argument("--rep-rate-kHz", type=float, help="repetition rate, kHz")
    o.add_argument("--spot-diameter-mm", type=float, help="pump spot diameter, mm")
    o.add_argument("--profile", choices=("flat-top", "gaussian"), default="flat-top")
    o.add_argument("--absorptance", type=float, help="film absorptance at the pump (0–1)")
    o.add_argument("--photon-energy-eV", type=float, default=3.10)
    o.add_argument(
        "--substrate-index", type=float, help="default: the run file's header, else 1.95"
    )
    o.add_argument("--n-exp", type=int, default=2, help="number of exponentials, 1–4 (default 2)")
    o.add_argument("--irf-fwhm-ps", type=float, help="fix the instrument response FWHM, ps")
    o.add_argument("--no-fit", action="store_true", help="peak only, no decay fit")
    o.add_argument("--json", action="store_true")
    o.add_argument("--plot", metavar="OUT.png")
    o.set_defaults(func=_bad_file_exits_2(run_optp))

    a = sub.add_parser(
        "absorption",
        help="UV-Vis: exciton peaks and Tauc gap",
        description="FILE columns: wavelength_nm and absorbance, or sample,reference[,dark].",
    )
    a.add_argument("file", metavar="FILE.csv")
    a.add_argument(
        "--search-nm", type=float, nargs=2, default=(400.0, 700.0), metavar=("MIN", "MAX")
    )
    a.add_argument("--tauc-range-eV", type=float, nargs=2, metavar=("LO", "HI"))
    a.add_argument("--tauc-max-eV", type=float, help="cap the automatic Tauc search range")
    a.add_argument("--thickness-nm", type=float, help="film thickness (scales α only)")
    a.add_argument("--json", action="store_true")
    a.add_argument("--plot", metavar="OUT.png")
    a.set_defaults(func=_bad_file_exits_2(run_absorption))


# ---------------------------------------------------------------- helpers


def _clean(obj):
    """JSON-safe: numpy scalars → float, non-finite → None."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _print_json(obj) -> None:
    print(json.dumps(_clean(obj), allow_nan=False))


def _fmt(v, e=None) -> tuple[str, str]:
    if v is None:
        return "—", ""
    return f"{v:.4g}", ("" if e is None else f"{e:.2g}")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _check_positive(name: str, value) -> None:
    """None passes; otherwise a finite number > 0 (inf and nan are refused)."""
    from labctl.errors import AnalysisError

    if value is not None and not (math.isfinite(value) and value > 0):
        raise AnalysisError(f"{name} must be a finite positive number, got {value}")


def _check_range(name: str, lo_hi) -> None:
    """A (low, high) option pair: both finite positive, low < high."""
    from labctl.errors import AnalysisError

    if lo_hi is None:
        return
    lo, hi = lo_hi
    _check_positive(f"{name} (low)", lo)
    _check_positive(f"{name} (high)", hi)
    if not lo < hi:
        raise AnalysisError(f"{name}: the first value ({lo}) must be below the second ({hi})")


def _check_plot_path(path) -> None:
    """Fail before any work if the plot cannot be written: directory missing or not
    writable, path is a directory, or the extension is not a matplotlib format."""
    from labctl.errors import AnalysisError

    if path is None:
        return
    p = Path(path)
    where = f"--plot {path}"
    if p.is_dir():
        raise AnalysisError(f"{where}: is a directory, expected a file name such as fit.png")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise AnalysisError(f"{where}: directory {parent} does not exist")
    if not parent.is_dir():
        raise AnalysisError(f"{where}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise AnalysisError(f"{where}: directory {parent} is not writable")
    if p.exists() and not os.access(p, os.W_OK):
        raise AnalysisError(f"{where}: file exists and is not writable")
    suffix = p.suffix.lower().lstrip(".")
    if suffix:
        from matplotlib.backend_bases import FigureCanvasBase

        formats = FigureCanvasBase.get_supported_filetypes()
        if suffix not in formats:
            raise AnalysisError(
                f"{where}: unknown image format .{suffix} (use one of {', '.join(sorted(formats))})"
            )


def _parse_window(text):
    """``--window`` value: ``NAME`` or ``NAME,PARAM[,PARAM…]`` → scipy window spec."""
    from labctl.errors import AnalysisError

    if text is None:
        return None
    name, *params = [s.strip() for s in text.split(",")]
    if not params:
        return name
    try:
        values = tuple(float(v) for v in params)
    except ValueError:
        raise AnalysisError(
            f"--window {text!r}: window parameters must be numbers (e.g. tukey,0.2)"
        ) from None
    if not all(math.isfinite(v) for v in values):
        raise AnalysisError(f"--window {text!r}: window parameters must be finite")
    return (name, *values)


# ---------------------------------------------------------------- tds


def run_tds(args: argparse.Namespace) -> int:
    from labctl.analysis.tds import check_pad_factor, make_window
    from labctl.analysis.tds_analysis import analyze_tds, noise_for_run
    from labctl.cli import analyze_input
    from labctl.errors import AnalysisError

    _check_positive("--thickness-nm", args.thickness_nm)
    _check_positive("--substrate-index", args.substrate_index)
    _check_positive("--effective-mass", args.effective_mass)
    _check_positive("--fmin", args.fmin)
    _check_positive("--fmax", args.fmax)
    if args.fmin >= args.fmax:
        raise AnalysisError(f"--fmin ({args.fmin}) must be below --fmax ({args.fmax})")
    try:
        check_pad_factor(args.pad_factor)
        window = _parse_window(args.window)
        make_window(16, window)
    except AnalysisError as exc:
        opt = "--pad-factor" if "padding" in str(exc) else "--window"
        raise AnalysisError(f"{opt}: {exc}") from None
    _check_plot_path(args.plot)
    analyze_input.check_input_options(args)
    data = _tds_data_and_sample(args)
    sweeps = data.e_ref_sweeps is not None
    if args.noise is None:
        n_sweeps = data.e_ref_sweeps.shape[0] if sweeps else 1
        args.noise = noise_for_run(data.header or {}, n_sweeps)
    _check_positive("--thickness-nm (or the header's film thickness)", args.thickness_nm)
    _check_positive("--substrate-index (or the header's substrate index)", args.substrate_index)
    _check_positive("--excitation-depth-nm", args.excitation_depth_nm)
    method, thickness_m = analyze_input.conductivity_method(args)
    try:
        analysis = analyze_tds(
            data.time_ps,
            data.e_ref_sweeps if sweeps else data.e_ref,
            data.delta_e_sweeps if sweeps else data.delta_e,
            thickness_m=thickness_m,
            substrate_index=args.substrate_index,
            effective_mass=args.effective_mass,
            fmin_hz=args.fmin * 1e12,
            fmax_hz=args.fmax * 1e12,
            model=args.model,
            window=window,
            pad_factor=args.pad_factor,
            method=method,
            fit_method=args.fit_method,
            notes=data.notes,
            noise=args.noise,
        )
        analyze_input.refuse_negative_real(args, analysis.spectrum, analysis.test)
    except AnalysisError as exc:
        raise AnalysisError(f"{args.file}: {exc}") from None
    result = {"file": str(args.file)} | analysis.to_dict()
    result |= {
        "thickness_nm": args.thickness_nm,
        "n_time_points": int(data.time_ps.size),
        "sweeps": sweeps,
    }
    if data.overload:  # read with the data (a second read doubled the time on 1 M rows)
        result["warnings"].append(data.overload)
    analyze_input.add_input_result(result, args, data, method)
    if args.plot:
        shown = analysis.fit if analysis.significant is not False else None
        _plot_tds(args.plot, analysis.spectrum, shown)
        result["plot"] = args.plot
    if args.json:
        _print_json(result)
    else:
        _table_tds(result)
    return 0


def _tds_data_and_sample(args):
    """The TDS data; fills ``--thickness-nm``/``--substrate-index`` from a run file's header."""
    from labctl.analysis.constants import DEFAULT_EFFECTIVE_MASS
    from labctl.analysis.tds_analysis import HEADER_NAMES, sample_from_header
    from labctl.cli.analyze_input import load_tds_input, needs_thickness
    from labctl.errors import AnalysisError

    data = load_tds_input(args)
    if args.file is None:
        args.file = data.path  # waveform sets: "N reference + M pumped file(s)"
    if args.substrate_index is None and args.substrate_index_table:
        args.substrate_index = 1.0  # unused: the table gives ñ(f)
    if not needs_thickness(args) and args.thickness_nm is None:
        args.thickness_nm = 1.0  # unused: reflection gives Δσ·d (see conductivity_method)
    sample = sample_from_header(data.header)
    for option, attr in (
        ("--thickness-nm", "thickness_nm"),
        ("--substrate-index", "substrate_index"),
    ):
        if getattr(args, attr) is None:
            if sample[attr] is None:
                name = HEADER_NAMES[attr]
                where = "its header has no" if data.header else "it is not a run file with a"
                raise AnalysisError(f"{args.file}: give {option} ({where} '{name}')")
            setattr(args, attr, sample[attr])
    if args.effective_mass is None:
        args.effective_mass = sample["effective_mass"] or DEFAULT_EFFECTIVE_MASS
    return data


def _table_tds(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from labctl.cli import analyze_input

    table = Table(title=f"{r['model']} fit of {r['file']}")
    table.add_column("parameter")
    table.add_column("value", justify="right")
    table.add_column("± 1σ", justify="right")
    table.add_column("unit")
    rows = [
        ("τ", "tau_fs", "fs"),
        ("c", "c", ""),
        ("N", "N_m3", "m⁻³"),
        ("μ (DC)", "mobility_cm2_Vs", "cm²/Vs"),
        ("χ_b", "chi_bound", ""),
        ("N_X", "N_X_m3", "m⁻³"),
        ("f₀", "f0_THz", "THz"),
        ("γ/2π", "gamma_THz", "THz"),
    ]
    for label, key, unit in rows:
        if key in r and r[key] is not None:
            table.add_row(label, *_fmt(r[key], r.get(f"{key}_err")), unit)
    if r["chi2_red"] is not None:
        table.add_row("χ²_red", f"{r['chi2_red']:.3g}", "", f"dof {r['dof']}")
    table.add_row("window", f"{r['fmin_THz']:.2f}–{r['fmax_THz']:.2f}", "", "THz")
    console = Console()
    analyze_input.print_input(console, r)
    console.print(table)
    console.print(
        f"errors from: {r['noise_source'] or 'none (errors scaled by χ²_red)'}"
        f" ({r['n_sweeps']} sweep{'s' if r['n_sweeps'] != 1 else ''})"
    )
    sel = r.get("model_selection")
    if sel:
        console.print(f"model: {sel['chosen']} ({sel['rule']}; p = {_g(sel['p_value'])})")
    if r["errors_are_lower_bounds"]:
        console.print(
            "[yellow]note: these errors are lower bounds[/yellow]: the pre-pulse baseline of one "
            "trace holds neither multiplicative noise, timebase jitter nor drift; record ≥ 2 "
            "sweeps for honest errors"
        )
    if r["significant"] is None:
        console.print("significance: not assessable from one trace (significant: null)")
    elif not r["significant"]:
        console.print(
            f"[red]ΔE is not significant[/red] (p = {r['significance_p_value']:.2g}): "
            "no photoconductivity measured"
        )
    if not r["success"]:
        console.print("[red]fit flagged unsuccessful[/red] (see the warnings)")
    for w in r["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")


def _g(value) -> str:
    return "—" if value is None else f"{value:.2g}"


def _display_points(x, y, max_points: int = 5000):
    """At most ``max_points`` for a plot: means of consecutive points (a million
    markers would take minutes to draw and show nothing more)."""
    from labctl.analysis.optp import bin_trace

    x_b, y_b, _, _ = bin_trace(x, y, max_points=max_points)
    return x_b, y_b


def _save_figure(plt, fig, path) -> None:
    """Lay out, write and release a figure (the same for every plot here)."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_tds(path, spec, fit) -> None:
    """Re/Im Δσ with errors, and the fit (None: a null measurement, data only)."""
    import numpy as np

    plt = _pyplot()
    f = spec.freq_hz / 1e12
    fig, ax = plt.subplots(figsize=(6, 4))
    err = spec.sigma_err
    ax.errorbar(f, spec.sigma.real, yerr=err, fmt="o", ms=3, color="C3", label="Re Δσ")
    ax.errorbar(f, spec.sigma.imag, yerr=err, fmt="s", ms=3, color="k", label="Im Δσ")
    if fit is not None:
        fine = np.linspace(spec.freq_hz.min(), spec.freq_hz.max(), 300)
        model = fit.evaluate(fine)
        ax.plot(fine / 1e12, model.real, color="C3")
        ax.plot(fine / 1e12, model.imag, color="k")
        ax.set_title(f"{fit.model}: χ²_red = {fit.chi2_red:.2f}")
    else:
        ax.set_title("ΔE not significant: no fit shown")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xlabel("frequency (THz)")
    ax.set_ylabel("Δσ (S/m)")
    ax.legend()
    _save_figure(plt, fig, path)


# ---------------------------------------------------------------- optp


def _fluence(args):
    """Pump fluence (J/m²) from the options, or None if none given."""
    from labctl.analysis import optp
    from labctl.errors import AnalysisError

    power = (args.pump_power_mW, args.rep_rate_kHz, args.spot_diameter_mm)
    if args.fluence_uJcm2 is not None:
        if any(v is not None for v in power):
            raise AnalysisError(
                "give either --fluence-uJcm2 or --pump-power-mW/--rep-rate-kHz/"
                "--spot-diameter-mm, not both"
            )
        return args.fluence_uJcm2 * 1e-6 / 1e-4  # µJ/cm² → J/m²
    if all(v is None for v in power):
        return None
    if None in power:
        raise AnalysisError(
            "the pump-power route needs all of --pump-power-mW, --rep-rate-kHz, --spot-diameter-mm"
        )
    return optp.fluence_j_m2(
        args.pump_power_mW * 1e-3,
        args.rep_rate_kHz * 1e3,
        args.spot_diameter_mm * 1e-3,
        args.profile,
    )


def _check_optp_options(args) -> None:
    from labctl.errors import AnalysisError

    for name in (
        "fluence_uJcm2",
        "pump_power_mW",
        "rep_rate_kHz",
        "spot_diameter_mm",
        "photon_energy_eV",
        "substrate_index",
        "irf_fwhm_ps",
    ):
        _check_positive("--" + name.replace("_", "-"), getattr(args, name))
    a = args.absorptance
    if a is not None and not (math.isfinite(a) and 0 < a <= 1):
        raise AnalysisError(f"--absorptance must be in (0, 1], got {a}")
    if not 1 <= args.n_exp <= 4:
        raise AnalysisError(f"--n-exp must be 1 to 4, got {args.n_exp}")
    _check_plot_path(args.plot)


def _optp_guards(path, t, y) -> list[str]:
    """Refuse a trace of the wrong sign; warn when its maximum sits at an edge of the scan.

    A photoexcited film lowers the transmitted field: −ΔE/E > 0. A trace whose largest
    excursion is negative (beyond the point-to-point scatter) is refused, naming the
    likely causes; a maximum on the first or last two points may lie outside the scan.
    """
    import numpy as np

    from labctl.errors import AnalysisError

    scatter = float(np.std(np.diff(y)) / np.sqrt(2)) if y.size > 2 else 0.0
    lo, hi = float(np.min(y)), float(np.max(y))
    if -lo > max(hi, 0.0) and -lo > 5 * scatter:
        raise AnalysisError(
            f"{path}: the trace is negative (−ΔE/E reaches {lo:.3g}, its maximum only "
            f"{hi:.3g}): a photoexcited film gives −ΔE/E > 0; check the sign of dE, the "
            "lock-in phase, or the geometry"
        )
    i = int(np.argmax(y))
    if i <= 1 or i >= y.size - 2:
        side = "start" if i <= 1 else "end"
        return [
            f"the maximum of −ΔE/E sits at the {side} of the scan ({t[i]:g} ps): the true "
            "peak may lie outside it; extend the pump-delay range"
        ]
    return []


def _optp_run_file_pump(args, data) -> tuple[float | None, float | None, list[str]]:
    """Fluence (J/m²) and absorptance for ``analyze optp``: the options first, else what a
    ``labctl run optp`` file says (its header's Parameters; a fluence measured with the
    power meter is in its run summary beside it)."""
    from labctl.analysis.io import header_number
    from labctl.analysis.optp_analysis import absorptance_from

    fluence = _fluence(args)
    absorptance = args.absorptance
    notes: list[str] = []
    if not data.header:
        return fluence, absorptance, notes
    if fluence is None:
        uj = header_number(data.header, "Pump fluence")
        if uj is None:
            from labctl.runs import summary_path

            try:
                summary = json.loads(summary_path(args.file).read_text())
                uj = (summary.get("results") or {}).get("fluence_uj_cm2")
            except (OSError, ValueError):
                uj = None
        if uj is not None:
            fluence = float(uj) * 1e-2  # µJ/cm² → J/m²
            notes.append(f"fluence {float(uj):.4g} µJ/cm² from the run file")
    if absorptance is None:
        absorptance = absorptance_from(
            header_number(data.header, "Absorptance at 400 nm"),
            header_number(data.header, "Absorbance at 400 nm"),
        )
    if args.substrate_index is None:
        args.substrate_index = header_number(data.header, "Substrate index")
    return fluence, absorptance, notes


def run_optp(args: argparse.Namespace) -> int:
    from labctl.analysis.constants import DEFAULT_SUBSTRATE_INDEX
    from labctl.analysis.io import load_optp_csv, overload_warning
    from labctl.analysis.optp_analysis import analyze_optp
    from labctl.errors import AnalysisError

    _check_optp_options(args)
    if args.absorptance is not None and _fluence(args) is None:
        raise AnalysisError(
            "--absorptance needs --fluence-uJcm2 or all of --pump-power-mW, "
            "--rep-rate-kHz, --spot-diameter-mm"
        )
    data = load_optp_csv(args.file)
    fluence, absorptance, notes = _optp_run_file_pump(args, data)
    if args.substrate_index is None:
        args.substrate_index = DEFAULT_SUBSTRATE_INDEX
    guard_warnings = _optp_guards(args.file, data.pump_delay_ps, data.minus_de_over_e)
    signal = (
        data.minus_de_over_e_sweeps
        if data.minus_de_over_e_sweeps is not None
        else data.minus_de_over_e
    )
    try:
        analysis = analyze_optp(
            data.pump_delay_ps,
            signal,
            data.minus_de_over_e_err,
            fluence_j_m2=fluence,
            absorptance=absorptance,
            photon_energy_ev=args.photon_energy_eV,
            substrate_index=args.substrate_index,
            n_exp=args.n_exp,
            irf_fwhm_ps=args.irf_fwhm_ps,
            fit=not args.no_fit,
        )
    except AnalysisError as exc:
        raise AnalysisError(f"{args.file}: {exc}") from None
    result: dict = {"file": str(args.file)} | analysis.to_dict()
    result["warnings"] = list(data.notes) + notes + guard_warnings + result["warnings"]
    if overloaded := overload_warning(args.file):
        result["warnings"].append(overloaded)
    if not args.no_fit and analysis.decay is None and analysis.significant is not False:
        raise AnalysisError(f"{args.file}: {analysis.decay_error}")
    fit = analysis.decay
    peak = result["optp_peak"]
    if args.plot:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(
            *_display_points(data.pump_delay_ps, data.minus_de_over_e), "o", ms=3, label="−ΔE/E"
        )
        if fit is not None:
            import numpy as np

            tt = np.linspace(data.pump_delay_ps[0], data.pump_delay_ps[-1], 1000)
            ax.plot(tt, fit.evaluate(tt), label="fit")
        ax.set_xlabel("pump delay (ps)")
        ax.set_ylabel("−ΔE/E")
        ax.legend()
        _save_figure(plt, fig, args.plot)
        result["plot"] = args.plot
    if args.json:
        _print_json(result)
        return 0
    from rich.console import Console

    c = Console()
    c.print(f"[bold]OPTP[/bold] {args.file} ({analysis.n_sweeps} sweeps)")
    err = peak["minus_dE_over_E_err"]
    if result["significant"] is False:
        c.print(
            f"OPTP peak not significant (largest −ΔE/E {result['peak_z']:.2g}σ above zero, "
            f"p = {result['peak_p_value']:.2g}): no peak value or φμ"
        )
    else:
        c.print(
            f"peak −ΔE/E = {peak['minus_dE_over_E']:.4g}"
            + (f" ± {err:.2g}" if err is not None else "")
            + f" at {peak['pump_delay_ps']:.3f} ps ({peak['method']})"
            + (f", {result['peak_z']:.3g}σ" if result.get("peak_z") is not None else "")
        )
    if result["fluence_uj_cm2"] is not None:
        c.print(f"pump fluence = {result['fluence_uj_cm2']:.4g} µJ/cm²")
    for w in result["warnings"]:
        c.print(f"[yellow]warning:[/yellow] {w}")
    if result["absorbed_photons_m2"] is not None and result["significant"] is False:
        c.print(f"N_abs = {result['absorbed_photons_m2']:.3g} m⁻²; φμ not significant")
    elif result["absorbed_photons_m2"] is not None:
        c.print(
            f"N_abs = {result['absorbed_photons_m2']:.3g} m⁻²; peak/N_abs = "
            f"{peak['per_absorbed_photon_m2']:.3g} m²; φμ = {result['phi_mu_cm2_Vs']:.3g} cm²/Vs"
        )
    if fit is not None:
        for k, (tau, e) in enumerate(zip(fit.lifetimes_ps, fit.lifetimes_ps_err, strict=True)):
            c.print(f"τ{k + 1} = {tau:.3g} ± {e:.2g} ps (amplitude {fit.amplitudes[k]:.3g})")
        c.print(f"IRF FWHM = {fit.irf_fwhm_ps:.3g} ps, χ²_red = {fit.chi2_red:.3g}")
    return 0


# ---------------------------------------------------------------- absorption


def run_absorption(args: argparse.Namespace) -> int:
    from labctl.analysis.absorption_analysis import analyze_absorption
    from labctl.analysis.io import load_absorption_csv
    from labctl.errors import AnalysisError

    _check_range("--search-nm", args.search_nm)
    _check_range("--tauc-range-eV", args.tauc_range_eV)
    _check_positive("--tauc-max-eV", args.tauc_max_eV)
    _check_positive("--thickness-nm", args.thickness_nm)
    _check_plot_path(args.plot)
    data = load_absorption_csv(args.file)
    analysis = analyze_absorption(
        data.wavelength_nm,
        data.absorbance,
        search_nm=tuple(args.search_nm),
        tauc_range_ev=tuple(args.tauc_range_eV) if args.tauc_range_eV else None,
        tauc_max_ev=args.tauc_max_eV,
        thickness_m=args.thickness_nm * 1e-9 if args.thickness_nm else None,
    )
    if analysis.peaks is None:
        raise AnalysisError(f"{args.file}: {analysis.warnings[0].removeprefix('exciton peaks: ')}")
    warnings: list[str] = []
    if data.n_invalid:
        warnings.append(f"{data.n_invalid} points without valid absorbance (sample ≤ dark) skipped")
    peaks, tauc = analysis.peaks, analysis.tauc
    result = {"file": str(args.file)} | analysis.to_dict()
    result["warnings"] = warnings + result["warnings"]
    if args.plot:
        plt = _pyplot()
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.8))
        ax1.plot(*_display_points(data.wavelength_nm, data.absorbance), lw=1)
        for key, pk in (("HH", peaks.heavy_hole), ("LH", peaks.light_hole)):
            if pk:
                ax1.axvline(pk.wavelength_nm, ls="--", color="C3")
                ax1.annotate(key, (pk.wavelength_nm, pk.absorbance))
        if not peaks.excitonic:
            ax1.set_title("no exciton feature (bulk-like edge)")
        ax1.set_xlabel("wavelength (nm)")
        ax1.set_ylabel("absorbance")
        if tauc is not None:
            ax2.plot(*_display_points(tauc.energy_ev, tauc.tauc_y), lw=1)
            import numpy as np

            ee = np.linspace(tauc.gap_ev, tauc.fit_range_ev[1], 50)
            ax2.plot(ee, tauc.slope * ee + tauc.intercept, "C3")
            ax2.axvspan(*tauc.fit_range_ev, color="C3", alpha=0.1)
            ax2.set_xlabel("photon energy (eV)")
            ax2.set_ylabel("(αhν)²")
            ax2.set_title(
                f"Tauc gap {tauc.gap_ev:.3f} eV"
                if not analysis.excitonic
                else "Tauc fit (excitonic: not a gap)"
            )
        _save_figure(plt, fig, args.plot)
        result["plot"] = args.plot
    if args.json:
        _print_json(result)
        return 0
    from rich.console import Console

    c = Console()
    c.print(f"[bold]Absorption[/bold] {args.file}")
    for key, pk in (("heavy-hole", peaks.heavy_hole), ("light-hole", peaks.light_hole)):
        if pk:
            c.print(
                f"{key} exciton: {pk.wavelength_nm:.2f} ± {pk.wavelength_nm_err:.2f} nm "
                f"({pk.energy_ev:.4f} eV, {pk.kind}, {pk.significance:.0f}σ)"
            )
    if tauc and not analysis.excitonic:
        c.print(
            f"Tauc gap (direct): {tauc.gap_ev:.3f} ± {tauc.gap_ev_err:.3f} eV, fit "
            f"{tauc.fit_range_ev[0]:.3f}–{tauc.fit_range_ev[1]:.3f} eV (R² {tauc.r_squared:.4f})"
        )
    for w in result["warnings"]:
        c.print(f"[yellow]warning:[/yellow] {w}")
    return 0
