"""Counter and kiosk role logic against a small engine stand-in (the real engine is
exercised end to end in test_demo): rating window, transfer selection, pause by hold,
closed services, printer faults and LEDs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from tessera.clock import VirtualClock
from tessera.config import BranchConfig, load_config
from tessera.dispatch import Act, Binding, ButtonAction, bindings_from_config
from tessera.engine.errors import PastClosing, QueueEmpty
from tessera.engine.models import CounterState
from tessera.roles.counter import CounterRole
from tessera.roles.glue import ActionRouter
from tessera.roles.kiosk import KioskRole


@dataclass
class T:
    """The fields of an engine Ticket a counter reads."""

    number: str
    service: str = "cash"


class StubEngine:
    """Hands out A001, A002...; keeps one current ticket per counter."""

    def __init__(self) -> None:
        self.waiting: list[str] = []
        self.current: dict[str, str] = {}
        self.log: list[tuple[str, Any]] = []

    def _rec(self, name: str, *args: Any) -> None:
        self.log.append((name, args))

    def open_counter(self, counter: str, staff: str | None = None) -> Any:
        self._rec("open", counter, staff)

    def close_counter(self, counter: str) -> Any:
        self._rec("close", counter)

    def call_next(self, counter: str) -> T:
        if not self.waiting:
            raise QueueEmpty("nobody waiting")
        self.current[counter] = self.waiting.pop(0)
        self._rec("call", counter)
        return T(self.current[counter])

    def done(self, counter: str) -> T:
        self._rec("done", counter)
        return T(self.current.pop(counter))

    def transfer(self, counter: str, service: str) -> T:
        self._rec("transfer", counter, service)
        return T(self.current.pop(counter))

    def pause(self, counter: str) -> CounterState:
        self._rec("pause", counter)
        return CounterState(counter, 1, "paused", "", None)

    def resume(self, counter: str) -> str:
        self._rec("resume", counter)
        return "open"

    def rate(self, counter: str, score: int) -> str:
        self._rec("rate", counter, score)
        return "bound"

    def recall(self, counter: str) -> T:
        return T(self.current[counter])

    def no_show(self, counter: str) -> T:
        return T(self.current.pop(counter))


class Blinker:
    def __init__(self) -> None:
        self.lit: bool | None = None
        self.blinks = 0

    def on(self) -> None:
        self.lit = True

    def off(self) -> None:
        self.lit = False

    def blink(self, on_time: float = 1, off_time: float = 1) -> None:
        self.blinks += 1


@pytest.fixture
def cfg(bank_config_path: Path) -> BranchConfig:
    return load_config(bank_config_path)


def _counter(cfg: BranchConfig) -> tuple[CounterRole, StubEngine, VirtualClock, Blinker]:
    clock = VirtualClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    eng = StubEngine()
    led = Blinker()
    role = CounterRole(cfg, cfg.counter("c1"), eng, clock,  # type: ignore[arg-type]  # stand-in
                       rating_led=led)
    role.start()
    return role, eng, clock, led


def test_ratings_live_only_inside_window_after_done(cfg: BranchConfig) -> None:
    role, eng, clock, led = _counter(cfg)
    assert role.on_rating(3) is None  # nothing done yet: not live
    eng.waiting = ["A001", "A002"]
    called = role.act(Act.NEXT)
    assert isinstance(called, T) and called.number == "A001"
    assert role.board_text() == "A001"
    role.act(Act.DONE)
    assert led.lit is True  # window open: the rating LED invites a press
    clock.advance(cfg.engine.feedback_window_s - 1)
    assert cast(object, role.on_rating(3)) == "bound"  # the stand-in answers a status
    assert led.blinks == 1
    assert role.on_rating(2) is None  # one rating per ticket
    role.act(Act.NEXT)
    role.act(Act.DONE)
    clock.advance(cfg.engine.feedback_window_s + 1)
    role.tick()
    assert led.lit is False
    assert role.on_rating(1) is None  # window over
    assert [a for n, a in eng.log if n == "rate"] == [("c1", 3)]


def test_transfer_cycles_targets_and_done_commits(cfg: BranchConfig) -> None:
    role, eng, _, _ = _counter(cfg)
    eng.waiting = ["A001"]
    role.act(Act.NEXT)
    assert role.act(Act.TRANSFER) == "accounts"
    assert role.act(Act.TRANSFER) == "loans"
    assert role.board_text() == "A001>loans"
    role.act(Act.DONE)
    assert ("transfer", ("c1", "loans")) in eng.log
    assert role.current is None and not role.rating_live


def test_hold_next_pauses_and_next_resumes(cfg: BranchConfig) -> None:
    role, eng, _, _ = _counter(cfg)
    role.act(Act.PAUSE)
    assert role.paused and role.board_text() == "PAUSED"
    eng.waiting = ["A001"]
    role.act(Act.NEXT)
    names = [n for n, _ in eng.log]
    assert names[-2:] == ["resume", "call"]
    assert not role.paused


def test_empty_queue_is_refused_not_raised(cfg: BranchConfig) -> None:
    role, _, _, _ = _counter(cfg)
    assert role.act(Act.NEXT) is None
    assert role.refused == 1 and role.last_error == "queue-empty"
    with pytest.raises(ValueError, match="no kiosk buttons"):
        role.act(Act.ISSUE)


class StubIssuer:
    def __init__(self) -> None:
        self.state = "ok"
        self.n = 0
        self.beeps = 0
        self.closed: set[str] = set()

    def issue(self, service: str, priority: str | None = None) -> T:
        if service in self.closed:
            raise PastClosing(f"{service} closes soon")
        if self.state not in ("ok", "near_end"):
            raise OSError(f"printer {self.state}")
        self.n += 1
        return T(f"A{self.n:03d}")

    def check_in(self, code: str) -> T:
        return self.issue("cash")

    def printer_state(self) -> str:
        return self.state

    def refresh(self) -> str:
        return self.state

    def beep(self) -> None:
        self.beeps += 1

    # the kiosk's records (issue 15); the real ones: tests/branch/test_kiosk_refusals.py
    wait: float | None = 0.0
    reported: tuple[tuple[str, str], ...] = ()

    def report_refusal(self, key: str, service: str, reason: str, at: str) -> None:
        self.reported = (*self.reported, (service, reason))

    slipped: tuple[str, ...] = ()

    def print_slip(self, reason: str, service: str, now: datetime) -> bool:
        self.slipped = (*self.slipped, reason)
        return True

    def reprint(self, ticket_id: str | None = None, *, last: bool = False) -> T:
        return T(f"A{self.n:03d}")

    def estimate(self, service: str) -> float | None:
        return self.wait


def test_kiosk_leds_follow_printer_and_closing(cfg: BranchConfig) -> None:
    issuer = StubIssuer()
    leds = {k: Blinker() for k in ("ready", "printer_warning", "printer_fault", "closed")}
    button_leds = {0: Blinker(), 1: Blinker()}
    kiosk = KioskRole(cfg, issuer, leds=leds,  # type: ignore[arg-type]  # stand-ins
                      button_leds=button_leds)  # type: ignore[arg-type]
    kiosk.refresh()
    assert leds["ready"].lit and not leds["printer_fault"].lit
    assert kiosk.press(0).number == "A001"
    issuer.state = "out"
    out = kiosk.press(0)
    assert not out.ok and out.code == "printer-fault" and issuer.beeps == 1
    assert leds["printer_fault"].lit and not leds["ready"].lit
    issuer.state = "ok"
    assert kiosk.press(0).number == "A002"  # refill: resumes, no number skipped
    issuer.closed.add("accounts")
    refused = kiosk.press(1)
    assert refused.code == "past-closing" and issuer.beeps == 2
    assert button_leds[1].lit is False and button_leds[0].lit is True


def test_bindings_and_router(cfg: BranchConfig) -> None:
    pins = {b.pin: b for b in bindings_from_config(cfg, "main")}
    assert pins[17] == Binding(17, Act.ISSUE, "cash")
    assert pins[5] == Binding(5, Act.NEXT, "c1", hold_action=Act.PAUSE)
    assert pins[16] == Binding(16, Act.RATE, "c1", 3)
    issuer = StubIssuer()
    role, eng, _, _ = _counter(cfg)
    router = ActionRouter(kiosk=KioskRole(cfg, issuer),  # type: ignore[arg-type]  # stand-in
                          counters={"c1": role})
    router.handle(ButtonAction(Act.ISSUE, pins[17], 0))
    eng.waiting = ["A001"]
    router.handle(ButtonAction(Act.NEXT, pins[5], 0))
    assert role.current == "A001"
    router.handle(ButtonAction(Act.NEXT, Binding(5, Act.NEXT, "nope"), 0))
    assert router.unknown == 1 and router.handled == 3


def test_real_dispatcher_feeds_router(cfg: BranchConfig) -> None:
    from tessera.cext import PRESS, RELEASE, Ring
    from tessera.dispatch import Dispatcher, Timing, bindings_from_config

    issuer = StubIssuer()
    role, eng, _, _ = _counter(cfg)
    router = ActionRouter(kiosk=KioskRole(cfg, issuer),  # type: ignore[arg-type]  # stand-in
                          counters={"c1": role})
    disp = Dispatcher(Ring(64), bindings_from_config(cfg, "main"), router.on_button,
                      timing=Timing(debounce_ms=1, hold_ms=50, stuck_ms=10_000, repeat_ms=1))
    ms = 1_000_000
    disp.feed(0, 17, PRESS, 1)  # kiosk cash button
    disp.feed(5 * ms, 17, RELEASE, 0)
    eng.waiting = ["A001"]
    disp.feed(10 * ms, 5, PRESS, 1)  # NEXT at c1, held past hold_ms -> a pause, no call
    disp.advance(70 * ms)
    disp.feed(80 * ms, 5, RELEASE, 0)
    assert issuer.n == 1
    assert role.current is None and eng.waiting == ["A001"]  # nobody was called
    assert role.paused
    assert [n for n, _ in eng.log][-1:] == ["pause"] and "call" not in [n for n, _ in eng.log]
    disp.feed(200 * ms, 5, PRESS, 1)  # a tap of NEXT: acts on its release
    disp.feed(220 * ms, 5, RELEASE, 0)
    assert role.current == "A001" and not role.paused


def test_kiosk_follows_opening_hours_and_closing_cutoff(cfg: BranchConfig) -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(cfg.branch.timezone)
    clock = VirtualClock(datetime(2026, 3, 2, 8, 30, tzinfo=tz))  # a Monday, before opening
    issuer = StubIssuer()
    leds = {k: Blinker() for k in ("ready", "printer_warning", "printer_fault", "closed")}
    button_leds = {i: Blinker() for i in range(len(cfg.kiosk.buttons))}
    kiosk = KioskRole(cfg, issuer, clock=clock,  # type: ignore[arg-type]  # stand-ins
                      leds=leds, button_leds=button_leds)  # type: ignore[arg-type]
    kiosk.refresh()
    assert leds["closed"].lit and not leds["ready"].lit
    assert all(not led.lit for led in button_leds.values())

    clock.advance(3600 + 49 * 60)  # 10:19... then past-closing for accounts at 11:49
    kiosk.refresh()
    assert leds["ready"].lit and not leds["closed"].lit and button_leds[1].lit
    clock.advance(90 * 60)
    issuer.closed.add("accounts")
    issuer.wait = 3600.0  # a new ticket would wait past 12:00
    assert kiosk.press(1).code == "past-closing"
    assert kiosk.last is not None and kiosk.last.reason == "past_closing"
    assert issuer.reported == ()  # the engine records its own refusals
    assert kiosk.press(1).reason == "past_closing"  # pressed again at once
    assert issuer.slipped == ("past_closing",)  # one slip: the customer holds it already
    kiosk.refresh()
    assert button_leds[1].lit is False and button_leds[0].lit is True
    clock.advance(60)  # 11:50: still past closing: the button stays dark
    kiosk.refresh()
    assert button_leds[1].lit is False
    issuer.wait = 300.0  # the queue moved: a new ticket is served before 12:00
    issuer.closed.clear()
    kiosk.refresh()
    assert button_leds[1].lit is True  # not dark for the rest of the span (issue 15)
    assert kiosk.press(1).ok
    clock.advance(75 * 60)  # 13:05: the afternoon span
    kiosk.refresh()
    assert button_leds[1].lit is True
    assert kiosk.press(1).ok
