"""The queue engine (single writer of queue state). See docs/engine.md.

    >>> from tessera.engine import Engine
    >>> engine = Engine.open(cfg, clock)
"""

from tessera.engine.day import always_trusted
from tessera.engine.engine import Engine
from tessera.engine.errors import DomainError
from tessera.engine.models import CounterState, Rating, Ticket

__all__ = ["CounterState", "DomainError", "Engine", "Rating", "Ticket", "always_trusted"]
