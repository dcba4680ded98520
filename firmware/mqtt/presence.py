"""Presence and retained state of one device.

``status`` (retained, QoS1): the LWT says ``offline``; on every connect the
device publishes birth ``online`` with its session number (persisted, +1 per
process start, so a consumer can tell a restart from a reconnect), ``meta``,
every ``state/{part}`` it knows (persisted, so a restart or a broker that lost
its retained store gets them back) and re-subscribes. On a clean shutdown it
publishes ``offline`` itself.

The birth carries an MQTT 5 message expiry (``status_expiry_s``, 90 s) and is
published again every third of it while connected (``tick()``, from the uplink
loop). A broker that restarts from a save without the device (power cut, crash)
restores the retained ``online`` but never fires the LWT of a connection it
forgot; the expiry drops that ``online`` at most ``status_expiry_s`` after the
device's last refresh. ``offline`` (LWT or clean stop) never expires.

    p = Presence(topics, conn, meta={"role": ["kiosk"]}, clock=SystemClock())
    port = PahoClient(settings_with(will=p.will))
    p.bind(port); p.set_state("printer", {"paper": "ok"})
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from tessera._version import __version__
from tessera.clock import Clock
from tessera.drivers.mqtt_client import MqttPort, PublishProps, Will
from tessera.mqtt.topics import Topics
from tessera.outbox import rfc3339

SCHEMA = """
CREATE TABLE IF NOT EXISTS mqtt_session (device TEXT PRIMARY KEY, session INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mqtt_state (part TEXT PRIMARY KEY, body TEXT NOT NULL);
"""
SCHEMA_VERSION = 1
STATUS_EXPIRY_S = 90  # retained "online" lives this long unless refreshed


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


class Presence:
    """Birth/LWT, ``meta`` and retained ``state/*`` of one device."""

    def __init__(self, topics: Topics, conn: sqlite3.Connection, *, clock: Clock,
                 meta: dict[str, Any] | None = None, status_expiry_s: int = STATUS_EXPIRY_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if status_expiry_s < 3:
            raise ValueError(f"status_expiry_s {status_expiry_s} must be >= 3")
        self.topics, self.conn, self.clock = topics, conn, clock
        self.status_expiry_s = status_expiry_s
        self.refresh_every_s = status_expiry_s / 3
        self._mono = monotonic  # the broker's expiry runs in real time, not the sim clock
        self._next_refresh = 0.0
        self._lock = threading.Lock()
        self.port: MqttPort | None = None
        self.connected = False
        self.subscriptions: list[tuple[str, int]] = []
        self.sync_mid: int | None = None  # meta's mid on the last connect (see on_connected)
        with self._lock:
            conn.executescript(SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO mqtt_session(device, session) VALUES (?, 1) "
                         "ON CONFLICT(device) DO UPDATE SET session = session + 1",
                         (topics.device,))
            (self.session,) = conn.execute("SELECT session FROM mqtt_session WHERE device = ?",
                                           (topics.device,)).fetchone()
            conn.execute("COMMIT")
            self._state = {p: b.encode() for p, b in conn.execute(
                "SELECT part, body FROM mqtt_state").fetchall()}
        self.meta = {"firmware": __version__, "schema": SCHEMA_VERSION,
                     "device": topics.device, **(meta or {})}

    @property
    def will(self) -> Will:
        return Will(self.topics.status, _dumps(self._status("offline", reason="lost")),
                    qos=1, retain=True)

    def _status(self, state: str, **extra: Any) -> dict[str, Any]:
        return {"state": state, "session": self.session, "device": self.topics.device, **extra}

    def bind(self, port: MqttPort) -> None:
        self.port = port

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Subscribe now (if connected) and again after every reconnect."""
        self.subscriptions.append((topic_filter, qos))
        if self.port is not None and self.connected:
            self.port.subscribe(topic_filter, qos)

    def on_connected(self) -> None:
        """Birth, meta, every state part, then re-subscribe (clean or resumed session)."""
        assert self.port is not None, "bind(port) first"
        self.connected = True
        p = self.port
        self._birth()
        for topic_filter, qos in self.subscriptions:
            p.subscribe(topic_filter, qos)
        # Published after the SUBSCRIBEs: the broker handles one connection's packets
        # in order, so when meta's PUBACK is back, every retained message those
        # subscriptions bring (the drainer's high-water mark) has arrived before it.
        self.sync_mid = p.publish(self.topics.meta, _dumps(self.meta), qos=1, retain=True)
        with self._lock:
            state = list(self._state.items())
        for part, body in state:
            p.publish(self.topics.state(part), body, qos=1, retain=True)

    def _birth(self) -> None:
        assert self.port is not None
        self._next_refresh = self._mono() + self.refresh_every_s
        self.port.publish(self.topics.status,
                          _dumps(self._status("online", ts=rfc3339(self.clock.now()))),
                          qos=1, retain=True,
                          props=PublishProps(message_expiry_s=self.status_expiry_s))

    def tick(self) -> None:
        """Refresh the expiring birth when due (call often while running)."""
        if self.port is not None and self.connected and self._mono() >= self._next_refresh:
            self._birth()

    def on_disconnected(self) -> None:
        self.connected = False

    def set_state(self, part: str, data: dict[str, Any]) -> None:
        """Remember ``state/{part}`` (durably) and publish it retained when connected."""
        if part == "hwm":  # the drainer's mark: never stored here nor re-published on connect
            raise ValueError("state part 'hwm' is the outbox high-water mark's topic")
        topic = self.topics.state(part)  # validates the name before storing
        body = _dumps(data)
        with self._lock:
            if self._state.get(part) == body:
                return
            self._state[part] = body
            self.conn.execute("INSERT INTO mqtt_state(part, body) VALUES (?, ?) "
                              "ON CONFLICT(part) DO UPDATE SET body = excluded.body",
                              (part, body.decode()))
        if self.port is not None and self.connected:
            self.port.publish(topic, body, qos=1, retain=True)

    def offline(self) -> int | None:
        """Publish the clean-shutdown ``offline``; return its mid (None when not connected)."""
        if self.port is None or not self.connected:
            return None
        return self.port.publish(
            self.topics.status,
            _dumps(self._status("offline", reason="shutdown", ts=rfc3339(self.clock.now()))),
            qos=1, retain=True)
