"""The in-process bus: engine events to the roles of one process.

Envelopes are exactly the outbox bodies (the MQTT event contract), so a role
cannot tell whether it runs next to the engine or on another Pi. Delivery
happens on one worker thread: a slow subscriber (a board on 9600 baud, an
announcement being synthesised) never blocks the engine's commit path.

    bus = Bus()
    bus.subscribe(lambda env: print(env["type"]), type_prefix="ticket.")
    bus.publish({"type": "ticket.called", "seq": 7, "data": {}})
    bus.stop()   # drains what is queued, then joins the worker

The queue is bounded. When it is full, ``publish`` waits up to
``put_timeout_s`` and then drops the envelope and counts it in ``dropped``:
the durable copy is in the outbox, and subscribers that must not miss state
rebuild from ``Engine.snapshot()`` (see ``DisplayRole.rebuild``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Envelope = dict[str, Any]
Subscriber = Callable[[Envelope], None]

_STOP = object()


@dataclass(frozen=True)
class _Subscription:
    callback: Subscriber
    type_prefix: str | None


class Bus:
    """Fan envelopes out to subscribers on one worker thread, in publish order."""

    def __init__(self, *, maxsize: int = 10_000, put_timeout_s: float = 1.0,
                 name: str = "tessera-bus") -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=maxsize)
        self._subs: list[_Subscription] = []
        self._subs_lock = threading.Lock()
        self._put_timeout_s = put_timeout_s
        self._stopped = threading.Event()
        self.published = 0
        self.delivered = 0
        self.dropped = 0
        self.errors = 0
        self._worker = threading.Thread(target=self._run, name=name, daemon=True)
        self._worker.start()

    def subscribe(self, callback: Subscriber, type_prefix: str | None = None) -> Callable[[], None]:
        """Call ``callback(envelope)`` for every event whose type starts with ``type_prefix``.

        Returns a function that removes the subscription.
        """
        sub = _Subscription(callback, type_prefix)
        with self._subs_lock:
            self._subs = [*self._subs, sub]

        def unsubscribe() -> None:
            with self._subs_lock:
                self._subs = [s for s in self._subs if s is not sub]

        return unsubscribe

    def publish(self, envelope: Envelope) -> None:
        """Queue one envelope for delivery; never raises into the publisher."""
        if self._stopped.is_set():
            self.dropped += 1
            return
        try:
            self._queue.put(envelope, timeout=self._put_timeout_s)
            self.published += 1
        except queue.Full:
            self.dropped += 1
            log.warning("bus full: dropped %s seq=%s", envelope.get("type"), envelope.get("seq"))

    def drain(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything published so far has been delivered; False on timeout."""
        done = threading.Event()
        try:
            self._queue.put(done.set, timeout=timeout_s)
        except queue.Full:
            return False
        return done.wait(timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued, then stop the worker (idempotent)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            pass
        self._worker.join(timeout_s)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if callable(item):  # a drain() marker
                item()
                continue
            assert isinstance(item, dict)
            self._deliver(item)

    def _deliver(self, envelope: Envelope) -> None:
        etype = str(envelope.get("type", ""))
        for sub in self._subs:
            if sub.type_prefix is not None and not etype.startswith(sub.type_prefix):
                continue
            try:
                sub.callback(envelope)
            except Exception:  # one broken subscriber must not silence the others
                self.errors += 1
                log.exception("bus subscriber %r failed on %s", sub.callback, etype)
        self.delivered += 1
