"""The import-linter contracts in pyproject.toml hold, and would catch a violation.

The contracts are checked on the installed package (the strict editable install
``tools/bootstrap.sh`` makes is a real ``tessera/`` tree). To plant a violation,
a test builds its own tree with the one subpackage it edits copied for real and
puts it first on PYTHONPATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")
FOLDERS = {"drivers": "drivers", "cext": "cext", "sim": "hw-sim"}


def _tree(dest: Path, copy: str | None = None) -> Path:
    """tessera/ as symlinks; ``copy`` names one subpackage copied for real (to edit it)."""
    pkg = dest / "tessera"
    pkg.mkdir(parents=True)
    for f in (ROOT / "firmware").iterdir():
        if f.name == copy:
            shutil.copytree(f, pkg / f.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (pkg / f.name).symlink_to(f)
    for name, folder in FOLDERS.items():
        if name == copy:
            shutil.copytree(ROOT / folder, pkg / name,
                            ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
        else:
            (pkg / name).symlink_to(ROOT / folder)
    return dest


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT), str(ROOT / "pyproject.toml")], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(180)
def test_contracts_are_kept() -> None:
    r = subprocess.run([str(LINT), str(ROOT / "pyproject.toml")], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "broken" not in r.stdout.split("Contracts:")[-1].replace("0 broken", "")


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("package", "line", "contract"), [
    ("cext", "from tessera.drivers import errors", "cext imports nothing from tessera"),
    ("drivers", "from tessera import dispatch", "drivers never import the firmware"),
    ("sim", "from tessera.drivers import escpos", "never imports the drivers' encoders"),
    ("roles", "from tessera import wiring", "the roles never import the wiring"),
    ("drivers", "from tessera import demo", "drivers never import the firmware"),
    ("drivers", "from tessera import _version", "drivers never import the firmware"),
    ("sim", "from tessera.drivers import escpos_encoder", "never imports the drivers' encoders"),
    ("sim", "from tessera.drivers import escpos_layout", "never imports the drivers' encoders"),
    ("sim", "from tessera.printing import issuer", "never imports the drivers' encoders"),
    ("roles", "import matplotlib", "charts stay in tessera.report.render"),
    ("engine", "from tessera.report import render", "charts stay in tessera.report.render"),
])
def test_a_violation_breaks_its_contract(tmp_path: Path, package: str, line: str,
                                         contract: str) -> None:
    tree = _tree(tmp_path, copy=package)
    (tree / "tessera" / package / "_violation.py").write_text(line + "\n", encoding="utf-8")
    r = _lint(tree)
    assert r.returncode != 0
    assert f"{contract}" in r.stdout and "BROKEN" in r.stdout, r.stdout


def test_drivers_contract_covers_every_firmware_module() -> None:
    """The forbidden list is derived: a new top-level module of firmware/ must be on it."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "tool"]["importlinter"]["contracts"]
    listed = set(next(c for c in contracts if c["name"] == "drivers never import the firmware")
                 ["forbidden_modules"])
    modules = {f"tessera.{p.stem}" for p in (ROOT / "firmware").iterdir()
               if (p.suffix == ".py" and p.stem != "__init__")
               or (p.is_dir() and (p / "__init__.py").exists())}
    assert modules == listed, {"missing": sorted(modules - listed),
                               "stale": sorted(listed - modules)}
