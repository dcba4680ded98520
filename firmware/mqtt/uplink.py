"""The owning thread of one device's MQTT link.

It is the only consumer of the port's event queue and dispatches each event:
PUBACKs to the drainer, connects to presence (birth, meta, state, resubscribe)
and the drainer (resend from the DB), messages to handlers registered by topic
filter (the command server, a command client, role subscriptions). Handlers
run on this thread, never on paho's; a message is acknowledged to the broker
after its handlers return (with manual acks, the engine's client: so a request
is PUBACKed only once its answer is stored).

    up = Uplink(port, drainer=drainer, presence=presence)
    up.add_handler(topics.request_filter, server.handle)
    up.start()          # thread; up.notify() after appending to the outbox
    up.stop()           # offline status, clean disconnect
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tessera.drivers.mqtt_client import (
    Connected,
    ConnectFailed,
    Disconnected,
    Message,
    MqttEvent,
    MqttPort,
    PubAck,
    Wake,
)
from tessera.mqtt.drainer import Drainer
from tessera.mqtt.presence import Presence
from tessera.mqtt.retention import Retention
from tessera.mqtt.topics import matches

log = logging.getLogger(__name__)

Handler = Callable[[Message], None]
MAX_BATCH = 2000


@dataclass
class _Periodic:
    interval_s: float
    job: Callable[[], object]
    due: float = 0.0  # monotonic


class Uplink:
    """Event loop of one device's MQTT link (see module docstring)."""

    def __init__(self, port: MqttPort, *, drainer: Drainer | None = None,
                 presence: Presence | None = None, retention: Retention | None = None,
                 retention_every_s: float = 60.0, poll_s: float = 0.05) -> None:
        self.port, self.drainer, self.presence = port, drainer, presence
        self.retention, self.retention_every_s = retention, retention_every_s
        self.poll_s = poll_s
        self.handlers: list[tuple[str, Handler]] = []
        self.ack_listeners: list[Callable[[PubAck], None]] = []
        self.last_connect_error = ""
        self.connects = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_retention = 0.0
        self.periodic: list[_Periodic] = []
        if presence is not None:
            presence.bind(port)

    def add_handler(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        """Call ``handler(msg)`` on this thread for every message matching the filter."""
        self.handlers.append((topic_filter, handler))
        if self.presence is not None:
            self.presence.subscribe(topic_filter, qos)
        else:
            self.port.subscribe(topic_filter, qos)

    def notify(self) -> None:
        """Wake the loop now (e.g. right after appending to the outbox)."""
        self.port.events.put(Wake("outbox"))

    # ------------------------------------------------------------------ loop
    def step(self, timeout: float) -> int:
        """Handle every queued event (waiting up to ``timeout`` for the first); return count."""
        n = 0
        try:
            ev: MqttEvent | None = self.port.events.get(timeout=timeout)
        except queue.Empty:
            ev = None
        while ev is not None:
            self._dispatch(ev)
            n += 1
            if n >= MAX_BATCH:  # stop *before* taking another one: a taken event is handled
                break
            try:
                ev = self.port.events.get_nowait()
            except queue.Empty:
                ev = None
        if self.drainer is not None:
            self.drainer.flush()
            self.drainer.pump()
        self._maybe_retention()
        self._run_periodic()
        return n

    def every(self, interval_s: float, job: Callable[[], object]) -> None:
        """Run ``job()`` on this thread every ``interval_s`` (first at the next step)."""
        self.periodic.append(_Periodic(interval_s, job))

    def _run_periodic(self) -> None:
        now = time.monotonic()
        for p in self.periodic:
            if now < p.due:
                continue
            p.due = now + p.interval_s
            try:
                p.job()
            except Exception:
                log.exception("mqtt: periodic job failed")

    def _dispatch(self, ev: MqttEvent) -> None:
        try:
            if isinstance(ev, PubAck):
                if self.drainer is not None:
                    self.drainer.on_puback(ev)
                for listener in self.ack_listeners:
                    listener(ev)
            elif isinstance(ev, Message):
                try:
                    for topic_filter, handler in self.handlers:
                        if matches(topic_filter, ev.topic):
                            handler(ev)
                finally:
                    # PUBACK (with manual acks: the engine's client) only once every
                    # handler is done: the command server has stored its answer by now
                    self.port.ack(ev)
            elif isinstance(ev, Connected):
                self.connects += 1
                if self.presence is not None:
                    self.presence.on_connected()
                if self.drainer is not None:
                    self.drainer.on_connected(ev.session_present)
            elif isinstance(ev, Disconnected):
                if self.presence is not None:
                    self.presence.on_disconnected()
                if self.drainer is not None:
                    self.drainer.on_disconnected()
            elif isinstance(ev, ConnectFailed):
                self.last_connect_error = ev.reason
                log.warning("mqtt connect failed: %s", ev.reason)
            elif isinstance(ev, Wake):
                pass
        except Exception:
            # A handler bug must not stop the device's link.
            log.exception("mqtt: handling %s failed", type(ev).__name__)

    def _maybe_retention(self) -> None:
        if self.retention is None:
            return
        now = time.monotonic()
        if now < self._next_retention:
            return
        self._next_retention = now + self.retention_every_s
        try:
            self.retention.run()
        except Exception:
            log.exception("mqtt: outbox retention failed")

    def run(self) -> None:
        while not self._stop.is_set():
            self.step(self.poll_s)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.port.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="mqtt-uplink", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Publish ``offline``, wait (bounded) for its PUBACK, disconnect."""
        self._stop.set()
        self.port.events.put(Wake("stop"))
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.drainer is not None:  # the last high-water mark, before "offline"
            self.drainer.flush()
            self.drainer.publish_mark(force=True)
        mid = self.presence.offline() if self.presence is not None else None
        deadline = time.monotonic() + timeout
        while mid is not None and time.monotonic() < deadline:
            try:
                ev = self.port.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if isinstance(ev, PubAck) and ev.mid == mid:
                break
            if isinstance(ev, PubAck) and self.drainer is not None:
                self.drainer.on_puback(ev)
        if self.drainer is not None:
            self.drainer.flush()
        self.port.stop(timeout)
