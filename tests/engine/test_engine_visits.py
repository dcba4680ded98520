"""The engine keeps each stay of a ticket in a service's queue (``visits``): how reports
get waits and service times per service, for a ticket transferred twice or routed on."""

from __future__ import annotations

from datetime import timedelta

from engine_support import START

from tessera.clock import VirtualClock
from tessera.engine import Engine


def _visits(engine: Engine, ticket_id: str) -> list[tuple[object, ...]]:
    return engine.conn.execute(
        "SELECT n, service, queued_at, called_at, serving_at, ended_at, counter, staff, "
        "recalls, outcome, reason FROM visits WHERE ticket_id = ? ORDER BY n",
        (ticket_id,)).fetchall()


def test_each_stay_is_one_visit_with_its_own_times(engine: Engine, clock: VirtualClock) -> None:
    t0 = START.timestamp()
    a = engine.issue("cash")
    engine.confirm_printed(a.id)
    engine.open_counter("c1", "t-001")
    engine.open_counter("c3", "t-003")
    clock.advance(100)
    engine.call_next("c1")                     # waited 100 s in cash
    engine.recall("c1")
    clock.advance(20)
    engine.transfer("c1", "accounts")          # stay 1 ends: transferred to accounts
    clock.advance(50)
    engine.call_next("c3")                     # waited 50 s in accounts
    clock.advance(10)
    engine.start("c3")
    clock.advance(30)
    engine.transfer("c3", "loans")             # stay 2 ends
    clock.advance(5)
    engine.call_next("c3")
    clock.advance(60)
    engine.done("c3")                          # stay 3: served (done without START)
    assert _visits(engine, a.id) == [
        (1, "cash", t0, t0 + 100, None, t0 + 120, "c1", "t-001", 1, "transferred",
         "accounts"),
        (2, "accounts", t0 + 120, t0 + 170, t0 + 180, t0 + 210, "c3", "t-003", 0,
         "transferred", "loans"),
        (3, "loans", t0 + 210, t0 + 215, t0 + 275, t0 + 275, "c3", "t-003", 0, "done", None),
    ]
    (staff,) = engine.conn.execute("SELECT staff FROM tickets WHERE id = ?", (a.id,)).fetchone()
    assert staff == "t-003"


def test_no_show_and_the_day_end_are_visits_unconfirmed_tickets_are_not(
        engine: Engine, clock: VirtualClock) -> None:
    a, b, c = (engine.issue("cash") for _ in range(3))
    engine.confirm_printed(a.id)
    engine.confirm_printed(b.id)               # c is never confirmed as printed
    engine.open_counter("c2", "t-002")
    engine.call_next("c2")
    clock.advance(30)
    engine.no_show("c2")
    clock.set(START + timedelta(days=1))
    engine.tick()                              # the day rolls: b is left unserved
    assert [v[9:] for v in _visits(engine, a.id)] == [("no_show", None)]
    assert [v[9:] for v in _visits(engine, b.id)] == [("void", "day_end")]
    assert _visits(engine, c.id) == []
