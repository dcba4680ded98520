"""Durability window: events the broker acked but lost in a crash are sent again."""

from __future__ import annotations

import queue
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from mqtt_support import BRANCH, TENANT, assert_complete, fill, settings
from tessera.clock import SystemClock
from tessera.drivers.mqtt_client import MqttEvent, PublishProps
from tessera.mqtt.drainer import Drainer
from tessera.mqtt.link import DeviceLink
from tessera.mqtt.retention import Retention
from tessera.mqtt.topics import Topics
from tessera.outbox import Outbox

pytestmark = [pytest.mark.mqtt]


class RecordingPort:
    """An MqttPort that records what the drainer hands it (no network)."""

    def __init__(self) -> None:
        self.events: queue.SimpleQueue[MqttEvent] = queue.SimpleQueue()
        self.published: list[bytes] = []

    def start(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                props: PublishProps | None = None) -> int:
        self.published.append(payload)
        return len(self.published)

    def subscribe(self, topic_filter: str, qos: int = 1) -> None: ...


def _set_delivered(ob: Outbox, seqs: range, at: float) -> None:
    with ob.transaction() as c:
        c.executemany("UPDATE outbox SET delivered_at = ? WHERE seq = ?", [(at, s) for s in seqs])


def _drainer(ob: Outbox, port: RecordingPort, now: float) -> Drainer:
    return Drainer(port, ob, Topics(TENANT, BRANCH, ob.device), inflight=100,
                   redeliver_window_s=10.0, wall=lambda: now)


def _sent_seqs(port: RecordingPort) -> list[int]:
    import json

    return [json.loads(p)["seq"] for p in port.published]


def test_a_drop_resends_rows_acked_inside_the_window_in_seq_order(outbox_factory: Any) -> None:
    ob = outbox_factory("kiosk-1")
    fill(ob, 30)
    now = 1_000_000.0
    _set_delivered(ob, range(1, 11), now - 60)  # long saved by the broker
    _set_delivered(ob, range(11, 21), now - 5)  # acked, maybe not saved yet
    port = RecordingPort()
    d = _drainer(ob, port, now)
    d.on_connected(session_present=True)
    d.pump()
    assert _sent_seqs(port) == list(range(21, 31))  # a reconnect alone re-sends nothing
    d.on_disconnected()
    assert d.reopened == 10 and ob.pending_count() == 20
    port.published.clear()
    d.on_connected(session_present=True)
    d.pump()
    assert _sent_seqs(port) == list(range(11, 31))  # the window first, then the rest


def test_a_lost_session_resends_the_window_before_the_newest_ack(outbox_factory: Any) -> None:
    ob = outbox_factory("kiosk-1")
    fill(ob, 20)
    t = 500_000.0
    _set_delivered(ob, range(1, 11), t - 100)
    _set_delivered(ob, range(11, 21), t - 3)  # device restarted long after: wall is later
    port = RecordingPort()
    d = _drainer(ob, port, t + 3600)
    d.on_connected(session_present=False)
    d.pump()
    assert _sent_seqs(port) == list(range(11, 21))


def test_retention_never_prunes_rows_inside_the_window(outbox_factory: Any) -> None:
    ob = outbox_factory("kiosk-1")
    fill(ob, 50)
    ob.mark_delivered(list(range(1, 51)))  # delivered just now
    r = Retention(ob, budget_bytes=1 << 30, clock=SystemClock(), keep_s=0, keep_rows=5,
                  redeliver_window_s=30.0)
    assert r.run().pruned == 0
    # past the window all go but the newest, which stays as the outbox's high-water mark
    assert r.run(now=time.time() + 31).pruned == 49
    assert [e["seq"] for e in ob.all_events()] == [50]


@pytest.mark.timeout(60)
def test_acked_events_lost_by_a_killed_broker_arrive_after_reconnect(
        mosquitto: Any, collector: Any, outbox_factory: Any) -> None:
    broker = mosquitto(persistence=True)
    sub = collector(broker, f"tessera/v1/{TENANT}/{BRANCH}/+/evt/#", client_id="hq-audit",
                    session_expiry_s=3600)
    sub.wait_connected()
    ob = outbox_factory("kiosk-1")
    link = DeviceLink.build(settings(broker, "kiosk-1"), outbox=ob, clock=SystemClock())
    link.start()
    try:
        sub.wait(lambda: link.drainer.connected, 10, "the device link")
        # 40 events the broker "acked" and then lost: delivered in our DB, never
        # published (one transaction, so the drainer never sees them pending)
        now = datetime.now(UTC)
        with ob.transaction() as c:
            for i in range(40):
                ob.append("ticket.issued", {"i": i}, ts=now, conn=c)
            c.execute("UPDATE outbox SET delivered_at = ?", (time.time(),))
        sub.pump(0.3)
        assert sub.envelopes() == []
        broker.kill()
        broker.start()
        sub.wait(lambda: len({e["id"] for e in sub.envelopes()}) >= 40, 30,
                 "the re-sent events")
        sub.wait(lambda: ob.pending_count() == 0, 10, "the outbox to drain")
        assert_complete(sub.envelopes(), ob.all_events())
    finally:
        link.stop()
