"""The outbox drainer and retention against a real mosquitto.

Brokers here are the fixture's throw-away mosquittos (anonymous on 127.0.0.1): this file
tests the client side, not the broker's security. The generated broker files are run
exactly as shipped, as Debian runs them, by tests/branch/test_shipped_broker.py and
tests/branch/test_shapes.py.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from mqtt_support import BRANCH, TENANT, assert_complete, fill, settings

from tessera.clock import SystemClock
from tessera.mqtt.link import DeviceLink
from tessera.mqtt.retention import Retention

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(60)]


def test_backlog_drains_in_seq_order_and_is_marked_delivered(
        mosquitto: Any, collector: Any, outbox_factory: Any) -> None:
    broker = mosquitto()
    sub = collector(broker, f"tessera/v1/{TENANT}/{BRANCH}/+/evt/#")
    sub.wait_connected()
    ob = outbox_factory("kiosk-1")
    fill(ob, 3000)
    link = DeviceLink.build(settings(broker, "kiosk-1"), outbox=ob, clock=SystemClock(),
                            inflight=50)
    link.start()
    try:
        sub.wait(lambda: len(sub.messages) >= 3000, 30, "3000 events")
        seqs = [json.loads(m.payload)["seq"] for m in sub.messages]
        assert seqs == sorted(seqs)  # one publisher, QoS1, one window: in order
        assert sub.messages[0].topic == f"tessera/v1/{TENANT}/{BRANCH}/kiosk-1/evt/ticket.issued"
        sub.wait(lambda: ob.pending_count() == 0, 10, "rows marked delivered")
        assert_complete(sub.envelopes(), ob.all_events())
    finally:
        link.stop()


def test_live_events_flow_while_a_backlog_drains(
        mosquitto: Any, collector: Any, outbox_factory: Any) -> None:
    broker = mosquitto()
    sub = collector(broker)
    sub.wait_connected()
    ob = outbox_factory("engine")
    fill(ob, 5000)
    writer_ob = outbox_factory("engine")  # the writer's own connection, like the engine's
    link = DeviceLink.build(settings(broker, "engine"), outbox=ob, clock=SystemClock())
    link.start()
    stop = threading.Event()

    def live() -> None:
        for i in range(200):
            if stop.is_set():
                return
            writer_ob.append("ticket.called", {"live": i}, ts=datetime.now(UTC))
            link.uplink.notify()
            time.sleep(0.002)

    t = threading.Thread(target=live)
    t.start()
    t.join(30)
    try:
        sub.wait(lambda: len(sub.envelopes()) >= 5200, 30, "backlog and live events")
        types = [e["type"] for e in sub.envelopes()]
        assert types.count("ticket.called") == 200
        assert_complete(sub.envelopes(), ob.all_events())
    finally:
        stop.set()
        link.stop()


def test_nothing_is_published_while_disconnected_and_all_resent_after(
        mosquitto: Any, collector: Any, outbox_factory: Any) -> None:
    broker = mosquitto(persistence=True)
    sub = collector(broker, session_expiry_s=600)
    sub.wait_connected()
    ob = outbox_factory("kiosk-1")
    link = DeviceLink.build(settings(broker, "kiosk-1"), outbox=ob, clock=SystemClock())
    link.start()
    sub.wait(lambda: link.drainer.connected, 10, "drainer connected")
    broker.stop()
    sub.wait(lambda: not link.drainer.connected, 10, "drainer sees the outage")
    sent = link.drainer.sent
    fill(ob, 500)
    link.uplink.notify()
    time.sleep(0.5)
    assert link.drainer.sent == sent  # paho's RAM is not the buffer: the DB is
    assert ob.pending_count() == 500
    broker.start()
    try:
        sub.wait(lambda: ob.pending_count() == 0, 30, "drained after the outage")
        sub.wait(lambda: len({e["id"] for e in sub.envelopes()}) >= 500, 30, "all received")
        assert_complete(sub.envelopes(), ob.all_events())
    finally:
        link.stop()


def test_retention_prunes_delivered_by_age_and_count(outbox_factory: Any) -> None:
    ob = outbox_factory("kiosk-1")
    fill(ob, 100)
    ob.mark_delivered(list(range(1, 61)))
    # no drainer: no high-water mark (that rule has its own test in test_mqtt_redeliver)
    r = Retention(ob, budget_bytes=1 << 30, clock=SystemClock(), keep_s=3600, keep_rows=20)
    rep = r.run()
    assert rep.pruned == 40  # 60 delivered, keep the newest 20
    assert ob.pending_count() == 40  # undelivered untouched
    rep = r.run(now=time.time() + 7200)  # everything delivered is now too old
    assert rep.pruned == 20 and rep.dropped == 0
    assert [e["seq"] for e in ob.all_events()] == list(range(61, 101))


def test_over_budget_raises_a_fault_and_keeps_oldest_and_newest(outbox_factory: Any) -> None:
    ob = outbox_factory("kiosk-1")
    fill(ob, 400, pad=200)
    used = Retention(ob, budget_bytes=1, clock=SystemClock()).undelivered_bytes()
    budget = used // 2
    r = Retention(ob, budget_bytes=budget, clock=SystemClock(), keep_oldest_fraction=0.25,
                  target_fraction=0.8)
    rep = r.run()
    assert rep.dropped > 0 and rep.undelivered_bytes <= budget
    events = ob.all_events()
    seqs = [e["seq"] for e in events]
    assert seqs[0] == 1 and 400 in seqs  # the oldest and the newest survive
    fault = events[-1]
    assert fault["type"] == "device.fault" and fault["data"]["kind"] == "outbox"
    assert fault["data"]["first_dropped_seq"] == rep.first_dropped
    kept = set(seqs)
    assert not kept & set(range(rep.first_dropped, rep.last_dropped + 1))
    assert len(kept & set(range(1, 401))) == 400 - rep.dropped  # nothing else went
    ob.mark_delivered(seqs)
    rep2 = r.run()
    assert rep2.dropped == 0 and ob.all_events()[-1]["type"] == "device.recovered"


def test_a_seq_is_never_reused_after_everything_delivered_is_pruned(outbox_factory: Any) -> None:
    """The outbox has no AUTOINCREMENT: its high-water mark is its newest row, which
    retention keeps, so a fully drained and pruned outbox still continues above it —
    also for a second connection to the same file and after reopening."""
    ob = outbox_factory("kiosk-1")
    assert ob.next_seq_sql == "SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox"  # no floor table
    fill(ob, 30)
    ob.mark_delivered(list(range(1, 31)))
    r = Retention(ob, budget_bytes=1 << 30, clock=SystemClock(), keep_s=0, keep_rows=0)
    assert r.run(now=time.time() + 3600).pruned == 29
    assert [e["seq"] for e in ob.all_events()] == [30]  # the newest stays
    other = outbox_factory("kiosk-1")  # e.g. retention's own connection in a device link
    fill(other, 1)
    fill(ob, 1)
    assert [e["seq"] for e in ob.all_events()] == [30, 31, 32]
    ob.conn.close()
    other.conn.close()
    again = outbox_factory("kiosk-1")
    fill(again, 1)
    assert again.all_events()[-1]["seq"] == 33


def test_rolled_back_appends_leave_no_gap_and_writers_interleave(outbox_factory: Any) -> None:
    """The next seq is read inside the write transaction: a rolled-back transaction
    leaves no gap, two connections interleave without a collision, and a row another
    process wrote is stepped over."""
    ob = outbox_factory("kiosk-1")
    fill(ob, 3)
    with pytest.raises(RuntimeError), ob.transaction() as c:
        ob.append("ticket.issued", {"i": "lost"}, ts=datetime.now(UTC), conn=c)
        ob.append("ticket.issued", {"i": "lost"}, ts=datetime.now(UTC), conn=c)
        raise RuntimeError("the command failed after emitting")
    fill(ob, 1)
    other = outbox_factory("kiosk-1")  # a second connection in this process
    fill(other, 1)
    fill(ob, 1)
    assert [e["seq"] for e in ob.all_events()] == [1, 2, 3, 4, 5, 6]
    assert "lost" not in {e["data"]["i"] for e in ob.all_events()}
    # another process appends seq 7 with its own connection (no shared cache)
    import sqlite3

    raw = sqlite3.connect(ob.conn.execute("PRAGMA database_list").fetchone()[2])
    raw.execute("INSERT INTO outbox(seq, id, type, ts, body) VALUES (7, 'x', 't', 't', "
                "'{\"seq\": 7, \"data\": {\"i\": \"x\"}}')")
    raw.commit()
    raw.close()
    fill(ob, 1)
    assert [e["seq"] for e in ob.all_events()] == [1, 2, 3, 4, 5, 6, 7, 8]
