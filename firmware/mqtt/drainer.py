"""Send a device's outbox to MQTT in ``seq`` order, at most ``inflight`` unacknowledged.

The outbox table is the only queue: the drainer hands paho at most
``inflight`` messages (paho's own window is set larger, so paho never queues
them in RAM) and marks rows delivered when their PUBACK arrives. Rows appended
while a backlog drains are picked up by the same cursor: live events keep
flowing behind the backlog, in order, without stopping the writers.

**End-to-end acknowledgement: the retained high-water mark.** mosquitto sends
the PUBACK before it saves the message (every ``autosave_interval``), so a
power cut of the broker can lose events we marked delivered, and a broker
restored from its last save says ``session_present`` as if nothing happened.
So the device publishes, retained, ``{device}/state/hwm`` = ``{"seq": M, "store": S}``: the
highest seq such that it and every lower one are acknowledged (and marked
delivered in the database), at most once per ``mark_every_s`` and on a clean
stop. The mark reaches the broker after the events it covers (one connection,
in order) and the broker saves retained messages and queued session messages
in the same snapshot, so whatever mark a restarted broker restores, it holds
(or has delivered) every event up to it.

The device subscribes to its own mark. On every connect it sends nothing until
the broker's retained mark arrives, or the PUBACK of a publish made after the
SUBSCRIBE (``barrier``: the broker handles a connection's packets in order, so
the retained message would have come first) or ``mark_wait_s`` says the broker
has no mark at all (e.g. a new one); then it marks every row above the mark
undelivered again and drains from there, in ``seq`` order. Without a retained mark
it resumes
above its local copy of the last mark the broker echoed back (table
``mqtt_hwm``), never from the first row of a year-long outbox. A retained mark
that arrives late, below where sending resumed, rewinds the cursor to it.
Re-sends per drop are therefore the events published since the last mark the
broker kept, whatever the drop frequency. Consumers dedupe by ``id``.

    d = Drainer(port, outbox, topics, inflight=100)
    uplink.add_handler(d.mark_topic, d.on_mark)   # DeviceLink.build does this
    d.on_connected(session_present=True); d.pump()   # called by the Uplink loop
    d.on_puback(PubAck(mid=1)); d.flush()

Use a connection of its own (``Outbox.open(path, ...)``) for the drainer, not
the engine's: the engine holds its connection inside its transactions.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from tessera.drivers.mqtt_client import Message, MqttPort, PubAck
from tessera.mqtt.topics import Topics
from tessera.outbox import Outbox, uuid7

log = logging.getLogger(__name__)

INFLIGHT_RANGE = (1, 1000)
MARK_PART = "hwm"  # state/hwm: the retained high-water mark of the device's outbox
MARK_EVERY_S = 1.0  # at most one mark publish per second (one retained-store write)
# The retained mark follows the SUBACK within one round trip; without one after this
# long the broker has none (new or wiped) and the local copy is used.
MARK_WAIT_S = 2.0
KEEP_RESUMES = 1000  # per-connect counters kept for logs, tests and the bench

# seq: the last mark the broker echoed; store: this outbox's identity (a replaced
# store under the same device id must not trust the old store's mark)
MARK_SCHEMA = ("CREATE TABLE IF NOT EXISTS mqtt_hwm "
               "(device TEXT PRIMARY KEY, seq INTEGER NOT NULL, store TEXT NOT NULL)")


def mark_payload(seq: int, store: str) -> bytes:
    return json.dumps({"seq": seq, "store": store}, separators=(",", ":")).encode()


def parse_mark(payload: bytes) -> tuple[int, str] | None:
    """``(seq, store)`` of a mark payload, None for anything else."""
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    seq, store = body.get("seq"), body.get("store")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 \
            or not isinstance(store, str):
        return None
    return seq, store


class Drainer:
    """Outbox → MQTT QoS1, in ``seq`` order, bounded in flight, acked end to end by marks."""

    def __init__(self, port: MqttPort, outbox: Outbox, topics: Topics, *,
                 inflight: int = 100, mark_every_s: float = MARK_EVERY_S,
                 mark_wait_s: float = MARK_WAIT_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if not INFLIGHT_RANGE[0] <= inflight <= INFLIGHT_RANGE[1]:
            raise ValueError(f"inflight {inflight} must be within {INFLIGHT_RANGE}")
        self.port, self.outbox, self.topics = port, outbox, topics
        self.inflight_cap = inflight
        self.mark_every_s, self.mark_wait_s = mark_every_s, mark_wait_s
        self.mark_topic = topics.state(MARK_PART)
        self._now = monotonic
        self.connected = False
        self.reopened = 0  # rows sent again because a mark came back below them
        self.resends: list[int] = []  # rows re-opened per connect, for logs, tests, bench
        self.restored: list[int | None] = []  # the mark each connect resumed from (None: local)
        self._inflight: dict[int, int] = {}  # mid -> seq
        self._after = 0  # highest seq handed to paho on this connection
        self._acked: list[int] = []
        self.sent = 0
        self.acked_total = 0
        self._event_topics: dict[str, str] = {}  # type -> topic, built once per event type
        self._awaiting = False  # connected, waiting for the broker's retained mark
        self._await_until = 0.0
        self._published = 0  # the mark this broker holds (restored or last published)
        self._next_mark = 0.0
        # the mid whose PUBACK proves the broker has sent every retained message of our
        # subscriptions (Presence.sync_mid: published after the SUBSCRIBEs); None: wait
        self.barrier: Callable[[], int | None] = lambda: None
        with outbox.transaction() as c:
            c.execute(MARK_SCHEMA)
            c.execute("INSERT OR IGNORE INTO mqtt_hwm(device, seq, store) VALUES (?, 0, ?)",
                      (outbox.device, uuid7()))
            seq, store = c.execute("SELECT seq, store FROM mqtt_hwm WHERE device = ?",
                                   (outbox.device,)).fetchone()
        self.local_mark, self.store_id = int(seq), str(store)

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    @property
    def ready(self) -> bool:
        """Connected and past the wait for the retained mark: rows are flowing."""
        return self.connected and not self._awaiting

    # ------------------------------------------------------------------ connection
    def on_connected(self, session_present: bool = True) -> None:
        """Hold sending until the retained mark arrives (``session_present`` is not
        trusted: a broker restored from an old save has our session too)."""
        self.flush()
        self.connected = True
        self._inflight.clear()
        self._awaiting = True
        self._await_until = self._now() + self.mark_wait_s

    def on_disconnected(self) -> None:
        """The connection dropped (never called for our own clean stop)."""
        self.flush()
        self.connected = False
        self._awaiting = False
        self._inflight.clear()

    def on_mark(self, msg: Message) -> None:
        """A message on our own mark topic: the broker's retained mark (on subscribe)
        or the echo of one we published (then it is our new local copy)."""
        mark = parse_mark(msg.payload)
        log.debug("outbox: mark %s in (retain %s, awaiting %s, held %d)", mark, msg.retain,
                  self._awaiting, self._published)
        if mark is None:
            log.warning("outbox: ignoring a malformed high-water mark on %s", msg.topic)
            return
        seq, store = mark
        newest = self.outbox.last_seq()
        if store != self.store_id or seq > newest:
            # another store's mark (replaced or reset under the same device id): for
            # this outbox the broker holds no mark at all
            log.warning("outbox: the broker's high-water mark %d is another store's; "
                        "ignoring it", seq)
            if msg.retain and self._awaiting:
                self._resume(min(self.local_mark, newest), restored=None)
            return
        if not msg.retain:
            self._store_local(seq)
        elif self._awaiting:
            self._resume(seq, restored=seq)
        elif self.connected and seq < self._published:
            # a late retained mark below where we resumed: rewind to it
            log.info("outbox: late high-water mark %d from the broker; rewinding", seq)
            self._inflight.clear()
            self._resume(seq, restored=seq)

    def _resume(self, mark: int, *, restored: int | None) -> None:
        n = self.outbox.reopen_above(mark)
        self.reopened += n
        self.resends.append(n)
        self.restored.append(restored)
        if len(self.resends) > KEEP_RESUMES:  # a year of reconnects stays small
            del self.resends[:-KEEP_RESUMES], self.restored[:-KEEP_RESUMES]
        if n:
            log.info("outbox: re-sending %d events above the high-water mark %d (%s)", n, mark,
                     "the broker's" if restored is not None else "local copy")
        self._awaiting = False
        self._after = mark
        self._published = mark
        self._next_mark = self._now() + self.mark_every_s
        if restored is not None:
            self._store_local(mark)

    def _store_local(self, seq: int) -> None:
        if seq == self.local_mark:
            return
        with self.outbox.transaction() as c:
            c.execute("UPDATE mqtt_hwm SET seq = ? WHERE device = ?", (seq, self.outbox.device))
        self.local_mark = seq

    # ------------------------------------------------------------------ acks and marks
    def on_puback(self, ev: PubAck) -> None:
        seq = self._inflight.pop(ev.mid, None)
        if seq is None:
            if self._awaiting and ev.mid == self.barrier():
                self._await_until = 0.0  # no retained mark came before it: there is none
            return  # a presence/response/mark publish, or a stale one from before a reconnect
        if ev.ok:
            self._acked.append(seq)
        else:
            # The broker refused it (ACL, quota): keep the row (the mark stops below
            # it); it is retried after the next reconnect rather than spinning on it now.
            log.warning("outbox seq %d refused by broker: %s", seq, ev.reason)

    def flush(self) -> int:
        """Mark acknowledged rows delivered (one transaction); return how many."""
        if not self._acked:
            return 0
        n = len(self._acked)
        self.outbox.mark_delivered(self._acked)
        self.acked_total += n
        self._acked = []
        return n

    def publish_mark(self, *, force: bool = False) -> int | None:
        """Publish the mark if it moved (at most every ``mark_every_s`` unless ``force``);
        return the publish's mid. Call after ``flush()``: only rows durably marked
        delivered count."""
        if not self.ready:
            return None
        now = self._now()
        if not force and now < self._next_mark:
            return None
        mark = self.outbox.delivered_through(self._published)
        if mark <= self._published:
            return None
        self._next_mark = now + self.mark_every_s
        self._published = mark
        log.debug("outbox: mark %d out", mark)
        return self.port.publish(self.mark_topic, mark_payload(mark, self.store_id), qos=1,
                                 retain=True)

    # ------------------------------------------------------------------ sending
    def pump(self) -> int:
        """Hand paho as many undelivered rows as the window allows; return how many."""
        if not self.connected:
            return 0
        if self._awaiting:
            if self._now() < self._await_until:
                return 0
            log.info("outbox: the broker has no high-water mark of ours; resuming above the "
                     "local copy %d", self.local_mark)
            self._resume(min(self.local_mark, self.outbox.last_seq()), restored=None)
        self.publish_mark()
        room = self.inflight_cap - len(self._inflight)
        # Refill in chunks (a quarter window) so a busy drain makes one query
        # per chunk, but a lone live event on an idle link goes out at once.
        if room <= 0 or (self._inflight and room < self.inflight_cap // 4):
            return 0
        rows = self.outbox.pending_raw(room, self._after)
        topics = self._event_topics
        for seq, type_, body in rows:
            topic = topics.get(type_)
            if topic is None:
                topic = topics[type_] = self.topics.event(type_)
            mid = self.port.publish(topic, body, qos=1, retain=False)
            self._inflight[mid] = seq
            self._after = seq
        self.sent += len(rows)
        return len(rows)
