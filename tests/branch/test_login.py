"""Staff login at a counter (issue #7) against the real engine on a SQLite file in tmp_path:
codes typed on the rating buttons, lockout, partial-code timeout, logout by holding DONE,
and the staff id on the events; one run through mock GPIO pins and the dispatcher."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tessera.clock import VirtualClock
from tessera.config import BranchConfig, parse_config
from tessera.dispatch import Act
from tessera.engine import Engine, always_trusted
from tessera.engine.models import CounterState, Rating, Ticket
from tessera.roles.counter import LOGIN_IDLE_S, LOGIN_LOCK_S, LOGIN_NOTICE_S, CounterRole
from tessera.roles.glue import ActionRouter

A = TypeVar("A")


def _as(kind: type[A], answer: object) -> A:
    """The counter's answer to a key, as the engine's own type (None: refused)."""
    assert isinstance(answer, kind), answer
    return answer

ANN, BOB = "13231", "2113"  # rating buttons 1..3 of c1 (1 = lowest)

TOML = """
[branch]
tenant = "acme"
branch = "b1"
timezone = "UTC"

[clock]
trust = "always"

[[services]]
id = "cash"
prefix = "A"
names = { en = "Cash" }

[[counters]]
id = "c1"
number = 1
services = [{ service = "cash" }]
panel = { next = 5, recall = 6, no_show = 19, done = 26, ratings = [20, 21, 16], login = true }
rating_scale = 3

[[counters]]
id = "c2"
number = 2
services = [{ service = "cash" }]
staff = "t-bob"
panel = { next = 12, done = 8, ratings = [0, 1, 11], login = true }
rating_scale = 3

[[staff]]
id = "t-ann"
name = "Ann"
code = "13231"

[[staff]]
id = "t-bob"
code = "2113"
"""


class Sign:
    """A one-line counter sign: it shows the last text it was sent."""

    def __init__(self) -> None:
        self.text = ""

    def show(self, text: str) -> None:
        self.text = text


class Lamp:
    def __init__(self) -> None:
        self.lit = False

    def on(self) -> None:
        self.lit = True

    def off(self) -> None:
        self.lit = False

    def blink(self, on_time: float = 1, off_time: float = 1) -> None:
        self.lit = True


class Desk:
    """One login counter wired to a real engine; ``events()`` reads the engine's outbox."""

    def __init__(self, tmp_path: Path, counter: str = "c1") -> None:
        self.cfg: BranchConfig = parse_config(TOML, base_dir=tmp_path)
        self.clock = VirtualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        self.db = tmp_path / "engine.db"
        self.engine = Engine.open(self.cfg, self.clock, self.db, trust=always_trusted)
        self.sign = Sign()
        self.lamp = Lamp()
        self.role = CounterRole(self.cfg, self.cfg.counter(counter), self.engine, self.clock,
                                board=self.sign, rating_led=self.lamp)
        self.role.start()

    def type_code(self, code: str, *, gap_s: float = 0.5) -> Any:
        for d in code:
            assert self.role.act(Act.RATE, int(d)) is None
            self.clock.advance(gap_s)
        return self.role.act(Act.DONE)

    def issue(self, n: int = 1) -> list[str]:
        out = []
        for _ in range(n):
            t = self.engine.issue("cash")
            self.engine.confirm_printed(t.id)
            out.append(t.number)
        return out

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.db)
        try:
            rows = [json.loads(b) for (b,) in conn.execute("SELECT body FROM outbox ORDER BY seq")]
        finally:
            conn.close()
        return [e for e in rows if type_ is None or e["type"] == type_]

    def state(self) -> dict[str, Any]:
        counter: dict[str, Any] = self.engine.snapshot()["counters"][self.role.id]
        return counter

    def close(self) -> None:
        self.engine.close()


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    d = Desk(tmp_path)
    yield d
    d.close()


def test_logged_out_counter_is_closed_and_refuses_staff_keys(desk: Desk) -> None:
    assert desk.role.logged_out and desk.sign.text == "LOGIN"
    assert desk.state()["state"] == "closed"
    assert desk.events("counter.opened") == []  # start() did not open it
    desk.issue()
    for key in ("next", "recall", "transfer", "no_show", "pause"):
        assert desk.role.act(Act(key)) is None
    assert desk.role.act(Act.PAUSE) is None
    assert desk.role.refusals == {"logged_out": 6}
    assert desk.events("ticket.called") == []
    assert desk.engine.snapshot()["services"]["cash"]["waiting"] == 1
    assert desk.sign.text == "LOGIN"


def test_right_code_opens_the_counter_and_calls_carry_that_staff_id(
        desk: Desk, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    desk.issue(2)
    shown = []
    for d in ANN:
        desk.role.act(Act.RATE, int(d))
        shown.append(desk.sign.text)
    assert shown == ["*", "**", "***", "****", "*****"]
    state = _as(CounterState, desk.role.act(Act.DONE))
    assert state.state == "open" and state.staff == "t-ann"
    assert desk.sign.text == "t-ann"  # greeting, then the normal board
    desk.clock.advance(LOGIN_NOTICE_S)
    desk.role.tick()
    assert desk.sign.text == "----"
    assert desk.state()["state"] == "open" and desk.state()["staff"] == "t-ann"
    assert [e["data"]["staff"] for e in desk.events("counter.opened")] == ["t-ann"]

    ticket = _as(Ticket, desk.role.act(Act.NEXT))
    assert desk.sign.text == ticket.number == "A001"
    [called] = desk.events("ticket.called")
    assert called["data"]["staff"] == "t-ann" and called["data"]["number"] == "A001"
    # rating keys are ratings again once logged in
    desk.role.act(Act.DONE)
    assert _as(Rating, desk.role.act(Act.RATE, 3)).status == "bound"
    assert [e["data"]["staff"] for e in desk.events("feedback.rated")] == ["t-ann"]

    bodies = json.dumps(desk.events())
    assert '"code"' not in bodies and ANN not in bodies
    assert "t-ann logged in" in caplog.text and ANN not in caplog.text


def test_three_wrong_codes_lock_the_pad_for_30_s(desk: Desk) -> None:
    assert desk.type_code("111") is None
    assert desk.sign.text == "ERR" and desk.role.refusals == {"bad_login": 1}
    desk.role.act(Act.RATE, 2)
    assert desk.sign.text == "*"  # the next key clears ERR
    desk.role.act(Act.DONE)
    assert desk.type_code("3333") is None
    assert desk.role.refusals["bad_login"] == 3
    assert desk.sign.text == "LOCKED"
    locked_at = desk.clock.monotonic()

    # the right code is ignored while locked, digit by digit
    assert desk.type_code(ANN, gap_s=0.1) is None
    assert desk.role.refusals["locked"] == len(ANN) + 1
    assert desk.role.logged_out and desk.state()["state"] == "closed"
    desk.clock.advance(locked_at + LOGIN_LOCK_S - 0.1 - desk.clock.monotonic())
    desk.role.tick()
    assert desk.sign.text == "LOCKED"
    desk.clock.advance(0.1)
    desk.role.tick()
    assert desk.sign.text == "LOGIN"  # the lock ran out on the clock, not on a key
    assert desk.type_code(ANN).staff == "t-ann"
    assert desk.role.refusals["bad_login"] == 3


def test_a_right_code_resets_the_wrong_code_count(desk: Desk) -> None:
    desk.type_code("222")
    desk.type_code("333")
    assert desk.type_code(ANN) is not None
    desk.role.act(Act.DONE)  # a tap (no ticket), then the hold: log out
    assert _as(CounterState, desk.role.act(Act.LOGOUT)).state == "closed"
    desk.type_code("222")
    desk.type_code("333")
    assert desk.sign.text == "ERR"  # two in a row, not four: not locked
    assert desk.type_code(BOB).staff == "t-bob"


def test_a_partial_code_is_dropped_after_10_s_without_a_key(desk: Desk) -> None:
    for d in ANN[:2]:
        desk.role.act(Act.RATE, int(d))
    desk.clock.advance(LOGIN_IDLE_S)
    desk.role.tick()
    assert desk.sign.text == "LOGIN"
    # the rest alone is a wrong code; without the drop it would have completed ANN
    assert desk.type_code(ANN[2:]) is None
    assert desk.role.refusals == {"bad_login": 1}
    # each key restarts the idle time: slow but steady typing still logs in
    assert desk.type_code(ANN, gap_s=LOGIN_IDLE_S - 1).staff == "t-ann"


def test_logout_refused_with_a_ticket_allowed_after_done(desk: Desk) -> None:
    desk.issue()
    desk.type_code(ANN)
    desk.role.act(Act.NEXT)
    assert desk.role.act(Act.LOGOUT) is None
    assert desk.role.refusals == {"ticket_open": 1}
    assert desk.state()["state"] == "open" and desk.state()["current"]["number"] == "A001"
    assert desk.sign.text == "finish first"  # why, for board.notice_s (issue 15)
    desk.clock.advance(desk.cfg.board.notice_s)
    desk.role.tick()
    assert desk.sign.text == "A001"

    desk.role.act(Act.DONE)
    assert desk.lamp.lit  # the rating window opened
    state = _as(CounterState, desk.role.act(Act.LOGOUT))
    assert state.state == "closed"
    assert desk.state()["state"] == "closed"
    assert desk.sign.text == "LOGIN" and not desk.lamp.lit and not desk.role.rating_live
    [closed] = desk.events("counter.closed")
    assert closed["data"]["staff"] == "t-ann"
    # logged out again: staff keys refused, rating buttons type digits, nothing is rated
    assert desk.role.act(Act.NEXT) is None and desk.role.refusals["logged_out"] == 1
    desk.role.act(Act.RATE, 3)
    assert desk.sign.text == "*"
    assert desk.events("feedback.rated") == []


def test_a_second_teller_logs_in_and_their_id_is_on_the_next_call(desk: Desk) -> None:
    desk.issue(2)
    desk.type_code(ANN)
    desk.role.act(Act.NEXT)
    desk.role.act(Act.DONE)
    desk.role.act(Act.LOGOUT)
    assert desk.type_code(BOB).staff == "t-bob"
    desk.role.act(Act.NEXT)
    desk.role.act(Act.DONE)
    desk.role.act(Act.RATE, 1)
    calls = [(e["data"]["number"], e["data"]["staff"]) for e in desk.events("ticket.called")]
    assert calls == [("A001", "t-ann"), ("A002", "t-bob")]
    assert [e["data"]["staff"] for e in desk.events("ticket.done")] == ["t-ann", "t-bob"]
    assert [e["data"]["staff"] for e in desk.events("feedback.rated")] == ["t-bob"]
    opened = [e["data"]["staff"] for e in desk.events("counter.opened")]
    assert opened == ["t-ann", "t-bob"]


def test_a_hold_of_done_logs_out_only_and_never_submits_the_code(desk: Desk) -> None:
    # tap or hold, never both (tessera.dispatch): a long DONE on a typed code submits
    # nothing, the code stays typed; a tap logs in, and a hold right after logs out
    for d in ANN:
        assert desk.role.act(Act.RATE, int(d)) is None
    assert desk.role.act(Act.LOGOUT) is None and desk.role.logged_out
    assert desk.role.act(Act.DONE) is not None and not desk.role.logged_out
    assert desk.role.act(Act.LOGOUT) is not None
    assert desk.role.logged_out and desk.state()["state"] == "closed"


def test_a_counter_with_configured_staff_starts_logged_in(tmp_path: Path) -> None:
    d = Desk(tmp_path, counter="c2")
    try:
        assert not d.role.logged_out and d.sign.text == "----"
        assert d.state()["state"] == "open" and d.state()["staff"] == "t-bob"
        d.issue()
        assert _as(Ticket, d.role.act(Act.NEXT)).number == "A001"
        d.role.act(Act.DONE)
        d.role.act(Act.LOGOUT)
        assert d.role.logged_out and d.state()["state"] == "closed"
        assert d.type_code(ANN).staff == "t-ann"
    finally:
        d.close()


def test_panels_without_login_keep_done_without_a_hold(tmp_path: Path) -> None:
    from tessera.dispatch import bindings_from_config

    cfg = parse_config(TOML.replace(", login = true }", " }"), base_dir=tmp_path)
    done = {b.target: b for b in bindings_from_config(cfg) if b.action == "done"}
    assert done["c1"].hold_action is None and done["c2"].hold_action is None
    login = {b.target: b for b in bindings_from_config(parse_config(TOML, base_dir=tmp_path))
             if b.action == "done"}
    assert login["c1"].hold_action == "logout"  # held DONE on a login panel: log out


@contextmanager
def wired(desk: Desk, mock_pins: Any) -> Iterator[ActionRouter]:
    """The desk's counter panel on mock pins: ButtonPanel -> ring -> dispatcher -> router.

    A tap lasts ~5 ms, a hold 1.5 s: far apart, so a busy machine cannot turn one into
    the other (the dispatcher times presses by their ring timestamps)."""
    from tessera.cext import Ring
    from tessera.dispatch import Dispatcher, Timing, bindings_from_config
    from tessera.drivers.gpio import ButtonPanel

    router = ActionRouter(counters={desk.role.id: desk.role})
    binds = [b for b in bindings_from_config(desk.cfg, "main") if b.target == desk.role.id]
    ring = Ring(desk.cfg.gpio.ring_capacity)
    disp = Dispatcher(ring, binds, router.on_button,
                      timing=Timing(debounce_ms=1, hold_ms=1000, stuck_ms=20_000, repeat_ms=1))
    panel = ButtonPanel(ring, [b.pin for b in binds], pin_factory=mock_pins)
    disp.start()
    try:
        yield router
        assert router.failed == 0 and disp.stats["handler_errors"] == 0
    finally:
        disp.stop()
        panel.close()


@pytest.mark.timeout(60)
def test_code_typed_on_mock_pins_logs_in_and_held_done_logs_out(
        tmp_path: Path, mock_pins: Any) -> None:
    from tessera.sim.scenario import press_pin

    desk = Desk(tmp_path)
    try:
        with wired(desk, mock_pins) as router:
            panel_cfg = desk.cfg.counter("c1").panel
            assert panel_cfg is not None
            n = 0
            for d in ANN:
                press_pin(mock_pins.pin(panel_cfg.ratings[int(d) - 1]), settle_s=0.005)
                n += 1
                assert router.wait_for(n)
            assert desk.sign.text == "*" * len(ANN)
            press_pin(mock_pins.pin(panel_cfg.done), settle_s=0.005)
            n += 1
            assert router.wait_for(n)
            assert desk.state()["state"] == "open" and desk.state()["staff"] == "t-ann"

            press_pin(mock_pins.pin(panel_cfg.done), hold_s=1.5, settle_s=0.005)
            n += 1  # a hold: the logout alone (no DONE tap first)
            assert router.wait_for(n)
            assert desk.state()["state"] == "closed" and desk.sign.text == "LOGIN"
            assert [e["data"]["staff"] for e in desk.events("counter.closed")] == ["t-ann"]
    finally:
        desk.close()


def test_the_display_role_shows_login_on_a_closed_login_counter(desk: Desk) -> None:
    """On a real branch the counter sign is driven by the display role from events:
    a closed login counter reads "login" (a closed plain counter "closed")."""
    from tessera.display.role import DisplayRole

    display = DisplayRole(desk.cfg, clock=desk.clock)
    for env in desk.events():
        display.on_event(env)
    assert display.counters["c1"].text == "login"
    desk.type_code(ANN)
    for env in desk.events("counter.opened"):
        display.on_event(env)
    assert display.counters["c1"].text == "---"
    desk.role.act(Act.NEXT)  # queue empty: refused, but no longer the login's own DONE
    assert _as(CounterState, desk.role.act(Act.LOGOUT)).state == "closed"
    for env in desk.events("counter.closed")[-1:]:
        display.on_event(env)
    assert display.counters["c1"].text == "login"
    plain = [c.id for c in desk.cfg.counters if c.panel is None or not c.panel.login]
    for cid in plain:
        assert display.counters[cid].text == "closed"


def test_the_panel_follows_an_open_or_close_done_elsewhere(desk: Desk) -> None:
    """A supervisor opens the counter for a teller (engine command), later closes it:
    the panel logs in and out with it, so the teller is neither locked out of an open
    counter nor are calls and ratings credited to a stale id."""
    desk.issue()
    desk.engine.open_counter("c1", "t-bob")
    desk.role.on_event(desk.events("counter.opened")[-1])
    assert not desk.role.logged_out and desk.role.staff == "t-bob"
    assert _as(Ticket, desk.role.act(Act.NEXT)).number == "A001"
    assert desk.events("ticket.called")[-1]["data"]["staff"] == "t-bob"
    desk.role.act(Act.DONE)
    assert desk.role.rating_live
    desk.engine.close_counter("c1")
    desk.role.on_event(desk.events("counter.closed")[-1])
    assert desk.role.logged_out and desk.sign.text == "LOGIN"
    assert not desk.role.rating_live and not desk.lamp.lit
    desk.role.act(Act.RATE, 2)  # a digit again, not a rating
    assert desk.sign.text == "*" and desk.events("feedback.rated") == []
    # its own login's event changes nothing
    desk.role.pad.clear()
    desk.type_code(ANN)
    desk.role.on_event(desk.events("counter.opened")[-1])
    assert desk.role.staff == "t-ann"


@pytest.mark.timeout(60)
def test_a_rating_after_the_next_call_is_not_credited_to_the_previous_customer(
        tmp_path: Path, mock_pins: Any) -> None:
    """Issue 15: the rating window closes when the counter calls its next ticket, pressed
    on the panel's pins: score 1 while the next customer stands at the counter neither
    binds to the last ticket nor raises an alert against its teller."""
    from tessera.sim.scenario import press_pin

    desk = Desk(tmp_path, counter="c2")  # no login: t-bob is on duty
    try:
        with wired(desk, mock_pins) as router:
            c2 = desk.cfg.counter("c2").panel
            assert c2 is not None
            desk.issue(2)
            n = 0
            for pin in (c2.next, c2.done, c2.next):  # serve A001, then call A002
                press_pin(mock_pins.pin(pin), settle_s=0.005)
                n += 1
                assert router.wait_for(n)
            assert desk.sign.text == "A002" and not desk.lamp.lit  # the rating lamp went off
            assert not desk.role.rating_live
            press_pin(mock_pins.pin(c2.ratings[0]), settle_s=0.005)  # score 1, A002's turn
            n += 1
            assert router.wait_for(n)
        assert desk.events("feedback.alert") == []
        # the engine refuses the binding too (a press that reaches it from elsewhere)
        rating = desk.engine.rate("c2", 1)
        assert (rating.status, rating.ticket_id) == ("unbound", None)
        assert [e["data"]["status"] for e in desk.events("feedback.rated")] == ["unbound"]
        assert desk.events("feedback.alert") == []
    finally:
        desk.close()
