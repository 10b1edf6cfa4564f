"""The C-speed strict reader: the same numbers as Python's float, the same refusals
(file, line, column), across block boundaries; sweep grouping by one sort."""

import numpy as np
import pytest

from labctl.analysis import io, strict_numbers
from labctl.errors import DataFileError


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 1 kB, so a small file crosses many block boundaries."""
    monkeypatch.setattr(strict_numbers, "BLOCK_BYTES", 1024)


def _cells(rng, n):
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-12, 12, n)
    fmts = ["{:.17g}", "{:.6e}", "{:.3f}", "{:+.9g}", "{:.0f}."]
    return [fmts[i % len(fmts)].format(v) for i, v in enumerate(x)]


def test_values_equal_python_float_across_blocks(tmp_path, small_blocks):
    rng = np.random.default_rng(7)
    cells = _cells(rng, 3 * 2000)
    cells[5] = ".5e-3"
    rows = [",".join(cells[i : i + 3]) for i in range(0, len(cells), 3)]
    rows[100] = rows[100] + "\r"  # one CRLF line
    text = "# a comment\na,b,c\n" + "\n".join(rows[:50]) + "\n\n  \n" + "\n".join(rows[50:])
    p = tmp_path / "v.csv"
    p.write_text(text)
    table = io.read_csv_table(p)
    expected = np.array([float(c) for c in cells]).reshape(-1, 3)
    got = np.column_stack([table.columns[k] for k in "abc"])
    assert np.array_equal(got, expected)
    assert table.line_numbers[49] == 52 and table.line_numbers[50] == 55
    assert table.line_numbers[-1] == len(text.splitlines())


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("nan", r"line 1503: b is 'nan' \(NaN/inf not allowed\)"),
        ("-inf", r"line 1503: b is '-inf' \(NaN/inf not allowed\)"),
        ("3.5_0", r"line 1503: b is not a number \(decimal notation only\): '3.5_0'"),
        ("0x1p3", r"line 1503: b is not a number"),
        ("", r"line 1503: b is not a number"),
        ("1e999", r"line 1503: b is '1e999' \(out of range\)"),
        ("١٢", r"line 1503: b is not a number"),
        ("1,2", r"line 1503: 4 values, header has 3 columns"),
    ],
)
def test_refusals_name_the_line_and_column_past_a_block(tmp_path, small_blocks, cell, message):
    rows = [f"{i},{i * 0.5},{i * 0.25}" for i in range(3000)]
    rows[1500] = f"1,{cell},3"
    p = tmp_path / "bad.csv"
    p.write_text("a,b,c\n\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=message) as exc:
        io.read_csv_table(p)
    assert "\n" not in str(exc.value) and len(str(exc.value)) < 300


def test_short_row_and_comment_after_header(tmp_path, small_blocks):
    p = tmp_path / "short.csv"
    rows = [f"{i},{i}" for i in range(2000)]
    rows[1999] = "7"
    p.write_text("a,b\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataFileError, match=r"line 2001: 1 values, header has 2 columns"):
        io.read_csv_table(p)
    rows[1999] = "# late"
    p.write_text("a,b\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataFileError, match=r"line 2001: a comment after the header"):
        io.read_csv_table(p)


def test_sweeps_in_any_order_group_to_the_same_matrices(tmp_path):
    """Many sweeps, rows shuffled: the per-sweep matrices are those written."""
    n_sweeps, n = 400, 40
    t = np.arange(n) * 0.05
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((n_sweeps, n)) + np.sin(t)
    de = 1e-3 * rng.standard_normal((n_sweeps, n))
    rows = [
        f"{k},{t[i]:.4f},{float(ref[k, i])!r},{float(de[k, i])!r}"
        for k in range(n_sweeps)
        for i in range(n)
    ]
    order = rng.permutation(len(rows))
    p = tmp_path / "run.csv"
    p.write_text("sweep,time_ps,E_ref,dE\n" + "\n".join(rows[i] for i in order) + "\n")
    data = io.load_tds_csv(p)
    assert data.n_sweeps == n_sweeps
    assert np.array_equal(data.e_ref_sweeps, ref) and np.array_equal(data.delta_e_sweeps, de)
    # one sweep off the grid is named with its first line
    rows[5 * n + 3] = f"5,{t[3] + 0.02:.4f},0.1,0.0"
    p.write_text("sweep,time_ps,E_ref,dE\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataFileError, match=r"sweep 5 \(from line 202\) is not on the time grid"):
        io.load_tds_csv(p)


def test_one_huge_line_is_refused_naming_where(tmp_path, small_blocks, monkeypatch):
    """A line with no end is refused once it passes MAX_LINE_BYTES, not carried on
    (which would cost time quadratic in its length)."""
    monkeypatch.setattr(strict_numbers, "MAX_LINE_BYTES", 4096)
    p = tmp_path / "huge.csv"
    p.write_text("a,b\n1,2\n3,4\n" + "5" * 100_000 + ",6\n")
    with pytest.raises(DataFileError, match=r"line 4 is longer than 4096 bytes"):
        io.read_csv_table(p)


def test_sweep_order_fast_path_equals_the_general_sort():
    rng = np.random.default_rng(4)
    k, n = 50, 37
    sweeps = np.repeat(np.arange(k), n).astype(float)
    t = np.concatenate([rng.permutation(n) * 0.05 for _ in range(k)])
    t[5] = t[6]  # a tie keeps file order
    # reads the private sort: the subject is its fast path, equal to the general one
    fast = io._sweep_order(sweeps, t)
    assert np.array_equal(fast, np.lexsort((t, sweeps)))
    sweeps[-1] = k + 1  # an incomplete last sweep: the general path
    assert np.array_equal(io._sweep_order(sweeps, t), np.lexsort((t, sweeps)))
