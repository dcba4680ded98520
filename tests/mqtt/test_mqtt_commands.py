"""Engine commands over MQTT 5 request/response, against a real mosquitto.

Brokers here are the fixture's throw-away mosquittos (anonymous on 127.0.0.1): this file
tests the client side, not the broker's security. The generated broker files are run
exactly as shipped, as Debian runs them, by tests/branch/test_shipped_broker.py and
tests/branch/test_shapes.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from mqtt_support import BRANCH, TENANT, settings

from tessera.clock import SystemClock
from tessera.drivers.mqtt_client import PublishProps
from tessera.mqtt.command_client import CommandClient
from tessera.mqtt.commands import CommandServer
from tessera.mqtt.link import DeviceLink
from tessera.outbox import Outbox, connect, rfc3339

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(60)]
ROOT = f"tessera/v1/{TENANT}/{BRANCH}"
REPLY = f"{ROOT}/engine/res/tester"
REQ = f"{ROOT}/tester/req"  # the sender's own subtree: the topic names the sender


@pytest.fixture
def served(mosquitto: Any, collector: Any, engine: Any, tmp_path: Path) -> Any:
    """A broker, the engine's command server on it, and a raw requester."""
    broker = mosquitto()
    ob = Outbox.open(tmp_path / "engine.db", tenant=TENANT, branch=BRANCH, device="engine")
    # the engine's own client settings: manual acks, Receive Maximum, requests' retain flag
    link = DeviceLink.build(settings(broker, "engine", manual_ack=True, receive_maximum=64,
                                     request_filters=(f"{ROOT}/+/req/+",)),
                            outbox=ob, clock=SystemClock())
    server = CommandServer(engine, link.port, link.topics, connect(tmp_path / "engine.db"),
                           clock=SystemClock())
    link.uplink.add_handler(link.topics.request_filter, server.handle)
    link.start()
    sub = collector(broker, f"{ROOT}/engine/res/#", client_id="tester")
    sub.wait_connected()
    sub.wait(lambda: link.uplink.connects > 0, 10, "engine link")

    def request(name: str, payload: bytes | dict[str, Any], corr: bytes = b"c-1",
                reply: str | None = REPLY, retain: bool = False) -> dict[str, Any]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        n = len(sub.messages)
        sub.client.publish(f"{REQ}/{name}", body, qos=1, retain=retain, props=PublishProps(
            response_topic=reply, correlation_data=corr, message_expiry_s=30))
        sub.wait(lambda: len(sub.messages) > n, 10, f"an answer to {name}")
        msg = sub.messages[n]
        assert msg.correlation_data == corr
        assert msg.topic == REPLY  # the sender's own response topic, whatever it asked for
        return dict(json.loads(msg.payload))

    yield request, engine, link
    link.stop()


def _req(args: dict[str, Any], cid: str = "r-1", age_s: float = 0.0) -> dict[str, Any]:
    ts = datetime.now(UTC) - timedelta(seconds=age_s)
    return {"id": cid, "issued_at": rfc3339(ts), "args": args}


def test_correct_command_is_done_with_its_result(served: Any) -> None:
    request, engine, _ = served
    r = request("issue-ticket", _req({"service": "cash"}))
    assert r["status"] == "done" and r["code"] == "ok" and r["id"] == "r-1"
    assert r["result"]["number"] == "A001" and r["result"]["state"] == "issued"
    assert engine.get_ticket(r["result"]["id"]).number == "A001"


def test_domain_refusal_is_rejected_with_the_engine_code(served: Any) -> None:
    request, _engine, _ = served
    r = request("call-next", _req({"counter": "c1"}))
    assert (r["status"], r["code"]) == ("rejected", "counter-closed")


# Each payload is built when its test runs, not at collection: stamped at
# import, a request is already older than command_max_age_s when a long suite
# reaches it and comes back "expired" instead of the code under test.
BAD: list[tuple[str, str, Callable[[], bytes | dict[str, Any]], str]] = [
    ("malformed", "issue-ticket", lambda: b"{not json", "malformed"),
    ("not an object", "issue-ticket", lambda: b"[1,2]", "invalid"),
    ("missing id", "issue-ticket",
     lambda: {"issued_at": rfc3339(datetime.now(UTC)), "args": {}}, "invalid"),
    ("extra top field", "issue-ticket", lambda: {**_req({"service": "cash"}), "x": 1},
     "invalid"),
    ("missing arg", "call-next", lambda: _req({}), "invalid"),
    ("extra arg", "issue-ticket", lambda: _req({"service": "cash", "colour": "red"}),
     "invalid"),
    ("mistyped arg", "rate", lambda: _req({"counter": "c1", "score": "five"}), "invalid"),
    ("bad timestamp", "issue-ticket",
     lambda: {**_req({"service": "cash"}), "issued_at": "noon"}, "invalid"),
    ("expired", "issue-ticket", lambda: _req({"service": "cash"}, age_s=3600), "expired"),
    ("unknown command", "explode", lambda: _req({}), "unknown-command"),
    ("oversized", "issue-ticket", lambda: _req({"service": "cash", "priority": "x" * 5000}),
     "too-large"),
]


@pytest.mark.parametrize(("case", "name", "make", "code"), BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_their_code_and_change_nothing(
        served: Any, case: str, name: str, make: Callable[[], bytes | dict[str, Any]],
        code: str) -> None:
    request, engine, _ = served
    before = engine.outbox.last_seq()
    r = request(name, make())
    assert r["status"] == "rejected" and r["code"] == code, r
    assert r["detail"]
    assert engine.outbox.last_seq() == before  # no event: nothing changed


def test_invalid_detail_names_the_field(served: Any) -> None:
    request, _, _ = served
    r = request("rate", _req({"counter": "c1", "score": "five"}))
    assert "$.args.score" in r["detail"]


def test_replay_returns_the_original_response_and_acts_once(served: Any) -> None:
    request, engine, _ = served
    first = request("issue-ticket", _req({"service": "cash"}, cid="same"))
    before = engine.outbox.last_seq()
    again = request("issue-ticket", _req({"service": "cash"}, cid="same"), corr=b"c-2")
    assert again == first
    assert engine.outbox.last_seq() == before
    # even after the first one would have expired
    late = request("issue-ticket", _req({"service": "cash"}, cid="same", age_s=3600))
    assert late == first


@pytest.mark.parametrize("reply", [None, f"{ROOT}/engine/res/counter-pi-1",
                                   f"{ROOT}/counter-pi-1/evt/x"])
def test_a_response_topic_other_than_the_senders_own_is_refused(
        served: Any, reply: str | None) -> None:
    """The engine answers only ``engine/res/{sender}``: a kiosk cannot redirect answers
    into a counter's topic."""
    request, engine, _ = served
    before = engine.outbox.last_seq()
    r = request("issue-ticket", _req({"service": "cash"}), reply=reply)
    assert (r["status"], r["code"]) == ("rejected", "bad-response-topic")
    assert REPLY in r["detail"]
    assert engine.outbox.last_seq() == before


def test_replay_is_scoped_by_sender(served: Any, collector: Any) -> None:
    """Another device reusing a request id runs its own command, never receives the
    first sender's stored answer."""
    request, _engine, link = served
    first = request("issue-ticket", _req({"service": "cash"}, cid="shared"))
    other_reply = f"{ROOT}/engine/res/other"
    other = collector(SimpleNamespace(host="127.0.0.1", port=link.port.settings.port),
                      other_reply, client_id="other")
    other.wait_connected()
    other.client.publish(f"{ROOT}/other/req/issue-ticket",
                         json.dumps(_req({"service": "cash"}, cid="shared")).encode(), qos=1,
                         props=PublishProps(response_topic=other_reply, correlation_data=b"o"))
    other.wait(lambda: bool(other.messages), 10, "the other sender's answer")
    got = json.loads(other.messages[0].payload)
    assert got["status"] == "done" and got["result"]["number"] == "A002"
    assert got["result"]["id"] != first["result"]["id"]  # its own ticket


def test_a_retained_request_is_refused_and_changes_nothing(served: Any) -> None:
    request, engine, _ = served
    before = engine.outbox.last_seq()
    r = request("issue-ticket", _req({"service": "cash"}), retain=True)
    assert (r["status"], r["code"]) == ("rejected", "retained")
    assert engine.outbox.last_seq() == before


def test_command_client_round_trip(served: Any, tmp_path: Path, mosquitto: Any) -> None:
    _, engine, link = served
    ob = Outbox.open(tmp_path / "panel-1.db", tenant=TENANT, branch=BRANCH, device="panel-1")
    broker_port = link.port.settings.port
    from tessera.drivers.mqtt_client import MqttSettings

    panel = DeviceLink.build(MqttSettings(host="127.0.0.1", port=broker_port,
                                          client_id="panel-1"), outbox=ob, clock=SystemClock())
    client = CommandClient(panel.port, panel.uplink, panel.topics, clock=SystemClock())
    panel.start()
    try:
        out: list[dict[str, Any]] = []
        t = threading.Thread(target=lambda: out.append(
            client.request("open-counter", {"counter": "c1", "staff": "t9"}, timeout=10)))
        t.start()
        t.join(15)
        assert out and out[0]["status"] == "done" and out[0]["result"]["state"] == "open"
        assert engine.snapshot()["counters"]["c1"]["state"] == "open"
    finally:
        panel.stop()


@hsettings(max_examples=25, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=300) | st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=10).map(lambda v: json.dumps(v).encode()))
def test_arbitrary_payloads_always_get_an_answer_and_change_nothing(
        served: Any, payload: bytes) -> None:
    request, engine, _ = served
    before = engine.outbox.last_seq()
    r = request("call-next", payload)
    assert r["status"] in ("rejected", "error")
    assert engine.outbox.last_seq() == before


def test_engine_link_from_config_serves_commands_and_wakes_on_commit(
        mosquitto: Any, collector: Any, tmp_path: Path) -> None:
    from mqtt_support import BRANCH_TOML

    from tessera.config import parse_config
    from tessera.engine import Engine

    broker = mosquitto()
    cfg = parse_config(BRANCH_TOML.replace("127.0.0.1:1883", f"127.0.0.1:{broker.port}"),
                       base_dir=tmp_path)
    engine = Engine.open(cfg, SystemClock(), tmp_path / "e.db")
    link = DeviceLink.for_engine(cfg, engine, clock=SystemClock(), db_path=tmp_path / "e.db")
    sub = collector(broker, f"{ROOT}/#", client_id="tester")
    sub.wait_connected()
    link.start()
    try:
        sub.wait(lambda: link.uplink.connects > 0, 10, "engine link")
        engine.issue("loans")  # in-process command: its event goes out at once
        sub.wait(lambda: any(e["type"] == "ticket.issued" for e in sub.envelopes()), 10,
                 "the event")
        kreply = f"{ROOT}/engine/res/kiosk-pi-k"  # a device of the config, with buttons
        sub.client.publish(f"{ROOT}/kiosk-pi-k/req/issue-ticket",
                           json.dumps(_req({"service": "cash"})).encode(), qos=1,
                           props=PublishProps(response_topic=kreply, correlation_data=b"z"))
        sub.wait(lambda: any(m.topic == kreply for m in sub.messages), 10, "the answer")
        answer = json.loads(next(m.payload for m in sub.messages if m.topic == kreply))
        assert answer["status"] == "done" and answer["result"]["number"] == "A001"
        # the policy from the config: a sender that is not a device of the branch
        sub.client.publish(f"{REQ}/issue-ticket", json.dumps(_req({"service": "cash"})).encode(),
                           qos=1, props=PublishProps(response_topic=REPLY, correlation_data=b"t"))
        sub.wait(lambda: any(m.topic == REPLY for m in sub.messages), 10, "the refusal")
        refusal = json.loads(next(m.payload for m in sub.messages if m.topic == REPLY))
        assert (refusal["status"], refusal["code"]) == ("rejected", "forbidden")
        status = sub.retained(f"{ROOT}/engine/status")
        assert status is not None and status["state"] == "online"
    finally:
        link.stop()
        engine.close()
