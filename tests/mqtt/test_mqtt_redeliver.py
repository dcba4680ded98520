"""End-to-end acknowledgement: the retained high-water mark decides what is re-sent.

Unit tests of ``Drainer`` against a recording port (no network): what it sends after
a connect for each mark the broker may hand back, what mark it publishes, and that
retention keeps every row above the mark. The network drills (power cut, broker
storm) are in test_mqtt_powercut.py.
"""

from __future__ import annotations

import json
import queue
import time
from typing import Any

import pytest
from mqtt_support import BRANCH, TENANT, fill

from tessera.clock import SystemClock
from tessera.drivers.mqtt_client import Message, MqttEvent, PublishProps
from tessera.mqtt.drainer import Drainer, mark_payload, parse_mark
from tessera.mqtt.retention import Retention
from tessera.mqtt.topics import Topics
from tessera.outbox import Outbox

pytestmark = [pytest.mark.mqtt]


class RecordingPort:
    """An MqttPort that records what the drainer hands it (no network)."""

    def __init__(self) -> None:
        self.events: queue.SimpleQueue[MqttEvent] = queue.SimpleQueue()
        self.published: list[tuple[str, bytes, bool]] = []

    def start(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                props: PublishProps | None = None) -> int:
        self.published.append((topic, payload, retain))
        return len(self.published)

    def subscribe(self, topic_filter: str, qos: int = 1) -> None: ...

    def ack(self, msg: Message) -> None: ...

    def sent_seqs(self) -> list[int]:
        return [json.loads(p)["seq"] for t, p, _ in self.published if "/evt/" in t]

    def marks(self) -> list[int]:
        return [json.loads(p)["seq"] for t, p, _ in self.published if t.endswith("/state/hwm")]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _drainer(ob: Outbox, port: RecordingPort, clock: Clock) -> Drainer:
    return Drainer(port, ob, Topics(TENANT, BRANCH, ob.device), inflight=100,
                   mark_every_s=1.0, mark_wait_s=2.0, monotonic=clock)


def _mark(d: Drainer, seq: int, *, retain: bool) -> None:
    d.on_mark(Message(d.mark_topic, mark_payload(seq, d.store_id), qos=1, retain=retain))


def _ack_all(d: Drainer, port: RecordingPort) -> None:
    from tessera.drivers.mqtt_client import PubAck

    for mid in range(1, len(port.published) + 1):
        d.on_puback(PubAck(mid))
    d.flush()


def test_nothing_is_sent_until_the_retained_mark_then_everything_above_it(
        outbox_factory: Any) -> None:
    ob = outbox_factory("kiosk-1")
    fill(ob, 30)
    ob.mark_delivered(list(range(1, 31)))  # acked by a broker that then lost 21..30
    port, clock = RecordingPort(), Clock()
    d = _drainer(ob, port, clock)
    d.on_connected(session_present=True)  # a restored broker says it has our session
    assert d.pump() == 0 and port.published == []
    _mark(d, 20, retain=True)  # ... but its retained mark says what it kept
    d.pump()
    assert port.sent_seqs() == list(range(21, 31))
    assert d.resends == [10] and d.restored == [20]


def test_without_a_retained_mark_it_resumes_above_the_local_copy(outbox_factory: Any) -> None:
    ob = outbox_factory("kiosk-1")
    fill(ob, 1000)
    ob.mark_delivered(list(range(1, 1001)))
    port, clock = RecordingPort(), Clock()
    d = _drainer(ob, port, clock)
    _mark(d, 990, retain=False)  # the echo of our last mark: the local copy
    assert d.local_mark == 990
    again = _drainer(ob, RecordingPort(), clock)  # a restart reads it back
    assert again.local_mark == 990
    d.on_connected(session_present=False)  # a new broker: no retained mark at all
    clock.t += 1.0
    assert d.pump() == 0  # still waiting
    clock.t += 1.5
    d.pump()
    assert port.sent_seqs() == list(range(991, 1001))  # never from the first row
    assert d.restored == [None]


def test_a_late_retained_mark_below_the_resume_point_rewinds(outbox_factory: Any) -> None:
    ob = outbox_factory("kiosk-1")
    fill(ob, 50)
    ob.mark_delivered(list(range(1, 51)))
    port, clock = RecordingPort(), Clock()
    d = _drainer(ob, port, clock)
    _mark(d, 45, retain=False)
    d.on_connected()
    clock.t += 3
    d.pump()
    assert port.sent_seqs() == list(range(46, 51))
    port.published.clear()
    _mark(d, 30, retain=True)  # arrives after the wait: the broker kept less
    d.pump()
    assert port.sent_seqs() == list(range(31, 51))


def test_a_mark_above_the_newest_row_is_not_trusted(outbox_factory: Any) -> None:
    ob = outbox_factory("kiosk-1")  # a new store under a device id the broker knew
    fill(ob, 5)
    port, clock = RecordingPort(), Clock()
    d = _drainer(ob, port, clock)
    d.on_connected()
    _mark(d, 9000, retain=True)
    d.pump()
    assert port.sent_seqs() == [1, 2, 3, 4, 5]
    d.on_mark(Message(d.mark_topic, b"junk", retain=True))  # ignored, never raises
    assert parse_mark(b'{"seq": true, "store": "x"}') is None
    assert parse_mark(b'{"seq": -1, "store": "x"}') is None
    assert parse_mark(b'{"seq": 3}') is None


def test_another_stores_mark_is_not_trusted_even_in_range(outbox_factory: Any) -> None:
    """A store replaced under the same device id, refilled to the same seqs: the old
    store's mark names another store, so nothing is skipped."""
    ob = outbox_factory("kiosk-1")
    fill(ob, 10)
    port, clock = RecordingPort(), Clock()
    d = _drainer(ob, port, clock)
    d.on_connected()
    d.on_mark(Message(d.mark_topic, mark_payload(10, "someone-else"), retain=True))
    d.pump()
    assert port.sent_seqs() == list(range(1, 11))


def test_the_mark_covers_only_contiguous_durable_acks_and_is_rate_limited(
        outbox_factory: Any) -> None:
    from tessera.drivers.mqtt_client import PubAck

    ob = outbox_factory("kiosk-1")
    fill(ob, 10)
    port, clock = RecordingPort(), Clock()
    d = _drainer(ob, port, clock)
    d.on_connected()
    _mark(d, 0, retain=True)
    d.pump()
    mids = {json.loads(p)["seq"]: i + 1 for i, (t, p, _) in enumerate(port.published)}
    for seq in (1, 2, 3, 5, 6):  # 4 not yet acked
        d.on_puback(PubAck(mids[seq]))
    d.flush()
    clock.t += 1.0
    d.pump()
    assert port.marks() == [3]
    d.on_puback(PubAck(mids[4]))
    d.flush()
    d.pump()
    assert port.marks() == [3]  # at most one per second
    clock.t += 1.0
    d.pump()
    assert port.marks() == [3, 6]
    assert all(r for t, _, r in port.published if t.endswith("/state/hwm"))  # retained


def test_drops_in_a_row_resend_only_what_came_after_the_last_mark(outbox_factory: Any) -> None:
    """The old window re-opened every row re-sent within 40 s before each drop, so
    drops < 40 s apart re-sent everything since the chain began. Per drop now: the
    rows acknowledged after the last mark the broker holds."""
    ob = outbox_factory("kiosk-1")
    port, clock = RecordingPort(), Clock()
    d = _drainer(ob, port, clock)
    held = 0  # the retained mark the broker holds
    per_drop = []
    for _ in range(20):
        d.on_connected()
        _mark(d, held, retain=True)
        fill(ob, 100)  # live events on this connection
        while d.pump():
            _ack_all(d, port)
        _ack_all(d, port)
        clock.t += 1.0
        d.pump()  # publishes the mark
        held = port.marks()[-1] if port.marks() else held
        fill(ob, 7)  # acked after the last mark, then the link drops
        d.pump()
        _ack_all(d, port)
        d.on_disconnected()
        port.published.clear()
        per_drop.append(d.resends[-1])
        clock.t += 0.5
    assert max(per_drop) <= 7, per_drop


def test_retention_never_prunes_rows_above_the_mark(outbox_factory: Any) -> None:
    ob = outbox_factory("kiosk-1")
    fill(ob, 50)
    ob.mark_delivered(list(range(1, 51)))
    mark = 20
    r = Retention(ob, budget_bytes=1 << 30, clock=SystemClock(), keep_s=0, keep_rows=0,
                  mark=lambda: mark)
    assert r.run(now=time.time() + 60).pruned == 20
    assert [e["seq"] for e in ob.all_events()] == list(range(21, 51))
    mark = 50
    assert r.run(now=time.time() + 60).pruned == 29  # the newest row always stays
    assert [e["seq"] for e in ob.all_events()] == [50]


def test_the_retired_redeliver_window_is_accepted_with_a_deprecation_warning(
        tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    from mqtt_support import BRANCH_TOML

    from tessera.config import parse_config
    from tessera.mqtt.link import DeviceLink

    cfg = parse_config(BRANCH_TOML + "redeliver_window_s = 40.0\n", base_dir=tmp_path)
    assert cfg.mqtt.redeliver_window_s == 40.0  # still a valid config
    with caplog.at_level("WARNING", logger="tessera.mqtt.link"):
        link = DeviceLink.from_config(cfg, "kiosk-pi-k", clock=SystemClock())
    assert any("mqtt.redeliver_window_s is deprecated and ignored" in r.getMessage()
               for r in caplog.records)
    link.presence.conn.close()
    link.drainer.outbox.conn.close()
