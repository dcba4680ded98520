"""Adapter: the printing part's ``TicketIssuer`` as the kiosk's ``Issuer`` port.

Adds what the kiosk needs on top of the issuance path: check-in (the engine's
``check_in`` reserves the number, then the same print → confirm/void path),
the printer state for the LEDs, and the printer's buzzer (a logged no-op on a
model without one).

    issuer = KioskIssuer(issuer_from_config(cfg, engine), engine)
    issuer.check_in("BK-1234").number
    # -> 'A014'
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import TYPE_CHECKING

from tessera.engine.models import Ticket
from tessera.engine.ports import KioskEngine

if TYPE_CHECKING:  # the printing stack loads with the kiosk, not with this module
    from tessera.printing.issuer import TicketIssuer

log = logging.getLogger(__name__)

_STATE = {"online": "ok", "near_end": "near_end", "paper_out": "out",
          "cover_open": "cover_open", "offline": "offline", "unknown": "unknown"}


class _CheckedIn:
    """An engine whose ``issue`` hands back an already checked-in appointment ticket."""

    def __init__(self, engine: KioskEngine, code: str) -> None:
        self._engine, self._code = engine, code

    def issue(self, service: str, *, priority: str | None = None) -> Ticket:
        return self._engine.check_in(self._code)

    def confirm_printed(self, ticket_id: str) -> Ticket:
        return self._engine.confirm_printed(ticket_id)

    def void(self, ticket_id: str, reason: str) -> Ticket:
        return self._engine.void(ticket_id, reason)


class KioskIssuer:
    """``tessera.roles.kiosk.Issuer`` over ``tessera.printing.issuer.TicketIssuer``."""

    def __init__(self, issuer: TicketIssuer, engine: KioskEngine) -> None:
        self.issuer = issuer
        self.engine = engine
        self._lock = threading.Lock()
        self.beeps = 0

    def issue(self, service: str, priority: str | None = None) -> Ticket:
        with self._lock:
            return self.issuer.issue(service, priority)

    def check_in(self, code: str) -> Ticket:
        with self._lock:
            self.issuer.engine = _CheckedIn(self.engine, code)
            try:
                return self.issuer.issue("", None)
            finally:
                self.issuer.engine = self.engine

    def report_refusal(self, key: str, service: str, reason: str, at: str) -> None:
        """A refusal the kiosk decided (printer fault): kept by the engine, in-process at
        once, over MQTT through the remote engine's pending file."""
        self.engine.report_refusal(key, service, reason, at)

    def print_slip(self, reason: str, service: str, now: datetime) -> bool:
        """The refusal slip, if the printer can print it now."""
        from tessera.printing.slip import RefusalSlip

        with self._lock:
            return self.issuer.print_doc(RefusalSlip(self.issuer.template.cfg)
                                         .doc(reason, service, now))

    def reprint(self, ticket_id: str | None = None, *, last: bool = False) -> Ticket:
        with self._lock:
            return self.issuer.reprint(ticket_id, last=last)

    def print_again(self, ticket: Ticket) -> None:
        with self._lock:
            self.issuer.print_again(ticket)

    def estimate(self, service: str) -> float | None:
        """The wait (s) a new normal ticket of ``service`` would get, when the engine is in
        this process (None over MQTT: the kiosk then re-checks by asking again later)."""
        estimate = getattr(self.engine, "estimate", None)
        if estimate is None:
            return None
        _, wait = estimate(service)
        return float(wait)

    def printer_state(self) -> str:
        state = self.issuer.state
        if state is None:
            with self._lock:
                state = self.issuer.check().state
        return _STATE.get(str(state), "unknown")

    def refresh(self) -> str:
        with self._lock:
            self.issuer.check()
        return self.printer_state()

    def beep(self) -> None:
        """Beep on the printer; during a fault only where the model beeps in real time.

        A buffered beep sent to a faulted printer would not sound now and would
        fire later with every other queued one, so it is not sent: the kiosk's
        fault lamp (lit for that fault) is the customer's signal then.
        """
        self.beeps += 1
        printer = getattr(self.issuer, "printer", None)
        beep = getattr(printer, "beep", None)
        state = self.issuer.state
        during_fault = state is not None and str(state) not in ("online", "near_end")
        with self._lock:
            if beep is None or not beep(during_fault=during_fault):
                log.info("kiosk: ticket refused (%s)", "printer faulted, its buzzer cannot "
                         "sound now; the fault lamp shows it" if during_fault
                         else "this printer model has no buzzer")
