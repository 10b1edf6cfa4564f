"""Line coverage of labctl's four packages by the test suite, one figure per package.

Issue 18 asks that speeding the suite up never costs coverage of ``labctl``,
``drivers``, ``procedures`` and ``simulators``; this script makes the comparison
reproducible. It runs the tests under coverage.py (pytest-cov, the ``test``
extra) and prints statements, covered lines and percent per package, then the
same as the last line, one JSON object. Lines run only inside subprocesses
(``labctl sim serve``, ``labctl series run`` started by a test) are not counted:
the figure is what the in-process tests reach, the same way before and after.

    .venv/bin/python benchmarks/coverage_by_package.py            # runs the suite (minutes)
    .venv/bin/python benchmarks/coverage_by_package.py -- tests/test_sr830.py
    .venv/bin/python benchmarks/coverage_by_package.py --data-file .coverage   # no run

The packages are the top-level source folders (``drivers/`` is installed as
``labctl.drivers``, and so on: pyproject's ``[tool.setuptools.package-dir]``), so
``labctl`` here means the framework in ``labctl/`` without the other three.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("labctl", "drivers", "procedures", "simulators")
#: The README's test command, in one process per core, file order fixed.
PYTEST_ARGS = ["-q", "-n", "2", "--dist", "loadfile", "-p", "no:randomly", "--timeout", "300"]


def run_suite(data_file: Path, extra: list[str]) -> int:
    """Run pytest under coverage, its data in ``data_file``; pytest's exit code."""
    cov = [f"--cov={name}" for name in PACKAGES]
    cmd = [sys.executable, "-m", "pytest", *PYTEST_ARGS, *cov, "--cov-report=", *extra]
    env = {**os.environ, "COVERAGE_FILE": str(data_file)}
    return subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode


def per_package(data_file: Path) -> dict[str, dict[str, float]]:
    """{package: {statements, covered, percent}} from a coverage.py data file."""
    import coverage

    cov = coverage.Coverage(data_file=str(data_file))
    cov.load()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(report))
        files = json.loads(report.read_text())["files"]
    totals = {name: [0, 0] for name in PACKAGES}
    for path, entry in files.items():
        top = Path(path).resolve().relative_to(ROOT).parts[0]
        if top in totals:
            totals[top][0] += entry["summary"]["num_statements"]
            totals[top][1] += entry["summary"]["covered_lines"]
    return {
        name: {
            "statements": n,
            "covered": c,
            "percent": round(100.0 * c / n, 2) if n else 0.0,
        }
        for name, (n, c) in totals.items()
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-file", type=Path, help="an existing coverage data file: no run")
    ap.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = ap.parse_args(argv)
    data_file = args.data_file
    if data_file is None:
        data_file = ROOT / ".coverage"
        rc = run_suite(data_file, args.pytest_args)
        print(f"pytest exit code {rc}")
    figures = per_package(data_file.resolve())
    print(f"{'package':<12}{'statements':>11}{'covered':>9}{'percent':>9}")
    for name, f in figures.items():
        print(f"{name:<12}{f['statements']:>11}{f['covered']:>9}{f['percent']:>8.2f}%")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
