"""Send engine commands over MQTT 5 request/response from a role's own process.

    client = CommandClient(link.port, link.uplink, link.topics, clock=SystemClock())
    client.request("call-next", {"counter": "c1"})
    # -> {'id': '0190…', 'status': 'done', 'code': 'ok', 'detail': '', 'result': {...}}

Requests go to this device's own ``.../{device}/req/{name}`` (only this device may
write there: that is how the engine knows who sent them); answers arrive on
``tessera/v1/{tenant}/{branch}/engine/res/{device}`` and are matched by
CorrelationData. A request is re-sent with the same id and payload (after 1, 2,
4, 8, 8… s) until an answer comes or the command expires (``expiry_s``, the
engine's ``mqtt.command_max_age_s``): the engine answers a re-send of a command
it already ran with the stored answer, so re-sending never runs anything twice,
and after the expiry the engine refuses the command, so a ``timeout`` answer
means it was not run. Call ``request`` from a role thread, never from the uplink
thread (it waits for the uplink to deliver the answer).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from tessera.clock import Clock
from tessera.drivers.mqtt_client import Message, MqttPort, PublishProps
from tessera.mqtt.topics import Topics
from tessera.outbox import rfc3339, uuid7

RESEND_FIRST_S = 1.0
RESEND_MAX_S = 8.0
# Answers that are not an outcome: the same request may succeed when re-sent.
RETRY_CODES = frozenset({"rate-limited"})


class CommandClient:
    """Request/response over MQTT 5 with correlation data, re-sends and a bounded wait."""

    def __init__(self, port: MqttPort, uplink: Any, topics: Topics, *, clock: Clock,
                 expiry_s: int = 30) -> None:
        self.port, self.uplink, self.topics, self.clock = port, uplink, topics, clock
        self.expiry_s = expiry_s
        self.reply_topic = topics.response(topics.device)
        self.sent = 0  # publishes, re-sends included
        self._waiting: dict[bytes, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        uplink.add_handler(self.reply_topic, self._on_reply)

    def _on_reply(self, msg: Message) -> None:
        with self._lock:
            slot = self._waiting.get(msg.correlation_data or b"")
        if slot is None:
            return  # late or repeated answer to a request already answered or given up
        try:
            slot[1].append(json.loads(msg.payload))
        except ValueError:
            slot[1].append({"status": "error", "code": "bad-response",
                            "detail": "the engine's answer is not JSON"})
        slot[0].set()

    def request(self, name: str, args: dict[str, Any], *, timeout: float | None = None,
                command_id: str | None = None, issued_at: str | None = None) -> dict[str, Any]:
        """Send ``name`` and wait for the answer, re-sending the same request meanwhile.

        Waits ``timeout`` s, by default until the command has expired at the engine
        (``expiry_s`` + 1 s); code ``timeout`` if no answer came.
        """
        if threading.current_thread() is getattr(self.uplink, "_thread", None):
            raise RuntimeError("CommandClient.request() called on the uplink thread; "
                               "call it from a role thread")
        cid = command_id or uuid7()
        corr = cid.encode()
        done = threading.Event()
        box: list[dict[str, Any]] = []
        wait_s = self.expiry_s + 1.0 if timeout is None else timeout
        with self._lock:
            self._waiting[corr] = (done, box)
        try:
            payload = json.dumps({"id": cid, "issued_at": issued_at or rfc3339(self.clock.now()),
                                  "args": args}).encode()
            props = PublishProps(response_topic=self.reply_topic, correlation_data=corr,
                                 message_expiry_s=self.expiry_s, content_type="application/json")
            topic = self.topics.request(name)
            now = time.monotonic()
            deadline, next_send, gap = now + wait_s, now, RESEND_FIRST_S
            while True:
                if now >= next_send:
                    self._publish(topic, payload, props)
                    next_send, gap = now + gap, min(gap * 2, RESEND_MAX_S)
                if done.wait(max(0.0, min(next_send, deadline) - now)) and box:
                    answer = box[-1]
                    if answer.get("code") not in RETRY_CODES or time.monotonic() >= deadline:
                        return answer
                    done.clear()  # e.g. rate-limited: the next re-send may get through
                now = time.monotonic()
                if now >= deadline:
                    break
            return {"id": cid, "status": "error", "code": "timeout",
                    "detail": f"no answer from the engine within {wait_s:g} s", "result": {}}
        finally:
            with self._lock:
                self._waiting.pop(corr, None)

    def _publish(self, topic: str, payload: bytes, props: PublishProps) -> None:
        self.sent += 1
        try:
            self.port.publish(topic, payload, qos=1, props=props)
        except Exception:  # not connected yet (paho raises on a full queue): re-sent later
            pass
