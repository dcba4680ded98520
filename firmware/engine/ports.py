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
- ``EnginePort``: all of them (the all-in-one process and the command server).
"""

from __future__ import annotations

from typing import Any, Protocol

from tessera.engine.models import CounterState, Rating, Ticket


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


class DisplayEngine(Protocol):
    """The live state a display rebuilds its boards from."""

    def snapshot(self) -> dict[str, Any]: ...


class EnginePort(KioskEngine, CounterEngine, DisplayEngine, Protocol):
    """Every command a role sends (see docs/contracts.md)."""
