"""Appointments (issue 15): due appointments in the calling order, missed bookings,
loading bookings while the branch runs (idempotent by code, all-or-nothing)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from engine_support import START, make_config
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.clock import VirtualClock
from tessera.engine import Engine
from tessera.engine import errors as E
from tessera.engine.policy import Candidate, Rules, choose, next_streak
from tessera.engine.report import day_report
from tessera.errors import ConfigError

Opener = Callable[..., Engine]
DAY = "2026-03-02"


def waiting(engine: Engine, service: str, priority: str | None = None) -> str:
    t = engine.issue(service, priority=priority)
    engine.confirm_printed(t.id)
    return t.id


def checked_in(engine: Engine, code: str) -> str:
    t = engine.check_in(code)
    engine.confirm_printed(t.id)
    return t.id


def bookings(engine: Engine) -> dict[str, tuple[str, float, str]]:
    return {r[0]: (r[1], r[2], r[3]) for r in engine.conn.execute(
        "SELECT code, service, slot, state FROM bookings")}


def events(engine: Engine, type_: str) -> list[dict[str, object]]:
    return [e["data"] for e in engine.events_since(0) if e["type"] == type_]


# ---------------------------------------------------------------- calling order


def test_a_due_appointment_goes_before_every_walk_in_class(open_engine: Opener) -> None:
    clock = VirtualClock(START)  # 09:00
    engine = open_engine(make_config(), clock)
    engine.book("K1", "cash", START + timedelta(minutes=10))
    engine.open_counter("c2")  # cash only
    k1 = checked_in(engine, "K1")  # 10 min early
    vip = waiting(engine, "cash", "vip")
    prio = waiting(engine, "cash", "priority")
    clock.advance(600)  # 09:10: the slot has come
    emer = waiting(engine, "cash", "emergency")
    order = []
    for _ in range(4):
        order.append(engine.call_next("c2").id)
        engine.done("c2")
    # the emergency (the top class, same service) first, then the due appointment ahead
    # of the priority and vip walk-ins who came before it, then the classes in order
    assert order == [emer, k1, prio, vip]


def test_before_its_slot_an_appointment_waits_unless_the_counter_would_idle(
        open_engine: Opener) -> None:
    clock = VirtualClock(START)
    engine = open_engine(make_config(), clock)
    engine.book("K1", "cash", START + timedelta(minutes=10))
    engine.book("K2", "cash", START + timedelta(minutes=12))
    engine.open_counter("c2")
    k2 = checked_in(engine, "K2")
    k1 = checked_in(engine, "K1")
    walk = waiting(engine, "cash")
    assert engine.call_next("c2").id == walk  # both appointments are early
    engine.done("c2")
    assert engine.call_next("c2").id == k1  # idle otherwise: the earliest slot first
    engine.done("c2")
    assert engine.call_next("c2").id == k2


def test_appointments_count_towards_the_anti_starvation_bound(open_engine: Opener) -> None:
    clock = VirtualClock(START)
    engine = open_engine(make_config(starvation_wait_s=300), clock)  # starvation_after = 2
    for i in range(3):
        engine.book(f"K{i}", "cash", START + timedelta(minutes=5))
    engine.open_counter("c2")
    normal = waiting(engine, "cash")
    ks = [checked_in(engine, f"K{i}") for i in range(3)]
    clock.advance(301)
    called = []
    for _ in range(4):
        called.append(engine.call_next("c2").id)
        engine.done("c2")
    # two appointments in a row, then the normal ticket that waited > 300 s
    assert called == [ks[0], ks[1], normal, ks[2]]


RULES = Rules(n_classes=3, starvation_after=2, starvation_wait_s=600.0)


@st.composite
def queues(draw: st.DrawFn) -> tuple[list[Candidate], float, int]:
    now = 10_000.0
    n = draw(st.integers(1, 12))
    cands = []
    for i in range(n):
        appt = draw(st.booleans())
        queued = draw(st.floats(0, now))
        slot = draw(st.floats(0, now + 3000)) if appt else None
        rank = RULES.appointment_rank if appt else draw(st.sampled_from(
            [0, 1, 2, RULES.normal_rank, RULES.normal_rank]))
        cands.append(Candidate(f"t{i}", draw(st.sampled_from(["cash", "accounts"])), rank,
                               i, queued, slot))
    return cands, now, draw(st.integers(0, 4))


@settings(max_examples=400, deadline=None)
@given(queues())
def test_policy_never_passes_a_due_appointment_for_a_lower_walk_in(
        q: tuple[list[Candidate], float, int]) -> None:
    cands, now, streak = q
    chosen = choose(cands, now=now, weights={"cash": 2.0, "accounts": 1.0}, streak=streak,
                    rules=RULES)
    assert chosen is not None
    due_appts = [c for c in cands if c.slot is not None and c.slot <= now]
    walk_ins = [c for c in cands if c.slot is None]
    if chosen.slot is not None and chosen.slot > now:  # early: only when nobody else may go
        assert not due_appts and not walk_ins
    if due_appts and chosen.slot is None:
        # passed over only by the top class, or by the anti-starvation bound
        starved = chosen.rank == RULES.normal_rank and streak >= RULES.starvation_after \
            and now - chosen.queued_at > RULES.starvation_wait_s
        assert chosen.rank == 0 or starved
    if chosen.rank == RULES.normal_rank and chosen.slot is None:
        # a normal ticket goes only when nobody ranks above it, or it starved
        above = [c for c in cands if c.rank < RULES.normal_rank
                 and (c.slot is None or c.slot <= now)]
        assert not above or (streak >= RULES.starvation_after
                             and now - chosen.queued_at > RULES.starvation_wait_s)
    assert next_streak(streak, chosen, RULES) == (
        0 if chosen.rank == RULES.normal_rank else streak + 1)


# ---------------------------------------------------------------- missed bookings


def test_a_booking_never_checked_in_is_missed_at_its_window_end(open_engine: Opener) -> None:
    clock = VirtualClock(START)  # late window: 600 s (default)
    engine = open_engine(make_config(), clock)
    engine.book("K1", "cash", START + timedelta(minutes=10))
    engine.book("K2", "accounts", START + timedelta(minutes=30))
    clock.advance(20 * 60 - 1)  # 09:19:59: K1's window (until 09:20) is still open
    assert not [e for e in engine.tick() if e["type"] == "appointment.missed"]
    clock.advance(1)
    missed = [e["data"] for e in engine.tick() if e["type"] == "appointment.missed"]
    assert missed == [{"code": "K1", "service": "cash", "slot": "2026-03-02T09:10:00.000Z",
                       "business_day": DAY}]
    assert bookings(engine)["K1"][2] == "missed" and bookings(engine)["K2"][2] == "booked"
    assert not [e for e in engine.tick() if e["type"] == "appointment.missed"]  # once
    with pytest.raises(E.BookingWindow, match="Too late"):
        engine.check_in("K1")
    assert engine.snapshot()["no_shows"] == {"walk_in": 0, "appointment": 1}


def test_bookings_missed_overnight_count_in_their_own_day(open_engine: Opener) -> None:
    """The engine never ticked after the last window ended: the day roll marks them, in
    the old day, before it rolls; with the no-show of a checked-in one that is 10."""
    clock = VirtualClock(START)
    engine = open_engine(make_config(), clock)
    for i in range(10):
        engine.book(f"K{i}", "cash", START + timedelta(minutes=30 + 10 * i))
    engine.open_counter("c2")
    clock.advance(1800)
    checked_in(engine, "K0")
    engine.call_next("c2")
    engine.no_show("c2")
    clock.advance(20 * 3600)  # 05:30 the next day, past the 03:00 roll; no tick since
    engine.issue("cash")  # the roll runs in this command
    types = [e["type"] for e in engine.events_since(0)]
    rolled = types.index("day.rolled", types.index("ticket.no_show"))
    assert types[:rolled].count("appointment.missed") == 9
    report = day_report(engine.events_since(0), engine.cfg, DAY)
    assert report["no_shows"] == {"walk_in": 0, "appointment": 10}
    assert {s for _, _, s in bookings(engine).values()} == {"missed", "no_show"}


def test_a_voided_check_in_is_booked_again_and_can_still_be_missed(open_engine: Opener) -> None:
    clock = VirtualClock(START)
    engine = open_engine(make_config(), clock)
    engine.book("K1", "cash", START + timedelta(minutes=5))
    engine.tick()  # caches when the next window ends
    t = engine.check_in("K1")
    engine.void(t.id, "paper out")
    clock.advance(16 * 60)
    assert [e["data"]["code"] for e in engine.tick() if e["type"] == "appointment.missed"] \
        == ["K1"]


# ---------------------------------------------------------------- loading


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_reloading_the_same_file_changes_nothing(open_engine: Opener, tmp_path: Path) -> None:
    engine = open_engine(make_config(), VirtualClock(START))
    f = _csv(tmp_path, "b.csv", "code,service,slot\nK1,cash,2026-03-02T09:30\n"
             "K2,accounts,2026-03-02T10:00\n")
    assert engine.load_appointments(f) == 2
    before = engine.outbox.last_seq(), bookings(engine)
    assert engine.load_appointments(f) == 0
    assert (engine.outbox.last_seq(), bookings(engine)) == before  # not even an event
    assert events(engine, "appointments.loaded") == [
        {"source": str(f), "added": 2, "moved": 0, "unchanged": 0, "past": 0}]


def test_a_changed_slot_moves_a_booked_code_and_is_refused_once_checked_in(
        open_engine: Opener, tmp_path: Path) -> None:
    clock = VirtualClock(START)
    engine = open_engine(make_config(), clock)
    engine.load_appointments(_csv(tmp_path, "a.csv", "K1,cash,2026-03-02T09:05\n"
                                  "K2,cash,2026-03-02T11:00\n"))
    got = engine.load_booking_lines("b.csv", [(1, "K1", "cash", "2026-03-02T09:05"),
                                              (2, "K2", "accounts", "2026-03-02T11:30"),
                                              (3, "K3", "cash", "2026-03-02T12:00")])
    assert (got.added, got.moved, got.unchanged) == (1, 1, 1)
    assert bookings(engine)["K2"] == ("accounts", (START + timedelta(hours=2.5)).timestamp(),
                                      "booked")
    checked_in(engine, "K1")
    before = bookings(engine), engine.outbox.last_seq()
    with pytest.raises(E.BadBookings) as ei:
        engine.load_booking_lines("c.csv", [(4, "K4", "cash", "2026-03-02T13:00"),
                                            (7, "K1", "cash", "2026-03-02T10:00")])
    assert ei.value.code == "bad-bookings"
    assert ei.value.errors == ("c.csv:7: field 'slot': booking K1 has checked in; its slot "
                               "and service can no longer change (book a new code)",)
    assert (bookings(engine), engine.outbox.last_seq()) == before  # K4 not booked either


def test_bad_lines_are_each_named_and_nothing_is_loaded(open_engine: Opener) -> None:
    engine = open_engine(make_config(), VirtualClock(START))
    before = bookings(engine), engine.outbox.last_seq()
    with pytest.raises(E.BadBookings) as ei:
        engine.load_booking_lines("big.csv", [(10, "K1", "cash", "2026-03-02T09:30"),
                                              (11, "K 2", "cash", "2026-03-02T09:30"),
                                              (12, "K3", "bakery", "2026-03-02T09:30"),
                                              (13, "K4", "cash", "noon"),
                                              (14, "K1", "cash", "2026-03-02T10:00")])
    errs = ei.value.errors
    assert [e.split(": ")[0] for e in errs] == ["big.csv:11", "big.csv:12", "big.csv:13",
                                                "big.csv:14"]
    assert "field 'service': unknown service 'bakery'" in errs[1]
    assert "already booked on line 10" in errs[3]
    assert str(ei.value).endswith("nothing was loaded")
    assert (bookings(engine), engine.outbox.last_seq()) == before


def test_a_dry_run_checks_against_the_store_and_changes_nothing(open_engine: Opener) -> None:
    engine = open_engine(make_config(), VirtualClock(START))
    engine.book("K1", "cash", START + timedelta(minutes=30))
    before = bookings(engine), engine.outbox.last_seq()
    got = engine.load_booking_lines("x.csv", [(1, "K1", "cash", "2026-03-02T10:00"),
                                              (2, "K2", "cash", "2026-03-02T10:00")],
                                    dry_run=True)
    assert (got.added, got.moved, got.unchanged) == (1, 1, 0)
    assert (bookings(engine), engine.outbox.last_seq()) == before


def test_a_bad_file_is_refused_whole(open_engine: Opener, tmp_path: Path) -> None:
    engine = open_engine(make_config(), VirtualClock(START))
    f = _csv(tmp_path, "b.csv", "K1,cash,2026-03-02T09:30\nK2,cash,soon\n")
    with pytest.raises(ConfigError, match=r"b\.csv:2: field 'slot'"):
        engine.load_appointments(f)
    assert bookings(engine) == {}


def test_the_appointments_file_at_open_keeps_a_checked_in_booking(open_engine: Opener,
                                                                   tmp_path: Path) -> None:
    f = _csv(tmp_path, "b.csv", "K1,cash,2026-03-02T09:05\nK2,cash,2026-03-02T11:00\n")
    cfg = make_config(engine_extra=f'appointments_file = "{f}"')
    clock = VirtualClock(START)
    engine = open_engine(cfg, clock)
    checked_in(engine, "K1")
    engine.close()
    f.write_text("K1,cash,2026-03-02T10:05\nK2,cash,2026-03-02T11:30\n")
    engine = Engine.open(cfg, clock, tmp_path / "engine.db", trust=lambda: True)
    try:
        b = bookings(engine)
        assert b["K1"] == ("cash", (START + timedelta(minutes=5)).timestamp(), "checked_in")
        assert b["K2"][1] == (START + timedelta(hours=2.5)).timestamp()
    finally:
        engine.close()


def test_a_new_booking_whose_window_has_ended_is_not_booked_nor_missed(
        open_engine: Opener) -> None:
    clock = VirtualClock(START + timedelta(hours=2))  # 11:00: the morning file comes late
    engine = open_engine(make_config(), clock)
    got = engine.load_booking_lines("late.csv", [(1, "K1", "cash", "2026-03-02T09:30"),
                                                 (2, "K2", "cash", "2026-03-02T10:51"),
                                                 (3, "K3", "cash", "2026-03-02T11:30")])
    assert (got.added, got.moved, got.unchanged, got.past) == (2, 0, 0, 1)
    assert set(bookings(engine)) == {"K2", "K3"}  # 10:51 + 600 s is still open
    assert not [e for e in engine.tick() if e["type"] == "appointment.missed"]
    assert engine.load_booking_lines("late.csv", [(1, "K1", "cash", "2026-03-02T09:30")]) \
        == type(got)(0, 0, 0, 1)  # the same answer again: still nothing to book
