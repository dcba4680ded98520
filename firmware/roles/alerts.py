"""The manager's alert lamp: a ``feedback.alert`` (lowest rating) makes it blink.

The lamp (``alerts.lamp``, a GPIO pin on the display's Pi, ``board.device``)
blinks for ``alerts.hold_s`` after the latest alert, then goes dark; the manager's
sign line (``alerts.board_address``) is the display role's. Time is the branch
clock, so a simulated day runs it in virtual time.

    lamp = AlertLamp(cfg, GpioLamp(cfg.alerts.lamp), clock)
    bus.subscribe(lamp.on_event)
    lamp.tick()            # from the branch's tick: dark again after hold_s
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from tessera.clock import Clock
from tessera.config import BranchConfig
from tessera.roles.ports import Led

log = logging.getLogger(__name__)
BLINK_S = 0.4  # on and off: a lamp that blinks is noticed across a hall


class AlertLamp:
    """Blinks ``lamp`` while an alert is recent; ``alerts`` counts those seen."""

    def __init__(self, cfg: BranchConfig, lamp: Led, clock: Clock) -> None:
        self.cfg, self.lamp, self.clock = cfg, lamp, clock
        self.alerts = 0
        self.last: Mapping[str, Any] | None = None  # the latest alert's data
        self._until: float | None = None  # clock.monotonic() when the lamp goes dark
        self._lock = threading.Lock()

    @property
    def lit(self) -> bool:
        return self._until is not None

    def on_event(self, env: Mapping[str, Any]) -> None:
        if env.get("type") != "feedback.alert":
            return
        data = env.get("data")
        with self._lock:
            self.alerts += 1
            self.last = data if isinstance(data, Mapping) else {}
            self._until = self.clock.monotonic() + self.cfg.alerts.hold_s
            log.warning("feedback alert: counter %s, ticket %s, staff %s",
                        self.last.get("counter"), self.last.get("number"),
                        self.last.get("staff"))
            self._set(True)

    def tick(self) -> None:
        with self._lock:
            if self._until is not None and self.clock.monotonic() >= self._until:
                self._until = None
                self._set(False)

    def _set(self, on: bool) -> None:
        try:
            if on:
                self.lamp.blink(BLINK_S, BLINK_S)
            else:
                self.lamp.off()
        except OSError as e:  # a dead lamp must not stop the branch
            log.warning("alert lamp: %s", e)
