"""Glue between the dispatcher and the roles: route each typed button action.

The dispatcher hands over a :class:`tessera.dispatch.ButtonAction`; its
``action`` (an :class:`~tessera.dispatch.Act`) and its binding's ``target``
say everything: ``ISSUE`` goes to the kiosk button on that pin, a held
``REPRINT`` to the kiosk's reprint of its last ticket, the rest to
the counter ``target`` (``RATE`` with its score). Which pin and which press
mean which action is decided once, in :func:`tessera.dispatch.bindings_from_config`.

    router = ActionRouter(kiosk=kiosk, counters={"c1": c1})
    dispatcher = Dispatcher(ring, bindings_from_config(cfg), router.on_button)
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from tessera.config import BranchConfig
from tessera.dispatch import Act, ButtonAction
from tessera.roles.counter import CounterRole
from tessera.roles.kiosk import KioskRole

log = logging.getLogger(__name__)


def devices(cfg: BranchConfig) -> list[str]:
    """Every device name that has GPIO inputs, kiosk first."""
    names = [cfg.kiosk.device] if cfg.kiosk.buttons else []
    for c in cfg.counters:
        if c.panel is not None and c.device not in names:
            names.append(c.device)
    return names


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

    def handle(self, ba: ButtonAction) -> Any:
        """Run one action; never raises (a dispatcher thread must survive bad input)."""
        try:
            return self._route(ba)
        except Exception:
            self.failed += 1
            log.exception("action %s failed", ba.name)
            return None
        finally:
            with self._cond:
                self.handled += 1
                self._cond.notify_all()

    def on_button(self, ba: ButtonAction) -> Any:
        """The dispatcher's handler (looks ``handle`` up at call time, so a probe can wrap it)."""
        return self.handle(ba)

    def wait_for(self, count: int, timeout_s: float = 10.0) -> bool:
        """Block until ``handled >= count``; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.handled >= count, timeout_s)

    def _route(self, ba: ButtonAction) -> Any:
        b = ba.binding
        if ba.action is Act.ISSUE and self.kiosk is not None:
            return self.kiosk.press_pin(b.pin)
        if ba.action is Act.REPRINT and self.kiosk is not None:
            return self.kiosk.reprint_last() if ba.held else None  # a tap does nothing
        role = self.counters.get(b.target) \
            if ba.action not in (Act.ISSUE, Act.REPRINT) else None
        if role is not None:
            return role.act(ba.action, b.arg if ba.action is Act.RATE else None)
        self.unknown += 1
        log.warning("no role handles action %s", ba.name)
        return None
