"""Push to the browsers: Server-Sent Events with a ring of recent messages.

SSE rather than WebSockets: the pages only receive, and the browser's
``EventSource`` reconnects by itself and sends the last id it saw
(``Last-Event-ID``), so resuming after a network drop is the hub's ring, not
client code. Ids are ``<boot>-<n>``: a client of an earlier run of the web role
(a restart empties the ring) or older than the ring gets the full current state
instead, which holds the recent calls, so no call is missed either way.

Runs on the web server's event loop; ``publish`` and ``subscribe`` are called
there only (``tessera.web.role`` hands events over with ``call_soon_threadsafe``).

    hub = Hub(ring=512)
    msg = hub.publish("display", "state", '{"calls": []}')
    hub.since("display", f"{hub.boot}-0")[0].id == msg.id
    # -> True
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

QUEUE_MAX = 64  # messages one slow client may lag behind before it is dropped
MAX_TOPICS = 20_000  # kept topics (one per ticket page ever opened), then pruned


@dataclass(frozen=True)
class Message:
    id: str
    event: str
    data: str  # JSON text

    def frame(self) -> bytes:
        return f"id: {self.id}\nevent: {self.event}\ndata: {self.data}\n\n".encode()


@dataclass(eq=False)
class Subscriber:
    topic: str
    queue: asyncio.Queue[Message | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_MAX))


class Hub:
    """Topics (``display``, ``manage``, ``ticket:<id>``) with subscribers and a ring."""

    def __init__(self, ring: int = 512) -> None:
        self.boot = secrets.token_hex(4)
        self._n = 0
        self._ring: dict[str, deque[Message]] = {}
        self._size = ring
        self._subs: dict[str, set[Subscriber]] = {}
        self.latest: dict[str, Message] = {}
        self.closed = False

    def topics(self) -> list[str]:
        return [t for t, s in self._subs.items() if s]

    def connections(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def publish(self, topic: str, event: str, data: str, *, keep: bool = True) -> Message:
        self._n += 1
        msg = Message(f"{self.boot}-{self._n}", event, data)
        if keep:
            self._ring.setdefault(topic, deque(maxlen=self._size)).append(msg)
            self.latest[topic] = msg
        for sub in list(self._subs.get(topic, ())):
            try:
                sub.queue.put_nowait(msg)
            except asyncio.QueueFull:  # a client that stopped reading: it reconnects
                self._drop(sub)
        return msg

    def since(self, topic: str, last_id: str | None) -> list[Message] | None:
        """Kept messages after ``last_id``; None when the ring cannot tell (another
        boot, malformed, or older than the ring): then send the latest state."""
        if not last_id:
            return None
        boot, _, n = last_id.partition("-")
        if boot != self.boot or not n.isdigit():
            return None
        ring = self._ring.get(topic, deque())
        num = int(n)
        if ring and int(ring[0].id.split("-")[1]) > num + 1:
            return None  # the ring has forgotten some of what this client missed
        return [m for m in ring if int(m.id.split("-")[1]) > num]

    def subscribe(self, topic: str) -> Subscriber:
        sub = Subscriber(topic)
        self._subs.setdefault(topic, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.get(sub.topic, set()).discard(sub)
        if not self._subs.get(sub.topic):
            self._subs.pop(sub.topic, None)
        if len(self.latest) > MAX_TOPICS:  # bounded: forget pages nobody has open
            for topic in [t for t in self.latest if t not in self._subs][:MAX_TOPICS // 2]:
                self.latest.pop(topic, None)
                self._ring.pop(topic, None)

    def _drop(self, sub: Subscriber) -> None:
        self.unsubscribe(sub)
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)

    def drop_all(self) -> None:
        """End every stream (stop, or a simulated network drop): clients reconnect."""
        for subs in list(self._subs.values()):
            for sub in list(subs):
                self._drop(sub)


class EventStream:
    """An ASGI response for one SSE stream: the body of :func:`stream`, sent as it comes.

    Leaner than Starlette's StreamingResponse, which under uvicorn's ASGI 2.3 runs every
    stream in an anyio task group with a second task listening for the disconnect
    (about a third of the memory an open stream costs): here one ``receive()`` future
    waits for the disconnect and, when it comes, drops the subscriber, which ends the
    body at once.
    """

    media_type = "text/event-stream"

    def __init__(self, hub: Hub, sub: Subscriber, first: list[Message], *,
                 heartbeat_s: float, tick: Callable[[], str]) -> None:
        self.hub, self.sub, self.first = hub, sub, first
        self.heartbeat_s, self.tick = heartbeat_s, tick

    async def __call__(self, scope: object, receive: Callable[[], Awaitable[object]],
                       send: Callable[[dict[str, object]], Awaitable[None]]) -> None:
        waiter = asyncio.ensure_future(_disconnect(receive))
        waiter.add_done_callback(lambda _: self.hub._drop(self.sub))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"x-accel-buffering", b"no")]})
            async for chunk in stream(self.hub, self.sub, self.first,
                                      heartbeat_s=self.heartbeat_s, tick=self.tick):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away mid-send
            pass
        finally:
            waiter.cancel()
            self.hub.unsubscribe(self.sub)


async def _disconnect(receive: Callable[[], Awaitable[object]]) -> None:
    """Until the client goes away (the request's own body comes first)."""
    while True:
        msg = await receive()
        if isinstance(msg, dict) and msg.get("type") == "http.disconnect":
            return


async def stream(hub: Hub, sub: Subscriber, first: list[Message], *, heartbeat_s: float,
                 tick: Callable[[], str], retry_ms: int = 1000) -> AsyncIterator[bytes]:
    """An SSE body: ``first`` (resume or current state), then live messages, with a
    ``tick`` event (server health) whenever nothing else was sent for ``heartbeat_s``."""
    try:
        yield f"retry: {retry_ms}\n\n".encode()
        for m in first:
            yield m.frame()
        while True:
            try:
                msg = await asyncio.wait_for(sub.queue.get(), heartbeat_s)
            except TimeoutError:
                yield f"event: tick\ndata: {tick()}\n\n".encode()
                continue
            if msg is None:
                return
            yield msg.frame()
    finally:
        hub.unsubscribe(sub)
