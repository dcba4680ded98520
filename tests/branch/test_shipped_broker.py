"""The single box as shipped: `tessera run all`'s assembly against a mosquitto started with
exactly the files `tessera broker config` writes (as Debian runs it: no `user root`, no
anonymous login, no edited ACL), every device logging in with its generated credentials."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from tessera.clock import VirtualClock
from tessera.config import load_config
from tessera.demo.setup import demo_config, opening_time
from tessera.drivers.mqtt_client import Connected, Message, MqttSettings, PahoClient
from tessera.mqtt.broker import write_broker_files
from tessera.mqtt.credentials import load_credentials
from tessera.mqtt.local_broker import free_port
from tessera.roles.branch import Branch
from tessera.sim.board import BoardEmulator
from tessera.sim.printer import PrinterEmulator
from tessera.sim.scenario import press_pin
from tessera.wiring import build_branch

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]


def _until(cond: Callable[[], Any], timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not cond():
        time.sleep(0.02)
    return cond()


def _press(branch: Branch, device: str, pin: int) -> bool:
    n = branch.router.handled + 1
    press_pin(branch.factories[device].pin(pin), settle_s=0.002)
    return branch.router.wait_for(n, 15)


class Monitor:
    """A read-only dashboard login (``monitor-hq-tool``) that records the branch subtree."""

    def __init__(self, port: int, creds: Path, root: str) -> None:
        user, pw = load_credentials(creds)
        self.client = PahoClient(MqttSettings(host="127.0.0.1", port=port, client_id=user,
                                              username=user, password=pw, keepalive_s=5,
                                              backoff_min_s=0.05, backoff_max_s=0.3))
        self.root = root
        self.messages: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self.subscribed = False
        self.client.start()
        assert self.wait(lambda: self.subscribed), "monitor login failed"
        time.sleep(0.2)  # SUBACK

    def pump(self) -> None:
        while True:
            try:
                ev = self.client.events.get(timeout=0.05)
            except queue.Empty:
                return
            if isinstance(ev, Connected):
                self.client.subscribe(f"{self.root}/#", 1)
                self.subscribed = True
            elif isinstance(ev, Message):
                body = json.loads(ev.payload)
                self.messages[ev.topic] = body
                if "/evt/" in ev.topic:
                    self.events.append(body)

    def wait(self, cond: Callable[[], Any], timeout_s: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.pump()
            if cond():
                return True
        return cond()


def test_single_box_with_the_generated_broker_files(
        broker_base: Path, bank_config_path: Path, mosquitto: Any) -> None:
    port = free_port()
    text = bank_config_path.read_text(encoding="utf-8").replace(
        '[mqtt]\n', f'''[mqtt]
local_port = {port}
persistence_dir = "{broker_base}/store"
credentials_dir = "{broker_base}/broker/credentials"
broker_log_types = ["all"]
devices = {{ "hq-tool" = ["monitor"] }}
''', 1)
    (broker_base / "branch.toml").write_text(text, encoding="utf-8")
    (broker_base / "broker" / "credentials").mkdir(parents=True)
    out = broker_base / "run"
    with PrinterEmulator(out_dir=out / "tickets") as printer, BoardEmulator() as board:
        base = load_config(broker_base / "branch.toml")
        cfg = demo_config(base, out=out, printer_url=printer.path, board_url=board.path,
                          broker=f"mqtt://127.0.0.1:{port}", fast_buttons=False)
        files = write_broker_files(cfg, broker_base / "broker")
        broker = mosquitto(conf_file=files["mosquitto.conf"], port=port)
        root = f"tessera/v1/{cfg.branch.tenant}/{cfg.branch.branch}"
        mon = Monitor(port, files["credentials"] / "monitor-hq-tool.toml", root)
        clock = VirtualClock(opening_time(cfg, date(2026, 3, 2)))
        clock.advance(3600)
        branch = build_branch(cfg, clock, roles=("all",), sim=True)
        try:
            assert branch.kiosk is not None
            assert _press(branch, cfg.kiosk.device, cfg.kiosk.buttons[0].pin)
            assert branch.kiosk.last is not None and branch.kiosk.last.ok, branch.kiosk.last
            number = branch.kiosk.last.number
            assert printer.wait_tickets(1, 10) and number in printer.tickets[0].record["text"]
            c1 = cfg.counter("c1")
            assert c1.panel is not None and c1.panel.done is not None
            assert _press(branch, c1.device, c1.panel.next)
            assert _until(lambda: number in board.text(cfg.board.hall_address))
            assert _press(branch, c1.device, c1.panel.done)
            assert c1.panel.ratings
            assert _press(branch, c1.device, c1.panel.ratings[-1])
            branch.tick()  # publishes retained state/*
            assert mon.wait(lambda: any(e["type"] == "feedback.rated" for e in mon.events))
            rated = next(e for e in mon.events if e["type"] == "feedback.rated")
            issued = next(e for e in mon.events if e["type"] == "ticket.issued")
            assert issued["data"]["number"] == number, issued
            assert rated["data"]["ticket_id"] == issued["data"]["ticket_id"], rated
            assert rated["data"]["status"] == "bound" and rated["data"]["counter"] == "c1"
            # every device of the box is online under its own identity
            for dev in ("engine", f"kiosk-{cfg.kiosk.device}", f"display-{cfg.board.device}"):
                assert mon.wait(lambda d=dev: mon.messages.get(f"{root}/{d}/status", {})
                                .get("state") == "online"), dev
            # retained state as docs/mqtt.md promises
            assert mon.wait(lambda: f"{root}/engine/state/counter-c1" in mon.messages)
            assert mon.messages[f"{root}/engine/state/counter-c1"]["state"] == "open"
            assert mon.wait(lambda: f"{root}/engine/state/queue-cash" in mon.messages)
            printer_state = mon.messages.get(f"{root}/kiosk-{cfg.kiosk.device}/state/printer")
            assert printer_state is not None and printer_state["paper"] == "ok", printer_state
            assert mon.wait(lambda: number in json.dumps(
                mon.messages.get(f"{root}/display-{cfg.board.device}/state/board", {})))
            published = branch.published
            assert published is not None and published() > 0
        finally:
            branch.close()
            mon.client.stop(2)
    log = broker.log_path.read_text(errors="replace")
    assert "Denied" not in log, [ln for ln in log.splitlines() if "Denied" in ln][:5]
