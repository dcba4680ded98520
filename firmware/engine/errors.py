"""Domain errors of the queue engine.

Every refusal is a :class:`DomainError` with a short kebab-case ``code`` (used
as the MQTT response code) and a message a kiosk or a teller can show as is.
Each leaf also subclasses the builtin it behaves like.

    try:
        engine.call_next("c1")
    except DomainError as e:
        print(e.code, "-", e)
    # -> queue-empty - No one is waiting for Cash & Deposits.
"""

from __future__ import annotations

from tessera.errors import TesseraError


class DomainError(TesseraError):
    """A command the engine refused; nothing was changed."""

    code = "domain-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownService(DomainError, KeyError):
    code = "unknown-service"

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class UnknownCounter(DomainError, KeyError):
    code = "unknown-counter"

    def __str__(self) -> str:
        return self.message


class UnknownTicket(DomainError, KeyError):
    code = "unknown-ticket"

    def __str__(self) -> str:
        return self.message


class UnknownBooking(DomainError, KeyError):
    code = "unknown-booking"

    def __str__(self) -> str:
        return self.message


class UnknownPriority(DomainError, KeyError):
    code = "unknown-priority"

    def __str__(self) -> str:
        return self.message


class ServiceClosed(DomainError, RuntimeError):
    code = "service-closed"


class PastClosing(DomainError, RuntimeError):
    code = "past-closing"


class QueueEmpty(DomainError, LookupError):
    code = "queue-empty"


class CounterClosed(DomainError, RuntimeError):
    code = "counter-closed"


class CounterPaused(DomainError, RuntimeError):
    code = "counter-paused"


class CounterBusy(DomainError, RuntimeError):
    code = "counter-busy"


class NoCurrentTicket(DomainError, LookupError):
    code = "no-current-ticket"


class BadState(DomainError, RuntimeError):
    code = "bad-state"


class ClockUntrusted(DomainError, RuntimeError):
    code = "clock-untrusted"


class NumbersExhausted(DomainError, OverflowError):
    code = "numbers-exhausted"


class BookingWindow(DomainError, ValueError):
    code = "booking-window"
    reason = "booking_too_late"  # or booking_too_early (the kiosk.refused reason)


class BadScore(DomainError, ValueError):
    code = "bad-score"


class TicketOpen(DomainError, RuntimeError):
    """PAUSE refused while the counter has a ticket (``engine.pause_while_called = "refuse"``)."""

    code = "ticket-open"


class UndoExpired(DomainError, RuntimeError):
    """An undo of a no-show older than ``engine.no_show_undo_s`` (or of another day)."""

    code = "undo-expired"


class BadRefusal(DomainError, ValueError):
    """A kiosk's refusal report with an unknown reason or an unreadable time."""

    code = "bad-refusal"


class NothingToReprint(DomainError, LookupError):
    """A reprint of a ticket that does not exist, is not this kiosk's, or is finished."""

    code = "nothing-to-reprint"


class AlreadyRated(DomainError, RuntimeError):
    """The ticket already has its one rating (from the counter's buttons or a phone)."""

    code = "already-rated"


ALL_ERRORS: tuple[type[DomainError], ...] = (
    UnknownService, UnknownCounter, ServiceClosed, PastClosing, QueueEmpty, CounterClosed,
    CounterPaused, CounterBusy, NoCurrentTicket, BadState, UnknownTicket, ClockUntrusted,
    NumbersExhausted, UnknownBooking, BookingWindow, BadScore, UnknownPriority,
    TicketOpen, UndoExpired,
    BadRefusal, NothingToReprint,
    AlreadyRated,
)


class BadBookings(DomainError, ValueError):
    """Bookings refused line by line (``errors``: each ``file:line: …``); none applied."""

    code = "bad-bookings"
    errors: tuple[str, ...] = ()


ALL_ERRORS += (BadBookings,)


# clock set by staff (issue 15, docs/engine.md "Clock trust")
class BadClockTime(DomainError, ValueError):
    code = "bad-time"


class ClockBackwards(DomainError, ValueError):
    code = "clock-backwards"


class ClockSynced(DomainError, RuntimeError):
    code = "clock-synced"


ALL_ERRORS += (BadClockTime, ClockBackwards, ClockSynced)
