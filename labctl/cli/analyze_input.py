"""``labctl analyze tds`` options for data from other labs: formats, waveform sets, geometry.

Rule: these options only say how to read the input and which relation turns field
ratios into Δσ; the analysis after that is the one of ``labctl analyze tds``. What was
detected or assumed is added to the result (``input``, ``geometry``) and printed.

Supported geometries (also in the help): transmission (default; Tinkham's thin film
at normal incidence, or the admittance form at an angle or with an absorbing or
tabulated substrate index) and reflection off a thin excited layer on a bulk substrate
(normal or oblique incidence, s or p), which gives the sheet conductance Δσ·d; a
density per volume then needs ``--excitation-depth-nm``.
"""

from __future__ import annotations

import argparse

GEOMETRY_HELP = (
    "transmission (thin film on a substrate, default) or reflection (thin photoexcited "
    "layer on a bulk substrate; reports the sheet conductance Δσ·d)"
)


def add_input_options(t: argparse.ArgumentParser) -> None:
    """The options of ``analyze tds`` for other labs' files and setups."""
    g = t.add_argument_group("data from other programs (see docs/analysis.md)")
    g.add_argument(
        "--reference", nargs="+", metavar="FILE", help="reference waveform file(s) or folder(s)"
    )
    g.add_argument(
        "--pumped", nargs="+", metavar="FILE", help="pumped waveform file(s) or folder(s)"
    )
    g.add_argument(
        "--columns",
        metavar="ROLE=COL,...",
        help="column roles by name or 1-based index: time, ref, dE, pumped, probe_lockin, "
        "pump_lockin, field (waveform files)",
    )
    g.add_argument("--pumped-column", metavar="COL", help="this column is E_pumped (not ΔE)")
    g.add_argument(
        "--doubly-chopped",
        action="store_true",
        help="the two field columns are lock-in outputs: X_probe = E_ref + ΔE/2, X_pump = ΔE/2",
    )
    g.add_argument(
        "--time-unit",
        choices=("fs", "ps", "mm-single", "mm-double"),
        help="unit of the time column (stage mm: single or double pass); never guessed",
    )
    geo = t.add_argument_group("geometry")
    geo.add_argument(
        "--geometry", choices=("transmission", "reflection"), default="transmission",
        help=GEOMETRY_HELP,
    )  # fmt: skip
    geo.add_argument("--angle-deg", type=float, default=0.0, help="angle of incidence (°)")
    geo.add_argument("--polarization", choices=("s", "p"), default="s")
    geo.add_argument(
        "--substrate-kappa", type=float, default=0.0, help="imaginary part κ of ñ = n + iκ"
    )
    geo.add_argument(
        "--substrate-index-table",
        metavar="FILE",
        help="substrate ñ(f): columns freq_THz, n, kappa (any separator)",
    )
    geo.add_argument(
        "--excitation-depth-nm",
        type=float,
        help="reflection: depth of the excited layer, for N per volume (else N per area)",
    )


def uses_waveform_sets(args) -> bool:
    return bool(args.reference or args.pumped)


def check_input_options(args) -> None:
    """One source of data; options that belong together."""
    from labctl.errors import AnalysisError

    sets = uses_waveform_sets(args)
    if sets and args.file is not None:
        raise AnalysisError("give FILE or --reference/--pumped, not both")
    if sets and not (args.reference and args.pumped):
        raise AnalysisError("waveform sets need both --reference and --pumped")
    if not sets and not args.file:
        raise AnalysisError("give FILE, or --reference FILE... --pumped FILE...")
    if sets and (args.pumped_column or args.doubly_chopped):
        raise AnalysisError(
            "--pumped-column/--doubly-chopped describe one table; waveform sets are one "
            "waveform per file"
        )
    if args.geometry == "reflection" and args.small_signal:
        raise AnalysisError("--small-signal is the transmission formula; reflection is exact")
    if args.geometry == "reflection" and args.thickness_nm is not None:
        raise AnalysisError(
            "--thickness-nm is the transmission film's; in reflection the excited layer's "
            "depth is --excitation-depth-nm (optional: without it N is per area)"
        )
    if args.excitation_depth_nm is not None and args.geometry != "reflection":
        raise AnalysisError("--excitation-depth-nm is for --geometry reflection")
    if not (args.substrate_kappa >= 0):
        raise AnalysisError(f"--substrate-kappa must be ≥ 0, got {args.substrate_kappa}")


def load_tds_input(args):
    """The TDSData of FILE or of the waveform sets."""
    from labctl.analysis import formats, tds_input

    columns = formats.parse_columns_option(args.columns)
    if uses_waveform_sets(args):
        return tds_input.load_tds_sets(
            args.reference, args.pumped, columns=columns, time_unit=args.time_unit
        )
    return tds_input.load_tds_file(
        args.file,
        columns=columns,
        time_unit=args.time_unit,
        pumped_column=args.pumped_column,
        doubly_chopped=args.doubly_chopped,
    )


def needs_thickness(args) -> bool:
    return args.geometry == "transmission"


def _substrate(args):
    import numpy as np

    from labctl.analysis import formats
    from labctl.analysis.reflection import SubstrateIndex
    from labctl.errors import DataFileError

    if args.substrate_index_table:
        table = formats.read_text_table(args.substrate_index_table)
        if table.values.shape[1] < 2:
            raise DataFileError(table.path, "needs columns freq_THz, n[, kappa]")
        f, n = table.values[:, 0], table.values[:, 1]
        k = table.values[:, 2] if table.values.shape[1] > 2 else np.zeros_like(f)
        order = np.argsort(f)
        f, n, k = f[order], n[order], k[order]
        if f.size < 2 or np.any(np.diff(f) <= 0) or np.any(n <= 0) or np.any(k < 0):
            raise DataFileError(
                table.path, "needs ≥ 2 distinct frequencies (THz), n > 0 and kappa ≥ 0"
            )
        return SubstrateIndex(complex(n[0]), (f, n, k), str(table.path))
    return SubstrateIndex(complex(args.substrate_index, args.substrate_kappa))


def conductivity_method(args):
    """``method`` and ``thickness_m`` for photoconductivity(): Tinkham's forms as before
    for plain transmission, a :class:`Geometry` otherwise (reflection without an
    excitation depth: d = 1 m, so Δσ in S/m is numerically the sheet conductance in S)."""
    from labctl.analysis.reflection import Geometry

    plain = (
        args.geometry == "transmission"
        and args.angle_deg == 0
        and args.substrate_kappa == 0
        and not args.substrate_index_table
    )
    if plain:
        return ("small-signal" if args.small_signal else "exact"), args.thickness_nm * 1e-9
    substrate = _substrate(args)
    substrate.check_covers(args.fmin * 1e12, args.fmax * 1e12)
    geometry = Geometry(args.geometry, substrate, args.angle_deg, args.polarization)
    if args.geometry == "transmission":
        return geometry, args.thickness_nm * 1e-9
    depth = args.excitation_depth_nm
    return geometry, (depth * 1e-9 if depth else 1.0)


def refuse_negative_real(args, spec, test) -> None:
    """In transmission, Re Δσ < 0 across the band is a sign, phase or geometry mistake."""
    import numpy as np

    from labctl.analysis.reflection import Geometry, negative_real_message
    from labctl.errors import AnalysisError

    if args.geometry == "transmission" and test.negative_real:
        re = spec.sigma.real
        msg = negative_real_message(
            Geometry("transmission"), float(re.mean()), float(np.mean(re < 0))
        )
        raise AnalysisError(f"{args.file or 'waveform sets'}: {msg}")


def add_input_result(result: dict, args, data, method) -> dict:
    """What was detected (``input``) and the geometry; reflection's sheet quantities."""
    from labctl.analysis.reflection import Geometry

    result["input"] = dict(data.detected) or None
    if args.substrate_index_table:
        result["substrate_index"] = None  # the table's ñ(f): see geometry
    describe = method.describe() if isinstance(method, Geometry) else (
        f"transmission, normal incidence, substrate n = {args.substrate_index:g} (Tinkham)"
    )  # fmt: skip
    result["geometry"] = {"kind": args.geometry, "description": describe}
    if args.geometry == "reflection":
        depth = args.excitation_depth_nm
        n_fit, n_err = result.get("N_m3"), result.get("N_m3_err")
        scale = depth * 1e-9 if depth else 1.0
        result["N_sheet_m2"] = None if n_fit is None else n_fit * scale
        result["N_sheet_m2_err"] = None if n_err is None else n_err * scale
        result["thickness_nm"] = None
        result["excitation_depth_nm"] = depth
        result["conductivity_quantity"] = "sheet conductance Δσ·d (S)"
        if not depth:
            result["N_m3"] = result["N_m3_err"] = None
            result["warnings"].append(
                "reflection gives the sheet conductance Δσ·d: N per area is N_sheet_m2; "
                "N per volume needs --excitation-depth-nm"
            )
        else:
            result["warnings"].append(
                f"N per volume assumes an excitation depth of {depth:g} nm (--excitation-depth-nm)"
            )
    return result


def print_input(console, r: dict) -> None:
    """The detected input and geometry, a line each."""
    info = r.get("input") or {}
    for key in ("layout", "line_ends", "header", "time_column", "time_unit", "time_order",
                "fields", "pairing"):  # fmt: skip
        if info.get(key):
            console.print(f"input {key.replace('_', ' ')}: {info[key]}")
    if info.get("metadata"):
        items = list(info["metadata"].items())
        shown = "; ".join(f"{k}: {v}" for k, v in items[:5])
        console.print(f"input metadata: {shown}{' …' if len(items) > 5 else ''}")
    if r.get("geometry"):
        console.print(f"geometry: {r['geometry']['description']}")
    if r.get("N_sheet_m2") is not None:
        err = r.get("N_sheet_m2_err")
        console.print(
            f"N per area: {r['N_sheet_m2']:.4g}" + (f" ± {err:.2g}" if err else "") + " m⁻²"
        )
