"""The issuance path: status → reserve a number → render → print → status → confirm or void.

    >>> issuer = TicketIssuer(engine, printer, TicketTemplate(cfg), encoder,
    ...                       on_device_event=publish)          # doctest: +SKIP
    >>> issuer.issue("cash").number                              # doctest: +SKIP
    'A001'

A number is only reserved when the printer said it can print; a ticket whose
print failed is voided with the reason (the engine never reuses or shows it).
Before a ticket whose bytes reached the printer is voided, the printer's
buffers are emptied with the real-time clear its profile names (``DLE DC4 8``
or ``DLE ENQ 2``): a printer stopped by a fault keeps the rest of the job and
would print the voided number when the paper is reloaded. A model without
one is logged with its profile's ``clear_note``.
Printer faults and recoveries go to ``on_device_event(type, data)`` as
``device.fault`` / ``device.recovered`` with ``{"kind": "printer", "state", "detail"}``;
paper near-end is reported once and issuing goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NoReturn

from tessera.config import BranchConfig
from tessera.drivers.escpos import PrinterLinkError, PrinterPort, PrinterState, PrinterStatus
from tessera.drivers.escpos_encoder import TicketEncoder
from tessera.drivers.escpos_layout import TicketDoc, TicketRenderer
from tessera.drivers.printer_profiles import get_profile
from tessera.engine.models import Ticket
from tessera.engine.ports import TicketEngine
from tessera.errors import ConfigError, DeviceError
from tessera.printing.template import TicketLike, TicketTemplate

log = logging.getLogger(__name__)

DeviceEventSink = Callable[[str, dict[str, Any]], None]
AFTER_JOB_MARGIN_S = 1.0  # the printer answers once the job is through the link
_REFUSE = (PrinterState.COVER_OPEN, PrinterState.PAPER_OUT, PrinterState.OFFLINE)


class PrinterNotReady(DeviceError):
    """The printer cannot print now; no number was reserved."""

    def __init__(self, status: PrinterStatus) -> None:
        self.status = status
        self.reason = f"printer-{status.state.value.replace('_', '-')}"
        super().__init__(f"printer not ready ({status.state.value}): {status.detail}")


class TicketNotPrinted(DeviceError):
    """The number was reserved but the ticket did not print; it has been voided."""

    def __init__(self, ticket: Any, reason: str, detail: str) -> None:
        self.ticket = ticket
        self.reason = reason
        super().__init__(f"ticket {ticket.number} voided ({reason}): {detail}")


class ReprintNotPrinted(DeviceError):
    """A reprint reached the engine but did not come out of the printer (try again)."""

    def __init__(self, ticket: Ticket, message: str) -> None:
        self.reprinted = ticket
        super().__init__(message)


class TicketIssuer:
    """Issues one ticket at a time for a kiosk (callers serialise button presses)."""

    def __init__(self, engine: TicketEngine, printer: PrinterPort, template: TicketTemplate,
                 encoder: TicketEncoder, *, on_device_event: DeviceEventSink | None = None,
                 require_status: bool = True) -> None:
        self.engine = engine
        self.printer = printer
        self.template = template
        self.encoder = encoder
        self.on_device_event = on_device_event or (lambda t, d: None)
        self.require_status = require_status
        self.state: PrinterState | None = None  # last state reported

    def check(self) -> PrinterStatus:
        """Query the printer and report any change of state."""
        status = self.printer.status()
        self._report(status)
        return status

    def issue(self, service: str, priority: str | None = None) -> Ticket:
        """Issue and print a ticket; returns it confirmed (state ``waiting``).

        Raises PrinterNotReady (nothing reserved), TicketNotPrinted (voided), or
        the engine's DomainError (nothing reserved).
        """
        before = self.check()
        if before.state in _REFUSE or (before.state is PrinterState.UNKNOWN
                                       and self.require_status):
            raise PrinterNotReady(before)
        ticket = self.engine.issue(service, priority=priority)
        try:
            data = self.encoder.encode(self.template.doc(ticket))
        except Exception as e:
            log.exception("rendering ticket %s failed", ticket.number)
            self._void(ticket, "render-failed", str(e))
        try:
            self.printer.send(data)
        except PrinterLinkError as e:
            self._report(PrinterStatus.unknown(str(e)))
            self._clear(ticket)  # part of the job may sit in the printer (re-plugged link)
            self._void(ticket, "printer-link-lost", str(e))
        after = self.printer.status(
            wait_s=self.printer.transfer_time_s(len(data)) + AFTER_JOB_MARGIN_S)
        self._report(after)
        if after.state in _REFUSE:
            self._clear(ticket)
            self._void(ticket, f"printer-{after.state.value.replace('_', '-')}", after.detail)
        if after.state is PrinterState.UNKNOWN and self.require_status:
            self._clear(ticket)
            self._void(ticket, "printer-no-status", after.detail)
        return self.engine.confirm_printed(ticket.id)

    def print_doc(self, doc: TicketDoc) -> bool:
        """Print something that is not a new ticket (a refusal slip, a reprint) when the
        printer says it can; False when it could not (nothing is reserved or voided)."""
        before = self.check()
        if before.state in _REFUSE or before.state is PrinterState.UNKNOWN:
            return False
        data = self.encoder.encode(doc)
        try:
            self.printer.send(data)
        except PrinterLinkError as e:
            self._report(PrinterStatus.unknown(str(e)))
            return False
        after = self.printer.status(
            wait_s=self.printer.transfer_time_s(len(data)) + AFTER_JOB_MARGIN_S)
        self._report(after)
        return after.state not in _REFUSE and after.state is not PrinterState.UNKNOWN

    def reprint(self, ticket_id: str | None = None, *, last: bool = False) -> Ticket:
        """Print a ticket again with its own number (the engine's ``reprint``): nothing is
        reserved. Raises PrinterNotReady before asking the engine, or the engine's
        ``nothing-to-reprint``; TicketNotPrinted if the print then failed."""
        before = self.check()
        if before.state in _REFUSE or (before.state is PrinterState.UNKNOWN
                                       and self.require_status):
            raise PrinterNotReady(before)
        reprint = getattr(self.engine, "reprint", None)
        if reprint is None:
            raise DeviceError("this engine has no reprint command")
        ticket: Ticket = reprint(ticket_id, last=last)
        self.print_again(ticket)
        return ticket

    def print_again(self, ticket: Ticket) -> None:
        """Print ``ticket`` marked REPRINT (nothing asked of the engine); ReprintNotPrinted."""
        if not self.print_doc(self.template.doc(ticket, reprint=True)):
            raise ReprintNotPrinted(ticket, f"the reprint of {ticket.number} did not print")

    def _clear(self, ticket: TicketLike) -> None:
        """Empty the printer's buffers so the ticket about to be voided never prints."""
        try:
            cleared = self.printer.clear_job()
        except Exception:  # a clear that fails must not stop the void
            log.exception("clearing the printer's buffer for ticket %s failed", ticket.number)
            cleared = False
        if not cleared:
            note = self.printer.profile.clear_note or "the printer did not take the clear"
            log.warning("voided ticket %s may still print: %s", ticket.number, note)

    def _void(self, ticket: TicketLike, reason: str, detail: str) -> NoReturn:
        try:
            self.engine.void(ticket.id, reason)
        except Exception:  # the engine's tick voids unconfirmed tickets anyway
            log.exception("voiding ticket %s failed", ticket.number)
        raise TicketNotPrinted(ticket, reason, detail)

    def _report(self, status: PrinterStatus) -> None:
        last, self.state = self.state, status.state
        if status.state is last:
            return
        if status.state is PrinterState.ONLINE:
            if last is not None:
                self.on_device_event("device.recovered", {
                    "kind": "printer", "state": "online",
                    "detail": f"printer ready again (was {last.value})"})
            return
        self.on_device_event("device.fault", {
            "kind": "printer", "state": status.state.value, "detail": status.detail})


def issuer_from_config(cfg: BranchConfig, engine: TicketEngine, *,
                       printer: PrinterPort | None = None,
                       on_device_event: DeviceEventSink | None = None) -> TicketIssuer:
    """Wire the issuance path from config; ``printer`` overrides the configured port."""
    from tessera.printing.checks import port_errors

    p = cfg.kiosk.printer
    profile = get_profile(p.profile)
    if printer is None:
        errs = port_errors(cfg)
        if errs:
            raise ConfigError(errs)
        from tessera.drivers.escpos import EscposPrinter

        printer = EscposPrinter(p.url, profile, baudrate=p.baudrate,
                                status_timeout_ms=p.status_timeout_ms)
    renderer = TicketRenderer(str(cfg.path(cfg.ticket.font)), profile.width_dots)
    return TicketIssuer(engine, printer, TicketTemplate(cfg),
                        TicketEncoder(profile, renderer, p.mode),
                        on_device_event=on_device_event, require_status=p.require_status)
