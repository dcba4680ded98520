"""The engine's command server at ``tessera/v1/{tenant}/{branch}/engine/cmd/{name}``.

Request payload ``{"id", "issued_at", "args"}`` with MQTT 5 ResponseTopic,
CorrelationData and MessageExpiry; the response
``{"id", "status": "done"|"rejected"|"error", "code", "detail", "result"}``
goes to the ResponseTopic with the same CorrelationData. Every request gets a
response, and nothing raises out of ``handle``.

Checks, in order (codes in ``docs/mqtt.md``): size (``too-large``), JSON
(``malformed``), envelope schema (``invalid``), replay (the stored original
response; a command whose outcome a crash left unknown answers ``in-doubt``
and is never run again), response topic (``bad-response-topic``), command name
(``unknown-command``), requester role (``forbidden``), age (``expired``),
arguments (``invalid``), then the engine (``done`` or its domain code).

    >>> server = CommandServer(engine, port, topics, conn, clock=SystemClock())
    >>> uplink.add_handler(topics.command_filter, server.handle)
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
from tessera.clock import Clock
from tessera.drivers.mqtt_client import Message, MqttPort, PublishProps
from tessera.mqtt.command_schema import (
    ARGS,
    CommandResponse,
    decode_args,
    decode_request,
    encode,
)
from tessera.mqtt.topics import TopicError, Topics, parse

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS mqtt_commands (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    received_at REAL NOT NULL,
    response TEXT            -- NULL while acting: a crash leaves the outcome in doubt
);
"""
DEDUPE_KEEP_S = 3 * 86400

# name -> how to call the engine with the decoded args
CALLS: dict[str, Callable[[Any, Any], Any]] = {
    "issue-ticket": lambda e, a: e.issue(a.service, priority=a.priority),
    "confirm-printed": lambda e, a: e.confirm_printed(a.ticket_id),
    "void-ticket": lambda e, a: e.void(a.ticket_id, a.reason),
    "check-in": lambda e, a: e.check_in(a.code),
    "call-next": lambda e, a: e.call_next(a.counter),
    "call-specific": lambda e, a: e.call_specific(a.counter, a.number),
    "recall": lambda e, a: e.recall(a.counter),
    "transfer": lambda e, a: e.transfer(a.counter, a.service),
    "no-show": lambda e, a: e.no_show(a.counter),
    "done": lambda e, a: e.done(a.counter),
    "pause": lambda e, a: e.pause(a.counter),
    "resume": lambda e, a: e.resume(a.counter),
    "open-counter": lambda e, a: e.open_counter(a.counter, staff=a.staff),
    "close-counter": lambda e, a: e.close_counter(a.counter),
    "rate": lambda e, a: e.rate(a.counter, a.score),
    "snapshot": lambda e, a: e.snapshot(),
}
assert set(CALLS) == set(ARGS)


def _parse_time(text: str) -> datetime:
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError("issued_at needs a timezone (RFC 3339, e.g. 2026-03-02T08:00:00Z)")
    return dt.astimezone(UTC)


class CommandServer:
    """Validates, dedupes and runs engine commands; always answers."""

    def __init__(self, engine: Any, port: MqttPort, topics: Topics, conn: sqlite3.Connection, *,
                 clock: Clock, max_bytes: int = 4096, max_age_s: float = 30.0,
                 permissions: Mapping[str, frozenset[str]] | None = None,
                 engine_lock: threading.Lock | None = None) -> None:
        self.engine, self.port, self.topics, self.conn = engine, port, topics, conn
        self.clock, self.max_bytes, self.max_age_s = clock, max_bytes, max_age_s
        self.permissions = permissions
        self.engine_lock = engine_lock or threading.Lock()
        self._handled = 0
        # built once: every request needs them
        self._unaddressed = topics.response("unaddressed")
        self._own_res = parse(topics.response("x"))
        conn.executescript(SCHEMA)

    # ------------------------------------------------------------------ entry point
    def handle(self, msg: Message) -> None:
        """Answer one request message (never raises)."""
        try:
            resp, reply_to = self._answer(msg)
        except Exception as e:  # a bug here must still produce an answer
            log.exception("command handling failed")
            resp = CommandResponse(None, "error", "internal", f"{type(e).__name__}")
            reply_to = msg.response_topic or self._unaddressed
        self._reply(reply_to, msg.correlation_data, resp)

    def _reply(self, topic: str, correlation: bytes | None, resp: CommandResponse | bytes) -> None:
        body = resp if isinstance(resp, bytes) else encode(resp)
        try:
            self.port.publish(topic, body, qos=1, props=PublishProps(
                correlation_data=correlation, content_type="application/json"))
        except Exception:
            log.exception("cannot publish command response")

    # ------------------------------------------------------------------ pipeline
    def _answer(self, msg: Message) -> tuple[CommandResponse | bytes, str]:
        unaddressed = self._unaddressed
        reply_to, requester = self._requester(msg.response_topic)
        if len(msg.payload) > self.max_bytes:
            return self._rej(None, "too-large", f"request is {len(msg.payload)} bytes; "
                             f"the limit is {self.max_bytes}"), reply_to or unaddressed
        try:
            req = decode_request(msg.payload)
        except msgspec.ValidationError as e:
            return self._rej(None, "invalid", str(e)), reply_to or unaddressed
        except msgspec.DecodeError as e:
            return self._rej(None, "malformed", f"not a JSON object: {e}"), reply_to or unaddressed
        name = msg.topic.rsplit("/", 1)[-1]
        stored = self._lookup(req.id)
        if stored is not None:
            return stored, reply_to or unaddressed
        if reply_to is None:
            return self._rej(req.id, "bad-response-topic",
                             f"set the MQTT5 ResponseTopic to {self.topics.of(self.topics.engine)}"
                             "/res/{your device}"
                             ), unaddressed
        if not self._claim(req.id, name):  # lost a race with a duplicate
            return self._lookup(req.id) or self._rej(req.id, "in-doubt", "duplicate"), reply_to
        resp = self._run(req.id, name, requester, req)
        self._store(req.id, resp)
        return resp, reply_to

    def _run(self, cid: str, name: str, requester: str, req: Any) -> CommandResponse:
        if name not in ARGS:
            return self._rej(cid, "unknown-command", f"{name!r} is not a command; known: "
                             + ", ".join(sorted(ARGS)))
        if self.permissions is not None and name not in self.permissions.get(requester, ()):
            return self._rej(cid, "forbidden", f"device {requester!r} may not send {name!r}")
        try:
            age = (self.clock.now() - _parse_time(req.issued_at)).total_seconds()
        except ValueError as e:
            return self._rej(cid, "invalid", f"issued_at: {e} - at `$.issued_at`")
        if abs(age) > self.max_age_s:
            return self._rej(cid, "expired", f"issued {age:.1f} s ago; requests are valid for "
                             f"{self.max_age_s:g} s (check the sender's clock)")
        try:
            args = decode_args(name, bytes(req.args))
        except msgspec.ValidationError as e:
            return self._rej(cid, "invalid", str(e).replace("`$", "`$.args"))
        except msgspec.DecodeError as e:
            return self._rej(cid, "malformed", f"args: {e}")
        return self._call(cid, name, args)

    def _call(self, cid: str, name: str, args: Any) -> CommandResponse:
        from tessera.engine.errors import DomainError

        try:
            with self.engine_lock:
                result = CALLS[name](self.engine, args)
        except DomainError as e:
            return CommandResponse(cid, "rejected", e.code, str(e))
        except Exception as e:
            log.exception("engine command %s failed", name)
            return CommandResponse(cid, "error", "internal", f"{type(e).__name__}: {e}")
        out = msgspec.to_builtins(result)
        return CommandResponse(cid, "done", "ok", "", out if isinstance(out, dict) else
                               {"value": out})

    @staticmethod
    def _rej(cid: str | None, code: str, detail: str) -> CommandResponse:
        return CommandResponse(cid, "rejected", code, detail)

    def _requester(self, response_topic: str | None) -> tuple[str | None, str]:
        """(reply topic, requester device) when the ResponseTopic is ``engine/res/{device}``."""
        if not response_topic:
            return None, ""
        try:
            parts = parse(response_topic)
        except TopicError:
            return None, ""
        own = self._own_res
        if (parts.tenant, parts.branch, parts.device, parts.kind) != (
                own.tenant, own.branch, own.device, "res"):
            return None, ""
        return response_topic, parts.rest

    # ------------------------------------------------------------------ dedupe store
    def _lookup(self, cid: str) -> bytes | None:
        row = self.conn.execute("SELECT response FROM mqtt_commands WHERE id = ?",
                                (cid,)).fetchone()
        if row is None:
            return None
        if row[0] is None:
            return encode(CommandResponse(cid, "error", "in-doubt",
                                          "the engine stopped while running this command; "
                                          "check the queue state before sending a new one"))
        return str(row[0]).encode()

    def _claim(self, cid: str, name: str) -> bool:
        self._handled += 1
        if self._handled % 1000 == 0:
            self.conn.execute("DELETE FROM mqtt_commands WHERE received_at < ?",
                              (time.time() - DEDUPE_KEEP_S,))
        cur = self.conn.execute("INSERT OR IGNORE INTO mqtt_commands(id, name, received_at) "
                                "VALUES (?, ?, ?)", (cid, name, time.time()))
        return cur.rowcount == 1

    def _store(self, cid: str, resp: CommandResponse) -> None:
        self.conn.execute("UPDATE mqtt_commands SET response = ? WHERE id = ?",
                          (encode(resp).decode(), cid))
