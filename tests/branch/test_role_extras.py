"""A counter, display or engine Pi installs only the base dependencies (the kiosk's
python-escpos, Pillow and segno and the demo's rich are extras): each of those roles starts
and serves with those libraries made unimportable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tessera.bench.branch import role_config

pytestmark = pytest.mark.timeout(120)

BLOCKER = '''
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("PIL", "escpos", "segno", "rich", "qrcode", "barcode"):
            raise ImportError("not installed on this Pi: " + name)
        return None
sys.meta_path.insert(0, _Block())
'''


def _env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    return {**os.environ, "PYTHONPATH": str(site)}


@pytest.mark.parametrize("role", ["engine", "display", "counter"])
def test_role_runs_without_the_kiosk_and_demo_libraries(tmp_path: Path, role: str) -> None:
    config = role_config(tmp_path, "mqtt://127.0.0.1:9")  # no broker: roles keep retrying
    text = config.read_text(encoding="utf-8")
    text = text.replace('url = "/dev/ttyUSB1"', 'url = ""', 1)  # no board line here
    text = text.replace('pin_factory = ""', 'pin_factory = "mock"', 1)
    text = text.replace('output = "aplay"', f'output = "dir:{tmp_path / "wav"}"', 1)
    config.write_text(text, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "tessera", "run", role, "--config",
                             str(config), "--device", "main"], env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "ready" (logs go to stderr)
    proc.terminate()
    rest, err = proc.communicate(timeout=30)
    out = line + rest + err
    assert "ready" in line, out
    assert proc.returncode == 0, out
    assert "not installed on this Pi" not in out, out


def test_config_check_of_every_role_says_what_it_skipped(tmp_path: Path,
                                                         bank_config_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "tessera", "config", "check",
                        str(bank_config_path)], env=_env(tmp_path), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "install tessera[kiosk]" in r.stderr, r.stderr
