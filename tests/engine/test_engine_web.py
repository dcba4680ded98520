"""The engine's web commands: a ticket's live place (``ticket_places``) and its one
rating from its mobile page (``rate_ticket``), refusals leaving the store untouched."""

from __future__ import annotations

import json

import pytest

from tessera.clock import VirtualClock
from tessera.engine import Engine
from tessera.engine import errors as E


def _waiting(engine: Engine, service: str = "cash", priority: str | None = None) -> str:
    return engine.confirm_printed(engine.issue(service, priority=priority).id).id


def _tables(engine: Engine) -> tuple[object, ...]:
    c = engine.conn
    return (c.execute("SELECT * FROM ratings").fetchall(),
            c.execute("SELECT COUNT(*) FROM outbox").fetchone(),
            c.execute("SELECT id, state FROM tickets ORDER BY id").fetchall())


def test_places_follow_priority_and_queue_order(engine: Engine) -> None:
    a, b = _waiting(engine), _waiting(engine)
    vip = _waiting(engine, priority="priority")  # ahead of the normal ones
    other = _waiting(engine, "loans")
    places = engine.ticket_places([a, b, vip, other, "0190a0b2-0000-7000-8000-000000000000"])
    assert {t: p.ahead for t, p in places.items()} == {a: 1, b: 2, vip: 0, other: 0}
    assert all(p.est_wait_s is not None and p.est_wait_s >= 0 for p in places.values())
    engine.open_counter("c2")
    called = engine.call_next("c2")
    assert called.id == vip
    p = engine.ticket_place(vip)
    assert (p.ticket.state, p.ahead, p.est_wait_s, p.counter_number) == ("called", 0, None, 2)
    assert engine.ticket_place(a).ahead == 0 and engine.ticket_place(b).ahead == 1
    with pytest.raises(E.UnknownTicket):
        engine.ticket_place("nope")


def test_rate_ticket_once_after_done(engine: Engine, clock: VirtualClock) -> None:
    t = _waiting(engine)
    engine.open_counter("c1", staff="t-001")
    before = _tables(engine)
    with pytest.raises(E.BadState):  # waiting: not done yet
        engine.rate_ticket(t, 5)
    engine.call_next("c1")
    with pytest.raises(E.BadState):  # called
        engine.rate_ticket(t, 5)
    with pytest.raises(E.UnknownTicket):
        engine.rate_ticket("nope", 3)
    assert _tables(engine)[0] == before[0]
    engine.done("c1")
    for bad in (0, 6, True, 2.5, "5"):  # c1 rates on engine.rating_scale: 5
        with pytest.raises(E.BadScore):
            engine.rate_ticket(t, bad)  # type: ignore[arg-type]
    clock.advance(3600)  # long after the counter's window: a phone rating still binds
    r = engine.rate_ticket(t, 1)
    assert (r.ticket_id, r.counter, r.staff, r.service, r.score, r.status) == (
        t, "c1", "t-001", "cash", 1, "bound")
    assert engine.ticket_place(t).rated
    events = [json.loads(b) for (b,) in engine.conn.execute(
        "SELECT body FROM outbox WHERE type LIKE 'feedback.%' ORDER BY seq")]
    assert [(e["type"], e["data"].get("channel")) for e in events] == [
        ("feedback.rated", "web"), ("feedback.alert", "web")]
    # the complaint is the one the manager's lamp and sign take, on the counter's scale
    assert {k: events[1]["data"][k] for k in ("number", "counter_number", "scale", "priority")} \
        == {"number": "A001", "counter_number": 1, "scale": 5, "priority": "high"}
    after = _tables(engine)
    with pytest.raises(E.AlreadyRated) as err:
        engine.rate_ticket(t, 5)
    assert err.value.code == "already-rated"
    assert _tables(engine) == after


def test_a_counter_rating_first_makes_the_phone_one_already_rated(engine: Engine) -> None:
    t = _waiting(engine)
    engine.open_counter("c1", staff="t-001")
    engine.call_next("c1")
    engine.done("c1")
    assert engine.rate("c1", 4).status == "bound"
    with pytest.raises(E.AlreadyRated):
        engine.rate_ticket(t, 2)
