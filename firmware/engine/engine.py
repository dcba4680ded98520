"""The queue engine: the single writer of a branch's queue state.

Each command runs in one ``BEGIN IMMEDIATE`` transaction holding the state
change and the outbox events that report it; a refused command raises a
:class:`~tessera.engine.errors.DomainError` and changes nothing. Committed
events go to ``on_commit`` (after COMMIT, never inside).

    engine = Engine.open(cfg, VirtualClock(start), trust=always_trusted)
    t = engine.issue("cash")
    engine.confirm_printed(t.id).state
    # -> 'waiting'
    engine.open_counter("c1"); engine.call_next("c1").number
    # -> 'A001'
"""

from __future__ import annotations

from typing import Any

from tessera.engine.bookings import BookingCommands
from tessera.engine.calling import CounterCommands
from tessera.engine.core import CommitHook, Envelope
from tessera.engine.live import LiveEstimate, live_estimates
from tessera.engine.webcmds import WebCommands

__all__ = ["CommitHook", "Engine", "Envelope"]


class Engine(BookingCommands, CounterCommands, WebCommands):
    """Services, numbering, calling, transfers, appointments, feedback, estimates.

        engine = Engine.open(cfg, SystemClock())
        engine.issue("cash", priority="priority").number
        # -> 'A001'
    """

    def live_estimates(self, service: str | None = None) -> list[LiveEstimate]:
        """Every waiting ticket's estimate from now (of ``service``, or all), in calling
        order per service (tessera.engine.live)."""
        if service is not None:
            self._service(service)
        with self._lock:
            self.conn.execute("BEGIN")  # one consistent read
            try:
                return live_estimates(self, self.clock.now().timestamp(), service)
            finally:
                self.conn.execute("COMMIT")

    def ticket_estimate(self, ticket_id: str) -> LiveEstimate | None:
        """The live estimate of one ticket: None once it is no longer waiting
        (UnknownTicket if there is no such ticket)."""
        with self._lock:
            t = self._ticket_row(ticket_id)
            if t.state != "waiting":
                return None
            return next((e for e in self.live_estimates(t.service)
                         if e.ticket_id == ticket_id), None)

    def snapshot(self) -> dict[str, Any]:
        """Queues per service, counters, recent calls: everything a board needs."""
        from tessera.engine.views import snapshot
        with self._lock:
            return snapshot(self)
