"""Glue between the dispatcher and the roles: pin bindings and action routing.

Action names (what the dispatcher hands over for a pin):

- ``kiosk.button.<i>``: kiosk service button ``i`` (index in ``kiosk.buttons``);
- ``counter.<id>.<key>``: a panel key (next, recall, transfer, no_show, done, pause);
- ``counter.<id>.rate.<n>``: satisfaction button ``n`` (1 = lowest).

    >>> bindings(cfg, "main")[17]
    'kiosk.button.0'
    >>> router = ActionRouter(kiosk=kiosk, counters={"c1": c1})
    >>> router.handle("counter.c1.next")
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from tessera.config import BranchConfig
from tessera.roles.counter import KEYS as PANEL_KEYS
from tessera.roles.counter import CounterRole
from tessera.roles.kiosk import KioskRole

log = logging.getLogger(__name__)

def bindings(cfg: BranchConfig, device: str | None = None) -> dict[int, str]:
    """Pin → action for every input wired to ``device`` (all devices when None).

    With ``device=None`` pins of different devices may clash; callers that run
    several devices in one process ask per device.
    """
    out: dict[int, str] = {}
    k = cfg.kiosk
    if device is None or k.device == device:
        for i, b in enumerate(k.buttons):
            out[b.pin] = f"kiosk.button.{i}"
    for c in cfg.counters:
        if c.panel is None or (device is not None and c.device != device):
            continue
        for key in PANEL_KEYS:
            pin = getattr(c.panel, key)
            if pin is not None:
                out[pin] = f"counter.{c.id}.{key}"
        for n, pin in enumerate(c.panel.ratings, start=1):
            out[pin] = f"counter.{c.id}.rate.{n}"
    return out


def devices(cfg: BranchConfig) -> list[str]:
    """Every device name that has GPIO inputs, kiosk first."""
    names = [cfg.kiosk.device] if cfg.kiosk.buttons else []
    for c in cfg.counters:
        if c.panel is not None and c.device not in names:
            names.append(c.device)
    return names


def action_name(ba: Any) -> str:
    """The router's name for a dispatcher ``ButtonAction`` (see module docstring)."""
    b = ba.action if isinstance(ba.action, str) else ""
    binding = ba.binding
    if b == "issue":
        return f"kiosk.pin.{binding.pin}"
    if b == "rate":
        return f"counter.{binding.target}.rate.{binding.arg}"
    return f"counter.{binding.target}.{b}"


class ActionRouter:
    """Route dispatcher actions to the kiosk and counter roles; count what was handled.

    ``handled`` lets a simulator wait until a press has had its effect before
    moving virtual time on (``wait_for(n)``).
    """

    def __init__(self, *, kiosk: KioskRole | None = None,
                 counters: dict[str, CounterRole] | None = None) -> None:
        self.kiosk = kiosk
        self.counters = counters or {}
        self.handled = 0
        self.unknown = 0
        self.failed = 0
        self._cond = threading.Condition()

    def handle(self, action: str, *, held: bool = False) -> Any:
        """Run one action; never raises (a dispatcher thread must survive bad input)."""
        try:
            return self._route(action, held)
        except Exception:
            self.failed += 1
            log.exception("action %s failed", action)
            return None
        finally:
            with self._cond:
                self.handled += 1
                self._cond.notify_all()

    def on_button(self, ba: Any) -> Any:
        """Dispatcher handler: a ``tessera.dispatch.ButtonAction`` → ``handle(name)``."""
        return self.handle(action_name(ba), held=bool(getattr(ba, "held", False)))

    def wait_for(self, count: int, timeout_s: float = 10.0) -> bool:
        """Block until ``handled >= count``; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.handled >= count, timeout_s)

    def _route(self, action: str, held: bool) -> Any:
        parts = action.split(".")
        if parts[0] == "kiosk" and len(parts) == 3 and self.kiosk:
            if held:
                return None  # a held service button is one press, already handled
            if parts[1] == "pin":
                return self.kiosk.press_pin(int(parts[2]))
            return self.kiosk.press(int(parts[2]))
        if parts[0] == "counter" and len(parts) >= 3 and parts[1] in self.counters:
            role = self.counters[parts[1]]
            key = ".".join(parts[2:])
            # the dispatcher fires NEXT's hold as a separate "pause" action; DONE's hold
            # (login panels) arrives as "done" with held=True: the teller logs out
            return role.on_key(key, held=held and key != "pause")
        self.unknown += 1
        log.warning("no role handles action %r", action)
        return None
