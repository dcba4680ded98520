"""What a Pi installs: a wheel built from the checkout, in a fresh venv (not editable).
`tessera config check` on the packaged examples and `tessera demo` with no --config work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=500, cwd=cwd)
    assert r.returncode == 0, (args, r.stdout[-3000:], r.stderr[-3000:])
    return r


def test_a_wheel_install_runs_the_packaged_examples(tmp_path: Path) -> None:
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w",
         str(tmp_path / "dist"))
    (wheel,) = (tmp_path / "dist").glob("tessera-*.whl")
    # the web role's pages and assets are package data (no CDN, no build step)
    import zipfile

    shipped = set(zipfile.ZipFile(wheel).namelist())
    web = ROOT / "firmware" / "web"
    assets = [f"tessera/web/{p.relative_to(web)}" for sub in ("templates", "static")
              for p in (web / sub).iterdir()]
    assert assets and not [a for a in assets if a not in shipped], sorted(shipped)[:20]
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv))
    _run(str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c",
         str(ROOT / "tools" / "constraints.txt"), f"{wheel}[all]")
    tessera = str(venv / "bin" / "tessera")
    where = _run(str(venv / "bin" / "python"), "-c",
                 "import tessera, pathlib; print(pathlib.Path(tessera.__file__).parent)",
                 cwd=tmp_path).stdout.strip()
    assert where.startswith(str(venv)), where  # the wheel, not this checkout
    for example in ("bank.toml", "clinic.toml"):
        out = _run(tessera, "config", "check", f"{where}/examples/{example}", cwd=tmp_path)
        assert "OK" in out.stdout, out.stdout
    demo = _run(tessera, "demo", "--minutes", "30", "--speed", "max", "--plain", "--out",
                str(tmp_path / "demo"), cwd=tmp_path)
    assert (tmp_path / "demo" / "summary.json").exists(), demo.stdout[-2000:]
    assert "web: http://" in demo.stdout, demo.stdout[-2000:]
