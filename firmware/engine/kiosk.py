"""The kiosk's records: refusals (a press that got no ticket, and why) and reprints
(issue 15).

Each refusal is one row of ``refusals`` (business_day, at, service, reason, device,
key) and one ``kiosk.refused`` event, written in their own committed transaction:
the refused command itself rolled back (it changes nothing), the record of the
refusal stays. Reports count the rows.

- Refusals the engine decides (``service_closed``, ``past_closing``,
  ``clock_untrusted``, ``numbers_exhausted``, ``unknown_booking``,
  ``booking_too_early``, ``booking_too_late``, ``already_checked_in``) are recorded
  by ``issue`` and ``check_in`` before they raise.
- Refusals the kiosk decides (``printer_fault``, ``print_failed``,
  ``engine_unreachable``) reach the engine through ``report_refusal`` with the
  kiosk's idempotency key: a report re-sent after a lost answer or a restart is
  kept once.

    engine.report_refusal("k1.0190a0b2", "cash", "printer_fault",
                          "2026-03-02T09:00:00Z").recorded
    # -> True (False for the same key again)

A reprint (``reprint(ticket_id)`` or ``reprint(last=True)``: the last ticket this
branch's kiosk issued today) hands back the ticket as it is now, with its own number,
and emits ``ticket.reprinted``; it never issues a number and changes no queue
state. A ticket that does not exist, or is not waiting, called or being served (done,
no-show, void, or still printing), answers ``nothing-to-reprint``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from tessera.engine import errors as E
from tessera.engine.core import Command, EngineCore, _ref, utc_datetime
from tessera.engine.models import Ticket
from tessera.engine.rows import TICKET_COLS, TicketRow
from tessera.identity import device_id
from tessera.outbox import rfc3339

# Stable reason codes (snake_case): what the refusals table and kiosk.refused carry.
ENGINE_REASONS = ("service_closed", "past_closing", "clock_untrusted", "numbers_exhausted",
                  "unknown_booking", "booking_too_early", "booking_too_late",
                  "already_checked_in")
KIOSK_REASONS = ("printer_fault", "print_failed", "engine_unreachable")
REASONS = ENGINE_REASONS + KIOSK_REASONS

# engine error code -> reason (a press: ``issue``)
_ISSUE_REASONS = {"service-closed": "service_closed", "past-closing": "past_closing",
                  "clock-untrusted": "clock_untrusted",
                  "numbers-exhausted": "numbers_exhausted"}
# a check-in adds the booking's own refusals
_CHECKIN_REASONS = {**_ISSUE_REASONS, "unknown-booking": "unknown_booking",
                    "bad-state": "already_checked_in"}


def refusal_reason(error: BaseException, *, check_in: bool = False) -> str | None:
    """The reason code of an engine refusal the kiosk's customer met (None: not one, e.g.
    an unknown service id, which is bad input rather than a customer turned away)."""
    code = getattr(error, "code", None)
    if code == "booking-window":
        return str(getattr(error, "reason", "booking_too_late"))
    table = _CHECKIN_REASONS if check_in else _ISSUE_REASONS
    return table.get(str(code)) if code is not None else None


@dataclass(frozen=True)
class RefusalRecord:
    """The answer to ``report_refusal``: ``recorded`` is False for a key already kept."""

    key: str
    service: str
    reason: str
    business_day: str
    recorded: bool


REPRINTABLE = ("waiting", "called", "serving")


class KioskCommands(EngineCore):
    """``report_refusal``, ``reprint`` and the engine's own recording of refusals."""

    def reprint(self, ticket_id: str | None = None, *, last: bool = False) -> Ticket:
        """The ticket to print again, unchanged (its number); ``ticket.reprinted``."""
        if (ticket_id is None) == (not last):
            raise E.NothingToReprint("Say which ticket to reprint: a ticket id, or the "
                                     "last one of this kiosk (not both).")

        def run(now: float) -> Ticket:
            if ticket_id is not None:
                row = self.conn.execute(f"SELECT {TICKET_COLS} FROM tickets WHERE id = ?",
                                        (ticket_id,)).fetchone()
                if row is None:
                    raise E.NothingToReprint(f"There is no ticket with id {ticket_id!r}; "
                                             "nothing was reprinted.")
            else:
                row = self.conn.execute(
                    f"SELECT {TICKET_COLS} FROM tickets WHERE business_day = ? "
                    "ORDER BY issued_at DESC, qorder DESC LIMIT 1",
                    (self._day_of(now),)).fetchone()
                if row is None:
                    raise E.NothingToReprint("This kiosk has issued no ticket today; "
                                             "nothing was reprinted.")
            r = TicketRow._make(row)
            if r.state not in REPRINTABLE:
                raise E.NothingToReprint(
                    f"Ticket {r.number} is {r.state.replace('_', '-')}: only a waiting, "
                    "called or served ticket is reprinted; nothing was reprinted.")
            ticket = self._as_ticket(r)
            # the whole ticket: a kiosk prints a reprint another device asked for from it
            self._emit("ticket.reprinted", {**_ref(r), "state": r.state,
                                            "by": "id" if ticket_id is not None else "last",
                                            "ticket": dataclasses.asdict(ticket)})
            return ticket
        return self._run(run)

    def report_refusal(self, key: str, service: str, reason: str, at: str) -> RefusalRecord:
        """A refusal the kiosk decided itself (``KIOSK_REASONS``), idempotent by ``key``.

        ``at`` is the press's time (RFC 3339 with a zone): a report re-sent after an
        outage counts in the business day of the press, not of its delivery.
        """
        if reason not in KIOSK_REASONS:
            raise E.BadRefusal(f"Unknown kiosk refusal reason {reason!r}; a kiosk reports: "
                               + ", ".join(KIOSK_REASONS))
        if service:
            self._service(service)
        try:
            when = datetime.fromisoformat(at)
            if when.tzinfo is None:
                raise ValueError("no timezone")
        except ValueError as e:
            raise E.BadRefusal(f"at: {at!r} is not an RFC 3339 time with a zone ({e})"
                               ) from None
        stamp = when.timestamp()
        day = self.business_day(stamp)
        kept = RefusalRecord(key, service, reason, day, True)
        if self._record_refusal(service, reason, stamp, key=key, answer=kept):
            return kept
        return RefusalRecord(key, service, reason, day, False)

    def _refused(self, service: str, error: BaseException, *, check_in: bool = False) -> None:
        """Record the refusal ``error`` of a press or check-in (before it is re-raised)."""
        reason = refusal_reason(error, check_in=check_in)
        if reason is not None:
            self._record_refusal(service, reason, self.clock.now().timestamp(),
                                 detail=str(error), answer=error)

    def _record_refusal(self, service: str, reason: str, at: float, *, key: str | None = None,
                        detail: str = "", answer: object = None) -> bool:
        """One committed transaction: the row and ``kiosk.refused`` (False: key known).

        Not ``_run``: an untrusted clock must not move the stored ``last_ts``. The
        command's answer hook (``recording``: the MQTT command server's stored answer)
        runs in this transaction with ``answer`` (the refused command's DomainError,
        or the report's record), so a re-sent command finds its answer and is not
        recorded twice, whatever crashes.
        """
        device = device_id(self.cfg, "kiosk")
        with self._lock:
            hook, self._record = self._record, None
            cmd = self._cmd = Command(self.clock.now().timestamp())
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    if key is not None and self.conn.execute(
                            "SELECT 1 FROM refusals WHERE key = ?", (key,)).fetchone():
                        self.conn.execute("ROLLBACK")
                        return False  # this report was kept before: a re-send
                    day = self.business_day(at)
                    self.conn.execute(
                        "INSERT INTO refusals(business_day, at, service, reason, device, key) "
                        "VALUES (?, ?, ?, ?, ?, ?)", (day, at, service, reason, device, key))
                    self._emit("kiosk.refused", {
                        "service": service, "reason": reason, "at": rfc3339(utc_datetime(at)),
                        "business_day": day, "device": device, "key": key,
                        "detail": detail})
                    if hook is not None and answer is not None:
                        hook(self.conn, answer)
                        hook = None  # used: the command's answer is stored
                    self.conn.execute("COMMIT")
                except BaseException:
                    self.outbox.abort()
                    raise
            finally:
                self._record = hook
                self._cmd = Command(cmd.now)
        if cmd.events and self.on_commit is not None:
            self.on_commit(cmd.events)
        return True
