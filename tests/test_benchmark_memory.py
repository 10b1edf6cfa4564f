"""benchmarks/analysis_files.py measures the reader's own peak memory, not its parent's."""

import importlib.util
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "analysis_files.py"


def _bench():
    spec = importlib.util.spec_from_file_location("analysis_files_bench", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_child_peak_is_its_own_not_the_parents(tmp_path):
    bench = _bench()
    path = tmp_path / "tds.csv"
    bench.write_tds_run(path, 20_000, np.random.default_rng(0))
    ballast = np.ones(300 * 2**20 // 8)  # a 300 MB parent, touched so it is resident
    ballast[::512] += 1.0
    r = bench.measure("read_csv_table", path)
    assert r["exit"] == 0 and not r["peak_includes_imports"]
    # 20 000 rows of 4 numbers are < 1 MB of values; a figure near 300 MB would be the
    # parent's size leaking in (what ru_maxrss reported)
    assert 0 <= r["peak_mb"] < 100
    assert r["s"] > 0
    del ballast
