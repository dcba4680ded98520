"""The ticket kiosk: service buttons, booking-code check-in, status LEDs, buzzer.

A button press goes down the issuance path (printer status → engine.issue →
render → print → confirm, or void) through an ``Issuer``; the kiosk itself
only decides which service, reads the outcome and keeps the LEDs honest:

- ``ready``: on while the printer is OK and at least one service is open;
- ``printer_warning``: paper near end (tickets still print);
- ``printer_fault``: paper out, cover open, printer silent: tickets refused;
- ``closed``: every service is closed.

A service that is closed or over its closing cutoff has its button LED off
and a press prints nothing but a refusal slip (a short buzz says "no").

Every refusal (issue 15) is recorded and told:

- recorded: the engine records those it decides (``service_closed``,
  ``past_closing``, ``clock_untrusted``, booking codes...); the kiosk reports those
  it decides itself (``printer_fault``, ``print_failed``, ``engine_unreachable``)
  with ``report_refusal`` under an idempotency key ``{device}.{uuid7}``;
- told: a short slip on the printer when it can print (``tessera.printing.slip``),
  and the status lamp (``ready``, else ``closed``, else ``printer_fault``; for a
  printer refusal the ``printer_fault`` lamp) blinks the refusal class's pattern
  (``LAMP_PATTERNS``) for ``REFUSAL_LAMP_S``, then shows the steady state again. The kiosk
  has no display of its own: the hall board and counter signs belong to the display
  role.

After ``past_closing`` the button stays dark only while the estimate still runs past
closing: each tick asks the engine's estimate (in-process) or, over MQTT, lights the
button again after ``PAST_CLOSING_RECHECK_S`` so the next press asks the engine.

    kiosk = KioskRole(cfg, issuer, leds={"ready": led4}, button_leds={0: led})
    kiosk.press(0)        # -> IssueOutcome(ok=True, number="A001", ...)
    kiosk.check_in("BK-1234")
    kiosk.reprint_last()  # a staff action: the last ticket again, same number
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import monotonic
from typing import IO, Any, Protocol

import msgspec

from tessera.clock import Clock
from tessera.config import BranchConfig
from tessera.engine.day import open_span
from tessera.engine.kiosk import refusal_reason
from tessera.engine.models import Ticket
from tessera.errors import DeviceError
from tessera.identity import device_id
from tessera.outbox import rfc3339, uuid7
from tessera.roles.ports import Led
from tessera.roles.remote import EngineUnreachable

log = logging.getLogger(__name__)

OK_STATES = ("ok", "near_end")
IDLE_STATUS_S = 30.0  # how often a healthy printer is asked between customers
CLOSED_CODES = ("service-closed", "past-closing")
REFUSAL_LAMP_S = 3.0  # how long the status lamp blinks a refusal's pattern
PAST_CLOSING_RECHECK_S = 60.0  # without an estimate: light the button again after this
SLIP_REPEAT_S = 10.0  # the same refusal again this soon (a mashed button): lamp, no slip
# (on s, off s) of the status lamp per refusal class: one look tells staff which
LAMP_PATTERNS: dict[str, tuple[float, float]] = {
    "closed": (0.5, 0.5),     # service closed / past closing: slow, even
    "booking": (0.15, 0.35),  # a booking code refused: short flashes
    "printer": (0.1, 0.1),    # printer fault / print failed: fast flicker
    "system": (1.0, 0.2),     # clock untrusted, numbers exhausted, engine unreachable
}
REASON_CLASS: dict[str, str] = {
    "service_closed": "closed", "past_closing": "closed",
    "unknown_booking": "booking", "booking_too_early": "booking",
    "booking_too_late": "booking", "already_checked_in": "booking",
    "printer_fault": "printer", "print_failed": "printer",
    "clock_untrusted": "system", "numbers_exhausted": "system",
    "engine_unreachable": "system",
}
KIOSK_DECIDED = ("printer_fault", "print_failed", "engine_unreachable")
STATUS_LAMPS = ("ready", "closed", "printer_fault")  # the first one configured blinks


def span_end(cfg: BranchConfig, service: str, now: datetime) -> datetime | None:
    """End (aware, local) of the opening span of ``service`` that contains ``now``; None
    if closed. The engine's own rule (a span past midnight belongs to the day it opened)."""
    span = open_span(cfg.service(service), now, cfg.tz)
    return None if span is None else span[1].astimezone(cfg.tz)


class Issuer(Protocol):
    """The printing part's issuance path, seen from the kiosk."""

    def issue(self, service: str, priority: str | None = None) -> Ticket:
        """Issue and print; return the confirmed ticket or raise (DomainError / DeviceError)."""

    def check_in(self, code: str) -> Ticket:
        """Check an appointment in and print its ticket."""

    def printer_state(self) -> str:
        """ok, near_end, out, cover_open, offline or unknown (last status read)."""

    def refresh(self) -> str:
        """Read the printer's status now (between customers); return the new state."""

    def beep(self) -> None:
        """A short buzz on the printer, if it has a buzzer."""

    def report_refusal(self, key: str, service: str, reason: str, at: str) -> None:
        """Hand a refusal the kiosk decided to the engine (kept, never lost or doubled)."""

    def print_slip(self, reason: str, service: str, now: datetime) -> bool:
        """Print the refusal slip if the printer can; False when it did not print."""

    def reprint(self, ticket_id: str | None = None, *, last: bool = False) -> Ticket:
        """Print a ticket again with its own number (engine ``reprint``)."""

    def estimate(self, service: str) -> float | None:
        """A new ticket's expected wait (s), or None where the engine cannot be asked."""

    def print_again(self, ticket: Ticket) -> None:
        """Print a reprint the engine already answered (another device asked for it)."""


@dataclass(frozen=True)
class IssueOutcome:
    ok: bool
    number: str | None = None
    ticket: Ticket | None = None
    code: str | None = None  # refusal code (domain error code, "printer-fault", ...)
    detail: str = ""
    reason: str | None = None  # the kiosk.refused reason, when the press was refused


class KioskRole:
    """Service buttons and check-in → printed tickets; LEDs show what the kiosk can do."""

    def __init__(self, cfg: BranchConfig, issuer: Issuer, *, clock: Clock | None = None,
                 leds: dict[str, Led] | None = None,
                 button_leds: dict[int, Led] | None = None) -> None:
        self.cfg = cfg
        self.issuer = issuer
        self.clock = clock
        self.leds = leds or {}
        self.button_leds = button_leds or {}
        self.closed_services: set[str] = set()
        # service -> (end of the opening span in which the engine said "past closing",
        # monotonic time after which the button lights again without an estimate)
        self._past_closing: dict[str, tuple[datetime, float]] = {}
        self.device = device_id(cfg, "kiosk")
        self.reasons: dict[str, int] = {}  # kiosk.refused reason -> count
        self.slips = 0  # refusal slips printed
        self.reprints = 0
        self.signal: str | None = None  # the refusal class the status lamp blinks now
        self._signal_until = 0.0
        self._signal_gen = 0
        self._slipped: dict[tuple[str, str], float] = {}  # (reason, service) -> monotonic
        self._own_reprints: dict[str, int] = {}  # ticket id -> our reprints, event not seen
        self._seen: deque[str] = deque(maxlen=256)  # ticket.reprinted event ids handled
        self._lock = threading.Lock()
        self._done = threading.Condition()
        self.issued = 0
        self.refused = 0
        self.attempts = 0  # presses and check-ins handled (issued or refused)
        self.refusals: dict[str, int] = {}  # refusal code -> count
        self.last: IssueOutcome | None = None
        self._status_read_at = monotonic()

    # ------------------------------------------------------------------ inputs

    def press(self, index: int) -> IssueOutcome:
        """A customer pressed service button ``index`` (position in ``kiosk.buttons``).

        Always asked of the engine, also when the lamp says closed: the engine decides
        (and records) a refusal, and a service that opened again issues at once."""
        button = self.cfg.kiosk.buttons[index]
        with self._lock:
            return self._run(lambda: self.issuer.issue(button.service, button.priority),
                             button.service)

    def on_event(self, env: dict[str, Any]) -> None:
        """Engine events (the bus): a ``ticket.reprinted`` another device asked for (a
        counter's ``reprint``) is printed here; the kiosk's own was printed already.
        Events come at least once: each id is handled once."""
        if env.get("type") != "ticket.reprinted" or env.get("id") in self._seen:
            return
        self._seen.append(str(env.get("id")))
        data = env.get("data") or {}
        with self._lock:
            tid = str(data.get("ticket_id"))
            if self._own_reprints.get(tid, 0) > 0:
                self._own_reprints[tid] -= 1
                return
            try:
                ticket = msgspec.convert(data.get("ticket"), Ticket)
                self.issuer.print_again(ticket)
            except Exception as e:
                log.warning("kiosk: reprint of %s not printed: %s", data.get("number"), e)
                return
            self.reprints += 1

    def reprint_last(self) -> IssueOutcome:
        """Staff: print the last ticket of this kiosk again, with the same number."""
        with self._lock:
            try:
                ticket = self.issuer.reprint(last=True)
            except Exception as e:
                reprinted = getattr(e, "reprinted", None)  # the engine answered, no paper
                if reprinted is not None:
                    self._own(reprinted.id)
                code = getattr(e, "code", None)
                if code is None and not isinstance(e, (OSError, ValueError, RuntimeError)):
                    raise
                log.info("kiosk: reprint refused: %s", e)
                try:
                    self.issuer.beep()  # staff hear "no" (nothing to reprint, printer out)
                except OSError as err:
                    log.warning("kiosk buzzer: %s", err)
                return IssueOutcome(ok=False, code=str(code or "printer-fault"), detail=str(e))
            self._own(ticket.id)
            self.reprints += 1
            return IssueOutcome(ok=True, number=ticket.number, ticket=ticket)

    def _own(self, ticket_id: str) -> None:
        """A reprint this kiosk asked for: its event is not printed a second time."""
        self._own_reprints[ticket_id] = self._own_reprints.get(ticket_id, 0) + 1

    def press_pin(self, pin: int) -> IssueOutcome:
        """The service button wired to GPIO ``pin``."""
        for i, b in enumerate(self.cfg.kiosk.buttons):
            if b.pin == pin:
                return self.press(i)
        return self._finished(IssueOutcome(ok=False, code="unknown-button",
                                           detail=f"no button on pin {pin}"))

    def check_in(self, code: str) -> IssueOutcome:
        """A booking code typed on the keypad or scanned (HID scanners type code + Enter)."""
        code = code.strip()
        if not code:
            return self._finished(IssueOutcome(ok=False, code="empty-code"))
        with self._lock:
            return self._run(lambda: self.issuer.check_in(code), None)

    def read_codes(self, stream: IO[str], stop: threading.Event) -> None:
        """Read booking codes line by line until EOF or ``stop`` (run on a thread)."""
        for line in stream:
            if stop.is_set():
                return
            if line.strip():
                self.check_in(line)

    def wait_attempts(self, count: int, timeout_s: float = 10.0) -> bool:
        """Block until ``attempts >= count`` (a simulator waiting for a scan's effect)."""
        with self._done:
            return self._done.wait_for(lambda: self.attempts >= count, timeout_s)

    def _finished(self, outcome: IssueOutcome) -> IssueOutcome:
        with self._done:
            self.attempts += 1
            self._done.notify_all()
        return outcome

    # ------------------------------------------------------------------ LEDs

    def refresh(self) -> None:
        """Re-read opening state and set every LED from it (the role's tick).

        The printer is asked for its status while it is faulted (the lamp goes out
        as soon as paper is reloaded or the cover closed, not at the next
        customer's press) and every ``IDLE_STATUS_S`` when it is fine (a cover
        opened between customers lights the fault lamp).
        """
        with self._lock:
            now = monotonic()
            faulted = self._printer_state() not in OK_STATES
            if faulted or now - self._status_read_at >= IDLE_STATUS_S:
                self._status_read_at = now
                try:
                    self.issuer.refresh()
                except OSError as e:
                    log.warning("kiosk: printer status: %s", e)
            self.closed_services = {s.id for s in self.cfg.services if not self._is_open(s.id)}
            self._set_leds()

    def _set_leds(self) -> None:
        state = self._printer_state()
        all_closed = all(s.id in self.closed_services for s in self.cfg.services)
        signalling = self._status_lamp() if monotonic() < self._signal_until else None
        for name, lit in (("ready", state in OK_STATES and not all_closed),
                          ("printer_warning", state == "near_end"),
                          ("printer_fault", state not in OK_STATES), ("closed", all_closed)):
            if name != signalling:  # a refusal's blink runs its few seconds
                self._led(name, lit)
        for i, b in enumerate(self.cfg.kiosk.buttons):
            led = self.button_leds.get(i)
            if led is not None:
                (led.off if b.service in self.closed_services else led.on)()

    def _led(self, name: str, lit: bool) -> None:
        led = self.leds.get(name)
        if led is not None:
            (led.on if lit else led.off)()

    # ------------------------------------------------------------------ helpers

    def _status_lamp(self, cls: str | None = None) -> str | None:
        """The lamp a refusal of class ``cls`` blinks: the fault lamp for the printer's
        (the ready lamp is dark then), else the first of ``STATUS_LAMPS`` configured."""
        cls = self.signal if cls is None else cls
        if cls == "printer" and "printer_fault" in self.leds:
            return "printer_fault"
        return next((n for n in STATUS_LAMPS if n in self.leds), None)

    def wait_signal_end(self, timeout_s: float = REFUSAL_LAMP_S + 5.0) -> bool:
        """Block until no refusal blinks (a test or a simulator reading steady lamps)."""
        deadline = monotonic() + timeout_s
        while self.signal is not None and monotonic() < deadline:
            threading.Event().wait(0.05)
        return self.signal is None

    def _signal(self, reason: str) -> None:
        """Blink the status lamp in the pattern of ``reason``'s class for a few seconds."""
        cls = REASON_CLASS.get(reason)
        name = self._status_lamp(cls)
        if name is None or cls is None:
            return
        on, off = LAMP_PATTERNS[cls]
        self._signal_gen += 1
        gen = self._signal_gen
        self.signal = cls
        self._signal_until = monotonic() + REFUSAL_LAMP_S
        self.leds[name].blink(on, off)
        timer = threading.Timer(REFUSAL_LAMP_S, self._end_signal, args=(gen,))
        timer.daemon = True
        timer.start()

    def _end_signal(self, gen: int) -> None:
        with self._lock:
            if gen != self._signal_gen:
                return  # a later refusal blinks now
            self.signal = None
            self._signal_until = 0.0
            self._set_leds()

    def _is_open(self, service: str) -> bool:
        """Inside opening hours and not refused as past its closing cutoff (while the
        estimate still runs past closing)."""
        if self.clock is None:
            return service not in self.closed_services  # no clock: the engine decides
        now = self.clock.now()
        past = self._past_closing.get(service)
        if past is not None:
            until, recheck_at = past
            if now < until and not self._fits_again(service, now, until, recheck_at):
                return False
            del self._past_closing[service]
        return span_end(self.cfg, service, now) is not None

    def _fits_again(self, service: str, now: datetime, until: datetime,
                    recheck_at: float) -> bool:
        """Whether a new ticket's wait now ends before closing (the button lights)."""
        try:
            wait = self.issuer.estimate(service)
        except Exception as e:  # an estimate that fails must not darken the kiosk
            log.warning("kiosk: estimate of %s: %s", service, e)
            wait = None
        if wait is None:
            return monotonic() >= recheck_at  # ask the engine again at the next press
        return now + timedelta(seconds=wait) <= until

    def _run(self, action: Callable[[], Any], service: str | None) -> IssueOutcome:
        try:
            ticket = action()
        except Exception as e:
            code = getattr(e, "code", None)
            if code is None and not isinstance(e, (OSError, ValueError, RuntimeError)):
                raise
            code = str(code or "printer-fault")
            if service is not None and code in CLOSED_CODES:
                self.closed_services.add(service)
                if code == "past-closing" and self.clock is not None:
                    now = self.clock.now()
                    self._past_closing[service] = (span_end(self.cfg, service, now) or now,
                                                   monotonic() + PAST_CLOSING_RECHECK_S)
            return self._refuse(code, str(e), self._record(e, service), service)
        if service is not None:
            self.closed_services.discard(service)
        self.issued += 1
        number = getattr(ticket, "number", None)
        self.last = IssueOutcome(ok=True, number=number, ticket=ticket)
        self._set_leds()
        return self._finished(self.last)

    def _record(self, error: BaseException, service: str | None) -> str | None:
        """The refusal's reason; one the kiosk decided is reported to the engine here (the
        engine recorded its own before it raised)."""
        if isinstance(error, EngineUnreachable):
            reason: str | None = "engine_unreachable"
        elif isinstance(error, DeviceError):
            reason = "print_failed" if hasattr(error, "ticket") else "printer_fault"
        else:
            return refusal_reason(error, check_in=service is None)
        assert reason is not None
        now = self.clock.now() if self.clock is not None else datetime.now().astimezone()
        try:
            self.issuer.report_refusal(f"{self.device}.{uuid7()}", service or "", reason,
                                       rfc3339(now))
        except Exception:  # in-process: the store failed; the press is logged at least
            log.exception("kiosk: recording refusal %s of %s failed", reason, service)
        return reason

    def _refuse(self, code: str, detail: str, reason: str | None = None,
                service: str | None = None) -> IssueOutcome:
        self.refused += 1
        self.refusals[code] = self.refusals.get(code, 0) + 1
        if reason is not None:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
        self.last = IssueOutcome(ok=False, code=code, detail=detail, reason=reason)
        log.info("kiosk refused a ticket: %s (%s)", code, detail)
        try:
            self.issuer.beep()
        except OSError as e:
            log.warning("kiosk buzzer: %s", e)
        self._set_leds()
        if reason is not None:
            self._tell(reason, service)
        return self._finished(self.last)

    def _tell(self, reason: str, service: str | None) -> None:
        """The customer is told why: the lamp's pattern, and a slip when it can print."""
        self._signal(reason)
        if reason in ("printer_fault", "print_failed"):
            return  # the printer cannot print the slip
        at = monotonic()
        if at - self._slipped.get((reason, service or ""), -SLIP_REPEAT_S) < SLIP_REPEAT_S:
            return  # the customer has the slip of this refusal in hand
        now = self.clock.now() if self.clock is not None else datetime.now().astimezone()
        try:
            if self.issuer.print_slip(reason, service or "", now):
                self.slips += 1
                self._slipped[(reason, service or "")] = at
        except Exception as e:
            log.warning("kiosk: refusal slip (%s) not printed: %s", reason, e)

    @property
    def printer_state(self) -> str:
        """The printer as last read (``ok``, ``near_end``, ``out``, ``cover_open``,
        ``offline``, ``unknown``): the kiosk's retained ``state/printer``."""
        return self._printer_state()

    def _printer_state(self) -> str:
        try:
            return self.issuer.printer_state()
        except OSError:
            return "unknown"
