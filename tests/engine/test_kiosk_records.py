"""Kiosk refusals and reprints in the engine (issue 15): every refusal is a committed
``refusals`` row and a ``kiosk.refused`` event while the refused command changes nothing;
a kiosk's own report is kept once per key; a reprint reuses the number."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_support import START, make_config

from tessera.clock import VirtualClock
from tessera.engine import Engine
from tessera.engine import errors as E

HOURS = 'hours = { default = ["09:00-16:30"] }'


def _refusals(engine: Engine) -> list[tuple[Any, ...]]:
    return engine.conn.execute("SELECT business_day, service, reason, device, key "
                               "FROM refusals ORDER BY id").fetchall()


def _state(engine: Engine) -> list[Any]:
    """Everything a refused command must leave as it was."""
    c = engine.conn
    return [c.execute("SELECT id, state, qorder FROM tickets ORDER BY id").fetchall(),
            c.execute("SELECT * FROM bookings ORDER BY code").fetchall(),
            c.execute("SELECT * FROM counters ORDER BY id").fetchall()]


def _types(engine: Engine) -> list[str]:
    return [e["type"] for e in engine.events_since(0)]


def test_closed_service_refusal_is_recorded_and_changes_nothing(
        open_engine: Callable[..., Engine]) -> None:
    clock = VirtualClock(START.replace(hour=17))  # 17:00 GMT, cash closed at 16:30
    engine = open_engine(make_config(cash_extra=HOURS), clock)
    before = _state(engine)
    with pytest.raises(E.ServiceClosed):
        engine.issue("cash")
    assert _state(engine) == before
    assert _refusals(engine) == [("2026-03-02", "cash", "service_closed", "kiosk-main", None)]
    (evt,) = [e for e in engine.events_since(0) if e["type"] == "kiosk.refused"]
    assert evt["data"]["service"] == "cash" and evt["data"]["reason"] == "service_closed"
    assert evt["data"]["at"] == "2026-03-02T17:00:00.000Z" and evt["data"]["key"] is None
    assert "ticket.issued" not in _types(engine)


def test_past_closing_and_clock_untrusted_are_recorded(
        open_engine: Callable[..., Engine], tmp_path: Path) -> None:
    clock = VirtualClock(START.replace(hour=16, minute=20))
    engine = open_engine(make_config(cash_extra=HOURS), clock)
    for _ in range(2):  # then 3 x 240 s for a new ticket: past 16:30
        engine.confirm_printed(engine.issue("cash").id)
    with pytest.raises(E.PastClosing):
        engine.issue("cash")
    assert [r[2] for r in _refusals(engine)] == ["past_closing"]

    trusted = [True]
    engine2 = Engine.open(make_config(), clock, tmp_path / "e2.db", trust=lambda: trusted[0])
    try:
        trusted[0] = False
        with pytest.raises(E.ClockUntrusted):
            engine2.issue("loans")
        assert [r[1:3] for r in _refusals(engine2)] == [("loans", "clock_untrusted")]
        (evt,) = [e for e in engine2.events_since(0) if e["type"] == "kiosk.refused"]
        assert evt["clock"] == "unsynced"
    finally:
        engine2.close()


def test_booking_code_refusals_name_the_reason(engine: Engine, clock: VirtualClock) -> None:
    engine.book("BK-1", "loans", START + timedelta(hours=2))
    engine.book("BK-2", "cash", START + timedelta(minutes=5))
    before = _state(engine)
    with pytest.raises(E.UnknownBooking):
        engine.check_in("NOPE")
    with pytest.raises(E.BookingWindow):
        engine.check_in("BK-1")  # 2 h early
    # (a booking loaded after its window ended is not booked at all: BK-2's window ends now)
    clock.advance(5 * 60 + engine.cfg.engine.appointment_late_s + 1)
    with pytest.raises(E.BookingWindow):
        engine.check_in("BK-2")  # late
    assert _state(engine) == before
    assert [r[1:3] for r in _refusals(engine)] == [
        ("", "unknown_booking"), ("loans", "booking_too_early"), ("cash", "booking_too_late")]
    clock.set(START + timedelta(hours=2))
    t = engine.check_in("BK-1")
    engine.confirm_printed(t.id)
    with pytest.raises(E.BadState):
        engine.check_in("BK-1")
    assert _refusals(engine)[-1][1:3] == ("loans", "already_checked_in")


def test_bad_input_is_not_a_refusal(engine: Engine) -> None:
    with pytest.raises(E.UnknownService):
        engine.issue("nope")
    with pytest.raises(E.UnknownPriority):
        engine.issue("cash", priority="gold")
    assert _refusals(engine) == []


def test_refused_command_stores_its_answer_with_the_refusal(
        open_engine: Callable[..., Engine]) -> None:
    """The MQTT command server's hook runs in the refusal's transaction with the refusal
    (not a 'done' answer): a re-sent command finds it and is never recorded twice."""
    clock = VirtualClock(START.replace(hour=17))
    engine = open_engine(make_config(cash_extra=HOURS), clock)
    calls: list[Any] = []
    rows_seen: list[int] = []

    def hook(conn: sqlite3.Connection, result: Any) -> None:
        assert conn.in_transaction  # inside the command's (or the refusal's) transaction
        rows_seen.append(conn.execute("SELECT COUNT(*) FROM refusals").fetchone()[0])
        calls.append(result)

    with engine.recording(hook), pytest.raises(E.ServiceClosed) as refused:
        engine.issue("cash")
    assert calls == [refused.value] and len(_refusals(engine)) == 1
    with engine.recording(hook):
        engine.issue("loans")  # loans has no hours: open
    assert len(calls) == 2 and calls[1].number == "C001"
    with engine.recording(hook):
        engine.report_refusal("kiosk-main.9", "cash", "printer_fault", "2026-03-02T17:00:00Z")
    assert calls[2].recorded and len(calls) == 3
    assert rows_seen == [1, 1, 2]  # each refusal's answer sees its own row


def test_report_refusal_is_idempotent_by_key(engine: Engine) -> None:
    at = "2026-03-02T09:30:00+00:00"
    first = engine.report_refusal("kiosk-main.1", "cash", "printer_fault", at)
    again = engine.report_refusal("kiosk-main.1", "cash", "printer_fault", at)
    assert first.recorded and not again.recorded
    engine.report_refusal("kiosk-main.2", "", "engine_unreachable", "2026-03-01T23:00:00Z")
    assert _refusals(engine) == [
        ("2026-03-02", "cash", "printer_fault", "kiosk-main", "kiosk-main.1"),
        ("2026-03-01", "", "engine_unreachable", "kiosk-main", "kiosk-main.2")]  # press's day
    assert _types(engine).count("kiosk.refused") == 2


@pytest.mark.parametrize(("args", "error"), [
    (("k", "cash", "service_closed", "2026-03-02T09:00:00Z"), E.BadRefusal),  # engine's own
    (("k", "cash", "bored", "2026-03-02T09:00:00Z"), E.BadRefusal),
    (("k", "cash", "printer_fault", "09:00"), E.BadRefusal),
    (("k", "cash", "printer_fault", "2026-03-02T09:00:00"), E.BadRefusal),  # no zone
    (("k", "nope", "printer_fault", "2026-03-02T09:00:00Z"), E.UnknownService),
])
def test_bad_refusal_reports_change_nothing(engine: Engine, args: tuple[str, ...],
                                            error: type[Exception]) -> None:
    with pytest.raises(error) as got:
        engine.report_refusal(*args)
    assert str(got.value)
    assert _refusals(engine) == [] and engine.events_since(0) == []


def test_reprint_reuses_the_number_and_changes_nothing(engine: Engine) -> None:
    a = engine.confirm_printed(engine.issue("cash").id)
    b = engine.confirm_printed(engine.issue("loans").id)
    before = _state(engine)
    assert engine.reprint(last=True).number == b.number == "C001"
    again = engine.reprint(a.id)
    assert (again.id, again.number, again.state) == (a.id, "A001", "waiting")
    assert _state(engine) == before
    evts = [e for e in engine.events_since(0) if e["type"] == "ticket.reprinted"]
    assert [(e["data"]["number"], e["data"]["by"]) for e in evts] == [("C001", "last"),
                                                                      ("A001", "id")]
    assert engine.conn.execute("SELECT COUNT(*) FROM tickets").fetchone() == (2,)


def test_reprint_of_nothing_answers_a_code(engine: Engine) -> None:
    with pytest.raises(E.NothingToReprint):
        engine.reprint(last=True)  # nothing issued today
    t = engine.issue("cash")
    with pytest.raises(E.NothingToReprint):
        engine.reprint(t.id)  # still printing
    engine.void(t.id, "print-failed")
    before, seq = _state(engine), len(engine.events_since(0))
    calls: list[Callable[[], object]] = [
        lambda: engine.reprint(t.id), lambda: engine.reprint(last=True),
        lambda: engine.reprint("no-such-id"), lambda: engine.reprint(),
        lambda: engine.reprint(t.id, last=True)]
    for call in calls:
        with pytest.raises(E.NothingToReprint) as got:
            call()
        assert got.value.code == "nothing-to-reprint"
    assert _state(engine) == before and len(engine.events_since(0)) == seq
    engine.open_counter("c2")
    u = engine.confirm_printed(engine.issue("cash").id)
    engine.call_next("c2")
    engine.done("c2")
    with pytest.raises(E.NothingToReprint):
        engine.reprint(u.id)  # done


def test_refusal_rows_survive_a_reopen(open_engine: Callable[..., Engine],
                                       tmp_path: Path) -> None:
    clock = VirtualClock(START.replace(hour=17))
    engine = open_engine(make_config(cash_extra=HOURS), clock)
    with pytest.raises(E.ServiceClosed):
        engine.issue("cash")
    engine.close()
    conn = sqlite3.connect(tmp_path / "engine.db")
    try:
        assert conn.execute("SELECT reason FROM refusals").fetchall() == [("service_closed",)]
    finally:
        conn.close()
