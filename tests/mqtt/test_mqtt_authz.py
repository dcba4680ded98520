"""Negative authorization table (issue 12): one row per rule, each against the engine's
link as ``tessera run engine`` builds it (``DeviceLink.for_engine``) on a mosquitto
started with the generated broker files, every device logged in with its own
credentials. Each row asserts the answer's code and an unchanged database."""

from __future__ import annotations

import json
import queue
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mqtt_support import BRANCH, TENANT, settings, shipped_branch, start_generated

from tessera.clock import SystemClock
from tessera.drivers.mqtt_client import Connected, Message, PahoClient, PubAck, PublishProps
from tessera.engine import Engine
from tessera.mqtt.credentials import load_credentials
from tessera.mqtt.link import DeviceLink
from tessera.outbox import rfc3339

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]
ROOT = f"tessera/v1/{TENANT}/{BRANCH}"
EXTRA = 'devices = { "hq-tool" = ["monitor"] }\n'
STAFF = '\n[[staff]]\nid = "t-1"\ncode = "1234"\n'
TABLES = ("meta", "day_services", "tickets", "service_times", "counters", "ratings",
          "bookings", "visits")


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every engine table, and the outbox's events (not their delivery marks)."""
    c = sqlite3.connect(db)
    try:
        out = {t: sorted(c.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}
        out["outbox"] = c.execute("SELECT seq, id, type, body FROM outbox ORDER BY seq").fetchall()
        return out
    finally:
        c.close()


class Device:
    """One device's raw MQTT 5 client, logged in with its generated credentials."""

    def __init__(self, broker: Any, creds: Path, name: str) -> None:
        user, pw = load_credentials(creds / f"{name}.toml")
        self.name = name
        self.client = PahoClient(settings(broker, name, username=user, password=pw))
        self.client.start()
        self.reply = f"{ROOT}/engine/res/{name}"
        self.pending: list[Any] = []
        self._wait(lambda ev: isinstance(ev, Connected), "connect")
        self.client.subscribe(self.reply, 1)
        time.sleep(0.2)

    def _wait(self, want: Callable[[Any], bool], what: str, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        for i, ev in enumerate(self.pending):
            if want(ev):
                return self.pending.pop(i)
        while time.monotonic() < deadline:
            try:
                ev = self.client.events.get(timeout=0.05)
            except queue.Empty:
                continue
            if want(ev):
                return ev
            self.pending.append(ev)
        raise AssertionError(f"{self.name}: no {what} within {timeout} s")

    def send(self, name: str, args: dict[str, Any], *, cid: str = "a-1",
             topic: str | None = None, reply: str | None = None,
             retain: bool = False) -> int:
        body = json.dumps({"id": cid, "issued_at": rfc3339(datetime.now(UTC)), "args": args})
        return self.client.publish(topic or f"{ROOT}/{self.name}/req/{name}", body.encode(),
                                   qos=1, retain=retain, props=PublishProps(
                                       response_topic=reply or self.reply,
                                       correlation_data=cid.encode(), message_expiry_s=30))

    def ask(self, name: str, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        cid = kw.pop("cid", f"{name}-{time.monotonic_ns()}")
        self.send(name, args, cid=cid, **kw)
        msg = self._wait(lambda ev: isinstance(ev, Message) and ev.topic == self.reply
                         and ev.correlation_data == cid.encode(), f"an answer to {name}")
        return dict(json.loads(msg.payload))

    def refused_by_broker(self, topic: str) -> bool:
        mid = self.client.publish(topic, b"{}", qos=1)
        ack = self._wait(lambda ev: isinstance(ev, PubAck) and ev.mid == mid, "a PUBACK")
        return not ack.ok


@dataclass
class Branch:
    db: Path
    engine: Any
    devices: dict[str, Device]


@pytest.fixture
def branch(mosquitto: Any, broker_base: Path) -> Iterator[Branch]:
    _, cfg = shipped_branch(broker_base, EXTRA, hq=STAFF)
    out = broker_base / "broker"
    broker = start_generated(mosquitto, cfg, out)
    db = broker_base / "var" / "engine.db"
    engine = Engine.open(cfg, SystemClock(), db)
    link = DeviceLink.for_engine(cfg, engine, clock=SystemClock(), db_path=db)
    link.start()
    devices: dict[str, Device] = {}
    try:
        deadline = time.monotonic() + 10
        while link.uplink.connects == 0:
            assert time.monotonic() < deadline, link.uplink.last_connect_error
            time.sleep(0.05)
        for name in ("kiosk-pi-k", "counter-pi-1", "counter-pi-2", "display-main",
                     "monitor-hq-tool"):
            devices[name] = Device(broker, out / "credentials", name)
        # a branch in business: c1 open with a ticket called, one ticket waiting
        k, c = devices["kiosk-pi-k"], devices["counter-pi-1"]
        for _ in range(2):
            t = k.ask("issue-ticket", {"service": "cash"})["result"]
            assert k.ask("confirm-printed", {"ticket_id": t["id"]})["status"] == "done"
        assert c.ask("open-counter", {"counter": "c1", "staff": "t-1"})["status"] == "done"
        assert c.ask("call-next", {"counter": "c1"})["status"] == "done"
        assert devices["counter-pi-2"].ask("open-counter", {"counter": "c2"})["code"] == "ok"
        yield Branch(db, engine, devices)
    finally:
        for d in devices.values():
            d.client.stop(2)
        link.stop()
        engine.close()


# (rule, device, command, args, code)
ROWS: list[tuple[str, str, str, dict[str, Any], str]] = [
    ("a counter calls only at its own counters", "counter-pi-1", "call-next",
     {"counter": "c2"}, "forbidden"),
    ("... and does not close another's", "counter-pi-1", "close-counter", {"counter": "c2"},
     "forbidden"),
    ("... nor rate another teller", "counter-pi-1", "rate", {"counter": "c2", "score": 1},
     "forbidden"),
    ("... nor transfer, pause or no-show there", "counter-pi-2", "no-show", {"counter": "c1"},
     "forbidden"),
    ("open-counter takes configured staff only", "counter-pi-1", "open-counter",
     {"counter": "c1", "staff": "<b>boss</b>"}, "forbidden"),
    ("... RTL junk too", "counter-pi-1", "open-counter",
     {"counter": "c1", "staff": "\u202emallory"}, "forbidden"),
    ("a kiosk issues only its buttons' priority classes", "kiosk-pi-k", "issue-ticket",
     {"service": "cash", "priority": "emergency"}, "forbidden"),
    ("... and only its buttons' services", "kiosk-pi-k", "issue-ticket",
     {"service": "vault"}, "forbidden"),
    ("a kiosk sends no counter command", "kiosk-pi-k", "call-next", {"counter": "c1"},
     "forbidden"),
    ("a counter issues no ticket", "counter-pi-1", "issue-ticket", {"service": "cash"},
     "forbidden"),
    ("a display only reads", "display-main", "done", {"counter": "c1"}, "forbidden"),
    ("a monitor only reads", "monitor-hq-tool", "snapshot", {}, "ok"),
    # undo of a no-show (issue 15): own counters only, and only a no-show
    ("undo-no-show only at its own counters", "counter-pi-2", "undo-no-show",
     {"counter": "c1", "ticket": "A001"}, "forbidden"),
    ("... a display may not undo", "display-main", "undo-no-show",
     {"counter": "c1", "ticket": "A001"}, "forbidden"),
    ("undo of an unknown ticket", "counter-pi-1", "undo-no-show",
     {"counter": "c1", "ticket": "A999"}, "unknown-ticket"),
    ("undo of a ticket that is not a no-show", "counter-pi-1", "undo-no-show",
     {"counter": "c1", "ticket": "A001"}, "bad-state"),
    ("undo names a ticket id or number", "counter-pi-1", "undo-no-show",
     {"counter": "c1", "ticket": "A 1"}, "invalid"),
    ("... and no other field", "counter-pi-1", "undo-no-show",
     {"counter": "c1", "ticket": "A001", "position": "back"}, "invalid"),
    # issue 15: a kiosk reports only its own refusals; a reprint of nothing changes nothing
    ("a kiosk reports refusals only for its buttons' services", "kiosk-pi-k",
     "report-refusal", {"key": "kiosk-pi-k.1", "service": "vault", "reason": "printer_fault",
                        "at": "2026-03-02T09:00:00Z"}, "forbidden"),
    ("... under keys in its own name", "kiosk-pi-k", "report-refusal",
     {"key": "counter-pi-1.1", "service": "cash", "reason": "printer_fault",
      "at": "2026-03-02T09:00:00Z"}, "forbidden"),
    ("... with a reason the kiosk decides", "kiosk-pi-k", "report-refusal",
     {"key": "kiosk-pi-k.2", "service": "cash", "reason": "service_closed",
      "at": "2026-03-02T09:00:00Z"}, "bad-refusal"),
    ("... a reason is a snake_case code", "kiosk-pi-k", "report-refusal",
     {"key": "kiosk-pi-k.3", "service": "cash", "reason": "Printer Fault",
      "at": "2026-03-02T09:00:00Z"}, "invalid"),
    ("... at a readable time", "kiosk-pi-k", "report-refusal",
     {"key": "kiosk-pi-k.4", "service": "cash", "reason": "printer_fault", "at": "9 am"},
     "bad-refusal"),
    ("a counter reports no kiosk refusal", "counter-pi-1", "report-refusal",
     {"key": "counter-pi-1.1", "service": "cash", "reason": "printer_fault",
      "at": "2026-03-02T09:00:00Z"}, "forbidden"),
    ("a reprint of no ticket", "kiosk-pi-k", "reprint", {"ticket_id": "nope"},
     "nothing-to-reprint"),
    ("... of both or neither", "counter-pi-1", "reprint", {"ticket_id": "nope", "last": True},
     "nothing-to-reprint"),
    ("... with a mistyped argument", "kiosk-pi-k", "reprint", {"last": "yes"}, "invalid"),
    ("a display reprints nothing", "display-main", "reprint", {"last": True}, "forbidden"),
]


@pytest.mark.parametrize(("rule", "device", "name", "args", "code"), ROWS,
                         ids=[r[0] for r in ROWS])
def test_refused_commands_leave_the_database_untouched(
        branch: Branch, rule: str, device: str, name: str, args: dict[str, Any],
        code: str) -> None:
    before = dump(branch.db)
    r = branch.devices[device].ask(name, args)
    assert r["code"] == code, (rule, r)
    if code == "forbidden":
        assert r["status"] == "rejected" and r["detail"], r
    if code == "invalid":
        assert "- at `$.args" in r["detail"], r
    assert dump(branch.db) == before, rule


def test_a_kiosk_refusal_report_is_kept_once(branch: Branch) -> None:
    """Re-sent under its fixed id it gets the stored answer; even under a new id (a
    lost pending file's twin) the engine keeps one row per key."""
    kiosk = branch.devices["kiosk-pi-k"]
    args = {"key": "kiosk-pi-k.0190", "service": "cash", "reason": "printer_fault",
            "at": "2026-03-02T09:00:00Z"}
    first = kiosk.ask("report-refusal", args, cid="refusal.kiosk-pi-k.0190")
    assert (first["code"], first["result"]["recorded"]) == ("ok", True), first
    again = kiosk.ask("report-refusal", args, cid="refusal.kiosk-pi-k.0190")
    assert again == first
    twin = kiosk.ask("report-refusal", args, cid="other-id")
    assert (twin["code"], twin["result"]["recorded"]) == ("ok", False), twin
    c = sqlite3.connect(branch.db)
    try:
        assert c.execute("SELECT service, reason, key FROM refusals").fetchall() == \
            [("cash", "printer_fault", "kiosk-pi-k.0190")]
    finally:
        c.close()


def test_reprint_over_mqtt_reuses_the_number(branch: Branch) -> None:
    kiosk, counter = branch.devices["kiosk-pi-k"], branch.devices["counter-pi-1"]
    before = dump(branch.db)
    last = kiosk.ask("reprint", {"last": True})
    assert last["code"] == "ok" and last["result"]["number"] == "A002", last
    by_id = counter.ask("reprint", {"ticket_id": last["result"]["id"]})
    assert by_id["result"]["number"] == "A002"
    after = dump(branch.db)
    added = after.pop("outbox")[len(before["outbox"]):]
    assert [row[2] for row in added] == ["ticket.reprinted"] * 2
    before.pop("outbox")
    assert after == before  # no number issued, no queue changed


def test_a_monitor_cannot_write_anything_but_a_snapshot_request(branch: Branch) -> None:
    before = dump(branch.db)
    mon = branch.devices["monitor-hq-tool"]
    for topic in (f"{ROOT}/monitor-hq-tool/req/issue-ticket", f"{ROOT}/monitor-hq-tool/evt/x",
                  f"{ROOT}/kiosk-pi-k/req/issue-ticket"):
        assert mon.refused_by_broker(topic), topic
    time.sleep(0.3)
    assert dump(branch.db) == before


def test_a_device_cannot_send_as_another(branch: Branch) -> None:
    """Requests in another device's subtree are refused by the broker: the sender the
    engine sees is always authenticated."""
    before = dump(branch.db)
    kiosk = branch.devices["kiosk-pi-k"]
    assert kiosk.refused_by_broker(f"{ROOT}/counter-pi-1/req/call-next")
    assert kiosk.refused_by_broker(f"{ROOT}/engine/cmd/call-next")  # the old, shared path
    time.sleep(0.3)
    assert dump(branch.db) == before


def test_answers_cannot_be_redirected_into_another_devices_topic(branch: Branch) -> None:
    before = dump(branch.db)
    kiosk, counter = branch.devices["kiosk-pi-k"], branch.devices["counter-pi-1"]
    r = kiosk.ask("issue-ticket", {"service": "cash"}, reply=counter.reply)
    assert (r["status"], r["code"]) == ("rejected", "bad-response-topic")
    time.sleep(0.3)
    assert not [ev for ev in counter.pending if isinstance(ev, Message)]
    assert dump(branch.db) == before


def test_a_reused_request_id_gets_no_other_devices_answer(branch: Branch) -> None:
    counter, kiosk = branch.devices["counter-pi-1"], branch.devices["kiosk-pi-k"]
    counter.ask("recall", {"counter": "c1"}, cid="shared-id")
    before = dump(branch.db)
    r = kiosk.ask("recall", {"counter": "c1"}, cid="shared-id")
    assert (r["code"], r["result"]) == ("forbidden", {})
    assert dump(branch.db) == before


def test_check_in_attempts_are_rate_limited_per_device(branch: Branch) -> None:
    kiosk = branch.devices["kiosk-pi-k"]
    before = dump(branch.db)
    codes = [kiosk.ask("check-in", {"code": f"GUESS-{i}"})["code"] for i in range(12)]
    assert codes[:10] == ["unknown-booking"] * 10, codes
    assert codes[10:] == ["rate-limited"] * 2, codes
    after = dump(branch.db)
    # nothing changed but the refusals the engine recorded (issue 15): one per attempt it
    # saw, none for those the rate limit stopped before the engine
    added = after.pop("outbox")[len(before["outbox"]):]
    assert [row[2] for row in added] == ["kiosk.refused"] * 10
    c = sqlite3.connect(branch.db)
    try:
        assert c.execute("SELECT reason, device FROM refusals").fetchall() == \
            [("unknown_booking", "kiosk-pi-k")] * 10
    finally:
        c.close()
    before.pop("outbox")
    assert after == before


def test_commands_are_rate_limited_per_device(branch: Branch) -> None:
    display, counter = branch.devices["display-main"], branch.devices["counter-pi-1"]
    before = dump(branch.db)
    for i in range(80):
        display.send("snapshot", {}, cid=f"s-{i}")
    got: list[str] = []
    while len(got) < 80:
        msg = display._wait(lambda ev: isinstance(ev, Message) and ev.topic == display.reply,
                            "an answer")
        got.append(json.loads(msg.payload)["code"])
    assert got.count("ok") >= 50 and "rate-limited" in got, got
    assert counter.ask("snapshot", {})["code"] == "ok"  # another device is not slowed
    assert dump(branch.db) == before


def test_a_retained_request_is_refused(branch: Branch) -> None:
    kiosk = branch.devices["kiosk-pi-k"]
    before = dump(branch.db)
    r = kiosk.ask("issue-ticket", {"service": "cash"}, retain=True)
    assert (r["status"], r["code"]) == ("rejected", "retained")
    assert dump(branch.db) == before


def test_a_refused_check_in_resent_is_recorded_once(branch: Branch) -> None:
    """The engine's refusal row and the stored answer commit together: a re-send under
    the same id gets the answer and adds no second refusal (issue 15)."""
    kiosk = branch.devices["kiosk-pi-k"]
    first = kiosk.ask("check-in", {"code": "NO-SUCH"}, cid="scan-1")
    again = kiosk.ask("check-in", {"code": "NO-SUCH"}, cid="scan-1")
    assert first["code"] == "unknown-booking" and again == first
    c = sqlite3.connect(branch.db)
    try:
        assert c.execute("SELECT reason FROM refusals").fetchall() == [("unknown_booking",)]
        assert c.execute("SELECT COUNT(*) FROM mqtt_replay WHERE id = 'scan-1'").fetchone() \
            == (1,)
    finally:
        c.close()
