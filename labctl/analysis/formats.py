"""Text tables from other labs' programs: what the file is, found out and said, never guessed.

Rule: the layout (separator, decimal mark, line ends, metadata lines, header or none)
is detected from the first numeric lines and reported; the *meaning* of the columns —
which is time and in what unit, whether a field column is ΔE, the pumped field or a
lock-in output — is taken from the header's names or the options, and where neither
says it the file is refused with the option that would say it. A stage position read
as picoseconds gave τ = 6.6 fs with ``success: true``; a refusal costs the user one
option, a silent guess costs a wrong paper.

Layout: separators tab, semicolon, comma or runs of blanks; a decimal point or comma;
LF or CRLF; before the data, ``#``/``%`` comment lines and ``key<TAB>value``,
``key: value`` or ``key = value`` metadata lines (kept, bounded), then optionally one
header line with one name per column; then numbers only (the strict reader of
:mod:`labctl.analysis.strict_numbers`: one clear line naming file, line and column
on bad input, linear time and memory).

Time axes: ``ps``, ``fs`` or a stage position in mm, single pass (1 mm = 3.336 ps) or
double pass (1 mm = 6.671 ps); a descending axis (back sweep) is reversed, a
non-monotonic one refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labctl.errors import DataFileError

from .strict_numbers import Dialect, parse_stream, quote, strict_number

C_MM_PER_PS = 0.299792458
#: picoseconds per unit of the time column
TIME_UNITS = {
    "ps": 1.0,
    "fs": 1e-3,
    "mm-single": 1.0 / C_MM_PER_PS,
    "mm-double": 2.0 / C_MM_PER_PS,
}
#: lines read to find the data (comments, metadata, header), and their bytes
SNIFF_LINES = 1000
SNIFF_BYTES = 1 << 20
#: numeric lines that must agree on the layout
SNIFF_ROWS = 5
MAX_METADATA = 50
MAX_NAME_CHARS = 100
#: typical THz-TDS time steps (ps); outside them a unit mistake is likely
TYPICAL_STEP_PS = (0.002, 0.5)

_CANDIDATES = (
    Dialect("\t", "."),
    Dialect("\t", ","),
    Dialect(";", ","),
    Dialect(";", "."),
    Dialect(",", "."),
    Dialect(None, "."),
    Dialect(None, ","),
)


@dataclass
class TextTable:
    """A numeric table and what was found out about its layout."""

    path: str
    names: list[str]
    values: np.ndarray  # (rows, columns)
    line_numbers: np.ndarray
    dialect: Dialect
    header_line: int | None  # None: headerless
    metadata: dict[str, str] = field(default_factory=dict)
    crlf: bool = False

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]

    def describe(self) -> dict:
        return {
            "layout": self.dialect.describe(),
            "line_ends": "CRLF" if self.crlf else "LF",
            "header": (
                f"line {self.header_line}: {', '.join(self.names)}"
                if self.header_line
                else f"none (numeric from line {int(self.line_numbers[0])})"
            ),
            "metadata": dict(self.metadata),
            "rows": int(self.values.shape[0]),
        }


def _numeric_cells(line: bytes, dialect: Dialect) -> int:
    """How many numbers ``line`` holds in ``dialect`` (0 if any cell is not one)."""
    cells = dialect.split(line.rstrip(b"\r\n"))
    if dialect.separator is None:
        cells = [c for c in cells if c]
    try:
        for c in cells:
            strict_number(c, dialect.decimal)
    except ValueError:
        return 0
    return len(cells)


def _sniff_dialect(rows: list[bytes]) -> Dialect | None:
    """The layout of the first row (≥ 2 numbers), the one most following rows agree with
    (rows that break it are left to the strict reader, which names them)."""
    best, best_score = None, -1
    for d in _CANDIDATES:
        width = _numeric_cells(rows[0], d)
        if width < 2:
            continue
        score = sum(_numeric_cells(r, d) == width for r in rows[1:])
        if score > best_score:
            best, best_score = d, score
    if best is not None:
        width = _numeric_cells(rows[0], best)
        wider = sum(_numeric_cells(r, best) > width for r in rows[1:])
        if 2 * wider > len(rows) - 1:
            return None  # most rows below are wider: this one is a header (an empty corner)
    return best


def _metadata_entry(text: str, metadata: dict[str, str]) -> None:
    body = text.lstrip("#%").strip()
    for sep in ("\t", ":", "="):
        key, found, value = body.partition(sep)
        if found and key.strip() and len(metadata) < MAX_METADATA:
            metadata[key.strip()[:MAX_NAME_CHARS]] = value.strip()[:200]
            return


def read_text_table(path) -> TextTable:
    """Read any supported text table (see the module docstring)."""
    from .io import MAX_FILE_BYTES

    p = Path(path)
    if not p.exists():
        raise DataFileError(p, "no such file")
    if not p.is_file():
        raise DataFileError(p, "not a regular file")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataFileError(p, f"file is {size / 2**20:.0f} MiB; at most {MAX_FILE_BYTES >> 20}")
    try:
        with p.open("rb") as f:
            return _read(p, f)
    except OSError as exc:
        raise DataFileError(p, f"cannot read: {exc.strerror or exc}") from None


def _read(p: Path, f) -> TextTable:
    lines: list[tuple[int, int, bytes]] = []  # (line number, byte offset, raw)
    offset = 0
    for lineno in range(1, SNIFF_LINES + 1):
        raw = f.readline(SNIFF_BYTES)
        if not raw:
            break
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            offset += 3
            raw = raw[3:]
        lines.append((lineno, offset, raw))
        offset += len(raw)
        if offset > SNIFF_BYTES:
            break
    solid = [(n, o, r) for n, o, r in lines if r.strip()]
    first = None
    for i, (_, _, raw) in enumerate(solid):
        if raw.lstrip().startswith((b"#", b"%")):
            continue
        sample = [r for _, _, r in solid[i : i + SNIFF_ROWS]]
        dialect = _sniff_dialect(sample)
        if dialect is not None:
            first, found = i, dialect
            break
    if first is None:
        if not solid:
            raise DataFileError(p, "empty file")
        raise DataFileError(
            p,
            f"no rows of numbers in the first {len(lines)} lines (tab, semicolon, comma or "
            "blank separated, decimal point or comma)",
        )
    dialect = found
    data_lineno, data_offset, first_raw = solid[first]
    width = _numeric_cells(first_raw, dialect)
    metadata: dict[str, str] = {}
    header_line = None
    names = [f"col{k + 1}" for k in range(width)]
    before = solid[:first]
    if before and not before[-1][2].lstrip().startswith((b"#", b"%")):
        n, _, raw = before[-1]
        text = _decode(p, n, raw)
        cells = [c.strip() for c in (text.split() if dialect.separator is None
                                     else text.split(dialect.separator))]  # fmt: skip
        if len(cells) == width and all(cells[1:]):  # an empty corner cell (2D matrices)
            header_line, names = n, _check_names(p, n, cells)
            before = before[:-1]
    for n, _, raw in before:
        _metadata_entry(_decode(p, n, raw).strip(), metadata)
    crlf = any(r.endswith(b"\r\n") for _, _, r in lines)
    f.seek(data_offset)
    values, line_numbers = parse_stream(p, f, data_lineno, names, dialect)
    return TextTable(
        str(p), names, values, line_numbers, dialect, header_line, metadata, crlf
    )  # fmt: skip


def _decode(p, lineno: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DataFileError(p, f"line {lineno}: not UTF-8 text (byte {exc.start + 1})") from None


def _check_names(p, lineno: int, names: list[str]) -> list[str]:
    longest = max(names, key=len)
    if len(longest) > MAX_NAME_CHARS:
        raise DataFileError(p, f"line {lineno}: column name of {len(longest)} characters")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataFileError(p, f"column {quote(name)} appears more than once (line {lineno})")
        seen.add(name)
    return names


# ---------------------------------------------------------------- column roles

#: role → header names that mean it (lower case, blanks and _-() removed)
ROLE_NAMES = {
    "time": ("time", "timeps", "timefs", "delay", "delayps", "delayfs", "t", "tps", "tfs",
             "gate", "gatetime", "position", "positionmm", "pos", "posmm", "stage", "stagemm",
             "x", "xmm"),
    "ref": ("eref", "ref", "reference", "e0", "unpumped", "pumpoff", "eoff", "e"),
    "dE": ("de", "deltae", "δe", "diff", "difference", "pumpinduced", "dt"),
    "pumped": ("epumped", "pumped", "epump", "pumpon", "eon", "excited", "e*"),
    "probe_lockin": ("xprobe", "probelockin", "lockin1", "x1", "thzlockin", "xref"),
    "pump_lockin": ("xpump", "pumplockin", "lockin2", "x2", "xdiff"),
}  # fmt: skip
#: what each supported combination of field roles means
FIELD_MODES = {
    ("ref", "dE"): "E_ref and ΔE = E_pumped − E_ref",
    ("ref", "pumped"): "E_ref and E_pumped (ΔE = E_pumped − E_ref)",
    ("probe_lockin", "pump_lockin"): (
        "doubly chopped lock-ins: X_probe = E_ref + ΔE/2, X_pump = ΔE/2 "
        "(E_ref = X_probe − X_pump, ΔE = 2·X_pump)"
    ),
}


def _key(name: str) -> str:
    return re.sub(r"[\s_\-()\[\]/.]", "", name.lower())


def unit_from_name(name: str) -> str | None:
    """The time unit a column name states: ``time_ps``, ``Delay (fs)``, ``pos [mm]``."""
    low = name.lower()
    for unit in ("ps", "fs", "mm"):
        if re.search(rf"(^|[\s_\-(\[/]){unit}($|[\s_\-)\]/])", low):
            return unit
    return None


def parse_columns_option(text: str | None) -> dict[str, str]:
    """``--columns time=1,ref=Signal,dE=3`` → {role: name or 1-based index}."""
    if not text:
        return {}
    out: dict[str, str] = {}
    roles = set(ROLE_NAMES) | {"field"}
    for part in text.split(","):
        role, eq, col = part.partition("=")
        role, col = role.strip(), col.strip()
        if not eq or not col or role not in roles:
            raise DataFileError(
                "--columns",
                f"{quote(part)}: expected ROLE=COLUMN with ROLE one of {', '.join(sorted(roles))}",
            )
        out[role] = col
    return out


def _resolve(table: TextTable, col: str, option: str) -> str:
    if col in table.names:
        return col
    if col.isdigit() and 1 <= int(col) <= len(table.names):
        return table.names[int(col) - 1]
    raise DataFileError(
        table.path,
        f"{option}: no column {quote(col)} (columns: {quote(', '.join(table.names))}, "
        f"or 1–{len(table.names)})",
    )


def assign_roles(table: TextTable, columns: dict[str, str]) -> dict[str, str]:
    """role → column name: the options' mapping first, then the header's names."""
    roles = {r: _resolve(table, c, f"--columns {r}") for r, c in columns.items()}
    used = set(roles.values())
    if table.header_line is not None:
        for role, keys in ROLE_NAMES.items():
            if role in roles:
                continue
            for name in table.names:
                if name not in used and _key(name) in keys:
                    roles[role] = name
                    used.add(name)
                    break
        if "time" not in roles and unit_from_name(table.names[0]):
            roles["time"] = table.names[0]
    return roles


@dataclass
class Waveforms:
    """Time axis (ps, increasing) and field columns by role, with what was detected."""

    time_ps: np.ndarray
    fields: dict[str, np.ndarray]
    line_numbers: np.ndarray
    detected: dict


def time_axis(table: TextTable, roles: dict[str, str], time_unit: str | None):
    """The time column in ps, the unit and where it came from; refuses an unstated unit."""
    if "time" not in roles:
        raise DataFileError(
            table.path,
            "which column is time? the header does not say (give --columns time=N)",
        )
    name = roles["time"]
    stated = unit_from_name(name) if table.header_line is not None else None
    if time_unit is None:
        if stated in ("ps", "fs"):
            time_unit, source = stated, f"from the header ({quote(name)})"
        elif stated == "mm":
            raise DataFileError(
                table.path,
                f"time column {quote(name)} is a stage position in mm: single or double pass? "
                "give --time-unit mm-single or mm-double",
            )
        else:
            raise DataFileError(
                table.path,
                f"the unit of the time column {quote(name)} is not stated in the file: give "
                "--time-unit fs|ps|mm-single|mm-double (it is never guessed)",
            )
    else:
        if stated and not time_unit.startswith(stated):
            raise DataFileError(
                table.path,
                f"--time-unit {time_unit} contradicts the header's {quote(name)} ({stated})",
            )
        source = "from --time-unit"
    if time_unit not in TIME_UNITS:
        raise DataFileError(table.path, f"--time-unit must be one of {', '.join(TIME_UNITS)}")
    return table.column(name) * TIME_UNITS[time_unit], f"{time_unit} ({source})"


def order_time(table: TextTable, t_ps: np.ndarray, columns: dict[str, np.ndarray]):
    """Ascending time: a descending axis is reversed; a non-monotonic one refused."""
    steps = np.diff(t_ps)
    lines = table.line_numbers
    if steps.size and np.all(steps < 0):
        return (
            t_ps[::-1],
            {k: v[::-1] for k, v in columns.items()},
            lines[::-1],
            "descending (reversed)",
        )
    bad = np.flatnonzero(steps <= 0)
    if bad.size:
        i = int(bad[0])
        raise DataFileError(
            table.path,
            f"time is not monotonic (line {lines[i]}: {t_ps[i]:g} ps → line {lines[i + 1]}: "
            f"{t_ps[i + 1]:g} ps); split back-and-forth scans into one file per sweep",
        )
    return t_ps, columns, lines, "ascending"


def step_warning(t_ps: np.ndarray) -> list[str]:
    step = float(np.median(np.diff(t_ps))) if t_ps.size > 1 else 0.0
    lo, hi = TYPICAL_STEP_PS
    if not lo <= step <= hi:
        return [f"time step {step:.3g} ps is unusual for THz-TDS ({lo}–{hi} ps): check --time-unit"]
    return []


def read_waveforms(path, columns: dict[str, str], time_unit: str | None,
                   want: tuple[str, ...]) -> Waveforms:  # fmt: skip
    """Time (ps) and the field columns ``want`` (roles) of one file."""
    table = read_text_table(path)
    roles = assign_roles(table, columns)
    if want == ("field",) and "field" not in roles:
        rest = [n for n in table.names if n != roles.get("time")]
        if len(rest) != 1:
            raise DataFileError(
                table.path,
                f"which column is the field? {len(rest)} candidates ({quote(', '.join(rest))}): "
                "give --columns field=N",
            )
        roles["field"] = rest[0]
    missing = [r for r in want if r not in roles]
    if missing:
        raise DataFileError(table.path, f"no column for {', '.join(missing)}")
    t_ps, unit_text = time_axis(table, roles, time_unit)
    cols = {r: table.column(roles[r]) for r in want}
    t_ps, cols, lines, order = order_time(table, t_ps, cols)
    detected = table.describe() | {
        "time_column": roles["time"],
        "time_unit": unit_text,
        "time_order": order,
        "columns": {r: roles[r] for r in want},
    }
    return Waveforms(t_ps, cols, lines, detected)


def field_mode(table_roles: dict[str, str], pumped_column: str | None) -> tuple[str, str]:
    """Which pair of field roles a single TDS file carries."""
    for pair in (("probe_lockin", "pump_lockin"), ("ref", "pumped"), ("ref", "dE")):
        if all(r in table_roles for r in pair):
            if pumped_column and pair != ("ref", "pumped"):
                continue
            return pair
    return ()
