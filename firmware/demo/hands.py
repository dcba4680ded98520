"""The scenario's hands in the demo: press mock GPIO pins, type booking codes.

Each press waits until the dispatcher has handed the action to its role (the
router's ``handled`` count), so virtual time only moves on once the press had
its effect, exactly as a person waits for the ticket before walking off. Then
the bus is drained: the events that press committed reach every subscriber (a
counter role keeps its ``current`` ticket from them) before the scenario reads
a role's state or moves the clock, so the same seed plays the same day however
the threads happen to be scheduled.

    hands = PinHands(cfg, branch, clock, start)
    hands.take_ticket(0)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import IO, Any

from tessera.clock import VirtualClock
from tessera.config import BranchConfig
from tessera.roles.counter import CounterRole
from tessera.roles.glue import ActionRouter
from tessera.roles.kiosk import KioskRole
from tessera.sim.scenario import press_pin

log = logging.getLogger(__name__)


class PinHands:
    """``tessera.sim.scenario.Hands`` on gpiozero mock pins."""

    def __init__(self, cfg: BranchConfig, *, router: ActionRouter,
                 counters: dict[str, CounterRole], factories: dict[str, Any],
                 clock: VirtualClock, start: datetime,
                 kiosk: KioskRole | None = None, scanner: IO[str] | None = None,
                 tick: Callable[[], Any] | None = None, tick_every_s: float = 30.0,
                 timeout_s: float = 20.0, bus: Any = None) -> None:
        self.cfg = cfg
        self.router = router
        self.counters = counters
        self.factories = factories
        self.clock = clock
        self.start = start
        self.kiosk = kiosk
        self.scanner = scanner
        self._tick = tick
        self._tick_every_s = tick_every_s
        self._next_tick = 0.0
        self.timeout_s = timeout_s
        self.bus = bus  # tessera.bus.Bus (drained after every action), or None
        self.lost_presses = 0
        self.bus_timeouts = 0  # drains that timed out (the day may then differ per run)
        self.hold_s = cfg.gpio.hold_ms / 1000.0 + 0.03
        self.settle_s = cfg.gpio.debounce_ms / 1000.0 + 0.0005

    def advance_to(self, t_s: float) -> None:
        target = self.start + timedelta(seconds=t_s)
        delta = (target - self.clock.now()).total_seconds()
        if delta > 0:
            self.clock.advance(delta)
        if self._tick is not None and t_s >= self._next_tick:
            self._next_tick = t_s + self._tick_every_s
            self._tick()
            self._settle()  # the tick may have committed events (an expired window...)

    def take_ticket(self, button: int) -> None:
        b = self.cfg.kiosk.buttons[button]
        self._press(self.cfg.kiosk.device, b.pin)

    def scan(self, code: str) -> None:
        """The scanner types the code and Enter into the kiosk's check-in input."""
        if self.scanner is None or self.kiosk is None:
            return
        expected = self.kiosk.attempts + 1
        self.scanner.write(code + "\n")
        self.scanner.flush()
        if not self.kiosk.wait_attempts(expected, self.timeout_s):
            self.lost_presses += 1
            log.warning("scan of %s had no effect within %.0f s", code, self.timeout_s)
        self._settle()

    def staff(self, counter: str, key: str) -> None:
        c = self.cfg.counter(counter)
        assert c.panel is not None
        if key == "pause" and c.panel.pause is None:
            # holding NEXT pauses, but its tap also calls a ticket: the simulated
            # teller of a panel without a PAUSE key just takes no break
            return
        pin = getattr(c.panel, key)
        if pin is not None:
            self._press(c.device, pin)

    def rate(self, counter: str, score: int) -> None:
        c = self.cfg.counter(counter)
        if c.panel is not None and 1 <= score <= len(c.panel.ratings):
            self._press(c.device, c.panel.ratings[score - 1])

    def current(self, counter: str) -> str | None:
        role = self.counters.get(counter)
        return role.current if role is not None else None

    def _press(self, device: str, pin: int, *, hold_s: float = 0.0) -> None:
        expected = self.router.handled + 1
        mock = self.factories[device].pin(pin)
        press_pin(mock, hold_s=hold_s, settle_s=self.settle_s)
        mock.clear_states()  # MockPin records every change; a day of presses would pile up
        if not self.router.wait_for(expected, self.timeout_s):
            self.lost_presses += 1
            log.warning("press on %s pin %d had no effect within %.0f s", device, pin,
                        self.timeout_s)
        self._settle()

    def _settle(self) -> None:
        """Wait (bounded) until the bus delivered every event committed so far."""
        if self.bus is not None and not self.bus.drain(self.timeout_s):
            self.bus_timeouts += 1
            log.warning("bus not drained within %.0f s", self.timeout_s)
