"""The small ports the roles need: the engine's commands, LEDs, a counter board.

The engine ports (one per role, returning the engine's own models) live with
the engine, in ``tessera.engine.ports``, and are re-exported here; they are
satisfied by ``tessera.engine.Engine`` (all-in-one) and by
``tessera.roles.remote.RemoteEngine`` (standalone, over MQTT commands).
"""

from __future__ import annotations

from typing import Any, Protocol

from tessera.engine.ports import (
    CounterEngine,
    DisplayEngine,
    EnginePort,
    KioskEngine,
    TicketEngine,
)

__all__ = ["CounterEngine", "DisplayEngine", "EnginePort", "EventSink", "KioskEngine", "Led",
           "TextBoard", "TicketEngine"]


class Led(Protocol):
    """One indicator LED (``tessera.drivers.gpio.Lamp`` fits)."""

    def on(self) -> None: ...
    def off(self) -> None: ...
    def blink(self, on_time: float = ..., off_time: float = ...) -> None: ...


class TextBoard(Protocol):
    """A small sign that shows one short line (a counter's own display)."""

    def show(self, text: str) -> None: ...


class EventSink(Protocol):
    """Where a role records its own events (device faults, refusals)."""

    def __call__(self, type_: str, data: dict[str, Any]) -> None: ...
