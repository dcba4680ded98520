"""What the teller does reaches the counter's serial sign, end to end (issue 15).

The branch is assembled by ``tessera.wiring.build_branch`` (what ``tessera run all``
builds): the counter panel on gpiozero mock pins -> ring -> dispatcher -> router ->
counter role; engine events and the panel's ``counter.notice`` on the bus -> display
role -> Alpha signs on a pty (``tessera.sim.board.BoardEmulator``, its own decoder),
and the manager's alert lamp on a mock pin. Each assertion reads what a sign shows."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tessera.clock import VirtualClock
from tessera.config import load_config
from tessera.roles.branch import Branch
from tessera.sim.board import BoardEmulator
from tessera.sim.scenario import press_pin
from tessera.wiring import build_branch

pytestmark = pytest.mark.timeout(120)
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
PINS = {"next": 5, "recall": 6, "transfer": 13, "no_show": 19, "done": 26}
RATINGS = (20, 21, 16)
LAMP = 12
HOLD_S = 1.2  # gpio.hold_ms = 600: a tap (5 ms) and a hold are far apart under load

CONFIG = """
[branch]
tenant = "acme"
branch = "b1"
timezone = "UTC"
[clock]
trust = "always"
[storage]
dir = "var"
[engine]
{engine}
[[services]]
id = "cash"
prefix = "A"
names = {{ en = "Cash" }}
[[services]]
id = "loans"
prefix = "L"
names = {{ en = "Loans" }}
[[services]]
id = "fx"
prefix = "F"
names = {{ en = "FX" }}
[[counters]]
id = "c1"
number = 1
services = [{{ service = "cash" }}]
staff = "t-001"
board_address = "11"
rating_scale = 3
[counters.panel]
next = 5
recall = 6
transfer = 13
no_show = 19
done = 26
ratings = [20, 21, 16]
transfer_targets = ["loans", "fx"]
[gpio]
debounce_ms = 2
hold_ms = 600
repeat_ms = 0
[board]
url = "{url}"
hall_address = "01"
ping_interval_s = 0
notice_s = 4
[voice]
enabled = false
[alerts]
lamp = 12
board_address = "21"
hold_s = 300
"""


@dataclass
class Hall:
    branch: Branch
    emu: BoardEmulator
    clock: VirtualClock
    pins: Any
    presses: int = 0
    notices: list[dict[str, Any]] | None = None  # counter.notice envelopes on the bus

    @property
    def engine(self) -> Any:
        return self.branch.engine

    def press(self, key: str, *, hold: bool = False) -> None:
        pin = self.pins.pin(PINS[key] if key in PINS else RATINGS[int(key) - 1])
        press_pin(pin, hold_s=HOLD_S if hold else 0.005, settle_s=0.005)
        self.presses += 1
        assert self.branch.router.wait_for(self.presses, 20), f"{key} not handled"

    def sign(self, addr: str = "11") -> str:
        return self.emu.text(addr)

    def shows(self, text: str, addr: str = "11") -> None:
        until(lambda: self.sign(addr) == text, f"sign {addr} shows {text!r}",
              lambda: self.sign(addr))

    def waiting(self, n: int, service: str = "cash") -> list[str]:
        out = []
        for _ in range(n):
            t = self.engine.issue(service)
            self.engine.confirm_printed(t.id)
            out.append(t.number)
        return out

    def events(self, type_: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.engine.events_since(0, 100_000) if e["type"] == type_]

    def counter(self) -> dict[str, Any]:
        return dict(self.engine.snapshot()["counters"]["c1"])


def until(cond: Callable[[], Any], what: str, got: Callable[[], Any] = lambda: None,
          timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout_s} s: {what} (got {got()!r})")


@pytest.fixture
def hall(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Hall]:
    engine = getattr(request, "param", "")
    with BoardEmulator() as emu:
        path = tmp_path / "branch.toml"
        path.write_text(CONFIG.format(url=emu.path, engine=engine), encoding="utf-8")
        cfg = load_config(path)
        clock = VirtualClock(START)
        branch = build_branch(cfg, clock, roles=("engine", "counter", "display"), sim=True)
        try:
            h = Hall(branch, emu, clock, branch.factories["main"], notices=[])
            branch.bus.subscribe(lambda env: h.notices.append(env)  # type: ignore[union-attr]
                                 if env.get("type") == "counter.notice" else None)
            h.shows("---")
            yield h
            assert branch.router.failed == 0
        finally:
            branch.close()


def test_refusals_show_briefly_then_the_ticket(hall: Hall) -> None:
    hall.press("next")                          # nobody waiting
    hall.shows("queue empty")
    hall.clock.advance(hall.branch.cfg.board.notice_s)  # board.notice_s, virtual time
    hall.shows("---")
    hall.waiting(2)
    hall.press("next")
    hall.shows("A001")
    hall.press("next")                          # the customer is still here
    hall.shows("busy")
    # the panel's own event, from its device's outbox (counter-main), is what the sign showed
    assert hall.notices is not None
    first = hall.notices[0]
    assert first["device"] == "counter-main" and first["data"] == {
        "counter": "c1", "counter_number": 1, "kind": "refused", "text": "queue empty",
        "code": "queue-empty"}
    assert [n["data"]["text"] for n in hall.notices] == ["queue empty", "busy"]
    hall.clock.advance(hall.branch.cfg.board.notice_s)
    hall.shows("A001")


def test_the_transfer_target_shows_while_cycling(hall: Hall) -> None:
    hall.waiting(2)
    hall.press("next")
    hall.shows("A001")
    hall.press("transfer")
    hall.shows("A001>loans")
    hall.press("transfer")
    hall.shows("A001>fx")
    hall.press("recall")                        # cancels the choice
    hall.shows("A001")
    hall.press("transfer")
    hall.shows("A001>loans")
    hall.press("done")                          # transfers to loans
    hall.shows("---")
    assert hall.notices is not None
    assert [(n["data"]["kind"], n["data"]["text"]) for n in hall.notices] == [
        ("choosing", "A001>loans"), ("choosing", "A001>fx"), ("choosing", ""),
        ("choosing", "A001>loans"), ("choosing", "")]
    assert hall.events("ticket.transferred")[0]["to_service"] == "loans"


def test_held_no_show_calls_the_customer_back(hall: Hall) -> None:
    hall.waiting(2)
    hall.press("next")
    hall.press("no_show")
    hall.shows("---")
    assert hall.engine.snapshot()["no_shows"]["walk_in"] == 1
    hall.press("no_show", hold=True)            # they came after all: called back here
    hall.shows("A001")
    assert [e["then"] for e in hall.events("ticket.no_show_undone")] == ["called"]
    assert hall.counter()["current"]["number"] == "A001"
    hall.press("done")
    hall.press("next")
    hall.shows("A002")


def test_held_no_show_while_busy_puts_it_back_at_the_head(hall: Hall) -> None:
    hall.waiting(3)
    hall.press("next")
    hall.press("no_show")                       # A001 gone
    hall.press("next")
    hall.shows("A002")
    hall.press("no_show", hold=True)            # A001 turns up while A002 is served
    assert [e["then"] for e in hall.events("ticket.no_show_undone")] == ["front"]
    hall.shows("A002")
    hall.press("done")
    hall.press("next")
    hall.shows("A001")                          # before A003
    hall.press("no_show", hold=True)            # nothing left to undo
    hall.shows("nothing to undo")


def test_pause_while_called_pauses_after_this_customer(hall: Hall) -> None:
    hall.waiting(2)
    hall.press("next")
    hall.shows("A001")
    hall.press("next", hold=True)               # hold NEXT: pause
    hall.shows("A001 then pause")
    assert hall.counter()["state"] == "open" and hall.counter()["pause_pending"]
    hall.press("done")
    hall.shows("paused")
    assert hall.events("counter.paused")[-1]["after"] == "A001"
    hall.press("next")                          # resume and call
    hall.shows("A002")


@pytest.mark.parametrize("hall", ['pause_while_called = "refuse"'], indirect=True)
def test_pause_while_called_refused_says_so(hall: Hall) -> None:
    hall.waiting(1)
    hall.press("next")
    hall.press("next", hold=True)
    hall.shows("finish first")
    assert hall.counter()["state"] == "open" and not hall.counter()["pause_pending"]
    assert hall.branch.counters["c1"].last_error == "ticket-open"
    hall.clock.advance(hall.branch.cfg.board.notice_s)
    hall.shows("A001")
    hall.press("done")
    hall.shows("---")
    assert hall.counter()["state"] == "open"


def test_a_lowest_rating_lights_the_managers_lamp_and_sign(hall: Hall) -> None:
    lamp = hall.pins.pin(LAMP)
    hall.waiting(1)
    hall.press("next")
    hall.press("done")
    hall.shows("", "21")
    hall.press("1")                              # the lowest of three buttons
    hall.shows("ALERT 1 A001", "21")
    until(lambda: any(s.state for s in lamp.states), "the lamp lights")
    [alert] = hall.events("feedback.alert")
    assert {k: alert[k] for k in ("number", "counter", "staff", "priority")} == {
        "number": "A001", "counter": "c1", "staff": "t-001", "priority": "high"}
    assert hall.branch.alert_lamp.lit
    hall.clock.advance(hall.branch.cfg.alerts.hold_s)
    hall.branch.tick()
    hall.shows("", "21")
    assert not hall.branch.alert_lamp.lit
    time.sleep(0.3)  # a blink thread stopped by off() leaves the pin low
    assert lamp.state == 0
