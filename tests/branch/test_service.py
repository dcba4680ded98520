"""`tessera run` as a systemd service: the unit verifies and is hardened, READY=1 comes once
the role serves, WATCHDOG=1 only while the health check passes (a real notify socket)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shape_support import until

from tessera.bench.branch import role_config
from tessera.clock import SystemClock
from tessera.config import load_config
from tessera.demo.hardware import simulated_hardware
from tessera.service import Notifier, Watchdog
from tessera.wiring import build_branch

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "tessera@.service"


class NotifySocket:
    """What systemd listens on: an AF_UNIX datagram socket, messages recorded."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[str] = []

    def pump(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                return self.messages

    def close(self) -> None:
        self.sock.close()


def _installed_unit(tmp_path: Path) -> Path:
    """The unit as an installer puts it, with ExecStart at this checkout's venv."""
    exe = Path(sys.executable).with_name("tessera")
    unit = tmp_path / "tessera@.service"
    unit.write_text(UNIT.read_text().replace("/opt/tessera/.venv/bin/tessera", str(exe)))
    return unit


@pytest.mark.parametrize("name", ["tessera@all.service", "tessera-sim.service"])
def test_unit_verifies_and_exposure_is_at_most_2(tmp_path: Path, name: str) -> None:
    """Every unit, as installed (the sim variant with its drop-in for tessera@)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: tools/bootstrap.sh installs systemd"
    _installed_unit(tmp_path)
    exe = str(Path(sys.executable).with_name("tessera"))
    (tmp_path / "tessera@.service.d").mkdir()
    for src, dest in ((ROOT / "systemd" / "tessera-sim.service", "tessera-sim.service"),
                      (ROOT / "systemd" / "tessera@.service.d" / "50-sim.conf",
                       "tessera@.service.d/50-sim.conf")):
        (tmp_path / dest).write_text(src.read_text().replace("/opt/tessera/.venv/bin/tessera",
                                                             exe))
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"}
    v = subprocess.run([analyze, "verify", name], capture_output=True, text=True,
                       timeout=60, env=env)
    assert v.returncode == 0 and not (v.stdout + v.stderr).strip(), v.stdout + v.stderr
    s = subprocess.run([analyze, "security", "--offline=yes", name], capture_output=True,
                       text=True, timeout=60, env=env)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", s.stdout + s.stderr)
    assert m, s.stdout + s.stderr
    assert float(m.group(1)) <= 2.0, s.stdout[-3000:]
    text = UNIT.read_text()
    assert "Type=notify" in text and "WatchdogSec=" in text


@pytest.mark.timeout(120)
def test_ready_after_serving_then_watchdog_pings(tmp_path: Path) -> None:
    notify = NotifySocket(tmp_path / "notify")
    config = role_config(tmp_path, "")
    ready = tmp_path / "ready"
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen([sys.executable, "-m", "tessera", "run", "all", "--config",
                             str(config), "--sim", "--tick-s", "0.05", "--ready-file",
                             str(ready)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        first = until(lambda: notify.pump(), 60)
        assert first and first[0].startswith("READY=1"), first
        assert ready.exists()  # READY only once the branch was built and serves
        assert until(lambda: notify.pump().count("WATCHDOG=1") >= 3, 10), notify.messages
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
        notify.pump()
        notify.close()
    assert proc.returncode == 0, out
    assert "STOPPING=1" in notify.messages


def test_watchdog_is_withheld_while_a_part_is_dead(tmp_path: Path,
                                                   bank_config_path: Path) -> None:
    notify = NotifySocket(tmp_path / "notify")
    watchdog = Watchdog(Notifier(str(notify.path), watchdog_s=0.01))
    cfg = load_config(bank_config_path)
    with simulated_hardware(cfg, tmp_path / "sim") as sim_cfg:
        branch = build_branch(sim_cfg, SystemClock(), roles=("all",), sim=True)
        try:
            assert watchdog.tick(branch)
            assert "WATCHDOG=1" in notify.pump()
            branch.inputs[0].stop()  # the button dispatcher's thread ends
            time.sleep(0.05)
            notify.messages.clear()
            assert not watchdog.tick(branch)
            msgs = notify.pump()
            assert "WATCHDOG=1" not in msgs
            assert any("button dispatcher 0 stopped" in m for m in msgs), msgs
        finally:
            branch.close()
            notify.close()


def test_no_notify_socket_means_no_calls() -> None:
    n = Notifier.from_env({})
    assert not n.ready() and not n.watchdog()
    assert Notifier.from_env({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000",
                              "WATCHDOG_PID": "1"}).watchdog_s is None  # another process's


def test_nothing_configures_logging_at_import() -> None:
    """Importing every module of the package leaves the root logger untouched; python-escpos
    calls basicConfig when its printer module loads, so `tessera run` sets the format first
    and keeps it (one handler, Tessera's format)."""
    code = ("import importlib, logging, pkgutil, tessera\n"
            "names = [m.name for m in pkgutil.walk_packages(tessera.__path__, 'tessera.')\n"
            "         if not m.name.endswith(('__main__', 'crashloop'))]\n"
            "for n in names: importlib.import_module(n)\n"
            "root = logging.getLogger()\n"
            "print(len(names), len(root.handlers))\n"
            "from tessera.commands.run_cmd import setup_logging\n"
            "setup_logging('info')\n"
            "import escpos.printer\n"
            "print(len(root.handlers), root.handlers[0].formatter._fmt)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()
    n, handlers = (int(x) for x in first.split())
    assert n > 50 and handlers == 0, r.stdout
    assert second == "1 %(levelname)s %(name)s: %(message)s", r.stdout
