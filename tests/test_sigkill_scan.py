"""A TDS run killed with SIGKILL mid-scan leaves a readable file holding every flushed row.

``labctl run tds`` runs in its own process on the in-process simulated station, at a
time scale where a sweep takes about a second of wall time; it is killed part-way into
its second sweep. The file must then read back with pandas and with pymeasure, hold
every row that was on disk before the kill byte for byte (none torn), and
``labctl analyze tds`` must fit the complete sweep and leave out the incomplete one.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from killing import sigkill_when
from pymeasure.experiment import Results

from labctl.procedures.tds import TDS

#: The gate window: −4…12 ps in 0.2 ps steps, 81 points a sweep.
POINTS_PER_SWEEP = 81


def data_lines(text: str) -> list[str]:
    """The data rows of a run file (every line after the header that starts with a digit)."""
    return [ln for ln in text.splitlines() if ln[:1].isdigit()]


@pytest.mark.slow
def test_sigkill_mid_tds_scan_keeps_every_flushed_row(tmp_path):
    cmd = [
        sys.executable, "-m", "labctl.cli", "run", "tds", "--station", "sim",
        "--time-scale", "25", "--slot", "1", "--thz-peak-ps", "0", "--optp-peak-ps", "0.23",
        "--step-ps", "0.2", "--max-sweeps", "5", "--quiet", "--out", str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wanted = POINTS_PER_SWEEP + 30  # one sweep done, the second under way
    before: list[str] = []

    def second_sweep_under_way() -> bool:
        nonlocal before
        files = list(tmp_path.glob("tds_*.csv"))
        if files:
            before = data_lines(files[0].read_text())[:-1]  # the last may be half-written
        return len(before) >= wanted

    sigkill_when(proc, second_sweep_under_way, timeout_s=90)
    (path,) = tmp_path.glob("tds_*.csv")
    assert not path.with_suffix(".json").exists()  # the run never got to its summary
    after = data_lines(path.read_text())
    assert after[: len(before)] == before  # every row on disk before the kill, unchanged
    assert path.read_text().endswith("\n")  # whole rows only: each is written then flushed
    assert len(after) < 2 * POINTS_PER_SWEEP  # killed mid-way through the second sweep

    data = pd.read_csv(path, comment="#")
    assert len(data) == len(after) and not data.isna().any().any()
    assert list(data.columns) == TDS.DATA_COLUMNS
    assert (data.sweep == 1).sum() == POINTS_PER_SWEEP
    assert len(Results.load(str(path), procedure_class=TDS).data) == len(data)

    done = subprocess.run(
        [sys.executable, "-m", "labctl.cli", "analyze", "tds", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    fit = json.loads(done.stdout)
    assert fit["n_sweeps"] == 1  # the complete sweep; the incomplete one is left out
    assert fit["thickness_nm"] == 100  # from the header, written before the first row
    assert any("sweep 2 has" in w and "incomplete" in w for w in fit["warnings"])
    # one complete sweep: errors from the baseline only, said so; the as-made film's
    # weak response is fitted when it stands out of that noise, and nulled when not
    # (significance: None, not assessable from one trace; False when even that
    # lower-bound noise cannot reject zero)
    assert fit["errors_are_lower_bounds"] is True
    assert fit["significant"] is not True
    if fit["significant"] is None:
        assert fit["tau_fs"] > 0 and fit["tau_fs_err"] > 0
    else:
        assert fit["tau_fs"] is None
        assert any("not significant" in w for w in fit["warnings"])
