"""Lint, format and the import layers are part of the test suite, so the README's one test
command covers them."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if exe is None:
        pytest.fail(f"{name} is not installed (it is in the 'test' extra)")
    return exe


def _ruff() -> list[str]:
    return [_tool("ruff")]


def test_ruff_lint_clean():
    result = subprocess.run(
        [*_ruff(), "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=100
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_clean():
    result = subprocess.run(
        [*_ruff(), "format", "--check", "."], cwd=ROOT, capture_output=True, text=True, timeout=100
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- layers (import-linter) ---------------------------------------------------------------------
def installed_layout(where: Path) -> Path:
    """The package's sources laid out as installed (``drivers/`` → ``labctl/drivers`` …).

    import-linter walks a package's directory; ``labctl.drivers``, ``.procedures`` and
    ``.simulators`` live beside ``labctl/`` in the source tree (pyproject's
    ``package-dir``), so the graph is built over a copy in the installed layout.
    """
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dir = config["tool"]["setuptools"]["package-dir"]
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / package_dir["labctl"], where / "labctl", ignore=skip)
    for package, source in package_dir.items():
        if package != "labctl" and (ROOT / source / "__init__.py").exists():
            target = where.joinpath(*package.split("."))
            shutil.copytree(ROOT / source, target, ignore=skip, dirs_exist_ok=True)
    shutil.copy(ROOT / "pyproject.toml", where / "pyproject.toml")
    return where


def lint_imports(layout: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(layout))
    return subprocess.run(
        [_tool("lint-imports"), "--config", "pyproject.toml", "--no-cache"],
        cwd=layout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_layers_kept(tmp_path):
    layout = installed_layout(tmp_path)
    result = lint_imports(layout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and "0 broken" in result.stdout, result.stdout
    # the graph covers the packages mapped from beside labctl/, not just labctl/ itself
    analyzed = int(result.stdout.split("Analyzed ", 1)[1].split(" files", 1)[0])
    expected = sum(1 for _ in layout.rglob("*.py"))
    assert analyzed == expected, (analyzed, expected)


@pytest.mark.parametrize(
    ("module", "wrong_way"),
    [
        ("labctl/drivers/sr830.py", "labctl.procedures.base"),  # a driver importing upwards
        ("labctl/analysis/models.py", "labctl.simulators.world"),  # impure analysis
        ("labctl/transport.py", "labctl.simulators.base"),  # core reaching the simulators
        ("labctl/drivers/pm100.py", "labctl.simulators.pm100"),  # drivers beside simulators
    ],
)
def test_a_wrong_way_import_inside_a_function_breaks_the_layers(tmp_path, module, wrong_way):
    layout = installed_layout(tmp_path)
    source = layout / module
    source.write_text(
        source.read_text() + f"\n\ndef _wrong_way():\n    import {wrong_way}  # noqa\n"
    )
    result = lint_imports(layout)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout and wrong_way in result.stdout, result.stdout
