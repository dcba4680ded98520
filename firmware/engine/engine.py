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

from tessera.engine.calling import CounterCommands
from tessera.engine.core import CommitHook, Envelope
from tessera.engine.issuing import IssuingCommands
from tessera.engine.webcmds import WebCommands

__all__ = ["CommitHook", "Engine", "Envelope"]


class Engine(IssuingCommands, CounterCommands, WebCommands):
    """Services, numbering, calling, transfers, appointments, feedback, estimates.

        engine = Engine.open(cfg, SystemClock())
        engine.issue("cash", priority="priority").number
        # -> 'A001'
    """

    def snapshot(self) -> dict[str, Any]:
        """Queues per service, counters, recent calls: everything a board needs."""
        from tessera.engine.views import snapshot
        with self._lock:
            return snapshot(self)
