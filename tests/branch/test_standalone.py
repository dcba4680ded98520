"""Roles on their own Pis: engine, kiosk, counter and display as separate assemblies that
only share a real mosquitto (commands as MQTT 5 request/response, events from the broker)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from tessera.clock import VirtualClock
from tessera.config import load_config
from tessera.demo.setup import demo_config, opening_time
from tessera.sim.board import BoardEmulator
from tessera.sim.printer import PrinterEmulator
from tessera.sim.scenario import press_pin
from tessera.wiring import Branch, build_branch

pytestmark = pytest.mark.mqtt


def _until(cond: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not cond():
        time.sleep(0.02)
    return cond()


def _press(branch: Branch, device: str, pin: int) -> bool:
    n = branch.router.handled + 1
    press_pin(branch.factories[device].pin(pin), settle_s=0.002)
    return branch.router.wait_for(n, 15)


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

            assert _press(kiosk, "main", 17)  # cash, through the remote engine
            assert kiosk.kiosk.last is not None and kiosk.kiosk.last.ok, kiosk.kiosk.last
            number = kiosk.kiosk.last.number
            assert printer.wait_tickets(1, 10)
            assert number in printer.tickets[0].record["text"]

            panel = cfg.counter("c1").panel
            assert panel is not None
            assert _press(counter, "main", panel.next)
            assert counter.counters["c1"].current == number
            hall = cfg.board.hall_address
            assert _until(lambda: number in board.text(hall)), board.text(hall)

            assert _press(counter, "main", panel.done)
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
                assert _until(lambda: number in blank.text(hall)), blank.text(hall)
                parts.pop().close()
        finally:
            for part in reversed(parts):
                part.close()
