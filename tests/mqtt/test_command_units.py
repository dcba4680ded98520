"""The command server and the uplink loop without a network: input defects, replay
inside the engine's transaction, acks, and the uplink's batch bound (issue 12)."""

from __future__ import annotations

import json
import queue
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mqtt_support import BRANCH, TENANT

from tessera.clock import SystemClock
from tessera.drivers.mqtt_client import Message, MqttEvent, PublishProps, Wake
from tessera.mqtt.command_auth import CommandPolicy
from tessera.mqtt.commands import CommandServer
from tessera.mqtt.topics import Topics
from tessera.mqtt.uplink import MAX_BATCH, Uplink
from tessera.outbox import connect, rfc3339

ROOT = f"tessera/v1/{TENANT}/{BRANCH}"


class RecordingPort:
    """An MqttPort that keeps what is published and acked (no broker)."""

    def __init__(self) -> None:
        self.events: queue.SimpleQueue[MqttEvent] = queue.SimpleQueue()
        self.published: list[tuple[str, bytes, PublishProps | None]] = []
        self.acked: list[int] = []
        self.subscribed: list[str] = []

    def start(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                props: PublishProps | None = None) -> int:
        self.published.append((topic, payload, props))
        return len(self.published)

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        self.subscribed.append(topic_filter)

    def ack(self, msg: Message) -> None:
        self.acked.append(msg.mid)


@pytest.fixture
def server(engine: Any, tmp_path: Path) -> tuple[CommandServer, RecordingPort]:
    port = RecordingPort()
    topics = Topics(TENANT, BRANCH, "engine")
    srv = CommandServer(engine, port, topics, connect(tmp_path / "engine.db"),
                        clock=SystemClock())
    return srv, port


def _msg(sender: str, name: str, body: dict[str, Any] | bytes, mid: int = 1,
         retain: bool = False) -> Message:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Message(f"{ROOT}/{sender}/req/{name}", payload, qos=1, retain=retain,
                   response_topic=f"{ROOT}/engine/res/{sender}", correlation_data=b"c",
                   mid=mid)


def _req(args: dict[str, Any], cid: str = "r-1", issued_at: str | None = None
         ) -> dict[str, Any]:
    return {"id": cid, "issued_at": issued_at or rfc3339(datetime.now(UTC)), "args": args}


def _answer(port: RecordingPort, i: int = -1) -> dict[str, Any]:
    topic, payload, _ = port.published[i]
    assert topic.startswith(f"{ROOT}/engine/res/")
    return dict(json.loads(payload))


# ----------------------------------------------------------------------- input defects

def test_issued_at_before_datetime_min_in_utc_is_invalid_not_internal(server: Any) -> None:
    srv, port = server
    srv.handle(_msg("tester", "issue-ticket", _req({"service": "cash"}, cid="old",
                                                  issued_at="0001-01-01T00:00:00+01:00")))
    r = _answer(port)
    assert (r["status"], r["code"], r["id"]) == ("rejected", "invalid", "old"), r
    assert "`$.issued_at`" in r["detail"]
    # and nothing left "in doubt": the same id with a good timestamp simply runs
    srv.handle(_msg("tester", "issue-ticket", _req({"service": "cash"}, cid="old")))
    assert _answer(port)["status"] == "done"


@pytest.mark.parametrize("number", ["A¹", "A١٢", "A 1", "①", "A-1", "ABC1", ""])
def test_call_specific_non_ascii_or_odd_numbers_are_invalid(server: Any, number: str) -> None:
    srv, port = server
    srv.engine.open_counter("c1")
    srv.handle(_msg("tester", "call-specific", _req({"counter": "c1", "number": number})))
    r = _answer(port)
    assert (r["status"], r["code"]) == ("rejected", "invalid"), r
    assert "`$.args.number`" in r["detail"]


def test_engine_call_specific_refuses_a_superscript_digit(engine: Any) -> None:
    """Below the schema too: ``"¹".isdigit()`` is True and ``int("¹")`` raises."""
    from tessera.engine.errors import DomainError

    engine.confirm_printed(engine.issue("cash").id)
    engine.open_counter("c1")
    with pytest.raises(DomainError):
        engine.call_specific("c1", "A¹")


INVALID: list[tuple[str, bytes | dict[str, Any], str]] = [
    ("issue-ticket", b"[1,2]", "`$`"),
    ("issue-ticket", b'"x"', "`$`"),
    ("issue-ticket", {"issued_at": "2026-01-01T00:00:00Z", "args": {}}, "`$`"),
    ("issue-ticket", {"id": "a b", "issued_at": "2026-01-01T00:00:00Z"}, "`$.id`"),
    ("issue-ticket", {"id": "x", "issued_at": 5}, "`$.issued_at`"),
    ("issue-ticket", {"id": "x", "issued_at": "noon"}, "`$.issued_at`"),
    ("issue-ticket", {"id": "x", "issued_at": "2026-01-01T00:00:00"}, "`$.issued_at`"),
    ("issue-ticket", {"id": "x", "issued_at": "9999-12-31T23:59:59-01:00"}, "`$.issued_at`"),
    ("issue-ticket", {"id": "x", "issued_at": "NOW", "args": []}, "`$.issued_at`"),
    ("issue-ticket", {"id": "x", "issued_at": "NOW", "args": []}, "`$.issued_at`"),
    ("issue-ticket", {"id": "x", "issued_at": "NOW", "args": [1]}, "`$.args`"),
    ("issue-ticket", {"id": "x", "issued_at": "NOW", "args": {}}, "`$.args`"),
    ("rate", {"id": "x", "issued_at": "NOW", "args": {"counter": "c1", "score": "5"}},
     "`$.args.score`"),
    ("call-next", {"id": "x", "issued_at": "NOW", "args": {"counter": 1}}, "`$.args.counter`"),
    ("check-in", {"id": "x", "issued_at": "NOW", "args": {"code": ""}}, "`$.args.code`"),
]


@pytest.mark.parametrize(("name", "body", "path"), INVALID)
def test_every_invalid_names_its_json_path(server: Any, name: str,
                                           body: bytes | dict[str, Any], path: str) -> None:
    srv, port = server
    if isinstance(body, dict) and body.get("issued_at") == "NOW":
        body = {**body, "issued_at": rfc3339(datetime.now(UTC))}
        if body["args"] == []:
            body["issued_at"] = "noon"
    srv.handle(_msg("tester", name, body))
    r = _answer(port)
    assert (r["status"], r["code"]) == ("rejected", "invalid"), r
    assert path in r["detail"], r["detail"]


def test_expired_names_issued_at(server: Any) -> None:
    srv, port = server
    old = rfc3339(datetime.now(UTC) - timedelta(hours=1))
    srv.handle(_msg("tester", "issue-ticket", _req({"service": "cash"}, issued_at=old)))
    r = _answer(port)
    assert r["code"] == "expired" and "`$.issued_at`" in r["detail"]


# ----------------------------------------------------------------------- replay and acks

def _replay_rows(tmp_path: Path) -> list[tuple[Any, ...]]:
    c = sqlite3.connect(tmp_path / "engine.db")
    try:
        return c.execute("SELECT sender, id, name FROM mqtt_replay ORDER BY id").fetchall()
    finally:
        c.close()


def test_answer_is_written_inside_the_commands_transaction(server: Any) -> None:
    srv, _ = server
    seen: list[bool] = []
    orig = srv._store

    def spy(conn: sqlite3.Connection, *a: Any) -> None:
        seen.append(conn is srv.engine.conn and conn.in_transaction)
        orig(conn, *a)

    srv._store = spy
    srv.handle(_msg("tester", "issue-ticket", _req({"service": "cash"})))
    assert seen == [True]  # the engine's connection, before its COMMIT


def test_a_failed_commit_stores_no_answer_and_a_resend_runs(server: Any,
                                                            tmp_path: Path) -> None:
    srv, port = server
    orig = srv._store

    def boom(conn: sqlite3.Connection, *a: Any) -> None:
        orig(conn, *a)
        raise OSError("disk gone")  # the crash between "state changed" and COMMIT

    srv._store = boom
    srv.handle(_msg("tester", "issue-ticket", _req({"service": "cash"}, cid="x1")))
    assert _answer(port)["code"] == "internal"
    assert _replay_rows(tmp_path) == []
    assert srv.engine.conn.execute("SELECT COUNT(*) FROM tickets").fetchone() == (0,)
    srv._store = orig
    srv.handle(_msg("tester", "issue-ticket", _req({"service": "cash"}, cid="x1"), mid=2))
    r = _answer(port)
    assert r["status"] == "done" and r["result"]["number"] == "A001"  # A001 was never spent


def _served(srv: CommandServer, port: RecordingPort) -> Uplink:
    up = Uplink(port)
    up.add_handler(f"{ROOT}/+/req/+", srv.handle)
    return up


def test_redelivery_gets_the_stored_answer_and_every_copy_is_acked(
        server: Any, tmp_path: Path) -> None:
    srv, port = server
    up = _served(srv, port)
    up._dispatch(_msg("tester", "issue-ticket", _req({"service": "cash"}, cid="d1"), mid=7))
    first = _answer(port)
    seq = srv.engine.outbox.last_seq()
    up._dispatch(_msg("tester", "issue-ticket", _req({"service": "cash"}, cid="d1"), mid=8))
    assert _answer(port) == first and srv.engine.outbox.last_seq() == seq
    assert port.acked == [7, 8]
    assert _replay_rows(tmp_path) == [("tester", "d1", "issue-ticket")]


def test_validation_refusals_and_snapshots_are_not_stored(server: Any, tmp_path: Path) -> None:
    srv, port = server
    up = _served(srv, port)
    up._dispatch(_msg("tester", "snapshot", _req({}, cid="s1")))
    up._dispatch(_msg("tester", "issue-ticket", _req({"service": "cash", "x": 1}, cid="v1")))
    up._dispatch(_msg("tester", "call-next", _req({"counter": "c1"}, cid="dom1")))  # closed
    assert [_answer(port, i)["code"] for i in range(3)] == ["ok", "invalid", "counter-closed"]
    assert _replay_rows(tmp_path) == [("tester", "dom1", "call-next")]
    assert port.acked == [1, 1, 1]


def test_a_request_on_a_bad_topic_is_acked_and_answers_nobody(server: Any) -> None:
    srv, port = server
    _served(srv, port)._dispatch(Message(f"{ROOT}/Bad_Device/req/issue-ticket", b"{}", qos=1,
                                         mid=3))
    assert port.published == [] and port.acked == [3]


def test_replay_rows_are_pruned_by_age(server: Any, tmp_path: Path) -> None:
    srv, _ = server
    srv.handle(_msg("tester", "issue-ticket", _req({"service": "cash"}, cid="p1")))
    assert srv.prune() == 0
    srv.keep_s = -1.0
    assert srv.prune() == 1 and _replay_rows(tmp_path) == []


def test_the_policy_from_the_config_refuses_before_the_replay_lookup(
        engine: Any, branch_cfg: Any, tmp_path: Path) -> None:
    """A kiosk reusing a counter's request id gets ``forbidden``, not the counter's answer."""
    port = RecordingPort()
    srv = CommandServer(engine, port, Topics(TENANT, BRANCH, "engine"),
                        connect(tmp_path / "engine.db"), clock=SystemClock(),
                        policy=CommandPolicy.from_config(branch_cfg))
    srv.handle(_msg("counter-pi-1", "snapshot", _req({}, cid="k")))
    srv.handle(_msg("counter-pi-1", "open-counter", _req({"counter": "c1"}, cid="k2")))
    assert _answer(port)["status"] == "done"
    srv.handle(_msg("kiosk-pi-k", "open-counter", _req({"counter": "c1"}, cid="k2")))
    r = _answer(port)
    assert (r["code"], r["result"]) == ("forbidden", {})
    assert port.published[-1][0] == f"{ROOT}/engine/res/kiosk-pi-k"


# ----------------------------------------------------------------------- uplink batch

def test_a_full_batch_loses_no_event() -> None:
    """The event taken from the queue when the batch is full is handled, not dropped."""
    port = RecordingPort()
    up = Uplink(port)
    seen: list[int] = []
    up.add_handler(f"{ROOT}/+/req/+", lambda m: seen.append(m.mid))
    n = MAX_BATCH + 5
    for i in range(n):
        port.events.put(Message(f"{ROOT}/k/req/x", b"", qos=1, mid=i))
    assert up.step(0.01) == MAX_BATCH
    port.events.put(Wake("x"))
    assert up.step(0.01) == 6
    assert seen == list(range(n))


def test_every_message_is_acked_after_its_handlers_even_when_one_fails() -> None:
    port = RecordingPort()
    up = Uplink(port)
    order: list[str] = []

    def boom(m: Message) -> None:
        order.append("handler")
        raise RuntimeError("bug")

    up.add_handler("a/#", boom)
    port.ack = lambda msg: order.append(f"ack {msg.mid}")  # type: ignore[method-assign]
    up._dispatch(Message("a/b", b"", qos=1, mid=9))
    assert order == ["handler", "ack 9"]


def test_periodic_jobs_run_from_the_loop() -> None:
    port = RecordingPort()
    up = Uplink(port)
    runs: list[int] = []
    up.every(3600.0, lambda: runs.append(1))
    up.step(0.0)
    up.step(0.0)
    assert runs == [1]  # due again only after an hour


# ----------------------------------------------------------------------- client re-sends

class FakeUplink:
    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def add_handler(self, topic_filter: str, handler: Any, qos: int = 1) -> None:
        self.handlers[topic_filter] = handler


def test_the_client_resends_the_same_request_until_answered(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import tessera.mqtt.command_client as cc

    monkeypatch.setattr(cc, "RESEND_FIRST_S", 0.02)
    port, uplink = RecordingPort(), FakeUplink()
    client = cc.CommandClient(port, uplink, Topics(TENANT, BRANCH, "counter-pi-1"),
                              clock=SystemClock())
    reply = uplink.handlers[f"{ROOT}/engine/res/counter-pi-1"]
    original = port.publish

    def publish(topic: str, payload: bytes, **kw: Any) -> int:
        n = original(topic, payload, **kw)
        if n == 3:  # the first two copies (or their answers) are lost
            props = kw["props"]
            reply(Message(f"{ROOT}/engine/res/counter-pi-1", json.dumps(
                {"id": "x", "status": "done", "code": "ok", "result": {}}).encode(),
                correlation_data=props.correlation_data))
        return n

    port.publish = publish  # type: ignore[method-assign]
    r = client.request("recall", {"counter": "c1"}, timeout=5, command_id="x")
    assert r["code"] == "ok" and client.sent == 3
    assert {p[0] for p in port.published} == {f"{ROOT}/counter-pi-1/req/recall"}
    assert len({p[1] for p in port.published}) == 1  # same id, payload and issued_at


def test_the_client_gives_up_at_its_deadline_with_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import tessera.mqtt.command_client as cc

    monkeypatch.setattr(cc, "RESEND_FIRST_S", 0.05)
    port, uplink = RecordingPort(), FakeUplink()
    client = cc.CommandClient(port, uplink, Topics(TENANT, BRANCH, "counter-pi-1"),
                              clock=SystemClock())
    r = client.request("recall", {"counter": "c1"}, timeout=0.5)
    assert r["code"] == "timeout"
    assert 3 <= client.sent <= 5  # 0, 0.05, 0.15, 0.35 s: backing off, not hammering


def test_an_unknown_command_name_is_answered_even_when_it_is_not_a_topic_name(
        server: Any) -> None:
    srv, port = server
    srv.handle(_msg("tester", "Explode_Now", _req({})))
    r = _answer(port)
    assert (r["status"], r["code"]) == ("rejected", "unknown-command")


def test_a_restarted_engine_gives_pending_confirms_their_window(
        branch_cfg: Any, tmp_path: Path) -> None:
    """Down for longer than ``unconfirmed_timeout_s`` (a Pi reboot), the engine does not
    void a printed ticket before the kiosk's re-sent confirm could land."""
    from tessera.clock import VirtualClock
    from tessera.engine import Engine

    clock = VirtualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    e1 = Engine.open(branch_cfg, clock, tmp_path / "e.db")
    t = e1.issue("cash")
    e1.close()  # the crash, right after the ticket printed
    clock.advance(120)  # the reboot
    e2 = Engine.open(branch_cfg, clock, tmp_path / "e.db")
    try:
        assert [e for e in e2.tick() if e["type"] == "ticket.void"] == []
        assert e2.confirm_printed(t.id).state == "waiting"  # the kiosk's confirm lands
        t2 = e2.issue("cash")
        clock.advance(branch_cfg.engine.unconfirmed_timeout_s)
        voided = [e["data"]["ticket_id"] for e in e2.tick() if e["type"] == "ticket.void"]
        assert voided == [t2.id]  # the rule itself is unchanged
    finally:
        e2.close()


def test_undo_no_show_over_the_command_server(server: Any) -> None:
    """``undo-no-show`` (issue 15): the ticket waits again; a second undo is bad-state;
    a missing ticket is invalid with its path."""
    srv, port = server
    t = srv.engine.issue("cash")
    srv.engine.confirm_printed(t.id)
    srv.engine.open_counter("c1")
    srv.engine.call_next("c1")
    srv.engine.no_show("c1")
    srv.handle(_msg("tester", "undo-no-show", _req({"counter": "c1", "ticket": t.number})))
    r = _answer(port)
    assert (r["status"], r["code"], r["result"]["state"]) == ("done", "ok", "waiting"), r
    srv.handle(_msg("tester", "undo-no-show", _req({"counter": "c1", "ticket": t.id},
                                                   cid="r-2")))
    r = _answer(port)
    assert (r["status"], r["code"]) == ("rejected", "bad-state"), r
    srv.handle(_msg("tester", "undo-no-show", _req({"counter": "c1"}, cid="r-3")))
    r = _answer(port)
    assert (r["status"], r["code"]) == ("rejected", "invalid") and "ticket" in r["detail"], r
