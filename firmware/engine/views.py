"""Read-only views of the engine's state (snapshot for boards and panels)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tessera.engine.day import open_span
from tessera.outbox import rfc3339

if TYPE_CHECKING:
    from tessera.engine.engine import Engine

RECENT_CALLS = 20


def snapshot(engine: Engine) -> dict[str, Any]:
    """``{"business_day", "services", "counters", "recent_calls", "no_shows"}``.

    ``recent_calls`` is newest first, excluding tickets later marked no-show
    or void.
    """
    from tessera.engine.core import utc_datetime

    conn = engine.conn
    now = engine.clock.now().timestamp()
    day = engine.stored_business_day() or engine.business_day(now)
    conn.execute("BEGIN")  # one consistent read
    try:
        services: dict[str, Any] = {}
        for svc in engine.cfg.services:
            waiting, est = engine.estimate_at(svc.id, engine.rules.normal_rank, now)
            services[svc.id] = {
                "waiting": waiting, "est_wait_s": round(est, 1),
                "open": open_span(svc, utc_datetime(now), engine.cfg.tz) is not None}
        counters: dict[str, Any] = {}
        rows = {r[0]: r for r in conn.execute(
            "SELECT c.id, c.state, c.staff, t.id, t.number, t.service, t.state, t.recalls, "
            "c.pause_pending FROM counters c LEFT JOIN tickets t ON t.id = c.current")}
        for c in engine.cfg.counters:
            r = rows.get(c.id)
            cur = None
            if r is not None and r[3] is not None:
                cur = {"ticket_id": r[3], "number": r[4], "service": r[5], "state": r[6],
                       "recalls": r[7]}
            counters[c.id] = {"number": c.number, "state": r[1] if r else "closed",
                              "staff": r[2] if r else c.staff, "current": cur,
                              "pause_pending": bool(r[8]) if r else False}
        recent = []
        numbers = {c.id: c.number for c in engine.cfg.counters}  # a removed counter shows 0
        for tid, number, service, counter, called_at, recalls in conn.execute(
                "SELECT id, number, service, counter, called_at, recalls FROM tickets "
                "WHERE business_day = ? AND called_at IS NOT NULL "
                "AND state NOT IN ('no_show', 'void') ORDER BY called_at DESC, qorder DESC "
                "LIMIT ?", (day, RECENT_CALLS)):
            recent.append({"ticket_id": tid, "number": number, "service": service,
                           "counter": counter,
                           "counter_number": numbers.get(counter, 0),
                           "ts": rfc3339(utc_datetime(called_at)), "recalls": recalls})
        walk_in, appt = conn.execute(
            "SELECT COUNT(*) FILTER (WHERE appointment IS NULL), "
            "COUNT(*) FILTER (WHERE appointment IS NOT NULL) FROM tickets "
            "WHERE business_day = ? AND state = 'no_show'", (day,)).fetchone()
        appt += missed_bookings(engine, day)
    finally:
        conn.execute("COMMIT")
    return {"business_day": day, "services": services, "counters": counters,
            "recent_calls": recent, "no_shows": {"walk_in": walk_in, "appointment": appt}}


def missed_bookings(engine: Engine, day: str) -> int:
    """Bookings of business day ``day`` never checked in (``missed``, see bookings.py)."""
    from datetime import date, datetime, timedelta

    start = datetime.combine(date.fromisoformat(day), engine._rollover, engine.cfg.tz)
    end = datetime.combine(date.fromisoformat(day) + timedelta(days=1), engine._rollover,
                           engine.cfg.tz)
    (n,) = engine.conn.execute("SELECT COUNT(*) FROM bookings WHERE state = 'missed' AND "
                               "slot >= ? AND slot < ?",
                               (start.timestamp(), end.timestamp())).fetchone()
    return int(n)
