"""The engine seam: a role gets the same models and the same exceptions from the engine in
its own process and from ``RemoteEngine`` over the command protocol (issue 13)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from tessera.engine import Engine
from tessera.engine.errors import ALL_ERRORS, DomainError, QueueEmpty
from tessera.engine.models import CounterState, Rating, Ticket
from tessera.mqtt.command_schema import decode_args
from tessera.mqtt.commands import CALLS
from tessera.roles.remote import EngineUnreachable, RemoteEngine, RemoteRefused, refusal_class


class Loopback:
    """A ``Requester`` that runs each command on a real engine and answers as the command
    server does (``done`` with the result as JSON, or ``rejected`` with the domain code)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def request(self, name: str, args: dict[str, Any], *, timeout: float | None = None,
                command_id: str | None = None) -> dict[str, Any]:
        try:
            result = CALLS[name](self.engine, decode_args(name, json.dumps(args).encode()))
        except DomainError as e:
            return {"id": command_id, "status": "rejected", "code": e.code, "detail": str(e),
                    "result": {}}
        body = json.loads(json.dumps(msgspec.to_builtins(result)))  # through JSON, as on MQTT
        return {"id": command_id, "status": "done", "code": "ok", "detail": "", "result": body}


def test_remote_answers_are_the_engines_own_models(engine: Engine) -> None:
    remote = RemoteEngine(Loopback(engine))
    opened = remote.open_counter("c1", staff="t-001")
    assert isinstance(opened, CounterState) and (opened.state, opened.staff) == ("open", "t-001")
    issued = remote.issue("cash")
    assert isinstance(issued, Ticket) and issued.state == "issued"
    confirmed = remote.confirm_printed(issued.id)
    assert confirmed == engine.get_ticket(issued.id)  # field for field, types included
    called = remote.call_next("c1")
    assert isinstance(called, Ticket) and called.number == issued.number
    done = remote.done("c1")
    assert done == engine.get_ticket(issued.id)
    rating = remote.rate("c1", 5)
    assert isinstance(rating, Rating) and rating.ticket_id == issued.id


def test_a_refusal_raises_the_engines_own_error_class(engine: Engine) -> None:
    remote = RemoteEngine(Loopback(engine))
    remote.open_counter("c1")
    with pytest.raises(QueueEmpty) as local:
        engine.call_next("c1")
    with pytest.raises(QueueEmpty) as far:
        remote.call_next("c1")
    assert far.value.code == local.value.code == "queue-empty"
    assert isinstance(far.value, RemoteRefused)  # and still tells where it came from
    for leaf in ALL_ERRORS:  # every domain code maps back to its class
        assert issubclass(refusal_class(leaf.code), leaf)


def test_codes_outside_the_domain_and_bad_answers() -> None:
    class Says:
        def __init__(self, answer: dict[str, Any]) -> None:
            self.answer = answer

        def request(self, name: str, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
            return self.answer

    forbidden = RemoteEngine(Says({"status": "rejected", "code": "forbidden",
                                   "detail": "device 'counter-pi-2' may not act on 'c1'"}))
    with pytest.raises(RemoteRefused) as err:
        forbidden.call_next("c1")
    assert err.value.code == "forbidden" and type(err.value) is RemoteRefused
    garbled = RemoteEngine(Says({"status": "done", "code": "ok", "result": {"number": 7}}))
    with pytest.raises(EngineUnreachable) as bad:
        garbled.call_next("c1")
    assert bad.value.code == "bad-response" and "Ticket" in str(bad.value)


def test_undo_and_pending_pause_travel_the_seam(engine: Engine) -> None:
    """Issue 15: ``undo_no_show``, ``call_specific`` and a pending pause over the protocol
    give the engine's own answers; ``undo-expired`` and ``ticket-open`` their classes."""
    from tessera.engine.errors import TicketOpen, UndoExpired

    remote = RemoteEngine(Loopback(engine))
    remote.open_counter("c1", staff="t-001")
    a, b = (engine.issue("cash") for _ in range(2))
    for t in (a, b):
        engine.confirm_printed(t.id)
    remote.call_next("c1")
    remote.no_show("c1")
    back = remote.undo_no_show(a.number, counter="c1")
    assert back == engine.get_ticket(a.id) and back.state == "waiting"
    remote.call_next("c1")
    pending = remote.pause("c1")
    assert isinstance(pending, CounterState) and pending.pause_pending is True
    assert pending.state == "open"
    remote.no_show("c1")                       # A001 again: the pending pause takes effect
    assert engine.snapshot()["counters"]["c1"]["state"] == "paused"
    assert remote.resume("c1").pause_pending is False
    called = remote.call_specific("c1", a.number)  # the customer is back after all
    assert called == engine.get_ticket(a.id) and called.state == "called"
    assert issubclass(refusal_class("undo-expired"), UndoExpired)
    assert issubclass(refusal_class("ticket-open"), TicketOpen)
    with pytest.raises(ValueError, match="counter"):
        remote.undo_no_show(a.number)
