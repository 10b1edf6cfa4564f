"""TDS input from any source: labctl's own files, other programs' tables, waveform sets.

Rule: every route ends in one :class:`~labctl.analysis.io.TDSData` (time in ps,
increasing, equally spaced; E_ref and ΔE = E_pumped − E_ref, per sweep when there are
several) whose ``detected`` says how the input was read, so the analysis and its
output are the same whatever the source.

- ``time_ps,E_ref,dE`` (and ``labctl run tds`` files): :func:`labctl.analysis.io.load_tds_csv`,
  unchanged.
- One table from another program (:mod:`labctl.analysis.formats`): field columns as
  E_ref + ΔE, E_ref + E_pumped, or the two lock-in outputs of a doubly chopped setup
  (X_probe = E_ref + ΔE/2, X_pump = ΔE/2, the convention of ``procedures/tds.py``).
- Waveform sets: ``--reference`` and ``--pumped`` files (or folders, one waveform per
  file, sorted by name). Several files on a side are sweeps: with equal counts they
  pair in order (ΔE_k = E*_k − E_k), so errors and significance come from the
  per-sweep scatter; with unequal counts each pumped sweep is taken against the mean
  reference, and the output says the reference's scatter is not in the errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labctl.errors import DataFileError

from . import formats
from .io import MIN_TDS_POINTS, TDSData, _check_count, _check_increasing, load_tds_csv
from .strict_numbers import quote

#: files listed in ``detected`` (the rest are counted)
MAX_LISTED_FILES = 20
LABCTL_COLUMNS = {"time_ps", "E_ref", "dE"}


def is_labctl_table(path) -> bool:
    """A comma-separated file whose header (after ``#`` lines) has time_ps and E_ref: labctl's
    format (its own checks then name a missing dE)."""
    try:
        with Path(path).open("rb") as f:
            for _ in range(formats.SNIFF_LINES):
                raw = f.readline(formats.SNIFF_BYTES)
                if not raw:
                    return False
                text = raw.decode("utf-8", errors="replace").strip().lstrip("\ufeff")
                if not text or text.startswith("#"):
                    continue
                return LABCTL_COLUMNS & {c.strip() for c in text.split(",")} >= {"time_ps", "E_ref"}
    except OSError:
        return False
    return False


def load_tds_file(
    path,
    *,
    columns: dict[str, str] | None = None,
    time_unit: str | None = None,
    pumped_column: str | None = None,
    doubly_chopped: bool = False,
) -> TDSData:
    """One TDS table, labctl's or another program's (see the module docstring)."""
    plain = not (columns or time_unit or pumped_column or doubly_chopped)
    if plain and is_labctl_table(path):
        data = load_tds_csv(path)
        data.detected = {
            "layout": "labctl TDS file (comma-separated, time_ps,E_ref,dE)",
            "time_unit": "ps (from the header)",
            "fields": formats.FIELD_MODES[("ref", "dE")],
        }
        return data
    table = formats.read_text_table(path)
    roles = formats.assign_roles(table, dict(columns or {}))
    t_ps, unit_text = formats.time_axis(table, roles, time_unit)
    if pumped_column is not None:
        roles["pumped"] = formats._resolve(table, pumped_column, "--pumped-column")
        roles.pop("dE", None)
    if doubly_chopped and not {"probe_lockin", "pump_lockin"} <= set(roles):
        rest = [n for n in table.names if n not in roles.values()]
        if len(rest) != 2:
            raise DataFileError(
                path,
                f"--doubly-chopped: expected two lock-in columns besides time, found "
                f"{quote(', '.join(rest))}; give --columns probe_lockin=N,pump_lockin=M",
            )
        roles["probe_lockin"], roles["pump_lockin"] = rest
    mode = (
        ("probe_lockin", "pump_lockin")
        if doubly_chopped
        else formats.field_mode(roles, pumped_column)
    )
    if not mode:
        raise DataFileError(
            path,
            f"which columns are the fields? (columns: {quote(', '.join(table.names))}) — "
            "give --columns ref=N,dE=M (ΔE), --pumped-column M (E_pumped) or --doubly-chopped "
            "(two lock-in outputs); one waveform per file: use --reference/--pumped",
        )
    cols = {r: table.column(roles[r]) for r in mode}
    t_ps, cols, lines, order = formats.order_time(table, t_ps, cols)
    a, b = cols[mode[0]], cols[mode[1]]
    if mode == ("ref", "dE"):
        e_ref, de = a, b
    elif mode == ("ref", "pumped"):
        e_ref, de = a, b - a
    else:
        e_ref, de = a - b, 2.0 * b
    _check_tds(path, t_ps, e_ref, lines)
    detected = table.describe() | {
        "time_column": roles["time"],
        "time_unit": unit_text,
        "time_order": order,
        "fields": formats.FIELD_MODES[mode],
        "columns": {r: roles[r] for r in mode},
    }
    notes = tuple(formats.step_warning(t_ps))
    return TDSData(t_ps, e_ref, de, str(path), notes=notes, detected=detected)


def _check_tds(path, t_ps, e_ref, lines) -> None:
    _check_count(path, t_ps.size, MIN_TDS_POINTS, "a TDS spectrum")
    _check_increasing(path, t_ps, "time", equal_spacing=True, line_numbers=lines)
    if not np.any(e_ref):
        raise DataFileError(path, "E_ref is zero everywhere")


def expand_paths(items, option: str) -> list[Path]:
    """Files of ``items``: each a file, or a folder whose regular files (not hidden) are
    taken in name order. Refuses a missing path or an empty folder."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files = sorted(q for q in p.iterdir() if q.is_file() and not q.name.startswith("."))
            if not files:
                raise DataFileError(p, f"{option}: folder holds no files")
            out.extend(files)
        elif p.exists():
            out.append(p)
        else:
            raise DataFileError(p, f"{option}: no such file or folder")
    if not out:
        raise DataFileError(option, "no files given")
    return out


def _listed(paths: list[Path]) -> list[str]:
    names = [str(p) for p in paths[:MAX_LISTED_FILES]]
    if len(paths) > MAX_LISTED_FILES:
        names.append(f"… {len(paths) - MAX_LISTED_FILES} more")
    return names


def load_tds_sets(
    reference, pumped, *, columns: dict[str, str] | None = None, time_unit: str | None = None
) -> TDSData:
    """Waveform sets: one waveform per file on each side (see the module docstring)."""
    ref_paths = expand_paths(reference, "--reference")
    pump_paths = expand_paths(pumped, "--pumped")
    waves = [
        formats.read_waveforms(p, dict(columns or {}), time_unit, ("field",))
        for p in ref_paths + pump_paths
    ]
    first = waves[0]
    grid = first.time_ps
    _check_tds(ref_paths[0], grid, first.fields["field"], first.line_numbers)
    step = float(np.median(np.diff(grid)))
    for p, w in zip(ref_paths + pump_paths, waves, strict=True):
        if w.time_ps.size != grid.size or np.max(np.abs(w.time_ps - grid)) > 0.01 * step:
            raise DataFileError(
                p,
                f"not on the time grid of {ref_paths[0].name} ({grid.size} points, "
                f"{grid[0]:g}–{grid[-1]:g} ps; this file: {w.time_ps.size} points, "
                f"{w.time_ps[0]:g}–{w.time_ps[-1]:g} ps)",
            )
    refs = np.array([w.fields["field"] for w in waves[: len(ref_paths)]])
    pumps = np.array([w.fields["field"] for w in waves[len(ref_paths) :]])
    notes: list[str] = formats.step_warning(grid)
    if refs.shape[0] == pumps.shape[0]:
        ref_k, de_k = refs, pumps - refs
        pairing = f"{refs.shape[0]} pair(s) in order (ΔE_k = E*_k − E_k)"
    else:
        mean_ref = refs.mean(axis=0)
        ref_k = np.broadcast_to(mean_ref, pumps.shape).copy()
        de_k = pumps - mean_ref
        pairing = f"{pumps.shape[0]} pumped against the mean of {refs.shape[0]} reference(s)"
        notes.append(
            f"{refs.shape[0]} reference and {pumps.shape[0]} pumped waveforms: each pumped "
            "sweep is taken against the mean reference; the reference's scatter is not in "
            "the errors"
        )
    detected = {k: v for k, v in first.detected.items() if k not in ("rows", "columns")}
    detected |= {
        "fields": "waveform sets: E_ref from --reference, E_pumped from --pumped",
        "field_column": first.detected["columns"]["field"],
        "files": {"reference": _listed(ref_paths), "pumped": _listed(pump_paths)},
        "pairing": pairing,
    }
    n = de_k.shape[0]
    label = f"{len(ref_paths)} reference + {len(pump_paths)} pumped file(s)"
    return TDSData(
        grid,
        ref_k.mean(axis=0),
        de_k.mean(axis=0),
        label,
        ref_k if n > 1 else None,
        de_k if n > 1 else None,
        tuple(notes),
        detected=detected,
    )
