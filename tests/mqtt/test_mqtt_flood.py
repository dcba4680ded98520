"""A request flood against ``tessera run engine`` (issue 12): 2,000 requests in a burst
and 2,000 more while the engine is SIGSTOPped; afterwards (and meanwhile) every
legitimate command is answered. Also what bounds the engine's inbound queue: the
MQTT 5 Receive Maximum its client sends, as mosquitto applies it.

Brokers here are the fixture's throw-away mosquittos (anonymous on 127.0.0.1): this file
tests the client side, not the broker's security. The generated broker files are run
exactly as shipped, as Debian runs them, by tests/branch/test_shipped_broker.py and
tests/branch/test_shapes.py.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from engine_proc import EngineProcess
from mqtt_support import BRANCH, TENANT, settings, shipped_branch, start_generated

from tessera.clock import SystemClock
from tessera.drivers.mqtt_client import Connected, Message, PahoClient, PublishProps
from tessera.mqtt.command_client import CommandClient
from tessera.mqtt.credentials import load_credentials
from tessera.mqtt.link import COMMAND_RECEIVE_MAX, DeviceLink
from tessera.outbox import rfc3339

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(180)]
ROOT = f"tessera/v1/{TENANT}/{BRANCH}"
FLOOD = 2000


def _connected(client: PahoClient) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if isinstance(client.events.get(timeout=0.1), Connected):
                return
        except queue.Empty:
            pass
    raise AssertionError("no connect")


def test_receive_maximum_bounds_unacked_requests_in_flight(mosquitto: Any) -> None:
    """mosquitto sends a manual-ack client no more unacked QoS 1 messages than its
    Receive Maximum; the rest wait in the session queue until acks free slots.

    Measured on mosquitto 2.0.11: the first window is exactly the Receive Maximum,
    but a PUBACK can release up to a whole window again (not one slot), so after
    acks the in-flight count may exceed it (eclipse-mosquitto#2301, the quota
    accounting in db__message_delete_outgoing). Nothing is lost either way.
    """
    broker = mosquitto()
    slow = PahoClient(settings(broker, "slow", manual_ack=True, receive_maximum=5))
    fast = PahoClient(settings(broker, "fast"))
    slow.start()
    fast.start()
    try:
        _connected(slow)
        _connected(fast)
        slow.subscribe("t/#", 1)
        time.sleep(0.2)
        for i in range(20):
            fast.publish(f"t/{i}", b"x", qos=1)

        def drain(s: float) -> list[Message]:
            got: list[Message] = []
            deadline = time.monotonic() + s
            while time.monotonic() < deadline:
                try:
                    ev = slow.events.get(timeout=0.05)
                except queue.Empty:
                    continue
                if isinstance(ev, Message):
                    got.append(ev)
            return got

        first = drain(1.0)
        assert [m.topic for m in first] == [f"t/{i}" for i in range(5)]
        assert drain(0.5) == []  # nothing more until an ack
        slow.ack(first[0])
        second = drain(1.0)
        assert 1 <= len(second) <= 5, len(second)  # 2.0.11: a whole window (see above)
        got = first + second
        while len(got) < 20:
            for m in got:
                slow.ack(m)
            more = drain(1.0)
            assert more, "acks released nothing"
            got += more
        assert [m.topic for m in got] == [f"t/{i}" for i in range(20)]  # in order, none lost
    finally:
        slow.stop(2)
        fast.stop(2)


def _flood(client: PahoClient, start: int, n: int) -> None:
    now = rfc3339(datetime.now(UTC))
    reply = f"{ROOT}/engine/res/kiosk-pi-k"
    for i in range(start, start + n):
        body = json.dumps({"id": f"f-{i}", "issued_at": now, "args": {"service": "cash"}})
        client.publish(f"{ROOT}/kiosk-pi-k/req/issue-ticket", body.encode(), qos=1,
                       props=PublishProps(response_topic=reply, correlation_data=b"f%d" % i,
                                          message_expiry_s=60))


def test_flood_and_stopped_engine_every_legitimate_command_is_answered(
        mosquitto: Any, broker_base: Path) -> None:
    config, cfg = shipped_branch(broker_base)
    out = broker_base / "broker"
    broker = start_generated(mosquitto, cfg, out)
    engine = EngineProcess(config, broker_base / "engine.log")
    engine.start()
    user, pw = load_credentials(out / "credentials" / "kiosk-pi-k.toml")
    flooder = PahoClient(settings(broker, "kiosk-pi-k", username=user, password=pw,
                                  max_inflight=65535))
    flooder.start()
    counter = DeviceLink.from_config(cfg, "counter-pi-1", clock=SystemClock(),
                                     meta={"role": ["counter"]})
    client = CommandClient(counter.port, counter.uplink, counter.topics, clock=SystemClock())
    counter.start()
    answers: list[dict[str, Any]] = []
    try:
        _connected(flooder)
        flooder.subscribe(f"{ROOT}/engine/res/kiosk-pi-k", 1)
        time.sleep(0.3)
        assert client.request("open-counter", {"counter": "c1"}, timeout=20)["code"] == "ok"
        t0 = time.monotonic()
        _flood(flooder, 0, FLOOD)  # a burst
        engine.pause()
        _flood(flooder, FLOOD, FLOOD)  # and while the engine is stopped
        during: list[dict[str, Any]] = []
        legit = threading.Thread(target=lambda: during.append(
            client.request("call-next", {"counter": "c1"})))
        legit.start()
        time.sleep(1.0)
        engine.resume()
        legit.join(40)
        # afterwards: a legitimate device is answered at once, whatever was flooded
        after = [client.request("snapshot", {}, timeout=20) for _ in range(5)]
        after.append(client.request("pause", {"counter": "c1"}, timeout=20))
        deadline = time.monotonic() + 60
        while len(answers) < 2 * FLOOD and time.monotonic() < deadline:
            try:
                ev = flooder.events.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(ev, Message):
                answers.append(json.loads(ev.payload))
        elapsed = time.monotonic() - t0
        # the flooding kiosk itself, once its bucket refills: the client re-sends
        kiosk = DeviceLink.from_config(cfg, "kiosk-pi-k", clock=SystemClock(),
                                       meta={"role": ["kiosk"]})
        flooder.stop(2)
        kclient = CommandClient(kiosk.port, kiosk.uplink, kiosk.topics, clock=SystemClock())
        kiosk.start()
        try:
            mine = kclient.request("issue-ticket", {"service": "loans"}, timeout=30)
        finally:
            kiosk.stop()
    finally:
        counter.stop()
        flooder.stop(2)
        engine.stop()
    assert during and during[0]["code"] in ("ok", "queue-empty"), during
    assert [a["code"] for a in after] == ["ok"] * 6, after
    assert mine["status"] == "done", mine
    codes: dict[str, int] = {}
    for a in answers:
        codes[a["code"]] = codes.get(a["code"], 0) + 1
    assert len(answers) == 2 * FLOOD, codes  # every flooded request answered, none lost
    assert set(codes) <= {"ok", "rate-limited"}, codes
    # the kiosk's bucket: a burst of 50, then 10/s for as long as the flood took
    assert codes.get("ok", 0) <= 50 + 10 * elapsed + 10, (codes, elapsed)
    print(f"\n{2 * FLOOD} flooded requests answered in {elapsed:.1f} s: {codes}; "
          f"receive maximum {COMMAND_RECEIVE_MAX}")
