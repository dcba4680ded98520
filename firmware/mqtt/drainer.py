"""Send a device's outbox to MQTT in ``seq`` order, at most ``inflight`` unacknowledged.

The outbox table is the only queue: the drainer hands paho at most
``inflight`` messages (paho's own window is set larger, so paho never queues
them in RAM), marks rows delivered when their PUBACK arrives, and after every
(re)connect starts again from the oldest undelivered row *in the database*,
so nothing depends on what paho kept in memory. Rows appended while a backlog
drains are picked up by the same cursor: live events keep flowing behind the
backlog, in order, without stopping the writers.

Durability window: mosquitto sends the PUBACK before it has saved the message
to its persistence file (it saves every ``autosave_interval``), so a broker
SIGKILL or power cut can lose messages we already marked delivered. When the
connection drops unexpectedly (any ``Disconnected`` the drainer sees: a clean
stop by us never reaches it) every row acknowledged within
``redeliver_window_s`` before the drop is marked undelivered again, and the
normal drain re-sends it, in ``seq`` order, ahead of newer rows. A CONNACK
without our session (the broker lost its state, or the device restarted while
the broker was down) re-opens the window before the newest delivered row.
Re-opening is a DB update, so it survives a device crash too. Consumers dedupe
by ``id``: the cost is duplicates, never a loss.

    >>> d = Drainer(port, outbox, topics, inflight=100)
    >>> d.on_connected(session_present=True); d.pump()   # called by the Uplink loop
    >>> d.on_puback(PubAck(mid=1)); d.flush()

Use a connection of its own (``Outbox.open(path, ...)``) for the drainer, not
the engine's: the engine holds its connection inside its transactions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tessera.drivers.mqtt_client import MqttPort, PubAck
from tessera.mqtt.topics import Topics
from tessera.outbox import Outbox

log = logging.getLogger(__name__)

INFLIGHT_RANGE = (1, 1000)
# The generated broker config saves every 30 s (tessera.mqtt.broker.AUTOSAVE_INTERVAL_S);
# 10 s more covers a slow save on an SD card. Same default as mqtt.redeliver_window_s.
REDELIVER_WINDOW_S = 40.0


class Drainer:
    """Outbox → MQTT QoS1, in ``seq`` order, bounded in flight, acked from PUBACKs."""

    def __init__(self, port: MqttPort, outbox: Outbox, topics: Topics, *,
                 inflight: int = 100, redeliver_window_s: float = REDELIVER_WINDOW_S,
                 wall: Callable[[], float] = time.time) -> None:
        if not INFLIGHT_RANGE[0] <= inflight <= INFLIGHT_RANGE[1]:
            raise ValueError(f"inflight {inflight} must be within {INFLIGHT_RANGE}")
        if redeliver_window_s < 0:
            raise ValueError(f"redeliver_window_s {redeliver_window_s} must be >= 0")
        self.port, self.outbox, self.topics = port, outbox, topics
        self.inflight_cap = inflight
        self.redeliver_window_s = redeliver_window_s
        self._wall = wall  # the clock of delivered_at (Outbox.mark_delivered: time.time)
        self.reopened = 0  # rows re-opened by the durability window, for logs and tests
        self.connected = False
        self._inflight: dict[int, int] = {}  # mid -> seq
        self._after = 0  # highest seq handed to paho on this connection
        self._acked: list[int] = []
        self.sent = 0
        self.acked_total = 0
        self._event_topics: dict[str, str] = {}  # type -> topic, built once per event type

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def on_connected(self, session_present: bool = True) -> None:
        self.flush()
        if not session_present:
            # The broker has no session of ours: it lost its state (restart without
            # a save) or never had it. Whatever it acked last may be gone with it.
            self._reopen_before(self.outbox.newest_delivered_at())
        self.connected = True
        self._inflight.clear()
        self._after = 0  # resend everything still undelivered, from the DB

    def on_disconnected(self) -> None:
        """The connection dropped (never called for our own clean stop)."""
        self.flush()
        self._reopen_before(self._wall())
        self.connected = False
        self._inflight.clear()
        self._after = 0

    def _reopen_before(self, until: float | None) -> None:
        """Mark rows acked within the window before ``until`` undelivered again."""
        if until is None or self.redeliver_window_s <= 0:
            return
        n = self.outbox.reopen_delivered_since(until - self.redeliver_window_s)
        if n:
            self.reopened += n
            log.info("outbox: re-sending %d events acked within %.0f s before the drop "
                     "(the broker may not have saved them)", n, self.redeliver_window_s)

    def on_puback(self, ev: PubAck) -> None:
        seq = self._inflight.pop(ev.mid, None)
        if seq is None:
            return  # a presence/response publish, or a stale one from before a reconnect
        if ev.ok:
            self._acked.append(seq)
        else:
            # The broker refused it (ACL, quota): keep the row; it is retried
            # after the next reconnect rather than spinning on it now.
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

    def pump(self) -> int:
        """Hand paho as many undelivered rows as the window allows; return how many."""
        if not self.connected:
            return 0
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
