"""A counter's staff panel and satisfaction buttons.

Keys (each a :class:`tessera.dispatch.Act` the dispatcher hands over for a pin):

- ``next``: call the next ticket (on a paused counter: resume, then call);
  holding NEXT (``Act.PAUSE``, as the ``pause`` key) pauses the counter.
- ``recall``: repeat the call; ``no_show``: close the called ticket as a no-show.
- holding NO-SHOW (``Act.UNDO_NO_SHOW``) undoes this counter's last no-show within
  ``engine.no_show_undo_s``: on an idle counter the ticket is called back here (the
  customer turned up at the counter), else it goes back to the head of its queue.
- PAUSE (or holding NEXT) with a customer at the counter: by
  ``engine.pause_while_called``, refused (``ticket-open``, the sign says
  "finish first") or pending until DONE/NO-SHOW/TRANSFER ends the ticket (the sign
  says "A001 then pause").
- ``transfer``: select a target service (each press moves to the next one in
  ``panel.transfer_targets``, shown on the counter board); ``done`` then
  transfers instead of closing. ``recall`` cancels a pending selection.
- ``done``: close the ticket; the rating buttons go live for
  ``engine.feedback_window_s`` (virtual time), or until the counter calls its
  next ticket, whichever comes first.
- ``rate`` ``n``: rating ``n`` (1 = lowest), bound by the engine to the ticket
  this counter completed last; accepted presses blink the rating LED.

What the teller is doing reaches the counter's serial sign (driven by the display
role; counters with a ``board_address``) as ``counter.notice`` events of the counter's
device (``emit``): ``choosing``
with ``A001>loans`` while TRANSFER cycles (empty text when the choice ends), and
``refused`` with a short reason ("queue empty", "busy") the sign shows for
``board.notice_s`` before the current ticket again (``NOTICE_TEXT``).

Login panels (``panel.login = true``): a teller logs in with their ``[[staff]]``
code. While logged out the counter is closed in the engine, the board shows
``LOGIN``, the rating buttons are digit keys (button ``d`` types ``d``, one ``*``
each), DONE submits and every other key is refused (``logged_out``). A right code
opens the counter for that staff id; a wrong one shows ``ERR`` (``bad_login``),
three in a row lock the pad for ``LOGIN_LOCK_S`` (``LOCKED``); a partial code is
dropped after ``LOGIN_IDLE_S`` without a key. Holding DONE logs out (``Act.LOGOUT``;
refused with a ticket current: ``ticket_open``). Codes are never logged, only staff ids.

    role = CounterRole(cfg, cfg.counter("c1"), engine, clock)
    role.start()                 # opens the counter for its staff id (login: "LOGIN")
    role.act(Act.NEXT)           # -> Ticket A001 called, board shows "A001"
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from tessera.clock import Clock
from tessera.config import STAFF_CODE_DIGITS, BranchConfig, Counter
from tessera.dispatch import Act
from tessera.engine.clocktrust import ClockSet
from tessera.engine.errors import CounterBusy, DomainError
from tessera.engine.models import CounterState, Rating, Ticket
from tessera.errors import DeviceError
from tessera.roles.clock_panel import ClockEntry
from tessera.roles.ports import CounterEngine, Led, TextBoard
from tessera.roles.remote import EngineUnreachable

log = logging.getLogger(__name__)
Emit = Callable[[str, dict[str, Any]], None]
P = ParamSpec("P")
T = TypeVar("T")
# what a panel action gives back: the engine's answer, the selected transfer target, or
# None when it was refused or did nothing
Answer = Ticket | CounterState | Rating | ClockSet | str | None

CONFIRM_BLINK_S = 0.9

# what a counter sign (16 characters) says for a refusal code; others show the code
NOTICE_TEXT = {
    "queue-empty": "queue empty", "counter-busy": "busy", "ticket-open": "finish first",
    "ticket_open": "finish first", "counter-paused": "paused", "counter-closed": "closed",
    "no-current-ticket": "no ticket", "bad-state": "not now", "undo-expired": "too late",
    "nothing_to_undo": "nothing to undo", "unknown-ticket": "no such ticket",
    "logged_out": "log in first", "bad_login": "wrong code", "locked": "locked",
    "timeout": "no engine", "EngineUnreachable": "no engine",
}
PAD_CODES = frozenset({"logged_out", "bad_login", "locked"})

LOGIN_FAILS_TO_LOCK = 3  # wrong codes in a row that lock the code pad
LOGIN_LOCK_S = 30.0  # clock seconds a locked pad ignores codes
LOGIN_IDLE_S = 10.0  # a partial code is dropped after this long without a key
LOGIN_NOTICE_S = 3.0  # "ERR" or the new staff id stays on the board this long, or to the next key


class _TicketOpen(Exception):
    """The engine refused a logout's close: a ticket is called or served at the counter."""


class CodePad:
    """The code being typed on a login panel: digits, wrong-code lockout, board text.

        pad = CodePad({"1323": "t-001"})
        for d in "1323": pad.digit(d, now)
        pad.staff_for(pad.take(now))   # -> 't-001'
    """

    def __init__(self, codes: dict[str, str]) -> None:
        self._codes = codes  # code -> staff id; never logged
        self._entry = ""
        self._last_key = 0.0
        self._fails = 0
        self._locked_until: float | None = None
        self._notice: str | None = None
        self._notice_at = 0.0

    def locked(self, now: float) -> bool:
        if self._locked_until is not None and now >= self._locked_until:
            self._locked_until = None
        return self._locked_until is not None

    def digit(self, d: str, now: float) -> None:
        self._expire(now)
        if len(self._entry) <= STAFF_CODE_DIGITS[1]:  # one more than any code: never matches
            self._entry += d
        self._last_key = now
        self._notice = None

    def take(self, now: float) -> str:
        """The code typed so far ("" when none or dropped as idle); the pad is cleared."""
        self._expire(now)
        entry, self._entry = self._entry, ""
        return entry

    def staff_for(self, code: str) -> str | None:
        return self._codes.get(code)

    def failed(self, now: float) -> bool:
        """Count a wrong code; True when this one locked the pad."""
        self._fails += 1
        self.notify("ERR", now)
        if self._fails < LOGIN_FAILS_TO_LOCK:
            return False
        self._fails = 0
        self._locked_until = now + LOGIN_LOCK_S
        return True

    def succeeded(self, staff: str, now: float) -> None:
        self._fails = 0
        self.notify(staff, now)

    def notify(self, text: str | None, now: float) -> None:
        """Show ``text`` for ``LOGIN_NOTICE_S`` (None: clear the current notice)."""
        self._notice, self._notice_at = text, now

    def notice(self, now: float) -> str | None:
        if self._notice is not None and now - self._notice_at < LOGIN_NOTICE_S:
            return self._notice
        self._notice = None
        return None

    def text(self, now: float) -> str:
        """What a logged-out counter's board shows."""
        if self.locked(now):
            return "LOCKED"
        self._expire(now)
        if self._entry:
            return "*" * len(self._entry)
        return self.notice(now) or "LOGIN"

    def clear(self) -> None:
        self._entry = ""
        self._notice = None

    def _expire(self, now: float) -> None:
        if self._entry and now - self._last_key >= LOGIN_IDLE_S:
            self._entry = ""


class CounterRole:
    """Maps one counter's panel keys to engine commands and shows its current ticket."""

    def __init__(self, cfg: BranchConfig, counter: Counter, engine: CounterEngine, clock: Clock,
                 *, board: TextBoard | None = None, rating_led: Led | None = None,
                 staff: str | None = None, emit: Emit | None = None) -> None:
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
        panel = counter.panel
        self.pad = CodePad({st.code: st.id for st in cfg.staff}) \
            if panel is not None and panel.login else None
        self._shown: str | None = None  # last text sent to the board
        self.clock_entry: ClockEntry | None = None  # staff setting the clock (clock_panel)
        self.emit = emit  # counter.notice events for the counter's serial sign
        self.pause_pending = False  # PAUSE with a customer: pauses when they are done
        self.last_no_show: Ticket | None = None  # what holding NO-SHOW undoes
        self._notice: tuple[str, float] | None = None  # refusal text, clock.monotonic()

    @property
    def logged_out(self) -> bool:
        """A login panel nobody is logged in to (panels without login never are)."""
        return self.pad is not None and self.staff is None

    @property
    def id(self) -> str:
        return self.counter.id

    @property
    def transfer_targets(self) -> tuple[str, ...]:
        """Services TRANSFER can send the current ticket to (never its own service)."""
        targets = self.counter.panel.transfer_targets if self.counter.panel else ()
        return tuple(t for t in targets if t != self.current_service)

    def start(self) -> None:
        """Open the counter for its staff (idempotent from the engine's view); a login
        panel without a configured staff id closes it instead and waits for a code."""
        if self.logged_out:
            self._close_counter()  # a counter nobody is logged in to takes no calls
        else:
            self._command(self.engine.open_counter, self.id, self.staff)
        self._show()

    # ------------------------------------------------------------------ keys

    def act(self, action: Act, score: int | str | None = None) -> Answer:
        """Handle one panel action (``score`` with ``Act.RATE``, 1 = lowest); returns the
        engine's answer, or None when refused."""
        with self._lock:
            if action is Act.RATE:
                if not isinstance(score, int):
                    raise ValueError(f"a rating needs a score 1..5, not {score!r}")
                if self.clock_entry is not None:
                    return None  # no digits while the clock is being set
                if self.logged_out:
                    self._code_digit(score)
                    return None
                return self.on_rating(score)
            if action is Act.ISSUE:
                raise ValueError("a counter has no kiosk buttons (Act.ISSUE)")
            if self.pad is not None:
                self.pad.notify(None, self.clock.monotonic())
                if self.clock_entry is not None:
                    return self._clock_key(action)
                if self.logged_out:
                    return self._logged_out_key(action)
                if action is Act.LOGOUT:  # a hold of DONE (never also a tap: see dispatch)
                    return self._logout()
            handler = {
                Act.NEXT: self._next, Act.RECALL: self._recall,
                Act.TRANSFER: self._select_transfer, Act.NO_SHOW: self._no_show,
                Act.DONE: self._done, Act.PAUSE: self._pause,
                Act.UNDO_NO_SHOW: self._undo_no_show,
            }.get(action)
            return handler() if handler is not None else None  # LOGOUT without a login panel

    def on_rating(self, score: int) -> Rating | None:
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
        """Close an expired rating window (its LED goes off); on a login panel, bring the
        board up to date when a lockout, a partial code or a notice runs out."""
        with self._lock:
            if self._rating_until is not None and self.clock.monotonic() > self._rating_until:
                self._end_rating_window()
            if self.clock_entry is not None and self.clock_entry.expired(self.clock.monotonic()):
                self.clock_entry = None  # a half-set time never stays on the sign
            if self.board is not None and self.board_text() != self._shown:
                self._show()  # a notice, lockout, partial code or clock entry ran out

    def _end_rating_window(self) -> None:
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

    def _next(self) -> Ticket | None:
        if self.paused:
            self._command(self.engine.resume, self.id)
            self.paused = False
        ticket = self._command(self.engine.call_next, self.id)
        if ticket is not None:
            self._called(ticket)
        self._show()
        return ticket

    def _called(self, ticket: Ticket) -> None:
        self._end_rating_window()  # the next customer is here: no rating for the last
        self.current = ticket.number
        self.current_service = ticket.service
        self._end_choice()

    def _recall(self) -> Ticket | None:
        self._end_choice()
        ticket = self._command(self.engine.recall, self.id)
        self._show()
        return ticket

    def _no_show(self) -> Ticket | None:
        ticket = self._command(self.engine.no_show, self.id)
        if ticket is not None:
            self.current = None
            self.last_no_show = ticket
            self._end_choice()
            self._ticket_ended()
        self._show()
        return ticket

    def _undo_no_show(self) -> Ticket | None:
        """Held NO-SHOW: the customer of this counter's last no-show is here after all."""
        last = self.last_no_show
        if last is None:
            self._refuse("nothing_to_undo")
            self._show()
            return None
        if self.current is None and not self.paused:  # they are at this counter: call them
            ticket = self._command(self.engine.call_specific, self.id, last.number)
            if ticket is not None:
                self._called(ticket)
        else:  # busy with someone else: back to the head of the queue
            ticket = self._command(self.engine.undo_no_show, last.id, counter=self.id)
        if ticket is not None:
            self.last_no_show = None
        self._show()
        return ticket

    def _select_transfer(self) -> str | None:
        targets = self.transfer_targets
        if not targets or self.current is None:
            return None
        self.transfer_choice = 0 if self.transfer_choice is None else \
            (self.transfer_choice + 1) % len(targets)
        self._tell("choosing", f"{self.current}>{targets[self.transfer_choice]}")
        self._show()
        return targets[self.transfer_choice]

    def _end_choice(self) -> None:
        if self.transfer_choice is not None:
            self.transfer_choice = None
            self._tell("choosing", "")

    def _ticket_ended(self) -> None:
        if self.pause_pending:  # the engine paused the counter with this ticket's end
            self.pause_pending, self.paused = False, True

    def _done(self) -> Ticket | None:
        if self.transfer_choice is not None:
            target = self.transfer_targets[self.transfer_choice]
            self._end_choice()
            ticket = self._command(self.engine.transfer, self.id, target)
            if ticket is not None:
                self.current = None
                self._ticket_ended()
            self._show()
            return ticket
        ticket = self._command(self.engine.done, self.id)
        if ticket is not None:
            self.current = None
            self._ticket_ended()
            self._rating_until = self.clock.monotonic() + self.cfg.engine.feedback_window_s
            if self.rating_led is not None:
                self.rating_led.on()  # "rate us now"
        self._show()
        return ticket

    def _pause(self) -> CounterState | None:
        state = self._command(self.engine.pause, self.id)
        if state is not None:
            self.paused = state.state == "paused"
            self.pause_pending = state.pause_pending
        self._show()
        return state

    # ------------------------------------------------------------------ login

    def _logged_out_key(self, action: Act) -> CounterState | None:
        if action is Act.LOGOUT:
            return None  # holding DONE with nobody logged in: nothing to do
        if action is Act.PAUSE and self._enter_clock():
            return None  # a code, then a held NEXT (or PAUSE): set the clock
        if action is not Act.DONE:
            self._refuse("logged_out")
            self._show()
            return None
        return self._submit_code()

    def _enter_clock(self) -> bool:
        """A staff code then PAUSE (a held NEXT) on a logged-out panel: clock entry for that
        staff id (tessera.roles.clock_panel). False when no code was typed."""
        assert self.pad is not None
        now = self.clock.monotonic()
        if self.pad.locked(now):
            self._refuse("locked")
        elif not (code := self.pad.take(now)):
            return False
        else:
            staff = self.pad.staff_for(code)
            if staff is None:
                self._refuse("bad_login")
                self.pad.failed(now)
            else:
                log.info("counter %s: %s sets the clock", self.id, staff)
                self.clock_entry = ClockEntry(staff, self.clock.now().astimezone(self.cfg.tz),
                                              now=now)
        self._show()
        return True

    def _clock_key(self, action: Act) -> Answer:
        entry = self.clock_entry
        assert entry is not None and self.pad is not None
        now = self.clock.monotonic()
        result: Answer = None
        if action in (Act.LOGOUT, Act.PAUSE):  # a held DONE or NEXT leaves, setting nothing
            self.clock_entry = None
        elif action is Act.DONE:
            result = self._command(self.engine.set_clock, entry.when(), staff=entry.staff)
            if result is not None:
                self.clock_entry = None
                self.pad.notify("SET", now)
        else:
            entry.key(action, now=now)
        self._show()
        return result

    def _code_digit(self, digit: int) -> None:
        assert self.pad is not None
        now = self.clock.monotonic()
        if self.pad.locked(now):
            self._refuse("locked")
        else:
            self.pad.digit(str(digit), now)
        self._show()
        return None

    def _submit_code(self) -> CounterState | None:
        assert self.pad is not None
        now = self.clock.monotonic()
        if self.pad.locked(now):
            self._refuse("locked")
            self._show()
            return None
        code = self.pad.take(now)
        if code:  # DONE with nothing typed (or typed too long ago) checks nothing
            staff = self.pad.staff_for(code)
            if staff is not None:
                return self._login(staff, now)
            self._refuse("bad_login")
            if self.pad.failed(now):
                log.warning("counter %s: %d wrong staff codes in a row; codes ignored for %g s",
                            self.id, LOGIN_FAILS_TO_LOCK, LOGIN_LOCK_S)
        self._show()
        return None

    def _login(self, staff: str, now: float) -> CounterState | None:
        assert self.pad is not None
        state = self._command(self.engine.open_counter, self.id, staff)
        if state is not None:
            self._set_staff(staff)
            self.pad.succeeded(staff, now)
            log.info("counter %s: %s logged in", self.id, staff)
        self._show()
        return state

    def _logout(self) -> CounterState | None:
        # The engine decides whether a ticket is still open here (it refuses to close a
        # busy counter): the panel's own record can be behind it, e.g. a ticket the day
        # roll voided, and a teller must never be kept logged in by a stale record.
        try:
            state = self._command(self._close_unless_busy)
        except _TicketOpen:
            self._refuse("ticket_open")  # finish or no-show it first: no customer is stranded
            self._show()
            return None
        if state is not None:
            self.current = None
            log.info("counter %s: %s logged out", self.id, self.staff)
            self._set_staff(None)
        self._show()
        return state

    def _set_staff(self, staff: str | None) -> None:
        """Who is logged in at this login panel now (None: nobody); a fresh panel state."""
        assert self.pad is not None
        self.staff, self.paused, self.transfer_choice = staff, False, None
        self.pad.clear()
        if staff is None:
            # the rating buttons are digit keys from now on, and a rating pressed after a
            # new login would be credited to the new staff id
            self._end_rating_window()

    def _close_counter(self) -> CounterState | None:
        return self._command(self.engine.close_counter, self.id)

    def _close_unless_busy(self) -> CounterState:
        try:
            return self.engine.close_counter(self.id)
        except CounterBusy as e:
            raise _TicketOpen(str(e)) from e

    def _refuse(self, code: str) -> None:
        self.last_error = code
        self.refusals[code] = self.refusals.get(code, 0) + 1
        log.info("counter %s: key refused (%s)", self.id, code)
        self._refused_notice(code)

    def _refused_notice(self, code: str) -> None:
        """Say why on the counter's sign(s) for ``board.notice_s``, then the ticket again."""
        text = NOTICE_TEXT.get(code, code)[:16]
        if code not in PAD_CODES:  # a login panel's own board says those itself
            self._notice = (text, self.clock.monotonic())
        self._tell("refused", text, code=code)

    def _tell(self, kind: str, text: str, **extra: str) -> None:
        """A ``counter.notice`` for the serial counter sign (the display role shows it);
        a counter without a sign (``board_address``) sends none: nobody would see it."""
        if self.emit is None or self.counter.board_address is None:
            return
        try:
            self.emit("counter.notice", {"counter": self.id, "counter_number":
                                         self.counter.number, "kind": kind, "text": text,
                                         **extra})
        except Exception as e:  # a full disk must not stop the teller's keys
            log.warning("counter %s: notice not sent: %s", self.id, e)

    # ------------------------------------------------------------------ events

    def on_event(self, env: dict[str, Any]) -> None:
        """Keep the board right when the engine changes this counter from elsewhere."""
        data = env.get("data", {})
        if data.get("counter") != self.id:
            return
        with self._lock:
            t = env.get("type")
            if t in ("ticket.called", "ticket.recalled"):
                if t == "ticket.called":
                    self._end_rating_window()  # called from elsewhere: same rule
                self.current = data.get("number")
                self.current_service = data.get("service")
            elif t in ("ticket.done", "ticket.no_show", "ticket.transferred") and \
                    self.current == data.get("number"):
                self.current = None
            elif t == "counter.paused":
                self.paused, self.pause_pending = True, False
            elif t == "counter.resumed":
                self.paused = False
            elif t in ("counter.pause_pending", "counter.pause_cancelled"):
                self.pause_pending = t == "counter.pause_pending"
            elif t == "counter.opened" and self.pad is not None:
                # opened from elsewhere (a supervisor's command): the panel follows, so the
                # teller is not locked out of an open counter nor credited to someone else
                staff = str(data.get("staff") or "")
                if self.staff != staff:
                    log.info("counter %s: opened elsewhere for %r", self.id, staff)
                    self._set_staff(staff)
            elif t == "counter.closed" and self.pad is not None:
                if self.staff is not None:
                    log.info("counter %s: closed elsewhere; %s logged out", self.id, self.staff)
                    self._set_staff(None)
            else:
                return
            self._show()

    # ------------------------------------------------------------------ helpers

    def board_text(self) -> str:
        if self.clock_entry is not None:
            return self.clock_entry.text()
        if self._notice is not None:
            text, at = self._notice
            if self.clock.monotonic() - at < self.cfg.board.notice_s:
                return text
            self._notice = None
        if self.pad is not None and self.staff is None:
            return self.pad.text(self.clock.monotonic())
        if self.transfer_choice is not None:
            return f"{self.current or ''}>{self.transfer_targets[self.transfer_choice]}"
        if self.paused:
            return "PAUSED"
        if self.current and self.pause_pending:
            return f"{self.current} then pause"
        if self.current:
            return self.current
        notice = self.pad.notice(self.clock.monotonic()) if self.pad is not None else None
        return notice or "----"

    def _show(self) -> None:
        if self.board is None:
            return
        self._shown = text = self.board_text()
        try:
            self.board.show(text)
        except OSError as e:  # a dead counter sign must not stop the teller
            log.warning("counter %s board: %s", self.id, e)

    def _command(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """Run an engine command; a refusal (the engine's ``DomainError``) or an engine
        that does not answer (``EngineUnreachable``, a ``DeviceError``) is counted by its
        code and gives None."""
        try:
            return fn(*args, **kwargs)
        except (DomainError, EngineUnreachable) as e:
            code, detail = e.code, str(e)
        except DeviceError as e:  # a transport failure that carries no code
            code, detail = type(e).__name__, str(e)
        self.refused += 1
        self.last_error = code
        self.refusals[code] = self.refusals.get(code, 0) + 1
        log.info("counter %s: %s refused: %s", self.id, getattr(fn, "__name__", fn), detail)
        self._refused_notice(code)
        return None
