"""Undo of a no-show and pause while a ticket is called, in the engine (issue 15).

The panel and MQTT paths are tested in tests/branch/test_counter_panel.py and
tests/mqtt/test_mqtt_commands.py; here: the store (visits, bookings, counters),
the events, and every refusal leaving state untouched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from engine_support import START, make_config

from tessera.clock import VirtualClock
from tessera.engine import Engine
from tessera.engine import errors as E
from tessera.engine.report import day_report

Opener = Callable[..., Engine]


def _events(engine: Engine, since: int = 0) -> list[tuple[str, dict[str, Any]]]:
    return [(e["type"], e["data"]) for e in engine.events_since(since)]


def _last_seq(engine: Engine) -> int:
    got = engine.events_since(0, limit=100_000)
    return int(got[-1]["seq"]) if got else 0


def _no_shows(engine: Engine) -> dict[str, int]:
    report = day_report(engine.events_since(0, 100_000), engine.cfg, engine.business_day())
    return dict(report["no_shows"])


def _waiting(engine: Engine, service: str = "cash") -> str:
    t = engine.issue(service)
    engine.confirm_printed(t.id)
    return t.id


def _state(engine: Engine) -> tuple[Any, ...]:
    """Everything an undo or a refused pause may touch."""
    c = engine.conn
    return (c.execute("SELECT id, state, service, qorder, counter FROM tickets ORDER BY id"
                      ).fetchall(),
            c.execute("SELECT * FROM visits ORDER BY ticket_id, n").fetchall(),
            c.execute("SELECT * FROM counters ORDER BY id").fetchall(),
            c.execute("SELECT code, state FROM bookings ORDER BY code").fetchall(),
            _last_seq(engine))


def test_undo_puts_the_ticket_at_the_head_of_its_queue_and_keeps_the_visit(
        engine: Engine, clock: VirtualClock) -> None:
    t0 = START.timestamp()
    a, b = _waiting(engine), _waiting(engine)
    _waiting(engine)
    engine.open_counter("c2", "t-002")
    clock.advance(60)
    assert engine.call_next("c2").id == a
    clock.advance(30)
    engine.no_show("c2")
    clock.advance(100)
    seq = _last_seq(engine)
    back = engine.undo_no_show("A001", counter="c2")
    assert (back.id, back.state, back.counter) == (a, "waiting", None)
    assert _events(engine, seq) == [("ticket.no_show_undone", {
        "ticket_id": a, "number": "A001", "service": "cash", "counter": "c2",
        "counter_number": 2, "no_show_counter": "c2", "appointment": None, "then": "front"})]
    # the no-show stays as history, marked undone; reports no longer count it
    visits = engine.conn.execute("SELECT n, outcome, reason, ended_at FROM visits WHERE "
                                 "ticket_id = ?", (a,)).fetchall()
    assert visits == [(1, "no_show_undone", "c2", t0 + 90)]
    # head of the queue: before B and C, though it was issued first anyway; the next
    # call takes it and its second stay starts where the first ended
    clock.advance(10)
    assert engine.call_next("c2").id == a
    engine.done("c2")
    assert engine.conn.execute("SELECT n, queued_at, outcome FROM visits WHERE ticket_id = ? "
                               "ORDER BY n", (a,)).fetchall() == [
        (1, t0, "no_show_undone"), (2, t0 + 90, "done")]
    assert [engine.call_next("c2").id] == [b]
    assert _no_shows(engine) == {"walk_in": 0, "appointment": 0}


def test_undo_goes_ahead_of_everyone_already_waiting(engine: Engine,
                                                     clock: VirtualClock) -> None:
    a = _waiting(engine)
    engine.open_counter("c2", "t-002")
    engine.call_next("c2")
    engine.no_show("c2")
    later = [_waiting(engine) for _ in range(3)]
    engine.undo_no_show(a)                      # by id, from no counter (a supervisor)
    assert engine.call_next("c2").id == a
    engine.done("c2")
    assert engine.call_next("c2").id == later[0]


def test_call_specific_of_a_no_show_inside_the_tolerance_calls_it_back(
        engine: Engine, clock: VirtualClock) -> None:
    a = _waiting(engine)
    _waiting(engine)
    engine.open_counter("c2", "t-002")
    engine.open_counter("c1", "t-001")
    engine.call_next("c2")
    engine.no_show("c2")
    clock.advance(60)
    seq = _last_seq(engine)
    t = engine.call_specific("c1", "A001")     # the customer turns up at counter 1
    assert (t.id, t.state, t.counter) == (a, "called", "c1")
    types = [ty for ty, _ in _events(engine, seq)]
    assert types == ["ticket.no_show_undone", "ticket.called"]
    assert _events(engine, seq)[0][1]["then"] == "called"


def test_undo_refusals_change_nothing(open_engine: Opener, clock: VirtualClock) -> None:
    engine = open_engine(make_config(engine_extra="no_show_undo_s = 120"), clock)
    a = _waiting(engine)
    _waiting(engine)
    engine.open_counter("c2", "t-002")
    engine.call_next("c2")                     # A001 called, A002 waiting
    before = _state(engine)
    with pytest.raises(E.UnknownTicket):
        engine.undo_no_show("A999", counter="c2")
    with pytest.raises(E.UnknownTicket):
        engine.undo_no_show("t-nope")
    with pytest.raises(E.BadState, match="A001 is called"):
        engine.undo_no_show("A001", counter="c2")
    with pytest.raises(E.BadState, match="A002 is waiting"):
        engine.undo_no_show("A002")
    with pytest.raises(E.UnknownCounter):
        engine.undo_no_show("A001", counter="c9")
    assert _state(engine) == before
    engine.no_show("c2")
    clock.advance(121)                          # past engine.no_show_undo_s
    before = _state(engine)
    with pytest.raises(E.UndoExpired, match="120 s"):
        engine.undo_no_show(a, counter="c2")
    with pytest.raises(E.UndoExpired):
        engine.call_specific("c2", "A001")
    assert _state(engine) == before
    assert E.UndoExpired.code == "undo-expired"


def test_undo_of_an_appointment_no_show_restores_the_booking(
        open_engine: Opener, clock: VirtualClock) -> None:
    engine = open_engine(make_config(), clock)
    from tessera.engine.appointments import Booking

    engine._run(lambda now: engine._insert_bookings([Booking("K1", "cash", START)]))
    t = engine.check_in("K1")
    engine.confirm_printed(t.id)
    engine.open_counter("c2", "t-002")
    engine.call_next("c2")
    engine.no_show("c2")
    engine.undo_no_show(t.number, counter="c2")
    assert engine.conn.execute("SELECT state FROM bookings WHERE code = 'K1'"
                               ).fetchone() == ("checked_in",)
    assert _no_shows(engine) == {"walk_in": 0, "appointment": 0}


@pytest.mark.parametrize("end", ["done", "no_show", "transfer"])
def test_pause_after_done_pauses_when_the_ticket_ends(engine: Engine, clock: VirtualClock,
                                                      end: str) -> None:
    _waiting(engine)
    _waiting(engine)
    engine.open_counter("c1", "t-001")
    called = engine.call_next("c1")
    seq = _last_seq(engine)
    st = engine.pause("c1")
    assert (st.state, st.current, st.pause_pending) == ("open", called.id, True)
    assert engine.pause("c1").pause_pending   # twice: still one pending pause
    assert _events(engine, seq) == [("counter.pause_pending", {
        "counter": "c1", "counter_number": 1, "staff": "t-001", "ticket_id": called.id,
        "number": "A001"})]
    assert engine.snapshot()["counters"]["c1"]["pause_pending"] is True
    with pytest.raises(E.CounterBusy):         # no new call in between
        engine.call_next("c1")
    seq = _last_seq(engine)
    {"done": lambda: engine.done("c1"), "no_show": lambda: engine.no_show("c1"),
     "transfer": lambda: engine.transfer("c1", "accounts")}[end]()
    got = _events(engine, seq)
    assert got[-1] == ("counter.paused", {"counter": "c1", "counter_number": 1,
                                          "staff": "t-001", "after": "A001"})
    assert engine.snapshot()["counters"]["c1"] | {"current": None} == {
        "number": 1, "state": "paused", "staff": "t-001", "current": None,
        "pause_pending": False}
    with pytest.raises(E.CounterPaused):
        engine.call_next("c1")
    engine.resume("c1")
    assert engine.call_next("c1").number == "A002"


def test_resume_cancels_a_pending_pause(engine: Engine) -> None:
    _waiting(engine)
    engine.open_counter("c1", "t-001")
    engine.call_next("c1")
    engine.pause("c1")
    seq = _last_seq(engine)
    assert engine.resume("c1").pause_pending is False
    assert [t for t, _ in _events(engine, seq)] == ["counter.pause_cancelled"]
    seq = _last_seq(engine)
    engine.done("c1")
    assert [t for t, _ in _events(engine, seq)] == ["ticket.serving", "ticket.done"]
    assert engine.snapshot()["counters"]["c1"]["state"] == "open"


def test_pending_pause_survives_a_restart(open_engine: Opener, clock: VirtualClock) -> None:
    engine = open_engine(make_config(), clock)
    _waiting(engine)
    engine.open_counter("c1", "t-001")
    engine.call_next("c1")
    engine.pause("c1")
    engine.close()
    engine = open_engine(make_config(), clock)
    engine.done("c1")
    assert engine.snapshot()["counters"]["c1"]["state"] == "paused"


def test_pause_refused_while_called(open_engine: Opener, clock: VirtualClock) -> None:
    engine = open_engine(make_config(engine_extra='pause_while_called = "refuse"'), clock)
    _waiting(engine)
    engine.open_counter("c1", "t-001")
    engine.call_next("c1")
    before = _state(engine)
    with pytest.raises(E.TicketOpen, match="A001") as err:
        engine.pause("c1")
    assert err.value.code == "ticket-open"
    assert _state(engine) == before
    engine.done("c1")
    assert engine.pause("c1").state == "paused"   # idle: pauses at once


def test_alert_carries_what_a_manager_acts_on(engine: Engine, clock: VirtualClock) -> None:
    a = _waiting(engine)
    engine.open_counter("c1", "t-001")
    engine.call_next("c1")
    engine.done("c1")
    seq = _last_seq(engine)
    engine.rate("c1", 1)
    alert = [d for t, d in _events(engine, seq) if t == "feedback.alert"]
    assert alert == [{"ticket_id": a, "counter": "c1", "staff": "t-001", "service": "cash",
                      "score": 1, "number": "A001", "counter_number": 1, "scale": 5,
                      "at": "2026-03-02T09:00:00.000Z", "priority": "high"}]


@pytest.mark.parametrize(("extra", "path"), [
    ("no_show_undo_s = -1", "engine.no_show_undo_s"),
    ("no_show_undo_s = 7200", "engine.no_show_undo_s"),
    ('no_show_undo_s = "5m"', "engine.no_show_undo_s"),
    ('pause_while_called = "later"', "engine.pause_while_called"),
])
def test_new_engine_keys_are_validated_with_their_path(extra: str, path: str) -> None:
    from tessera.errors import ConfigError

    with pytest.raises(ConfigError, match=path.replace(".", r"\.")):
        make_config(engine_extra=extra)


def test_a_pending_pause_waits_for_its_ticket_across_the_days_end(
        engine: Engine, clock: VirtualClock) -> None:
    """The day's end never voids the ticket at a counter (it stays and ends normally): the
    pause it waited for falls when that ticket ends, not on the next day's first customer.
    (A pending pause whose ticket is gone anyway is dropped at the counter's next call.)"""
    from datetime import timedelta

    _waiting(engine)
    engine.open_counter("c1", "t-001")
    engine.call_next("c1")
    engine.pause("c1")
    clock.advance(timedelta(days=1).total_seconds())
    engine.tick()                               # the day rolls; the called ticket stays
    assert engine.snapshot()["counters"]["c1"]["state"] == "open"
    _waiting(engine)
    engine.done("c1")
    assert engine.snapshot()["counters"]["c1"]["state"] == "paused"
