"""Roles on their own Pis: engine, kiosk, counter and display as separate assemblies that
only share a real mosquitto (commands as MQTT 5 request/response, events from the broker)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from shape_support import press_mock, until

from tessera.bench.branch import role_config
from tessera.clock import VirtualClock
from tessera.config import load_config
from tessera.demo.setup import demo_config, opening_time
from tessera.roles.branch import Branch
from tessera.sim.board import BoardEmulator
from tessera.sim.printer import PrinterEmulator
from tessera.wiring import build_branch

pytestmark = pytest.mark.mqtt


@pytest.mark.timeout(120)
def test_roles_over_mqtt(tmp_path: Path, bank_config_path: Path, mosquitto: Any) -> None:
    broker = mosquitto()
    with PrinterEmulator(out_dir=tmp_path / "tickets") as printer, \
            BoardEmulator() as board:
        cfg = demo_config(load_config(bank_config_path), out=tmp_path, printer_url=printer.path,
                          board_url=board.path, broker=f"mqtt://{broker.host}:{broker.port}")
        clock = VirtualClock(opening_time(cfg, date(2026, 3, 2)))
        clock.advance(3600)
        parts: list[Branch] = []
        try:
            for role in ("engine", "display", "counter", "kiosk"):
                parts.append(build_branch(cfg, clock, roles=(role,), sim=True,
                                          device="main" if role == "counter" else None))
            engine, _display, counter, kiosk = parts
            assert kiosk.kiosk is not None and not counter.counters.keys() - {"c1", "c2"}

            assert press_mock(kiosk, "main", 17)  # cash, through the remote engine
            assert kiosk.kiosk.last is not None and kiosk.kiosk.last.ok, kiosk.kiosk.last
            number = kiosk.kiosk.last.number
            assert number is not None
            assert printer.wait_tickets(1, 10)
            assert number in printer.tickets[0].record["text"]

            panel = cfg.counter("c1").panel
            assert panel is not None and panel.next is not None and panel.done is not None
            assert press_mock(counter, "main", panel.next)
            assert counter.counters["c1"].current == number
            hall = cfg.board.hall_address
            assert until(lambda: number in board.text(hall)), board.text(hall)

            # the teller's transfer choice reaches the counter's sign on the display Pi
            # as the counter Pi's own counter.notice, through the broker (issue 15)
            sign = cfg.counter("c1").board_address
            assert sign is not None and panel.transfer is not None and panel.recall
            assert until(lambda: board.text(sign) == number), board.text(sign)
            assert press_mock(counter, "main", panel.transfer)
            target = panel.transfer_targets[0]
            assert until(lambda: board.text(sign) == f"{number}>{target}"), board.text(sign)
            assert press_mock(counter, "main", panel.recall)
            assert until(lambda: board.text(sign) == number), board.text(sign)

            assert press_mock(counter, "main", panel.done)
            snap = engine.engine.snapshot()
            assert snap is not None

            # the display Pi restarts onto a power-cycled (blank) board: it rebuilds the
            # hall board from the engine's `snapshot` command, not from events it missed
            parts.remove(_display)
            _display.close()
            with BoardEmulator() as blank:
                assert number not in blank.text(hall)
                cfg2 = demo_config(load_config(bank_config_path), out=tmp_path,
                                   printer_url=printer.path, board_url=blank.path,
                                   broker=f"mqtt://{broker.host}:{broker.port}")
                parts.append(build_branch(cfg2, clock, roles=("display",), sim=True))
                assert parts[-1].display.rebuilt
                assert until(lambda: number in blank.text(hall)), blank.text(hall)
                parts.pop().close()
        finally:
            for part in reversed(parts):
                part.close()


@pytest.mark.timeout(120)
def test_tessera_run_roles_keep_running_and_stop_cleanly(tmp_path: Path,
                                                         mosquitto: Any) -> None:
    """`tessera run ROLE --sim` as separate processes: every role survives many ticks of
    its main loop (a remote engine is not ticked by the kiosk) and exits 0 on SIGTERM."""
    broker = mosquitto()
    config = role_config(tmp_path, f"mqtt://{broker.host}:{broker.port}")
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for role in ("engine", "kiosk", "counter", "display"):
            with (tmp_path / f"{role}.log").open("w") as log:  # log lines: stderr
                proc = subprocess.Popen(
                    [sys.executable, "-m", "tessera", "run", role, "--config", str(config),
                     "--sim", "--tick-s", "0.05"],
                    stdout=subprocess.PIPE, stderr=log, text=True)
            procs[role] = proc
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "ready" in line, (role, line, proc.stdout.read() if proc.poll() else "")
        time.sleep(1.0)  # ~20 ticks each
        for role, proc in procs.items():
            assert proc.poll() is None, (role, proc.communicate()[0][-2000:])
    finally:
        outputs = {}
        for role, proc in procs.items():
            proc.terminate()
            try:
                outputs[role] = (proc.wait(15), proc.communicate()[0])
            except subprocess.TimeoutExpired:
                proc.kill()
                outputs[role] = (proc.wait(5), "killed: did not stop on SIGTERM")
    for role, (rc, out) in outputs.items():
        assert rc == 0, (role, out[-2000:])
        assert "stopped" in out, (role, out[-2000:],
                                  (tmp_path / f"{role}.log").read_text()[-2000:])


def test_a_real_counter_pi_must_say_which_device_it_is(tmp_path: Path) -> None:
    """Off the simulator, `tessera run counter` with panels on several devices refuses to
    guess (it would open other Pis' pins) and names the devices; nothing is opened."""
    config = role_config(tmp_path, "mqtt://127.0.0.1:9")
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('staff = "t-002"\n', 'staff = "t-002"\ndevice = "pi-2"\n', 1),
                      encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "TESSERA_DEVICE"}
    out = subprocess.run([sys.executable, "-m", "tessera", "run", "counter", "--config",
                          str(config)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "--device" in out.stderr and "main, pi-2" in out.stderr, out.stdout + out.stderr


def test_tessera_run_logs_info_lines_in_one_format(tmp_path: Path) -> None:
    """Every role logs to stderr from --log-level up in Tessera's format (python-escpos'
    import-time basicConfig does not decide it); warning hides the INFO lines."""
    config = role_config(tmp_path, "")
    for level, want in (("info", True), ("warning", False)):
        ready = tmp_path / f"ready-{level}"
        proc = subprocess.Popen([sys.executable, "-m", "tessera", "run", "all", "--config",
                                 str(config), "--sim", "--log-level", level, "--ready-file",
                                 str(ready)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            assert until(lambda r=ready, p=proc: r.exists() or p.poll() is not None, 60)  # type: ignore[misc]
        finally:
            proc.terminate()
            _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        opened = "INFO tessera.drivers.escpos: printer link open" in err
        assert opened is want, err
