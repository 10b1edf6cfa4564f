"""CSV reading: duplicate columns and the file's own line numbers in messages."""

import numpy as np
import pytest

from labctl.analysis import io
from labctl.errors import DataFileError


def _tds_lines(n=40, step=0.05):
    t = np.arange(n) * step
    return [f"{x:.4f},{np.sin(x)},{0.01 * np.cos(x)}" for x in t]


def test_duplicate_column_names_are_refused(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("time_ps,E_ref,dE,dE\n" + "\n".join(r + ",0" for r in _tds_lines()) + "\n")
    with pytest.raises(DataFileError, match=r"dup\.csv.*column 'dE' appears more than once"):
        io.read_csv_columns(p)


def test_line_numbers_count_skipped_blank_lines(tmp_path):
    rows = _tds_lines()
    rows[20] = rows[20].replace(rows[20].split(",")[0], "0.7000")  # goes back in time
    text = "time_ps,E_ref,dE\n" + "\n".join(rows[:5]) + "\n\n\n" + "\n".join(rows[5:]) + "\n"
    p = tmp_path / "blank.csv"
    p.write_text(text)
    table = io.read_csv_table(p)
    assert table.line_numbers[:7].tolist() == [2, 3, 4, 5, 6, 9, 10]
    # data row 20 (0-based) is file line 24 (two blank lines skipped), not "row 22"
    assert text.splitlines()[24 - 1].startswith("0.7000")
    with pytest.raises(DataFileError, match=r"line 23: 0\.95 → line 24: 0\.7\)"):
        io.load_tds_csv(p)
    rows = _tds_lines()
    rows[30] = rows[30].replace(rows[30].split(",")[0], "1.5200")  # uneven step
    p.write_text("time_ps,E_ref,dE\n\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataFileError, match=r"from line 32 to line 33"):
        io.load_tds_csv(p)


def test_repeated_wavelength_names_both_lines(tmp_path):
    wl = np.arange(400.0, 430.0)
    lines = [f"{w},{0.1}" for w in wl]
    lines[10] = "400.0,0.2"
    p = tmp_path / "abs.csv"
    p.write_text("wavelength_nm,absorbance\n\n" + "\n".join(lines) + "\n")
    with pytest.raises(DataFileError, match=r"400 nm on lines 3 and 13"):
        io.load_absorption_csv(p)
