"""The engine's command server: requests at ``tessera/v1/{tenant}/{branch}/{device}/req/{name}``.

A device publishes a request in its own subtree, which the broker lets only that
device write: the topic's device *is* the sender. Payload ``{"id", "issued_at",
"args"}`` with MQTT 5 ResponseTopic ``.../engine/res/{sender}`` (the only place
answered, readable only by the sender), CorrelationData and MessageExpiry. The
response ``{"id", "status": "done"|"rejected"|"error", "code", "detail",
"result"}`` carries the same CorrelationData. Every request gets a response,
nothing raises out of ``handle``, and a request is acknowledged to the broker
(manual PUBACK, by the uplink once ``handle`` returns) only after its answer is
durably stored, so a request the engine took is never lost by a crash: the
broker re-sends it.

Checks, in order (codes in ``docs/mqtt.md``): sender from the topic, response
topic (``bad-response-topic``), rate (``rate-limited``), retained
(``retained``), size (``too-large``), JSON (``malformed``), envelope
(``invalid``), command name (``unknown-command``), role (``forbidden``), replay
by (sender, id): the stored answer; age (``expired``), arguments (``invalid``),
authorization from the config (``forbidden``, ``rate-limited``), then the engine
(``done`` or its domain code). The answer of a command the engine ran is written
inside the engine's own transaction, so "state changed" and "answer stored"
commit together: a re-send after a crash gets the stored answer, and a command
that did not commit simply runs.

    server = CommandServer(engine, port, topics, conn, clock=SystemClock(),
                           policy=CommandPolicy.from_config(cfg))
    uplink.add_handler(topics.request_filter, server.handle)
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

import msgspec

from tessera.clock import Clock
from tessera.drivers.mqtt_client import Message, MqttPort, PublishProps
from tessera.mqtt.command_auth import CommandPolicy, Refusal
from tessera.mqtt.command_schema import (
    ARGS,
    CommandRequest,
    CommandResponse,
    decode_args,
    decode_request,
    encode,
)
from tessera.mqtt.topics import TopicError, Topics, check_name

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS mqtt_replay (
    sender TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    received_at REAL NOT NULL,
    response TEXT NOT NULL,
    PRIMARY KEY (sender, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mqtt_replay_age ON mqtt_replay(received_at);
DROP TABLE IF EXISTS mqtt_commands;  -- keyed by id alone, with 'in-doubt' rows (issue 12)
"""
# Kept well past any re-send: clients re-send until the command expires (30 s) and a
# kiosk's confirm of a printed ticket until it lands.
REPLAY_KEEP_S = 3 * 86400
PRUNE_EVERY_S = 60.0

# name -> how to call the engine with the decoded args
CALLS: dict[str, Callable[[Any, Any], Any]] = {
    "issue-ticket": lambda e, a: e.issue(a.service, priority=a.priority, channel=a.channel)
    if a.channel else e.issue(a.service, priority=a.priority),
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
    "load-appointments": lambda e, a: e.load_booking_lines(
        a.file, [(x.line, x.code, x.service, x.slot) for x in a.lines], dry_run=a.dry_run),
    "undo-no-show": lambda e, a: e.undo_no_show(a.ticket, counter=a.counter),
    "report-refusal": lambda e, a: e.report_refusal(a.key, a.service, a.reason, a.at),
    "reprint": lambda e, a: e.reprint(a.ticket_id, last=a.last),
    "ticket-places": lambda e, a: e.ticket_places(a.ticket_ids),
    "rate-ticket": lambda e, a: e.rate_ticket(a.ticket_id, a.score, channel="web"),
}
# commands that name their sender in what they record (the device the broker vouches for)
SENDER_CALLS: dict[str, Callable[[Any, Any, str], Any]] = {
    "set-clock": lambda e, a, sender: e.set_clock(a.time, staff=a.staff, device=sender),
}
# set-clock fixes the engine's clock, so its issued_at is not held against that clock (the
# broker's MessageExpiry still bounds how late it arrives)
CLOCK_COMMANDS = frozenset({"set-clock"})
assert set(CALLS) | set(SENDER_CALLS) == set(ARGS)
# nothing to replay: running them again is harmless
READ_ONLY = frozenset({"snapshot", "ticket-places"})


def parse_issued_at(text: str) -> datetime:
    """RFC 3339 with a zone, as UTC; ValueError (never OverflowError) otherwise."""
    try:
        dt = datetime.fromisoformat(text)
        if dt.tzinfo is None:
            raise ValueError("needs a timezone (RFC 3339, e.g. 2026-03-02T08:00:00Z)")
        return dt.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before datetime.min in UTC
        raise ValueError(f"{text!r} is out of range") from None


class CommandServer:
    """Validates, authorizes, dedupes and runs engine commands; always answers."""

    def __init__(self, engine: Any, port: MqttPort, topics: Topics, conn: sqlite3.Connection, *,
                 clock: Clock, max_bytes: int = 4096, max_age_s: float = 30.0,
                 policy: CommandPolicy | None = None,
                 engine_lock: threading.Lock | None = None,
                 keep_s: float = REPLAY_KEEP_S) -> None:
        self.engine, self.port, self.topics, self.conn = engine, port, topics, conn
        self.clock, self.max_bytes, self.max_age_s = clock, max_bytes, max_age_s
        self.policy = policy
        self.engine_lock = engine_lock or threading.Lock()
        self.keep_s = keep_s
        self.pruned = 0
        conn.executescript(SCHEMA)

    # ------------------------------------------------------------------ entry point
    def handle(self, msg: Message) -> None:
        """Answer one request message (never raises). The uplink acknowledges it to the
        broker when this returns: after its answer is stored."""
        sender = _sender(msg.topic)
        if not sender:
            log.warning("ignoring a request on a malformed topic %r", msg.topic)
            return
        try:
            resp = self._answer(msg, sender)
        except Exception as e:  # a bug here must still produce an answer
            log.exception("command handling failed")
            resp = CommandResponse(None, "error", "internal", f"{type(e).__name__}")
        self._reply(self.topics.response(sender), msg.correlation_data, resp)

    def _reply(self, topic: str, correlation: bytes | None, resp: CommandResponse | bytes) -> None:
        body = resp if isinstance(resp, bytes) else encode(resp)
        try:
            self.port.publish(topic, body, qos=1, props=PublishProps(
                correlation_data=correlation, content_type="application/json"))
        except Exception:
            log.exception("cannot publish command response")

    # ------------------------------------------------------------------ pipeline
    def _answer(self, msg: Message, sender: str) -> CommandResponse | bytes:
        name = msg.topic.rsplit("/", 1)[-1]
        own = f"{self.topics.of(self.topics.engine)}/res/{sender}"
        if msg.response_topic != own:
            return self._rej(None, "bad-response-topic",
                             f"set the MQTT5 ResponseTopic to {own}: the engine answers "
                             "a device only there")
        policy = self.policy
        if policy is not None:
            refused = policy.admit(sender, self.clock.monotonic())
            if refused is not None:
                return self._refusal(None, refused)
        if msg.retain:
            return self._rej(None, "retained", "requests must not be retained (the broker "
                             "would replay them); publish with retain=0")
        if len(msg.payload) > self.max_bytes:
            return self._rej(None, "too-large", f"request is {len(msg.payload)} bytes; "
                             f"the limit is {self.max_bytes}")
        try:
            req = decode_request(msg.payload)
        except msgspec.ValidationError as e:
            return self._rej(None, "invalid", _with_path(str(e)))
        except msgspec.DecodeError as e:
            return self._rej(None, "malformed", f"not a JSON object: {e}")
        if name not in ARGS:
            return self._rej(req.id, "unknown-command", f"{name!r} is not a command; known: "
                             + ", ".join(sorted(ARGS)))
        if policy is not None:
            refused = policy.may_send(sender, name)
            if refused is not None:
                return self._refusal(req.id, refused)
        stored = self._lookup(sender, req.id)
        if stored is not None:
            return stored
        return self._run(sender, name, req)

    def _run(self, sender: str, name: str, req: CommandRequest) -> CommandResponse:
        cid = req.id
        try:
            age = (self.clock.now() - parse_issued_at(req.issued_at)).total_seconds()
        except ValueError as e:
            return self._rej(cid, "invalid", f"issued_at: {e} - at `$.issued_at`")
        if abs(age) > self.max_age_s and name not in CLOCK_COMMANDS:
            return self._rej(cid, "expired", f"issued {age:.1f} s ago; requests are valid for "
                             f"{self.max_age_s:g} s (check the sender's clock) - at "
                             "`$.issued_at`")
        try:
            args = decode_args(name, bytes(req.args))
        except msgspec.ValidationError as e:
            return self._rej(cid, "invalid", _with_path(str(e), "$.args"))
        except msgspec.DecodeError as e:
            return self._rej(cid, "malformed", f"args: {e} - at `$.args`")
        if self.policy is not None:
            refused = self.policy.permit(sender, name, args, self.clock.monotonic())
            if refused is not None:
                return self._refusal(cid, refused)
        return self._call(sender, cid, name, args)

    def _call(self, sender: str, cid: str, name: str, args: Any) -> CommandResponse:
        from tessera.engine.errors import DomainError

        stored: list[bool] = []

        def record(conn: sqlite3.Connection, result: Any) -> None:
            # a refusal the engine records (kiosk.refused) stores its answer with it
            self._store(conn, sender, cid, name,
                        CommandResponse(cid, "rejected", result.code, str(result))
                        if isinstance(result, DomainError) else _done(cid, result))
            stored.append(True)

        try:
            with self.engine_lock, self._recording(record):
                call = SENDER_CALLS.get(name)
                result = call(self.engine, args, sender) if call is not None \
                    else CALLS[name](self.engine, args)
        except DomainError as e:
            resp = CommandResponse(cid, "rejected", e.code, str(e))
            if not stored:
                self._store(self.conn, sender, cid, name, resp)  # nothing changed: own commit
            return resp
        except Exception as e:
            # rolled back: not stored, a re-send runs it again
            log.exception("engine command %s failed", name)
            return CommandResponse(cid, "error", "internal", f"{type(e).__name__}: {e}")
        resp = _done(cid, result)
        if not stored and name not in READ_ONLY:
            self._store(self.conn, sender, cid, name, resp)  # an engine without the hook
        return resp

    def _recording(self, record: Callable[[sqlite3.Connection, Any], None]
                   ) -> AbstractContextManager[None]:
        """The engine's ``recording`` hook (``EngineCore.recording``); a fake engine in a
        test may lack it, and then the answer is stored right after the command."""
        hook = getattr(self.engine, "recording", None)
        if hook is None:
            return nullcontext()
        cm: AbstractContextManager[None] = hook(record)
        return cm

    @staticmethod
    def _rej(cid: str | None, code: str, detail: str) -> CommandResponse:
        return CommandResponse(cid, "rejected", code, detail)

    @staticmethod
    def _refusal(cid: str | None, r: Refusal) -> CommandResponse:
        return CommandResponse(cid, "rejected", r.code, r.detail)

    # ------------------------------------------------------------------ replay store
    def _lookup(self, sender: str, cid: str) -> bytes | None:
        row = self.conn.execute("SELECT response FROM mqtt_replay WHERE sender = ? AND id = ?",
                                (sender, cid)).fetchone()
        return None if row is None else str(row[0]).encode()

    def _store(self, conn: sqlite3.Connection, sender: str, cid: str, name: str,
               resp: CommandResponse) -> None:
        conn.execute("INSERT OR REPLACE INTO mqtt_replay(sender, id, name, received_at, "
                     "response) VALUES (?, ?, ?, ?, ?)",
                     (sender, cid, name, time.time(), encode(resp).decode()))

    def prune(self) -> int:
        """Delete replay rows older than ``keep_s`` (the uplink calls it every minute)."""
        cur = self.conn.execute("DELETE FROM mqtt_replay WHERE received_at < ?",
                                (time.time() - self.keep_s,))
        self.pruned += cur.rowcount
        return int(cur.rowcount)


def _sender(topic: str) -> str:
    """The device whose subtree ``topic`` is in (``tessera/v1/t/b/{device}/req/...``), or
    "" when that level is not a device name: then there is nobody to answer."""
    parts = topic.split("/")
    if len(parts) < 7 or parts[5] != "req":
        return ""
    try:
        return check_name("device", parts[4])
    except TopicError:
        return ""


def _done(cid: str, result: Any) -> CommandResponse:
    out = msgspec.to_builtins(result)
    return CommandResponse(cid, "done", "ok", "", out if isinstance(out, dict) else
                           {"value": out})


def _with_path(detail: str, prefix: str = "$") -> str:
    """msgspec names the path (``- at `$.x```) except for a wrong top-level type."""
    if prefix != "$":
        detail = detail.replace("`$", f"`{prefix}")
    return detail if "- at `" in detail else f"{detail} - at `{prefix}`"

