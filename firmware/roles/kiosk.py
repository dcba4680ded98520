"""The ticket kiosk: service buttons, booking-code check-in, status LEDs, buzzer.

A button press goes down the issuance path (printer status → engine.issue →
render → print → confirm, or void) through an ``Issuer``; the kiosk itself
only decides which service, reads the outcome and keeps the LEDs honest:

- ``ready``: on while the printer is OK and at least one service is open;
- ``printer_warning``: paper near end (tickets still print);
- ``printer_fault``: paper out, cover open, printer silent: tickets refused;
- ``closed``: every service is closed.

A service that is closed or over its closing cutoff has its button LED off
and a press prints nothing (a short buzz says "no").

    kiosk = KioskRole(cfg, issuer, leds={"ready": led4}, button_leds={0: led})
    kiosk.press(0)        # -> IssueOutcome(ok=True, number="A001", ...)
    kiosk.check_in("BK-1234")
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from time import monotonic
from typing import IO, Any, Protocol

from tessera.clock import Clock
from tessera.config import BranchConfig
from tessera.engine.day import open_span
from tessera.engine.models import Ticket
from tessera.roles.ports import Led

log = logging.getLogger(__name__)

OK_STATES = ("ok", "near_end")
IDLE_STATUS_S = 30.0  # how often a healthy printer is asked between customers
CLOSED_CODES = ("service-closed", "past-closing")


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


@dataclass(frozen=True)
class IssueOutcome:
    ok: bool
    number: str | None = None
    ticket: Ticket | None = None
    code: str | None = None  # refusal code (domain error code, "printer-fault", ...)
    detail: str = ""


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
        # service -> end of the opening span in which the engine said "past closing"
        self._past_closing: dict[str, datetime] = {}
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
        """A customer pressed service button ``index`` (position in ``kiosk.buttons``)."""
        button = self.cfg.kiosk.buttons[index]
        with self._lock:
            if not self._is_open(button.service):
                self.closed_services.add(button.service)
                return self._refuse("service-closed", f"{button.service} is closed")
            return self._run(lambda: self.issuer.issue(button.service, button.priority),
                             button.service)

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
        self._led("ready", state in OK_STATES and not all_closed)
        self._led("printer_warning", state == "near_end")
        self._led("printer_fault", state not in OK_STATES)
        self._led("closed", all_closed)
        for i, b in enumerate(self.cfg.kiosk.buttons):
            led = self.button_leds.get(i)
            if led is not None:
                (led.off if b.service in self.closed_services else led.on)()

    def _led(self, name: str, lit: bool) -> None:
        led = self.leds.get(name)
        if led is not None:
            (led.on if lit else led.off)()

    # ------------------------------------------------------------------ helpers

    def _is_open(self, service: str) -> bool:
        """Inside opening hours and not yet refused as past its closing cutoff."""
        if self.clock is None:
            return service not in self.closed_services  # no clock: the engine decides
        now = self.clock.now()
        until = self._past_closing.get(service)
        if until is not None and now < until:
            return False
        return span_end(self.cfg, service, now) is not None

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
                    self._past_closing[service] = span_end(self.cfg, service, now) or now
            return self._refuse(code, str(e))
        if service is not None:
            self.closed_services.discard(service)
        self.issued += 1
        number = getattr(ticket, "number", None)
        self.last = IssueOutcome(ok=True, number=number, ticket=ticket)
        self._set_leds()
        return self._finished(self.last)

    def _refuse(self, code: str, detail: str) -> IssueOutcome:
        self.refused += 1
        self.refusals[code] = self.refusals.get(code, 0) + 1
        self.last = IssueOutcome(ok=False, code=code, detail=detail)
        log.info("kiosk refused a ticket: %s (%s)", code, detail)
        try:
            self.issuer.beep()
        except OSError as e:
            log.warning("kiosk buzzer: %s", e)
        self._set_leds()
        return self._finished(self.last)

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
