"""The engine as each role sees it: one protocol per role, returning the engine's models.

``tessera.engine.Engine`` satisfies all of them in-process; on another Pi
``tessera.roles.remote.RemoteEngine`` satisfies them over MQTT, decoding the
answers into the same ``Ticket``, ``CounterState`` and ``Rating`` and raising
the same :class:`~tessera.engine.errors.DomainError` leaves, so a role cannot
tell the two apart (docs/contracts.md).

- ``TicketEngine``: the two-phase issuance the printing path uses;
- ``KioskEngine``: that, plus check-in of an appointment;
- ``CounterEngine``: what a counter panel does;
- ``DisplayEngine``: the snapshot a display rebuilds its boards from;
- ``AppointmentsEngine``: loading the day's bookings (a supervisor's PC);
- ``EstimateEngine``: live wait estimates of waiting tickets (in-process only);
- ``WebEngine``: the web role's reads, phone rating and console actions;
- ``EnginePort``: all of them (the all-in-one process and the command server).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from tessera.engine.clocktrust import ClockSet
from tessera.engine.live import LiveEstimate
from tessera.engine.models import BookingLoad, CounterState, Rating, Ticket, TicketPlace


class TicketEngine(Protocol):
    """Reserve a number, then confirm it printed or void it."""

    def issue(self, service: str, *, priority: str | None = None) -> Ticket: ...
    def confirm_printed(self, ticket_id: str) -> Ticket: ...
    def void(self, ticket_id: str, reason: str) -> Ticket: ...


class KioskEngine(TicketEngine, Protocol):
    """The kiosk: issuance, appointment check-in, its own refusals and reprints.

    ``report_refusal`` keeps a refusal the kiosk decided (printer fault): in-process it
    is committed when it returns; over MQTT it is in the kiosk's pending file and sent
    until the engine has it (the return value is not for the kiosk to read).
    """

    def check_in(self, code: str) -> Ticket: ...
    def report_refusal(self, key: str, service: str, reason: str, at: str) -> object: ...
    def reprint(self, ticket_id: str | None = None, *, last: bool = False) -> Ticket: ...


class CounterEngine(Protocol):
    """A counter's panel: calls, outcomes, the counter's state and its ratings."""

    def call_next(self, counter: str) -> Ticket: ...
    def recall(self, counter: str) -> Ticket: ...
    def no_show(self, counter: str) -> Ticket: ...
    def done(self, counter: str) -> Ticket: ...
    def transfer(self, counter: str, service: str) -> Ticket: ...
    def open_counter(self, counter: str, staff: str | None = None) -> CounterState: ...
    def close_counter(self, counter: str) -> CounterState: ...
    def pause(self, counter: str) -> CounterState: ...
    def resume(self, counter: str) -> CounterState: ...
    def rate(self, counter: str, score: int) -> Rating: ...
    def set_clock(self, when: str, *, staff: str) -> ClockSet: ...  # staff, after a power cut
    def call_specific(self, counter: str, number: str) -> Ticket: ...
    def undo_no_show(self, ticket: str, *, counter: str | None = None) -> Ticket: ...


class DisplayEngine(Protocol):
    """The live state a display rebuilds its boards from."""

    def snapshot(self) -> dict[str, Any]: ...


class AppointmentsEngine(Protocol):
    """Bookings loaded while the branch runs: ``(line, code, service, slot)`` lines of file
    ``source``, all or nothing, idempotent by code (docs/engine.md)."""

    def load_booking_lines(self, source: str, lines: Iterable[tuple[int, str, str, str]], *,
                           dry_run: bool = False) -> BookingLoad: ...


class WebEngine(Protocol):
    """The web role: the hall's live state, tickets' places, the phone rating and the
    supervisor console's actions (docs/web.md). The snapshot is read as a plain mapping
    and decoded into the web role's own typed views (``tessera.web.views``)."""

    def snapshot(self) -> Mapping[str, object]: ...
    def ticket_places(self, ticket_ids: Iterable[str]) -> dict[str, TicketPlace]: ...
    def rate_ticket(self, ticket_id: str, score: int, *, channel: str = ...) -> Rating: ...
    def open_counter(self, counter: str, staff: str | None = None) -> CounterState: ...
    def close_counter(self, counter: str) -> CounterState: ...
    def pause(self, counter: str) -> CounterState: ...
    def resume(self, counter: str) -> CounterState: ...
    def call_specific(self, counter: str, number: str) -> Ticket: ...
    def transfer(self, counter: str, service: str) -> Ticket: ...
    def void(self, ticket_id: str, reason: str) -> Ticket: ...
    def issue(self, service: str, *, priority: str | None = None,
              channel: str | None = None) -> Ticket: ...
    def confirm_printed(self, ticket_id: str) -> Ticket: ...


@runtime_checkable
class EventLog(Protocol):
    """The engine's outbox, read in order (an engine in this process only): the web role
    computes today's KPIs from it with the report code."""

    def events_since(self, seq: int, limit: int = ...) -> list[dict[str, Any]]: ...


class EnginePort(KioskEngine, CounterEngine, DisplayEngine, AppointmentsEngine, Protocol):
    """Every command a role sends (see docs/contracts.md)."""


class EstimateEngine(Protocol):
    """Live wait estimates of waiting tickets (the mobile ticket page, docs/engine.md)."""

    def ticket_estimate(self, ticket_id: str) -> LiveEstimate | None: ...
    def live_estimates(self, service: str | None = None) -> list[LiveEstimate]: ...
