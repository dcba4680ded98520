"""The queue engine (single writer of queue state). See docs/engine.md.

    from tessera.engine import Engine
    engine = Engine.open(cfg, clock)

The names below load on first use (PEP 562): a role that only needs
``tessera.engine.appointments`` (the config check every process runs) or the
engine's errors does not pay for the engine, its store and its policies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tessera.engine.day import always_trusted
    from tessera.engine.engine import Engine
    from tessera.engine.errors import DomainError
    from tessera.engine.models import CounterState, Rating, Ticket

__all__ = ["CounterState", "DomainError", "Engine", "Rating", "Ticket", "always_trusted"]

_HOME = {"always_trusted": "day", "Engine": "engine", "DomainError": "errors",
         "CounterState": "models", "Rating": "models", "Ticket": "models"}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value
