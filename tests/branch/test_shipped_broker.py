"""The single box as shipped: `tessera run all`'s assembly against a mosquitto started with
exactly the files `tessera broker config` writes (as Debian runs it: no `user root`, no
anonymous login, no edited ACL), every device logging in with its generated credentials."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from shape_support import Monitor, press_mock, until

from tessera.clock import VirtualClock
from tessera.config import load_config
from tessera.demo.setup import demo_config, opening_time
from tessera.mqtt.broker import write_broker_files
from tessera.mqtt.local_broker import free_port
from tessera.sim.board import BoardEmulator
from tessera.sim.printer import PrinterEmulator
from tessera.wiring import build_branch

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]


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
        mon = Monitor("127.0.0.1", port, root,
                      creds=files["credentials"] / "monitor-hq-tool.toml")
        clock = VirtualClock(opening_time(cfg, date(2026, 3, 2)))
        clock.advance(3600)
        branch = build_branch(cfg, clock, roles=("all",), sim=True)
        try:
            assert branch.kiosk is not None
            assert press_mock(branch, cfg.kiosk.device, cfg.kiosk.buttons[0].pin)
            assert branch.kiosk.last is not None and branch.kiosk.last.ok, branch.kiosk.last
            number = branch.kiosk.last.number
            assert number is not None
            assert printer.wait_tickets(1, 10) and number in printer.tickets[0].record["text"]
            c1 = cfg.counter("c1")
            assert c1.panel is not None and c1.panel.done is not None
            assert press_mock(branch, c1.device, c1.panel.next)
            assert until(lambda: number in board.text(cfg.board.hall_address))
            assert press_mock(branch, c1.device, c1.panel.done)
            assert c1.panel.ratings
            assert press_mock(branch, c1.device, c1.panel.ratings[-1])
            branch.tick()  # publishes retained state/*
            assert mon.wait(lambda: any(e["type"] == "feedback.rated" for e in mon.events))
            rated = next(e for e in mon.events if e["type"] == "feedback.rated")
            issued = next(e for e in mon.events if e["type"] == "ticket.issued")
            assert issued["data"]["number"] == number, issued
            assert rated["data"]["ticket_id"] == issued["data"]["ticket_id"], rated
            assert rated["data"]["status"] == "bound" and rated["data"]["counter"] == "c1"
            # every device of the box is online under its own identity
            for dev in ("engine", f"kiosk-{cfg.kiosk.device}", f"display-{cfg.board.device}"):
                assert mon.wait(lambda d=dev: mon.retained.get(f"{root}/{d}/status", {})  # type: ignore[misc]
                                .get("state") == "online"), dev
            # retained state as docs/mqtt.md promises
            assert mon.wait(lambda: f"{root}/engine/state/counter-c1" in mon.retained)
            assert mon.retained[f"{root}/engine/state/counter-c1"]["state"] == "open"
            assert mon.wait(lambda: f"{root}/engine/state/queue-cash" in mon.retained)
            printer_state = mon.retained.get(f"{root}/kiosk-{cfg.kiosk.device}/state/printer")
            assert printer_state is not None and printer_state["paper"] == "ok", printer_state
            assert mon.wait(lambda: number in json.dumps(
                mon.retained.get(f"{root}/display-{cfg.board.device}/state/board", {})))
            published = branch.published
            assert published is not None and published() > 0
        finally:
            branch.close()
            mon.client.stop(2)
    log = broker.log_path.read_text(errors="replace")
    assert "Denied" not in log, [ln for ln in log.splitlines() if "Denied" in ln][:5]
