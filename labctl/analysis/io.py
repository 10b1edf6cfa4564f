"""Reading and validating the CSV files ``labctl analyze`` accepts.

Format: optional comment lines beginning with ``#`` (and blank lines) before the
header, then a comma-separated header line (unique column names), then one row of
numbers per line; blank lines are skipped. This reads pymeasure ``Results`` files as
they are: their ``#Procedure: <…>``, ``#Parameters:``, ``#\tName: value``,
``#Metadata:`` and ``#Data:`` lines come before the column labels, and the
``Name: value`` pairs are kept in :attr:`CSVTable.header`.

Numbers are read strictly: decimal notation only (``-1.5``, ``.5e-3``, ``3``);
``nan``, ``inf``, underscores (``3.5000_0``, which Python's ``float`` accepts),
hexadecimal and non-ASCII digits are refused. Every problem raises
:class:`labctl.errors.DataFileError` naming the file, the line where it applies (the
file's own line number) and what is wrong, in one line of bounded length (quoted file
text is cut to :data:`QUOTE_CHARS` characters). Reading takes time and memory linear
in the file size; files above :data:`MAX_FILE_BYTES` are refused.

- TDS: ``time_ps,E_ref,dE`` (ΔE = E_pumped − E_ref); time strictly increasing and
  equally spaced (1 % tolerance); at least :data:`MIN_TDS_POINTS` rows. With a
  ``sweep`` column (a run file): one row per gate point per sweep, single-sweep
  values; every complete sweep on one equally spaced grid.
- OPTP: ``pump_delay_ps`` plus either ``minus_dE_over_E`` or ``E_ref_peak,dE_peak``
  (−ΔE/E = −dE_peak/E_ref_peak); optional ``minus_dE_over_E_err``. −ΔE/E must stay
  below 1 (at 1 the pumped THz field would vanish).
- Absorption: ``wavelength_nm`` (> 0) plus either ``absorbance`` or
  ``sample,reference`` (and optional ``dark``) raw spectrometer counts; a spectrum
  with no positive absorbance anywhere is refused (sample and reference swapped?).
- Run files of ``labctl run`` (pymeasure ``#`` header, one row per point per sweep)
  read like any other; the header's ``Name: value`` pairs (film thickness, substrate
  index…) come with the data (:func:`header_number` reads a number from them).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from labctl.errors import DataFileError

from .strict_numbers import QUOTE_CHARS as QUOTE_CHARS  # re-exported: the documented limit
from .strict_numbers import parse_stream, quote, strict_number

MIN_TDS_POINTS = 32
MIN_OPTP_POINTS = 10
MIN_ABSORPTION_POINTS = 20
#: Largest data file read (1 GiB, some 30 million rows of three numbers).
MAX_FILE_BYTES = 1 << 30
#: Longest column name accepted (names appear in messages).
MAX_NAME_CHARS = 100


@dataclass
class CSVTable:
    """Numeric columns by header name, the file line number (1-based) of each row, and
    the ``Name: value`` pairs of a pymeasure header (empty for a plain CSV file)."""

    columns: dict[str, np.ndarray]
    line_numbers: np.ndarray  # int, one per data row: where it is in the file
    header: dict[str, str] = field(default_factory=dict)
    procedure: str | None = None  #: pymeasure ``#Procedure: <module.Class>``, if any


def _decode(p, lineno: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(p, f"line {lineno}: not UTF-8 text (byte {exc.start + 1})") from None


def _header_entry(text: str, header: dict[str, str]) -> str | None:
    """Keep a pymeasure ``#\tName: value`` pair; return the procedure of ``#Procedure:``."""
    body = text[1:]
    if body.startswith("Procedure:"):
        return body.partition(":")[2].strip().strip("<>").strip()
    if body.startswith("\t"):
        name, sep, value = body[1:].partition(": ")
        if sep and name.strip():
            header[name.strip()] = value.strip()
    return None


def read_csv_table(path, required: list[str] | tuple[str, ...] = ()) -> CSVTable:
    """All columns of a numeric CSV file by header name, with each row's line number.

    Skips ``#`` comment lines and blank lines before the header (keeping a pymeasure
    header's ``Name: value`` pairs), checks the header has no empty or repeated names,
    ``required`` are present, every cell is a finite decimal number and rows have the
    header's width. Blank lines are skipped (so row i is not line i + 2: use
    ``line_numbers`` in messages).
    """
    p = Path(path)
    if not p.exists():
        raise DataFileError(p, "no such file")
    if not p.is_file():
        raise DataFileError(p, "not a regular file")
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DataFileError(
                p,
                f"file is {size / 2**20:.0f} MiB; labctl analyze reads at most "
                f"{MAX_FILE_BYTES / 2**20:.0f} MiB (average or split the data)",
            )
        with p.open("rb") as f:
            return _read_table(p, f, required)
    except OSError as exc:
        raise DataFileError(p, f"cannot read: {exc.strerror or exc}") from None


def _read_table(p, f, required) -> CSVTable:
    header: dict[str, str] = {}
    procedure = None
    lineno = 0
    names: list[str] | None = None
    for raw in f:
        lineno += 1
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # UTF-8 byte-order mark
        if not raw.strip():
            continue
        text = _decode(p, lineno, raw).rstrip("\r\n")
        if "\r" in text:
            raise DataFileError(
                p, f"line {lineno}: a carriage return inside a line (CR-only line ends?)"
            )
        if text.startswith("#"):
            procedure = _header_entry(text, header) or procedure
            continue
        names = _check_header(p, lineno, text, required)
        break
    if names is None:
        raise DataFileError(p, "empty file (expected a header line)")
    values, line_numbers = parse_stream(p, f, lineno + 1, names)
    if not line_numbers.size:
        raise DataFileError(p, "no data rows after the header")
    # column by column, so the peak memory is the blocks plus one copy of the data
    columns = {name: np.ascontiguousarray(values[:, i]) for i, name in enumerate(names)}
    return CSVTable(columns, line_numbers, header, procedure)


def _check_header(p, lineno: int, text: str, required) -> list[str]:
    names = [h.strip() for h in text.split(",")]
    where = f"header (line {lineno})"
    if any(not h for h in names):
        raise DataFileError(p, f"empty column name in the {where} {quote(text)}")
    longest = max(names, key=len)
    if len(longest) > MAX_NAME_CHARS:
        raise DataFileError(
            p, f"column name of {len(longest)} characters in the {where}: {quote(longest)}"
        )
    try:
        strict_number(names[0].encode("utf-8"))
    except ValueError:
        pass
    else:
        raise DataFileError(p, f"line {lineno} must be a header, got numbers: {quote(text)}")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataFileError(p, f"column {quote(name)} appears more than once in the {where}")
        seen.add(name)
    missing = [c for c in required if c not in seen]
    if missing:
        raise DataFileError(
            p, f"missing column(s) {', '.join(missing)} (header has: {quote(', '.join(names))})"
        )
    return names


def read_csv_columns(path, required: list[str] | tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The columns of :func:`read_csv_table` (without the line numbers)."""
    return read_csv_table(path, required).columns


def _check_count(p, n, minimum, what):
    if n < minimum:
        raise DataFileError(p, f"too few points: {n} rows, {what} needs at least {minimum}")


def _check_increasing(p, x, name, equal_spacing: bool, line_numbers=None):
    """``x`` strictly increasing (and equally spaced, 1 %); messages give file lines."""
    lines = np.arange(x.size) + 2 if line_numbers is None else np.asarray(line_numbers)
    steps = np.diff(x)
    bad = np.nonzero(steps <= 0)[0]
    if bad.size:
        i = int(bad[0])
        raise DataFileError(
            p,
            f"{name} is not strictly increasing (line {lines[i]}: {x[i]:g} → "
            f"line {lines[i + 1]}: {x[i + 1]:g})",
        )
    if equal_spacing:
        step = float(np.median(steps))
        dev = np.abs(steps - step)
        if dev.max() > 0.01 * step:
            i = int(np.argmax(dev))
            raise DataFileError(
                p,
                f"{name} is not equally spaced (step {steps[i]:g} from line {lines[i]} to "
                f"line {lines[i + 1]}, typical {step:g}); the FFT needs a uniform grid",
            )


@dataclass
class TDSData:
    """A TDS scan: the (sweep-averaged) traces, and the per-sweep ones when the file has a
    ``sweep`` column (``e_ref_sweeps``/``delta_e_sweeps``: (n_sweeps, n) single-sweep
    values; incomplete sweeps are left out and named in ``notes``)."""

    time_ps: np.ndarray
    e_ref: np.ndarray
    delta_e: np.ndarray
    path: str
    e_ref_sweeps: np.ndarray | None = None
    delta_e_sweeps: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    #: a run file's ``#\tName: value`` header (empty for a plain CSV)
    header: dict[str, str] = field(default_factory=dict)
    #: how the input was read (layout, time unit, field columns, files), for the output
    detected: dict = field(default_factory=dict)
    #: the run file's ``overloaded`` column flagged points: the warning (None if none)
    overload: str | None = None

    @property
    def n_sweeps(self) -> int:
        return 1 if self.e_ref_sweeps is None else int(self.e_ref_sweeps.shape[0])


def load_tds_csv(path) -> TDSData:
    """Read and validate a ``time_ps,E_ref,dE`` file, or a run file with a ``sweep`` column
    (one row per gate point per sweep, in any order within a sweep)."""
    table = read_csv_table(path, ("time_ps", "E_ref", "dE"))
    cols = table.columns
    overload = overload_warning_of(path, cols.get("overloaded"))
    if "sweep" in cols:
        data = _load_tds_sweeps(path, table)
        return replace(data, header=dict(table.header), overload=overload)
    t = cols["time_ps"]
    _check_count(path, t.size, MIN_TDS_POINTS, "a TDS spectrum")
    _check_increasing(path, t, "time_ps", equal_spacing=True, line_numbers=table.line_numbers)
    if not np.any(cols["E_ref"]):
        raise DataFileError(path, "E_ref is zero everywhere")
    return TDSData(
        t, cols["E_ref"], cols["dE"], str(path), header=dict(table.header), overload=overload
    )


def _sweep_order(sweep_ids: np.ndarray, time_ps: np.ndarray) -> np.ndarray:
    """Row order by (sweep, time), ties in file order: O(N log N) whatever the number of
    sweeps. A run file's rows come sweep after sweep, each sweep as long as the next
    (back and forth): then one argsort along the time axis of a (sweeps, points) view."""
    n = sweep_ids.size
    starts = np.flatnonzero(np.diff(sweep_ids)) + 1
    if n and np.all(np.diff(sweep_ids) >= 0):
        lengths = np.diff(np.concatenate([[0], starts, [n]]))
        if np.all(lengths == lengths[0]):
            k = lengths[0]
            within = np.argsort(time_ps.reshape(-1, k), axis=1, kind="stable")
            return (within + (np.arange(n // k) * k)[:, None]).ravel()
    return np.lexsort((time_ps, sweep_ids))


def _load_tds_sweeps(path, table: CSVTable) -> TDSData:
    """Per-sweep matrices from rows ``sweep,time_ps,E_ref,dE``: every complete sweep on
    the same time grid (that of the sweep with the most points)."""
    cols = table.columns
    sweep_ids = cols["sweep"]
    if np.any(sweep_ids != np.round(sweep_ids)):
        i = int(np.nonzero(sweep_ids != np.round(sweep_ids))[0][0])
        raise DataFileError(
            path, f"line {table.line_numbers[i]}: sweep must be an integer, got {sweep_ids[i]:g}"
        )
    order_all = _sweep_order(sweep_ids, cols["time_ps"])
    ids, first, counts = np.unique(sweep_ids[order_all], return_index=True, return_counts=True)
    groups = [
        (int(sid), order_all[a : a + n]) for sid, a, n in zip(ids, first, counts, strict=True)
    ]
    ref_group = groups[int(np.argmax(counts))][1]
    grid = cols["time_ps"][ref_group]
    _check_count(path, grid.size, MIN_TDS_POINTS, "a TDS spectrum (points per sweep)")
    _check_increasing(
        path, grid, "time_ps", equal_spacing=True, line_numbers=table.line_numbers[ref_group]
    )
    tol = 0.01 * float(np.median(np.diff(grid)))
    notes = []
    complete = []
    for sid, rows in groups:
        if rows.size < grid.size:
            notes.append(
                f"sweep {sid} has {rows.size} of {grid.size} points (incomplete): left out"
            )
            continue
        complete.append((sid, rows))
    # the grid is the longest sweep, so every complete sweep has exactly its length
    index = np.stack([rows for _, rows in complete])  # (n_sweeps, n): each sweep's rows
    off = np.max(np.abs(cols["time_ps"][index] - grid), axis=1)
    for k in np.flatnonzero(off > tol)[:1]:
        sid, rows = complete[k]
        raise DataFileError(
            path,
            f"sweep {sid} (from line {table.line_numbers[rows].min()}) is not on the time "
            f"grid of the other sweeps ({grid.size} points, {grid[0]:g}–{grid[-1]:g} ps)",
        )
    ref_k, de_k = cols["E_ref"][index], cols["dE"][index]
    if not np.any(ref_k):
        raise DataFileError(path, "E_ref is zero everywhere")
    return TDSData(
        grid, ref_k.mean(axis=0), de_k.mean(axis=0), str(path), ref_k, de_k, tuple(notes)
    )


def write_tds_csv(path, time_ps, e_ref, delta_e) -> None:
    """Write a ``time_ps,E_ref,dE`` file (what :func:`load_tds_csv` reads). Per-sweep arrays
    of shape (n_sweeps, n), n_sweeps ≥ 2, are kept, not averaged: a fourth column
    ``sweep`` (1, 2, …) numbers them, so the file's reader gets errors from their scatter
    instead of from one trace's baseline (a lower bound)."""
    t = np.asarray(time_ps, float)
    ref = np.atleast_2d(np.asarray(e_ref, float))
    de = np.atleast_2d(np.asarray(delta_e, float))
    if ref.shape[0] == 1:
        arr = np.column_stack([t, ref[0], de[0]])
        header = "time_ps,E_ref,dE"
    else:
        n = ref.shape[0]
        sweep = np.repeat(np.arange(1, n + 1), t.size)
        arr = np.column_stack([np.tile(t, n), ref.ravel(), de.ravel(), sweep])
        header = "time_ps,E_ref,dE,sweep"
    np.savetxt(path, arr, delimiter=",", header=header, comments="", fmt="%.10g")


def write_absorption_csv(path, wavelength_nm, absorbance) -> int:
    """Write a ``wavelength_nm,absorbance`` file (what :func:`load_absorption_csv` reads).

    Points without a finite absorbance (saturated pixels) are left out; returns how many.
    """
    wl, a = np.asarray(wavelength_nm, float), np.asarray(absorbance, float)
    keep = np.isfinite(wl) & np.isfinite(a)
    arr = np.column_stack([wl[keep], a[keep]])
    np.savetxt(path, arr, delimiter=",", header="wavelength_nm,absorbance", comments="", fmt="%.8g")
    return int(np.count_nonzero(~keep))


@dataclass
class OPTPData:
    """An OPTP trace (the mean of the sweeps) and, for a run file with a ``sweep`` column,
    the complete sweeps (``minus_de_over_e_sweeps``, (n_sweeps, n)) and its header."""

    pump_delay_ps: np.ndarray
    minus_de_over_e: np.ndarray
    minus_de_over_e_err: np.ndarray | None
    path: str
    minus_de_over_e_sweeps: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    header: dict[str, str] = field(default_factory=dict)


def load_optp_csv(path) -> OPTPData:
    """Read ``pump_delay_ps`` with ``minus_dE_over_E`` or ``E_ref_peak,dE_peak``, or a
    ``labctl run optp`` file (a ``sweep`` column: one row per pump delay per sweep)."""
    table = read_csv_table(path, ("pump_delay_ps",))
    cols = table.columns
    if "sweep" in cols and "minus_dE_over_E" in cols:
        return _load_optp_sweeps(path, table)
    t = cols["pump_delay_ps"]
    if "minus_dE_over_E" in cols:
        sig = cols["minus_dE_over_E"]
    elif "E_ref_peak" in cols and "dE_peak" in cols:
        ref = cols["E_ref_peak"]
        if np.any(ref == 0):
            raise DataFileError(path, "E_ref_peak is zero in some rows")
        sig = -cols["dE_peak"] / ref
    else:
        raise DataFileError(
            path,
            "missing column(s): need minus_dE_over_E, or E_ref_peak and dE_peak "
            f"(header has: {quote(', '.join(cols))})",
        )
    _check_count(path, t.size, MIN_OPTP_POINTS, "an OPTP trace")
    too_big = np.nonzero(sig >= 1.0)[0]
    if too_big.size:
        i = int(too_big[0])
        raise DataFileError(
            path,
            f"line {table.line_numbers[i]}: −ΔE/E = {sig[i]:g} in {too_big.size} row(s); it must "
            "stay below 1 (at 1 the pumped THz field vanishes) — a percentage, not a fraction?",
        )
    _check_increasing(
        path, t, "pump_delay_ps", equal_spacing=False, line_numbers=table.line_numbers
    )
    err = cols.get("minus_dE_over_E_err")
    if err is not None and np.any(err <= 0):
        raise DataFileError(path, "minus_dE_over_E_err must be positive")
    return OPTPData(t, sig, err, str(path), header=dict(table.header))


def _load_optp_sweeps(path, table: CSVTable) -> OPTPData:
    """The complete sweeps of a run file, each sorted by pump delay, on one delay grid."""
    cols = table.columns
    ids = cols["sweep"]
    groups = []
    for sid in np.unique(ids):
        rows = np.nonzero(ids == sid)[0]
        groups.append((int(sid), rows[np.argsort(cols["pump_delay_ps"][rows], kind="stable")]))
    grid_rows = max(groups, key=lambda g: g[1].size)[1]
    grid = cols["pump_delay_ps"][grid_rows]
    _check_count(path, grid.size, MIN_OPTP_POINTS, "an OPTP trace (points per sweep)")
    _check_increasing(
        path, grid, "pump_delay_ps", equal_spacing=False, line_numbers=table.line_numbers[grid_rows]
    )
    traces, notes = [], []
    for sid, rows in groups:
        t = cols["pump_delay_ps"][rows]
        if t.size < grid.size:
            notes.append(f"sweep {sid} has {t.size} of {grid.size} points (incomplete): left out")
            continue
        if t.size > grid.size or np.max(np.abs(t - grid)) > 1e-9 * max(1.0, np.ptp(grid)):
            raise DataFileError(
                path,
                f"sweep {sid} (from line {table.line_numbers[rows].min()}) is not on the pump "
                f"delay grid of the other sweeps ({grid.size} points)",
            )
        traces.append(cols["minus_dE_over_E"][rows])
    sweeps = np.array(traces)
    return OPTPData(
        grid, sweeps.mean(axis=0), None, str(path), sweeps, tuple(notes), dict(table.header)
    )


@dataclass
class AbsorptionData:
    wavelength_nm: np.ndarray
    absorbance: np.ndarray  # NaN where the raw spectra give no valid absorbance
    path: str
    n_invalid: int = 0


def load_absorption_csv(path) -> AbsorptionData:
    """Read ``wavelength_nm`` with ``absorbance`` or ``sample,reference[,dark]``; sorted by λ."""
    from .uvvis import absorbance

    table = read_csv_table(path, ("wavelength_nm",))
    cols = table.columns
    wl = cols["wavelength_nm"]
    if "absorbance" in cols:
        a = cols["absorbance"]
    elif "sample" in cols and "reference" in cols:
        a = absorbance(cols["sample"], cols["reference"], cols.get("dark"))
    else:
        raise DataFileError(
            path,
            "missing column(s): need absorbance, or sample and reference (optional dark) "
            f"(header has: {quote(', '.join(cols))})",
        )
    _check_count(path, wl.size, MIN_ABSORPTION_POINTS, "an absorption spectrum")
    not_positive = np.nonzero(wl <= 0)[0]
    if not_positive.size:
        i = int(not_positive[0])
        raise DataFileError(
            path,
            f"line {table.line_numbers[i]}: wavelength_nm is {wl[i]:g}; wavelengths must be "
            f"positive ({not_positive.size} row(s) are not)",
        )
    valid = a[np.isfinite(a)]
    if valid.size and valid.max() <= 0:
        raise DataFileError(
            path,
            f"absorbance is ≤ 0 at every wavelength (largest {valid.max():g}): the sample "
            "transmits at least as much as the reference everywhere — swapped columns?",
        )
    order = np.argsort(wl, kind="stable")
    wl, a, lines = wl[order], a[order], table.line_numbers[order]
    same = np.nonzero(np.diff(wl) == 0)[0]
    if same.size:
        i = int(same[0])
        raise DataFileError(
            path,
            f"wavelength_nm has repeated values ({wl[i]:g} nm on lines {lines[i]} and "
            f"{lines[i + 1]})",
        )
    n_bad = int(np.sum(~np.isfinite(a)))
    if n_bad > wl.size // 2:
        raise DataFileError(
            path, f"{n_bad} of {wl.size} points give no valid absorbance (sample ≤ dark?)"
        )
    return AbsorptionData(wl, a, str(path), n_bad)


# ---------------------------------------------------------------- run files (labctl run)
def header_number(header: dict[str, str], name: str) -> float | None:
    """A header value's number without its unit (``"100 nm"`` → 100.0); None if absent/empty."""
    text = header.get(name, "").split(" ")[0]
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def overload_warning(path) -> str | None:
    """A warning when a run file's ``overloaded`` column (written by the THz procedures:
    the point stayed overloaded after re-ranging) flags any point; None if none or no
    such column."""
    return overload_warning_of(path, read_csv_table(path).columns.get("overloaded"))


def overload_warning_of(path, flags) -> str | None:
    """:func:`overload_warning` from an ``overloaded`` column already read (or None)."""
    if flags is None:
        return None
    count = int(np.count_nonzero(np.nan_to_num(flags)))
    if not count:
        return None
    return (
        f"{count} point{'s' if count != 1 else ''} of {path} stayed overloaded on the lock-in "
        "(column 'overloaded'): their values are clipped and the fit is suspect"
    )
