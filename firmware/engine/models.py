"""What the engine hands back: frozen records of tickets, counters and ratings."""

from __future__ import annotations

from dataclasses import dataclass

TICKET_STATES = ("issued", "waiting", "called", "serving", "done", "no_show", "void")
ACTIVE_STATES = ("issued", "waiting", "called", "serving")


@dataclass(frozen=True)
class Ticket:
    """One customer's ticket, as of the end of the command that returned it.

        t = engine.issue("cash")
        (t.number, t.state)
        # -> ('A001', 'issued')
    """

    id: str
    number: str
    service: str
    state: str
    priority: str | None
    business_day: str
    issued_at: str  # RFC 3339 UTC
    people_ahead: int
    est_wait_s: float
    counter: str | None
    recalls: int
    appointment: str | None
    route: tuple[str, ...] = ()
    # the 80 % range of the wait at issue (engine.wait_range; None when off)
    est_low_s: float | None = None
    est_high_s: float | None = None
    slot: str | None = None  # RFC 3339 UTC: an appointment's booked time


@dataclass(frozen=True)
class CounterState:
    """A counter's state after open/close/pause/resume.

        engine.open_counter("c1", staff="t-001").state
        # -> 'open'
    """

    id: str
    number: int
    state: str  # open | closed | paused
    staff: str
    current: str | None  # ticket id being called/served
    pause_pending: bool = False  # PAUSE with a ticket: pauses when that ticket ends


@dataclass(frozen=True)
class Rating:
    """One press of a satisfaction button (``status``: bound, duplicate or unbound).

        engine.rate("c1", 5).status
        # -> 'bound'
    """

    ticket_id: str | None
    counter: str
    staff: str
    service: str | None
    score: int
    status: str


@dataclass(frozen=True)
class BookingLoad:
    """What a load of bookings did: codes booked, moved to another slot or service,
    already as the file says, and new codes not booked because their check-in window
    had already ended (``engine.load_booking_lines``).

        engine.load_booking_lines("b.csv", [(2, "K1", "doctor", "2026-03-02T09:30")])
        # -> BookingLoad(added=1, moved=0, unchanged=0, past=0)
    """

    added: int
    moved: int
    unchanged: int
    past: int = 0


@dataclass(frozen=True)
class TicketPlace:
    """A ticket's live place, as its mobile page shows it (``Engine.ticket_place``).

    ``ahead``: waiting tickets of its service called before it by priority and queue
    order; ``est_wait_s``: the engine's estimate for that place (None unless waiting);
    ``counter_number``: where it is called to (None unless called or serving);
    ``rated``: it has its one rating.
    """

    ticket: Ticket
    ahead: int
    est_wait_s: float | None
    counter_number: int | None
    rated: bool
