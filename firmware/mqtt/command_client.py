"""Send engine commands over MQTT 5 request/response from a role's own process.

    >>> client = CommandClient(link.port, link.uplink, link.topics, clock=SystemClock())
    >>> client.request("call-next", {"counter": "c1"})
    {'id': '0190…', 'status': 'done', 'code': 'ok', 'detail': '', 'result': {...}}

Responses arrive on ``tessera/v1/{tenant}/{branch}/engine/res/{device}`` and are
matched by CorrelationData. Call ``request`` from a role thread, never from
the uplink thread (it waits for the uplink to deliver the answer).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from tessera.clock import Clock
from tessera.drivers.mqtt_client import Message, MqttPort, PublishProps
from tessera.mqtt.topics import Topics
from tessera.outbox import rfc3339, uuid7


class CommandClient:
    """Request/response over MQTT 5 with correlation data and a bounded wait."""

    def __init__(self, port: MqttPort, uplink: Any, topics: Topics, *, clock: Clock,
                 expiry_s: int = 30) -> None:
        self.port, self.uplink, self.topics, self.clock = port, uplink, topics, clock
        self.expiry_s = expiry_s
        self.reply_topic = topics.response(topics.device)
        self._waiting: dict[bytes, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        uplink.add_handler(self.reply_topic, self._on_reply)

    def _on_reply(self, msg: Message) -> None:
        with self._lock:
            slot = self._waiting.get(msg.correlation_data or b"")
        if slot is None:
            return  # late answer to a request that already timed out
        try:
            slot[1].append(json.loads(msg.payload))
        except ValueError:
            slot[1].append({"status": "error", "code": "bad-response",
                            "detail": "the engine's answer is not JSON"})
        slot[0].set()

    def request(self, name: str, args: dict[str, Any], *, timeout: float = 5.0,
                command_id: str | None = None, issued_at: str | None = None) -> dict[str, Any]:
        """Send ``name`` and wait for the answer (``code`` ``timeout`` if none comes)."""
        if threading.current_thread() is getattr(self.uplink, "_thread", None):
            raise RuntimeError("CommandClient.request() called on the uplink thread; "
                               "call it from a role thread")
        cid = command_id or uuid7()
        corr = cid.encode()
        done = threading.Event()
        box: list[dict[str, Any]] = []
        with self._lock:
            self._waiting[corr] = (done, box)
        try:
            payload = json.dumps({"id": cid, "issued_at": issued_at or rfc3339(self.clock.now()),
                                  "args": args}).encode()
            self.port.publish(self.topics.command(name), payload, qos=1, props=PublishProps(
                response_topic=self.reply_topic, correlation_data=corr,
                message_expiry_s=self.expiry_s, content_type="application/json"))
            if done.wait(timeout) and box:
                return box[0]
            return {"id": cid, "status": "error", "code": "timeout",
                    "detail": f"no answer from the engine within {timeout:g} s", "result": {}}
        finally:
            with self._lock:
                self._waiting.pop(corr, None)
