"""Reading and validating the CSV files ``labctl analyze`` accepts.

Format: first line a comma-separated header (unique column names), then one row of
numbers per line; no comment lines, blank lines are skipped. Every problem raises
:class:`labctl.errors.DataFileError` naming the file, the line where it applies (the
file's own line number) and what is wrong (one line).

- TDS: ``time_ps,E_ref,dE`` (ΔE = E_pumped − E_ref); time strictly increasing and
  equally spaced (1 % tolerance); at least :data:`MIN_TDS_POINTS` rows.
- OPTP: ``pump_delay_ps`` plus either ``minus_dE_over_E`` or ``E_ref_peak,dE_peak``
  (−ΔE/E = −dE_peak/E_ref_peak); optional ``minus_dE_over_E_err``.
- Absorption: ``wavelength_nm`` plus either ``absorbance`` or ``sample,reference``
  (and optional ``dark``) raw spectrometer counts.
- Run files of ``labctl run tds`` (pymeasure ``#`` header, one row per point per
  sweep): :func:`load_tds_run` averages the sweeps per delay and returns the header.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labctl.errors import DataFileError

MIN_TDS_POINTS = 32
MIN_OPTP_POINTS = 10
MIN_ABSORPTION_POINTS = 20


@dataclass
class CSVTable:
    """Numeric columns by header name, and the file line number (1-based) of each row."""

    columns: dict[str, np.ndarray]
    line_numbers: np.ndarray  # int, one per data row: where it is in the file


def read_csv_table(path, required: list[str] | tuple[str, ...] = ()) -> CSVTable:
    """All columns of a numeric CSV file by header name, with each row's line number.

    Checks the header has no empty or repeated names, ``required`` are present, every
    cell parses as a finite number, and rows have the header's width. Blank lines are
    skipped (so row i is not line i + 2: use ``line_numbers`` in messages).
    """
    p = Path(path)
    if not p.exists():
        raise DataFileError(p, "no such file")
    if not p.is_file():
        raise DataFileError(p, "not a regular file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(p, f"cannot read: {exc}") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DataFileError(p, "empty file (expected a header line)")
    header = [h.strip() for h in lines[0].split(",")]
    if any(not h for h in header):
        raise DataFileError(p, f"empty column name in header {lines[0]!r}")
    try:
        float(header[0])
        raise DataFileError(p, f"first line must be a header, got numbers: {lines[0]!r}")
    except ValueError:
        pass
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataFileError(
                p, f"column {name!r} appears more than once in the header {lines[0].strip()!r}"
            )
        seen.add(name)
    missing = [c for c in required if c not in header]
    if missing:
        raise DataFileError(
            p, f"missing column(s) {', '.join(missing)} (header has: {', '.join(header)})"
        )
    rows = []
    line_numbers = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split(",")
        if len(cells) != len(header):
            raise DataFileError(
                p, f"line {lineno}: {len(cells)} values, header has {len(header)} columns"
            )
        try:
            values = [float(c) for c in cells]
        except ValueError:
            raise DataFileError(p, f"line {lineno}: not a number in {line.strip()!r}") from None
        for name, v in zip(header, values, strict=True):
            if not math.isfinite(v):
                raise DataFileError(p, f"line {lineno}: {name} is {v} (NaN/inf not allowed)")
        rows.append(values)
        line_numbers.append(lineno)
    if not rows:
        raise DataFileError(p, "no data rows after the header")
    arr = np.array(rows, float)
    return CSVTable({name: arr[:, i] for i, name in enumerate(header)}, np.array(line_numbers))


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
    time_ps: np.ndarray
    e_ref: np.ndarray
    delta_e: np.ndarray
    path: str


def load_tds_csv(path) -> TDSData:
    """Read and validate a ``time_ps,E_ref,dE`` file."""
    table = read_csv_table(path, ("time_ps", "E_ref", "dE"))
    cols = table.columns
    t = cols["time_ps"]
    _check_count(path, t.size, MIN_TDS_POINTS, "a TDS spectrum")
    _check_increasing(path, t, "time_ps", equal_spacing=True, line_numbers=table.line_numbers)
    if not np.any(cols["E_ref"]):
        raise DataFileError(path, "E_ref is zero everywhere")
    return TDSData(t, cols["E_ref"], cols["dE"], str(path))


@dataclass
class OPTPData:
    pump_delay_ps: np.ndarray
    minus_de_over_e: np.ndarray
    minus_de_over_e_err: np.ndarray | None
    path: str


def load_optp_csv(path) -> OPTPData:
    """Read ``pump_delay_ps`` with ``minus_dE_over_E`` or ``E_ref_peak,dE_peak``."""
    table = read_csv_table(path, ("pump_delay_ps",))
    cols = table.columns
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
            f"(header has: {', '.join(cols)})",
        )
    _check_count(path, t.size, MIN_OPTP_POINTS, "an OPTP trace")
    _check_increasing(
        path, t, "pump_delay_ps", equal_spacing=False, line_numbers=table.line_numbers
    )
    err = cols.get("minus_dE_over_E_err")
    if err is not None and np.any(err <= 0):
        raise DataFileError(path, "minus_dE_over_E_err must be positive")
    return OPTPData(t, sig, err, str(path))


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
            f"(header has: {', '.join(cols)})",
        )
    _check_count(path, wl.size, MIN_ABSORPTION_POINTS, "an absorption spectrum")
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
def read_run_header(path) -> dict[str, str]:
    """The ``#\\tName: value`` lines of a pymeasure run file's header, by name (text values)."""
    header: dict[str, str] = {}
    p = Path(path)
    try:
        with p.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.startswith("#"):
                    break
                name, sep, value = line[1:].strip().partition(": ")
                if sep and line[1:2] == "\t":
                    header[name] = value.strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(p, f"cannot read: {exc}") from None
    return header


def header_number(header: dict[str, str], name: str) -> float | None:
    """A header value's number without its unit (``"100 nm"`` → 100.0); None if absent/empty."""
    text = header.get(name, "").split(" ")[0]
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def is_run_file(path) -> bool:
    """True for a pymeasure run file (its first line is ``#Procedure: <…>``)."""
    try:
        with Path(path).open(encoding="utf-8") as fh:
            return fh.readline().startswith("#Procedure:")
    except (OSError, UnicodeDecodeError):
        return False


def load_tds_run(path) -> tuple[TDSData, dict[str, str], int]:
    """A ``labctl run tds`` file: header, and ``sweep,time_ps,E_ref,dE`` rows averaged per delay.

    Returns the sweep-averaged :class:`TDSData`, the header (:func:`read_run_header`) and
    the number of sweeps. A sweep cut short (an aborted run) contributes the points it has.
    """
    p = Path(path)
    header = read_run_header(p)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(p, f"cannot read: {exc}") from None
    first = next((i for i, line in enumerate(lines) if not line.startswith("#")), None)
    if first is None or not lines[first].strip():
        raise DataFileError(p, "no column header after the '#' run header")
    names = [h.strip() for h in lines[first].split(",")]
    missing = [c for c in ("sweep", "time_ps", "E_ref", "dE") if c not in names]
    if missing:
        raise DataFileError(
            p, f"line {first + 1}: missing column(s) {', '.join(missing)} (has: {', '.join(names)})"
        )
    rows = []
    for lineno, line in enumerate(lines[first + 1 :], start=first + 2):
        if not line.strip():
            continue
        cells = line.split(",")
        if len(cells) != len(names):
            raise DataFileError(p, f"line {lineno}: {len(cells)} values, header has {len(names)}")
        try:
            values = [float(c) for c in cells]
        except ValueError:
            raise DataFileError(p, f"line {lineno}: not a number in {line.strip()!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise DataFileError(p, f"line {lineno}: NaN/inf not allowed")
        rows.append(values)
    if not rows:
        raise DataFileError(p, "no data rows after the header")
    arr = np.array(rows)
    col = {name: arr[:, i] for i, name in enumerate(names)}
    times, inverse = np.unique(np.round(col["time_ps"], 6), return_inverse=True)
    counts = np.bincount(inverse, minlength=times.size)
    e_ref = np.bincount(inverse, col["E_ref"], times.size) / counts
    de = np.bincount(inverse, col["dE"], times.size) / counts
    _check_count(p, times.size, MIN_TDS_POINTS, "a TDS spectrum")
    steps = np.diff(times)
    if np.ptp(steps) > 0.01 * np.median(steps):
        raise DataFileError(
            p,
            f"time_ps is not equally spaced (steps {steps.min():g}…{steps.max():g} ps); "
            "the FFT needs a uniform grid",
        )
    if not np.any(e_ref):
        raise DataFileError(p, "E_ref is zero everywhere")
    sweeps = int(np.unique(col["sweep"]).size)
    return TDSData(times, e_ref, de, str(p)), header, sweeps
