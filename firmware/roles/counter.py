"""A counter's staff panel and satisfaction buttons.

Keys (each a dispatcher action ``counter.<id>.<key>``):

- ``next``: call the next ticket (on a paused counter: resume, then call);
  holding NEXT (or the ``pause`` key) pauses the counter.
- ``recall``: repeat the call; ``no_show``: close the called ticket as a no-show.
- ``transfer``: select a target service (each press moves to the next one in
  ``panel.transfer_targets``, shown on the counter board); ``done`` then
  transfers instead of closing. ``recall`` cancels a pending selection.
- ``done``: close the ticket; the rating buttons go live for
  ``engine.feedback_window_s`` (virtual time).
- ``rate.<n>``: rating ``n`` (1 = lowest), bound by the engine to the ticket
  this counter completed last; accepted presses blink the rating LED.

    >>> role = CounterRole(cfg, cfg.counter("c1"), engine, clock)
    >>> role.start()                 # opens the counter for its staff id
    >>> role.on_key("next")          # -> Ticket A001 called, board shows "A001"
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from tessera.clock import Clock
from tessera.config import BranchConfig, Counter
from tessera.roles.ports import EnginePort, Led, TextBoard

log = logging.getLogger(__name__)

CONFIRM_BLINK_S = 0.9
KEYS = ("next", "recall", "transfer", "no_show", "done", "pause")


class CounterRole:
    """Maps one counter's panel keys to engine commands and shows its current ticket."""

    def __init__(self, cfg: BranchConfig, counter: Counter, engine: EnginePort, clock: Clock,
                 *, board: TextBoard | None = None, rating_led: Led | None = None,
                 staff: str | None = None) -> None:
        self.cfg = cfg
        self.counter = counter
        self.engine = engine
        self.clock = clock
        self.board = board
        self.rating_led = rating_led
        self.staff = staff if staff is not None else (counter.staff or None)
        self.current: str | None = None  # ticket number being served
        self.current_service: str | None = None
        self.refusals: dict[str, int] = {}  # refusal code -> count
        self.paused = False
        self.transfer_choice: int | None = None  # index in panel.transfer_targets
        self._rating_until: float | None = None  # clock.monotonic() deadline
        self._lock = threading.RLock()
        self.refused = 0  # commands the engine rejected (queue empty, bad state...)
        self.last_error: str | None = None

    @property
    def id(self) -> str:
        return self.counter.id

    @property
    def transfer_targets(self) -> tuple[str, ...]:
        """Services TRANSFER can send the current ticket to (never its own service)."""
        targets = self.counter.panel.transfer_targets if self.counter.panel else ()
        return tuple(t for t in targets if t != self.current_service)

    def start(self) -> None:
        """Open the counter for its staff (idempotent from the engine's view)."""
        self._command(self.engine.open_counter, self.id, self.staff)
        self._show()

    # ------------------------------------------------------------------ keys

    def on_key(self, key: str, *, held: bool = False) -> Any:
        """Handle one panel key; returns the engine's answer or None when refused."""
        with self._lock:
            if key.startswith("rate."):
                return self.on_rating(int(key.split(".", 1)[1]))
            if key == "pause" or (key == "next" and held):
                return self._pause()
            handler = {
                "next": self._next, "recall": self._recall, "transfer": self._select_transfer,
                "no_show": self._no_show, "done": self._done,
            }.get(key)
            if handler is None:
                raise ValueError(f"unknown counter key {key!r}; use one of {', '.join(KEYS)}")
            return handler()

    def on_rating(self, score: int) -> Any:
        """A satisfaction button: live only inside the rating window after DONE."""
        with self._lock:
            if self._rating_until is None or self.clock.monotonic() > self._rating_until:
                self._rating_until = None
                return None
            rating = self._command(self.engine.rate, self.id, score)
            if rating is not None:
                self._rating_until = None  # one rating per ticket; later presses are ignored
                self._confirm_blink()
            return rating

    def tick(self) -> None:
        """Close an expired rating window (its LED goes off)."""
        with self._lock:
            if self._rating_until is not None and self.clock.monotonic() > self._rating_until:
                self._rating_until = None
                if self.rating_led is not None:
                    self.rating_led.off()

    def _confirm_blink(self) -> None:
        led = self.rating_led
        if led is None:
            return
        led.blink(0.15, 0.15)
        # real time on purpose: the customer watches the blink, not the virtual clock
        timer = threading.Timer(CONFIRM_BLINK_S, led.off)
        timer.daemon = True
        timer.start()

    @property
    def rating_live(self) -> bool:
        return self._rating_until is not None and self.clock.monotonic() <= self._rating_until

    def _next(self) -> Any:
        if self.paused:
            self._command(self.engine.resume, self.id)
            self.paused = False
        ticket = self._command(self.engine.call_next, self.id)
        if ticket is not None:
            self.current = ticket.number
            self.current_service = getattr(ticket, "service", None)
            self.transfer_choice = None
        self._show()
        return ticket

    def _recall(self) -> Any:
        self.transfer_choice = None
        ticket = self._command(self.engine.recall, self.id)
        self._show()
        return ticket

    def _no_show(self) -> Any:
        ticket = self._command(self.engine.no_show, self.id)
        if ticket is not None:
            self.current = None
            self.transfer_choice = None
        self._show()
        return ticket

    def _select_transfer(self) -> Any:
        targets = self.transfer_targets
        if not targets or self.current is None:
            return None
        self.transfer_choice = 0 if self.transfer_choice is None else \
            (self.transfer_choice + 1) % len(targets)
        self._show()
        return targets[self.transfer_choice]

    def _done(self) -> Any:
        if self.transfer_choice is not None:
            target = self.transfer_targets[self.transfer_choice]
            self.transfer_choice = None
            ticket = self._command(self.engine.transfer, self.id, target)
            if ticket is not None:
                self.current = None
            self._show()
            return ticket
        ticket = self._command(self.engine.done, self.id)
        if ticket is not None:
            self.current = None
            self._rating_until = self.clock.monotonic() + self.cfg.engine.feedback_window_s
            if self.rating_led is not None:
                self.rating_led.on()  # "rate us now"
        self._show()
        return ticket

    def _pause(self) -> Any:
        state = self._command(self.engine.pause, self.id)
        if state is not None:
            self.paused = True
        self._show()
        return state

    # ------------------------------------------------------------------ events

    def on_event(self, env: dict[str, Any]) -> None:
        """Keep the board right when the engine changes this counter from elsewhere."""
        data = env.get("data", {})
        if data.get("counter") != self.id:
            return
        with self._lock:
            t = env.get("type")
            if t in ("ticket.called", "ticket.recalled"):
                self.current = data.get("number")
                self.current_service = data.get("service")
            elif t in ("ticket.done", "ticket.no_show", "ticket.transferred") and \
                    self.current == data.get("number"):
                self.current = None
            elif t == "counter.paused":
                self.paused = True
            elif t == "counter.resumed":
                self.paused = False
            else:
                return
            self._show()

    # ------------------------------------------------------------------ helpers

    def board_text(self) -> str:
        if self.transfer_choice is not None:
            return f"{self.current or ''}>{self.transfer_targets[self.transfer_choice]}"
        if self.paused:
            return "PAUSED"
        return self.current or "----"

    def _show(self) -> None:
        if self.board is None:
            return
        try:
            self.board.show(self.board_text())
        except OSError as e:  # a dead counter sign must not stop the teller
            log.warning("counter %s board: %s", self.id, e)

    def _command(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as e:
            code = getattr(e, "code", None)
            if code is None and not isinstance(e, (ValueError, RuntimeError, OSError)):
                raise
            self.refused += 1
            self.last_error = str(code or type(e).__name__)
            self.refusals[self.last_error] = self.refusals.get(self.last_error, 0) + 1
            log.info("counter %s: %s refused: %s", self.id, getattr(fn, "__name__", fn), e)
            return None
