"""tools/install.sh into a temporary root: --dry-run lists every step and changes nothing,
a real run installs user, groups, udev rules, venv, config, state and the enabled unit,
and a second run changes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "tools" / "install.sh"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
STEPS = ("group gpio", "udev rule for /dev/gpiochip*", "user tessera", "tessera in group dialout",
         "venv", "branch.toml", "tessera.env", "/var/lib/tessera", "tessera@.service",
         "tessera@all enabled")


def _root(tmp_path: Path) -> Path:
    """A target root with this machine's account files, minus anything of ours."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow"):
        src = Path("/etc") / name
        if src.exists():
            lines = [ln for ln in src.read_text().splitlines(keepends=True)
                     if not ln.startswith(("tessera:", "gpio:"))]
            (root / "etc" / name).write_text("".join(lines))
    return root


def _install(root: Path, *extra: str) -> str:
    r = subprocess.run(["bash", str(INSTALL), "--root", str(root), *extra],
                       capture_output=True, text=True, timeout=500)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _snapshot(root: Path) -> dict[str, tuple[int, int, int, bytes]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if ".venv" in p.parts or p.is_symlink() or not p.exists():
            continue
        st = p.stat()
        out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid,
                                         p.read_bytes() if p.is_file() else b"")
    return out


def test_dry_run_lists_every_step_and_changes_nothing(tmp_path: Path) -> None:
    root = _root(tmp_path)
    before = _snapshot(root)
    out = _install(root, "--dry-run", "--sim")
    for step in (*STEPS, "tessera-sim.service (+ drop-in)", "tessera-sim enabled"):
        assert step in out, (step, out)
    assert "would:" in out and "done:" not in out
    assert _snapshot(root) == before


def test_install_into_a_root_then_again_changes_nothing(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("a real install creates users and owners: run as root (CI does)")
    assert shutil.which("useradd") and shutil.which("systemctl")
    root = _root(tmp_path)
    first = _install(root, "--device", "pi-3")
    assert "done:" in first
    user = next(ln.split(":") for ln in (root / "etc" / "passwd").read_text().splitlines()
                if ln.startswith("tessera:"))
    assert user[6] == "/usr/sbin/nologin"
    groups = {ln.split(":")[0]: ln.split(":") for ln in
              (root / "etc" / "group").read_text().splitlines()}
    assert groups["tessera"][2] == user[3]  # its own group (the unit's Group=tessera)
    assert "tessera" in groups["gpio"][3].split(",")
    assert (root / "etc/udev/rules.d/60-tessera-gpio.rules").read_text().count("gpiochip")
    assert (root / "opt/tessera/.venv/bin/tessera").exists()
    assert "TESSERA_DEVICE=pi-3" in (root / "etc/tessera/tessera.env").read_text()
    assert 'dir = "/var/lib/tessera"' in (root / "etc/tessera/branch.toml").read_text()
    assert (root / "etc/systemd/system/multi-user.target.wants/tessera@all.service").is_symlink()
    assert (root / "etc/systemd/system/tessera@.service").read_bytes() == \
        (ROOT / "systemd" / "tessera@.service").read_bytes()
    before = _snapshot(root)
    second = _install(root, "--device", "pi-3")
    assert "done:" not in second and "would:" not in second, second
    assert _snapshot(root) == before
    out = _install(root, "--uninstall")
    assert not (root / "opt/tessera").exists()
    assert (root / "etc/tessera/branch.toml").exists(), out  # kept without --purge
