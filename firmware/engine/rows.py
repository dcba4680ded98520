"""Rows of the engine's tables as named types, so a query's columns travel by name.

    row = TicketRow._make(conn.execute(f"SELECT {TICKET_COLS} FROM tickets").fetchone())
    row.number, row.state
    # -> ('A001', 'waiting')

``TICKET_COLS`` is derived from ``TicketRow``'s fields: a column added to the
row type is selected everywhere, and no module counts positions.
"""

from __future__ import annotations

from typing import NamedTuple


class TicketRow(NamedTuple):
    """``SELECT {TICKET_COLS} FROM tickets``: one ticket as the engine's commands use it."""

    id: str
    number: str
    service: str
    state: str
    priority: str | None
    business_day: str
    issued_at: float
    people_ahead: int
    est_wait_s: float
    counter: str | None
    recalls: int
    appointment: str | None
    route: str | None  # JSON list of follow-on services, "" or NULL for none
    qorder: int
    queued_at: float
    called_at: float | None
    serving_at: float | None
    slot: float | None
    rank: int


class CounterRow(NamedTuple):
    """``SELECT {COUNTER_COLS} FROM counters``."""

    state: str
    staff: str
    current: str | None
    priority_streak: int


TICKET_COLS = ", ".join(TicketRow._fields)
COUNTER_COLS = ", ".join(CounterRow._fields)
REAL_COLS = frozenset({"issued_at", "queued_at", "called_at", "serving_at", "est_wait_s",
                       "slot"})

__all__ = ["COUNTER_COLS", "REAL_COLS", "TICKET_COLS", "CounterRow", "TicketRow"]
