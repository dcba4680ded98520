"""Domain rules: calling policy, transfers, routes, appointments, feedback, closing, errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from engine_support import START, make_config

from tessera.clock import VirtualClock
from tessera.config import BranchConfig
from tessera.engine import DomainError, Engine
from tessera.engine import errors as E
from tessera.errors import ConfigError

Opener = Callable[..., Engine]


def waiting(engine: Engine, service: str, priority: str | None = None, **kw: Any) -> str:
    t = engine.issue(service, priority=priority, **kw)
    engine.confirm_printed(t.id)
    return t.id


def types(engine: Engine) -> list[str]:
    return [e["type"] for e in engine.events_since(0)]


def test_two_phase_issue_never_reuses_a_number(engine: Engine, clock: VirtualClock) -> None:
    a = engine.issue("cash")
    engine.void(a.id, "paper out")
    b = engine.issue("cash")
    c = engine.issue("cash")
    assert [a.number, b.number, c.number] == ["A001", "A002", "A003"]
    clock.advance(61)
    engine.confirm_printed(b.id)
    voided = [e["data"] for e in engine.tick() if e["type"] == "ticket.void"]
    assert [v["ticket_id"] for v in voided] == [c.id]
    assert "not confirmed" in voided[0]["reason"]
    with pytest.raises(E.BadState, match="A003 is void"):
        engine.confirm_printed(c.id)
    assert engine.issue("cash").number == "A004"


def test_priority_classes_then_weighted_longest_wait(engine: Engine, clock: VirtualClock) -> None:
    engine.open_counter("c1")  # cash weight 2, accounts weight 1
    n1 = waiting(engine, "accounts")
    clock.advance(100)
    n2 = waiting(engine, "cash")
    clock.advance(30)
    vip = waiting(engine, "cash", "vip")
    emer = waiting(engine, "accounts", "emergency")
    order = []
    for _ in range(4):
        order.append(engine.call_next("c1").id)
        engine.done("c1")
    # emergency > vip; then cash waited 30 s x2 = 60 < accounts 130 s x1
    assert order == [emer, vip, n1, n2]


def test_anti_starvation_after_consecutive_priority_calls(open_engine: Opener,
                                                         clock: VirtualClock) -> None:
    engine = open_engine(make_config(starvation_wait_s=300), clock)
    engine.open_counter("c2")
    normal = waiting(engine, "cash")
    prios = [waiting(engine, "cash", "priority") for _ in range(4)]
    clock.advance(301)
    called = []
    for _ in range(4):
        called.append(engine.call_next("c2").id)
        engine.done("c2")
    # starvation_after = 2: two priority calls, then the normal ticket that waited > 300 s
    assert called == [prios[0], prios[1], normal, prios[2]]


def test_call_specific_and_counter_errors(engine: Engine, clock: VirtualClock) -> None:
    a = waiting(engine, "cash")
    b = waiting(engine, "cash")
    with pytest.raises(E.CounterClosed):
        engine.call_next("c1")
    engine.open_counter("c1")
    engine.pause("c1")
    with pytest.raises(E.CounterPaused):
        engine.call_next("c1")
    engine.resume("c1")
    t = engine.call_specific("c1", "a002")
    assert t.id == b and t.state == "called"
    with pytest.raises(E.CounterBusy, match="A002"):
        engine.call_next("c1")
    with pytest.raises(E.CounterBusy):
        engine.close_counter("c1")
    engine.no_show("c1")
    # a no-show is called back by number only within engine.no_show_undo_s (issue 15)
    clock.advance(engine.cfg.engine.no_show_undo_s + 1)
    with pytest.raises(E.UndoExpired, match="A002 was a no-show"):
        engine.call_specific("c1", "A002")
    with pytest.raises(E.UnknownTicket):
        engine.call_specific("c1", "A999")
    assert engine.call_next("c1").id == a
    engine.done("c1")
    with pytest.raises(E.QueueEmpty, match="No one is waiting"):
        engine.call_next("c1")
    with pytest.raises(E.NoCurrentTicket):
        engine.recall("c1")


@pytest.mark.parametrize("position", ["front", "back"])
def test_transfer_front_or_back(open_engine: Opener, clock: VirtualClock, position: str) -> None:
    engine = open_engine(make_config(position=position), clock)
    engine.open_counter("c3")  # loans, accounts
    engine.open_counter("c2")  # cash
    x = waiting(engine, "cash")
    clock.advance(5)
    y = waiting(engine, "loans")
    waiting(engine, "loans")
    engine.call_next("c2")
    moved = engine.transfer("c2", "loans")
    assert (moved.id, moved.number, moved.service, moved.state) == (x, "A001", "loans", "waiting")
    first = engine.call_next("c3").id
    assert first == (x if position == "front" else y)
    ev = [e["data"] for e in engine.events_since(0) if e["type"] == "ticket.transferred"]
    assert ev[0]["position"] == position and ev[0]["from_service"] == "cash"


def test_route_moves_ticket_to_next_service_keeping_number(engine: Engine) -> None:
    engine.open_counter("c2")
    engine.open_counter("c3")
    tid = waiting(engine, "cash", route=("loans",))
    engine.call_next("c2")
    t = engine.done("c2")
    assert (t.id, t.number, t.service, t.state) == (tid, "A001", "loans", "waiting")
    done = [e["data"] for e in engine.events_since(0) if e["type"] == "ticket.done"]
    assert done[0]["next_service"] == "loans"
    assert engine.call_next("c3").id == tid
    assert engine.done("c3").state == "done"


def test_recall_counts_and_reannounces(engine: Engine) -> None:
    engine.open_counter("c1")
    waiting(engine, "cash")
    engine.call_next("c1")
    assert engine.recall("c1").recalls == 1
    assert engine.recall("c1").recalls == 2
    ev = [e["data"] for e in engine.events_since(0) if e["type"] == "ticket.recalled"]
    assert [d["recalls"] for d in ev] == [1, 2] and ev[0]["counter_number"] == 1
    snap = engine.snapshot()
    assert snap["counters"]["c1"]["current"]["recalls"] == 2
    assert snap["recent_calls"][0]["recalls"] == 2


def test_feedback_bound_duplicate_unbound_alert(engine: Engine, clock: VirtualClock) -> None:
    assert engine.rate("c1", 3).status == "unbound"
    engine.open_counter("c1", staff="t-009")
    tid = waiting(engine, "cash")
    engine.call_next("c1")
    engine.done("c1")
    r = engine.rate("c1", 1)
    assert (r.status, r.ticket_id, r.staff, r.service) == ("bound", tid, "t-009", "cash")
    assert engine.rate("c1", 5).status == "duplicate"
    clock.advance(121)
    assert engine.rate("c1", 1).status == "unbound"
    alerts = [e["data"] for e in engine.events_since(0) if e["type"] == "feedback.alert"]
    keys = ("ticket_id", "counter", "staff", "service", "score", "scale")  # and more
    assert [{k: a[k] for k in keys} for a in alerts] == [
        {"ticket_id": tid, "counter": "c1", "staff": "t-009", "service": "cash", "score": 1,
         "scale": 5}]  # scale: the counter's (issue 15)
    with pytest.raises(E.BadScore):
        engine.rate("c1", 6)
    with pytest.raises(E.UnknownCounter):
        engine.rate("c9", 3)


def test_a_rating_is_credited_to_who_served_not_who_is_logged_in(engine: Engine) -> None:
    engine.open_counter("c1", staff="t-009")
    tid = waiting(engine, "cash")
    engine.call_next("c1")
    engine.done("c1")
    engine.open_counter("c1", staff="t-010")  # shift change inside the rating window
    r = engine.rate("c1", 2)
    assert (r.status, r.ticket_id, r.staff) == ("bound", tid, "t-009")
    [rated] = [e["data"] for e in engine.events_since(0) if e["type"] == "feedback.rated"]
    assert rated["staff"] == "t-009"
    waiting(engine, "cash")
    engine.call_next("c1")
    engine.done("c1")
    assert engine.rate("c1", 4).staff == "t-010"


def _hours_cfg(**kw: Any) -> BranchConfig:
    return make_config(cash_extra='hours = { default = ["09:00-12:00", "13:00-17:00"] }', **kw)


def test_closed_service_and_past_closing(open_engine: Opener) -> None:
    clock = VirtualClock(datetime(2026, 3, 2, 12, 30, tzinfo=UTC))  # lunch break
    engine = open_engine(_hours_cfg(), clock)
    with pytest.raises(E.ServiceClosed, match="opens again Mon 13:00"):
        engine.issue("cash")
    clock.set(datetime(2026, 3, 2, 16, 50, tzinfo=UTC))
    engine.open_counter("c2")
    engine.issue("cash")  # 0 ahead, idle counter: no wait
    for _ in range(3):
        waiting(engine, "cash")
    with pytest.raises(E.PastClosing, match="closes at 17:00"):
        engine.issue("cash")


def test_appointments_check_in_windows_and_slot_calling(open_engine: Opener,
                                                        tmp_path: Path) -> None:
    clock = VirtualClock(START)  # 09:00
    engine = open_engine(make_config(), clock)
    csv = tmp_path / "bookings.csv"
    csv.write_text("code,service,slot\nK1,cash,2026-03-02T09:10\nK2,cash,2026-03-02T11:00\n"
                   "K3,cash,2026-03-02T09:05\n")
    assert engine.load_appointments(csv) == 3
    with pytest.raises(E.BookingWindow, match="Too early"):
        engine.check_in("K2")
    with pytest.raises(E.UnknownBooking):
        engine.check_in("NOPE")
    engine.open_counter("c2")
    k1 = engine.check_in("K1")
    assert k1.appointment == "K1" and k1.number == "A001"
    engine.confirm_printed(k1.id)
    with pytest.raises(E.BadState, match="already checked in"):
        engine.check_in("K1")
    walk = waiting(engine, "cash")
    # before the slot: the walk-in goes first; the counter then idles -> appointment early
    assert engine.call_next("c2").id == walk
    engine.done("c2")
    assert engine.call_next("c2").id == k1.id
    engine.no_show("c2")
    # at the slot, an appointment goes before walk-ins that came earlier
    k3 = engine.check_in("K3")
    engine.confirm_printed(k3.id)
    walk2 = waiting(engine, "cash")
    clock.advance(6 * 60)
    assert engine.call_next("c2").id == k3.id
    engine.done("c2")
    assert engine.call_next("c2").id == walk2
    engine.no_show("c2")
    clock.advance(3 * 3600)
    with pytest.raises(E.BookingWindow, match="Too late"):
        engine.check_in("K2")
    assert engine.snapshot()["no_shows"] == {"walk_in": 1, "appointment": 1}


def test_malformed_appointment_file_names_line_and_field(engine: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "b.csv"
    bad.write_text("code,service,slot\nK1,cash,2026-03-02T09:10\nK2,bakery,2026-03-02T10:00\n"
                   "K3,cash,half past nine\nK1,cash,2026-03-02T10:00\nK5,cash\n")
    with pytest.raises(ConfigError) as ei:
        engine.load_appointments(bad)
    msgs = ei.value.errors
    assert any(":3: field 'service': unknown service 'bakery'" in m for m in msgs)
    assert any(":4: field 'slot': 'half past nine'" in m for m in msgs)
    assert any(":5: field 'code': 'K1' already booked on line 2" in m for m in msgs)
    assert any(":6: expected 3 fields" in m for m in msgs)
    with pytest.raises(E.UnknownBooking):  # nothing of the bad file was loaded
        engine.check_in("K1")


def test_prefix_change_mid_day_is_refused_until_next_day(tmp_path: Path) -> None:
    clock = VirtualClock(START)
    db = tmp_path / "e.db"
    e1 = Engine.open(make_config(), clock, db, trust=lambda: True)
    assert e1.issue("cash").number == "A001"
    e1.close()
    e2 = Engine.open(make_config(prefix_a="X"), clock, db, trust=lambda: True)
    assert any("refused until the next business day" in n and "'A' to 'X'" in n
               for n in e2.notices)
    assert e2.issue("cash").number == "A002"
    clock.advance(24 * 3600)
    t = e2.issue("cash")
    assert t.number == "X001" and e2.notices == []
    e2.close()


@pytest.mark.parametrize(("policy", "expect"), [("extend", "A1000"), ("wrap", "A001")])
def test_number_width_policies(open_engine: Opener, clock: VirtualClock, policy: str,
                               expect: str) -> None:
    engine = open_engine(make_config(engine_extra=f'number_wrap = "{policy}"'), clock)
    engine.tick()
    engine.conn.execute("UPDATE day_services SET last_seq = 998")
    assert engine.issue("cash").number == "A999"
    assert engine.issue("cash").number == expect


def test_numbers_exhausted(open_engine: Opener, clock: VirtualClock) -> None:
    engine = open_engine(make_config(engine_extra='number_wrap = "refuse"'), clock)
    engine.tick()
    engine.conn.execute("UPDATE day_services SET last_seq = 999")
    with pytest.raises(E.NumbersExhausted, match="All 999 numbers"):
        engine.issue("cash")
    assert engine.conn.execute("SELECT last_seq FROM day_services WHERE service = 'cash'"
                               ).fetchone()[0] == 999


def test_bad_input_errors_change_nothing(engine: Engine) -> None:
    engine.tick()
    before = engine.outbox.last_seq()
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: engine.issue("bakery"), "unknown-service"),
        (lambda: engine.issue("cash", route=("bakery",)), "unknown-service"),
        (lambda: engine.issue("cash", priority="royalty"), "unknown-priority"),
        (lambda: engine.call_next("c9"), "unknown-counter"),
        (lambda: engine.confirm_printed("nope"), "unknown-ticket"),
        (lambda: engine.transfer("c1", "bakery"), "unknown-service"),
        (lambda: engine.done("c1"), "no-current-ticket"),
        (lambda: engine.resume("c1"), "counter-closed"),
    ]
    for fn, code in cases:
        with pytest.raises(DomainError) as ei:
            fn()
        assert ei.value.code == code
        assert str(ei.value)[0].isupper()  # a sentence a teller can read
    assert engine.outbox.last_seq() == before
    assert engine.conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 0
    assert {c.code for c in E.ALL_ERRORS} >= {
        "unknown-service", "unknown-counter", "service-closed", "past-closing", "queue-empty",
        "counter-closed", "counter-paused", "counter-busy", "no-current-ticket", "bad-state",
        "unknown-ticket", "clock-untrusted", "numbers-exhausted", "unknown-booking",
        "booking-window", "bad-score"}


def test_on_commit_sees_committed_events_only(open_engine: Opener, cfg: BranchConfig,
                                              clock: VirtualClock, tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []

    def hook(envs: list[dict[str, Any]]) -> None:
        other = sqlite3.connect(tmp_path / "engine.db")  # a second reader sees the commit
        for env in envs:
            n = other.execute("SELECT COUNT(*) FROM outbox WHERE id = ?", (env["id"],))
            seen.append((env["type"], n.fetchone()[0]))
        other.close()

    engine = open_engine(cfg, clock, on_commit=hook)
    engine.issue("cash")
    with pytest.raises(E.CounterClosed):
        engine.call_next("c1")
    assert seen == [("day.rolled", 1), ("ticket.issued", 1)]


def test_snapshot_shape(engine: Engine, clock: VirtualClock) -> None:
    engine.open_counter("c1")
    a = waiting(engine, "cash")
    waiting(engine, "cash")
    engine.call_next("c1")
    clock.advance(60)
    snap = engine.snapshot()
    assert snap["business_day"] == "2026-03-02"
    assert snap["services"]["cash"]["waiting"] == 1 and snap["services"]["cash"]["open"]
    assert snap["services"]["cash"]["est_wait_s"] > 0
    assert snap["counters"]["c1"]["current"]["ticket_id"] == a
    assert snap["counters"]["c2"] == {"number": 2, "state": "closed", "staff": "",
                                      "current": None, "pause_pending": False}
    call = snap["recent_calls"][0]
    assert call["number"] == "A001" and call["counter_number"] == 1
    assert call["ts"] == (START.astimezone(UTC)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    engine.no_show("c1")
    assert engine.snapshot()["recent_calls"] == []


def test_config_check_reports_bad_appointment_lines(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("K1,cash,2026-03-02T09:30\nK2,cash,soon\n")
    with pytest.raises(ConfigError) as ei:
        make_config(engine_extra='appointments_file = "b.csv"', base_dir=tmp_path)
    assert any("engine.appointments_file:" in m and ":2: field 'slot'" in m
               for m in ei.value.errors)
