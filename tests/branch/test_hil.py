"""Hardware in the loop, end to end: mock GPIO pins → ring → dispatcher → roles → engine →
printer emulator on a pty, board emulator on a pty, WAV files, and a real mosquitto.

Brokers here are the fixture's throw-away mosquittos (anonymous on 127.0.0.1): this file
tests the client side, not the broker's security. The generated broker files are run
exactly as shipped, as Debian runs them, by tests/branch/test_shipped_broker.py and
tests/branch/test_shapes.py.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tessera.config import load_config
from tessera.demo.rig import sim_rig

pytestmark = pytest.mark.mqtt


def _until(cond: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    return cond()


class Collector:
    """Every evt/* message the broker delivers, by event id."""

    def __init__(self, host: str, port: int) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hil-collector",
                                  protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("tessera/v1/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rc, p: self.subscribed.set()
        self.client.on_message = self._message
        self.client.connect(host, port)
        self.client.loop_start()

    def _message(self, client: Any, userdata: Any, msg: Any) -> None:
        if "/evt/" in msg.topic:
            env = json.loads(msg.payload)
            self.events[env["id"]] = env

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.timeout(120)
def test_press_to_print_call_board_voice_rating_and_broker(
        tmp_path: Path, bank_config_path: Path, clips_cache: Path, mosquitto: Any) -> None:
    broker = mosquitto()
    collector = Collector(broker.host, broker.port)
    assert collector.subscribed.wait(10)
    base = load_config(bank_config_path)
    try:
        with sim_rig(base, tmp_path, broker=f"mqtt://{broker.host}:{broker.port}",
                     clips_dir=clips_cache) as rig:
            rig.clock.advance(timedelta(hours=1).total_seconds())  # 10:00, all services open
            c1 = rig.cfg.counter("c1").panel
            assert c1 is not None and c1.next is not None and c1.done is not None

            # a customer presses "cash": the emulator decodes the printed ticket
            assert rig.press("main", 17)
            assert rig.printer.wait_tickets(1, 10)
            printed = rig.printer.tickets[0].record
            number = next(t for t in printed["text"] if t.startswith("A") and t[1:].isdigit())
            # the QR's mobile-ticket link: /t/<ticket id>.<its signature> (docs/web.md)
            ticket_id = printed["qr"][0].rsplit("/", 1)[1].split(".", 1)[0]
            assert (tmp_path / "tickets" / "ticket-0001.png").is_file()

            # the teller at counter 1 presses NEXT: hall board and announcement
            assert rig.press("main", c1.next)
            hall = rig.cfg.board.hall_address
            assert _until(lambda: number in rig.board.text(hall)), rig.board.text(hall)
            own_sign = rig.cfg.counter("c1").board_address
            assert own_sign is not None  # the counter's small board shows its ticket
            assert _until(lambda: number in rig.board.text(own_sign)), rig.board.text(own_sign)
            assert _until(lambda: list((tmp_path / "wav").glob(f"*{number}*.wav")))

            # DONE, then the customer presses the top rating button
            assert rig.press("main", c1.done)
            assert rig.press("main", c1.ratings[-1])
            published = rig.branch.published
            assert published is not None
            n_published = published()
            db = rig.engine_db()
        conn = sqlite3.connect(db)
        rows = [json.loads(b) for (b,) in conn.execute("SELECT body FROM outbox ORDER BY seq")]
        conn.close()
        rated = [e["data"] for e in rows if e["type"] == "feedback.rated"]
        assert rated == [{**rated[0], "ticket_id": ticket_id, "counter": "c1",
                          "score": len(c1.ratings), "status": "bound"}]
        types = [e["type"] for e in rows if e["data"].get("ticket_id") == ticket_id]
        assert types[:3] == ["ticket.issued", "ticket.printed", "ticket.called"]
        assert "ticket.done" in types

        # the broker's event stream matches the database, event for event
        db_events = {e["id"]: e for e in rows}
        assert n_published == len(db_events)
        assert _until(lambda: set(db_events) <= set(collector.events))
        engine_stream = {i: e for i, e in collector.events.items() if e["device"] == "engine"}
        assert engine_stream == db_events
    finally:
        collector.stop()
