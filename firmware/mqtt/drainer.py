"""Send a device's outbox to MQTT in ``seq`` order, at most ``inflight`` unacknowledged.

The outbox table is the only queue: the drainer hands paho at most
``inflight`` messages (paho's own window is set larger, so paho never queues
them in RAM), marks rows delivered when their PUBACK arrives, and after every
(re)connect starts again from the oldest undelivered row *in the database*,
so nothing depends on what paho kept in memory. Rows appended while a backlog
drains are picked up by the same cursor: live events keep flowing behind the
backlog, in order, without stopping the writers.

    >>> d = Drainer(port, outbox, topics, inflight=100)
    >>> d.on_connected(); d.pump()          # called by the Uplink loop
    >>> d.on_puback(PubAck(mid=1)); d.flush()

Use a connection of its own (``Outbox.open(path, ...)``) for the drainer, not
the engine's: the engine holds its connection inside its transactions.
"""

from __future__ import annotations

import logging

from tessera.drivers.mqtt_client import MqttPort, PubAck
from tessera.mqtt.topics import Topics
from tessera.outbox import Outbox

log = logging.getLogger(__name__)

INFLIGHT_RANGE = (1, 1000)


class Drainer:
    """Outbox → MQTT QoS1, in ``seq`` order, bounded in flight, acked from PUBACKs."""

    def __init__(self, port: MqttPort, outbox: Outbox, topics: Topics, *,
                 inflight: int = 100) -> None:
        if not INFLIGHT_RANGE[0] <= inflight <= INFLIGHT_RANGE[1]:
            raise ValueError(f"inflight {inflight} must be within {INFLIGHT_RANGE}")
        self.port, self.outbox, self.topics = port, outbox, topics
        self.inflight_cap = inflight
        self.connected = False
        self._inflight: dict[int, int] = {}  # mid -> seq
        self._after = 0  # highest seq handed to paho on this connection
        self._acked: list[int] = []
        self.sent = 0
        self.acked_total = 0

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def on_connected(self) -> None:
        self.flush()
        self.connected = True
        self._inflight.clear()
        self._after = 0  # resend everything still undelivered, from the DB

    def on_disconnected(self) -> None:
        self.flush()
        self.connected = False
        self._inflight.clear()
        self._after = 0

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
        rows = self._pending(room)
        for seq, type_, body in rows:
            mid = self.port.publish(self.topics.event(type_), body, qos=1, retain=False)
            self._inflight[mid] = seq
            self._after = seq
        self.sent += len(rows)
        return len(rows)

    def _pending(self, limit: int) -> list[tuple[int, str, bytes]]:
        with self.outbox._lock:
            rows = self.outbox.conn.execute(
                "SELECT seq, type, body FROM outbox WHERE delivered_at IS NULL AND seq > ? "
                "ORDER BY seq LIMIT ?", (self._after, limit)).fetchall()
        return [(int(s), str(t), str(b).encode()) for s, t, b in rows]
