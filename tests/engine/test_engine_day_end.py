"""The day roll (issue 15): a ticket at a counter is never voided, waiting tickets follow
their service's ``at_day_end`` policy (void or carry), numbers stay unique, visits stay
right. Virtual clock across the Europe/London DST changes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from engine_support import make_config

from tessera.clock import VirtualClock
from tessera.engine import Engine
from tessera.engine.errors import NoCurrentTicket

Opener = Callable[..., Engine]
CARRY = 'at_day_end = "carry"'


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
            second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def _events(engine: Engine, type_: str) -> list[dict[str, object]]:
    return [e["data"] for e in engine.events_since(0) if e["type"] == type_]


def _visit(engine: Engine, ticket_id: str) -> list[tuple[object, ...]]:
    return engine.conn.execute("SELECT business_day, service, outcome, reason FROM visits "
                               "WHERE ticket_id = ? ORDER BY n", (ticket_id,)).fetchall()


def _waiting(engine: Engine, service: str) -> str:
    t = engine.issue(service)
    engine.confirm_printed(t.id)
    return t.id


def test_a_ticket_at_a_counter_survives_the_roll_and_ends_in_the_new_day(
        open_engine: Opener) -> None:
    # the night clocks go forward: 03:00 BST on 29 Mar 2026 is 02:00 UTC
    clock = VirtualClock(_utc(2026, 3, 29, 1, 40))
    engine = open_engine(make_config(), clock)
    called, served, left = (_waiting(engine, "cash") for _ in range(3))
    engine.open_counter("c1", "t-001")
    engine.open_counter("c2")
    assert engine.call_next("c1").id == called
    assert engine.call_next("c2").id == served
    engine.start("c2")
    clock.set(_utc(2026, 3, 29, 2, 0, 1))
    engine.tick()
    assert [d["business_day"] for d in _events(engine, "day.rolled")] == [
        "2026-03-28", "2026-03-29"]
    # the two at counters carry on; the one still waiting (cash voids) is voided
    assert engine.get_ticket(called).state == "called"
    assert engine.get_ticket(served).state == "serving"
    assert engine.get_ticket(left).state == "void"
    assert [d["ticket_id"] for d in _events(engine, "ticket.void")] == [left]
    carried = _events(engine, "ticket.carried")
    assert [(d["ticket_id"], d["state"], d["from_day"], d["business_day"]) for d in carried] == [
        (called, "called", "2026-03-28", "2026-03-29"),
        (served, "serving", "2026-03-28", "2026-03-29")]
    assert _visit(engine, left) == [("2026-03-28", "cash", "void", "day_end")]
    assert _visit(engine, called) == [] and _visit(engine, served) == []  # stays go on
    # they end normally, at their counters, and count in the day their stay ended
    engine.recall("c1")
    assert engine.done("c1").state == "done"
    assert engine.no_show("c2").state == "no_show"
    assert _visit(engine, called) == [("2026-03-29", "cash", "done", None)]
    assert _visit(engine, served) == [("2026-03-29", "cash", "no_show", None)]
    with pytest.raises(NoCurrentTicket):
        engine.done("c1")
    # the new day's numbering continues above the numbers still live at the roll
    assert engine.issue("cash").number == "A003"


def test_a_carry_service_keeps_its_queue_order_and_unique_numbers(open_engine: Opener) -> None:
    # clocks go back on 25 Oct 2026: 01:00-02:00 happens twice; the day rolls at 03:00 GMT
    clock = VirtualClock(_utc(2026, 10, 25, 0, 10))  # 01:10 BST
    engine = open_engine(make_config(cash_extra=CARRY), clock)
    ids = [_waiting(engine, "cash") for _ in range(3)]
    acc = _waiting(engine, "accounts")  # accounts voids (the default)
    clock.set(_utc(2026, 10, 25, 1, 10))  # 01:10 GMT, the second time: same day
    ids.append(_waiting(engine, "cash"))
    assert [engine.get_ticket(i).number for i in ids] == ["A001", "A002", "A003", "A004"]
    clock.set(_utc(2026, 10, 25, 3, 0, 0))
    new = engine.issue("cash")
    engine.confirm_printed(new.id)
    assert (new.business_day, new.number) == ("2026-10-25", "A005")
    assert engine.get_ticket(acc).state == "void"
    assert _visit(engine, acc) == [("2026-10-24", "accounts", "void", "day_end")]
    for i in ids:
        t = engine.get_ticket(i)
        assert (t.state, t.business_day) == ("waiting", "2026-10-25")
        assert _visit(engine, i) == []  # the stay did not end
    numbers = engine.conn.execute("SELECT business_day, origin, seq, number FROM tickets "
                                  "WHERE state = 'waiting' ORDER BY qorder").fetchall()
    assert [n[3] for n in numbers] == ["A001", "A002", "A003", "A004", "A005"]
    # NEXT takes the carried ones first (they waited longest), by number on request too
    engine.open_counter("c2")
    assert engine.call_next("c2").id == ids[0]
    engine.done("c2")
    assert engine.call_specific("c2", "A003").id == ids[2]
    engine.done("c2")
    assert _visit(engine, ids[0]) == [("2026-10-25", "cash", "done", None)]
    assert engine.snapshot()["services"]["cash"]["waiting"] == 3


def test_carried_numbers_stay_unique_across_a_prefix_change(tmp_path: Path) -> None:
    db = tmp_path / "engine.db"
    clock = VirtualClock(_utc(2026, 3, 2, 2, 0))
    e1 = Engine.open(make_config(cash_extra=CARRY), clock, db, trust=lambda: True)
    kept = [_waiting(e1, "cash") for _ in range(2)]
    e1.close()
    # the prefix change waits for the next business day; the carried keep theirs
    cfg = make_config(cash_extra=CARRY, prefix_a="X")
    e2 = Engine.open(cfg, clock, db, trust=lambda: True)
    assert e2.notices and "refused until the next business day" in e2.notices[0]
    assert e2.issue("cash").number == "A003"
    clock.set(_utc(2026, 3, 2, 3, 0))
    t = e2.issue("cash")
    assert (t.business_day, t.number) == ("2026-03-02", "X004")
    assert e2.notices == []
    assert [e2.get_ticket(i).number for i in kept] == ["A001", "A002"]
    e2.open_counter("c2")
    assert e2.call_specific("c2", "A002").id == kept[1]
    e2.close()


def test_a_restart_across_the_roll_carries_once(tmp_path: Path) -> None:
    db = tmp_path / "engine.db"
    clock = VirtualClock(_utc(2026, 3, 2, 2, 59))
    cfg = make_config(cash_extra=CARRY)
    e1 = Engine.open(cfg, clock, db, trust=lambda: True)
    a = _waiting(e1, "cash")
    e1.close()
    for minute in (1, 2):
        clock.set(_utc(2026, 3, 2, 3, minute))
        e = Engine.open(cfg, clock, db, trust=lambda: True)
        e.tick()
        assert len(_events(e, "ticket.carried")) == 1
        e.close()
    e = Engine.open(cfg, clock, db, trust=lambda: True)
    assert e.get_ticket(a).state == "waiting"
    e.close()
