"""Issuing commands: two-phase issue, print confirmation, void, auto-void, check-in."""

from __future__ import annotations

import json
from collections.abc import Iterable

from tessera.config import Service
from tessera.engine import errors as E
from tessera.engine.core import Envelope, _ref, utc_datetime
from tessera.engine.day import next_opening, open_span
from tessera.engine.kiosk import KioskCommands
from tessera.engine.models import Ticket
from tessera.engine.routes import route_of
from tessera.engine.rows import TICKET_COLS, TicketRow
from tessera.outbox import uuid7

_NEXT_SEQ = ("SELECT MAX(last_seq, COALESCE((SELECT MAX(seq) FROM tickets WHERE business_day = ? "
             "AND origin = ?), 0)) + 1, prefix FROM day_services "
             "WHERE business_day = ? AND service = ?")


class IssuingCommands(KioskCommands):
    """issue / confirm_printed / void / tick / check_in (bookings: ``bookings.py``).

        engine.confirm_printed(engine.issue("cash").id).state
        # -> 'waiting'
    """

    # ------------------------------------------------------------------ issuing

    def issue(self, service: str, *, priority: str | None = None,
              route: Iterable[str] | None = None, channel: str | None = None) -> Ticket:
        """Reserve the next number of ``service``; the ticket is ``issued`` until printed.

        ``route`` lists follow-on services: on DONE the ticket joins the next one,
        keeping its number; by default the route the config's ``services[].then``
        gives (``tessera.engine.routes``). ``channel`` (``"remote"``: taken on a phone,
        docs/web.md) is added to ``ticket.issued``; a kiosk's ticket has none.
        """
        svc = self._service(service)
        steps = route_of(self.cfg, svc.id) if route is None else tuple(route)
        for s in steps:
            self._service(s)
        if priority is not None and priority not in self._rank:
            raise E.UnknownPriority(f"Unknown priority class {priority!r}; configured: "
                                    + ", ".join(self.cfg.engine.priority_order))
        rank = self._rank[priority] if priority is not None else self.rules.normal_rank
        try:
            return self._run(lambda now: self._issue(now, svc, priority, rank, steps, None, None,
                                                     channel))
        except E.DomainError as e:
            self._refused(service, e)  # kiosk.refused + refusals row, committed on their own
            raise

    def _issue(self, now: float, svc: Service, priority: str | None, rank: int,
               route: tuple[str, ...], booking: str | None, slot: float | None,
               channel: str | None = None) -> Ticket:
        self._require_trusted_clock(now)
        span = open_span(svc, utc_datetime(now), self._tz)
        if span is None:
            nxt = next_opening(svc, utc_datetime(now), self._tz)
            when = f"; it opens again {nxt:%a %H:%M}" if nxt else ""
            raise E.ServiceClosed(f"{self._name(svc)} is closed now{when}.")
        ahead, est = self._estimate(svc.id, rank, now)
        if (booking is None and self.cfg.engine.refuse_past_closing and svc.hours
                and now + est > span[1].timestamp()):
            close = span[1].astimezone(self._tz)
            raise E.PastClosing(
                f"{self._name(svc)} closes at {close:%H:%M} and the "
                f"expected wait ({est / 60:.0f} min) runs past it; please come back later.")
        day = self._day_of(now)
        seq, prefix = self._next_seq(day, svc)
        number = f"{prefix}{self._format_seq(svc, seq)}"
        tid = uuid7(int(now * 1000))
        qorder = self._next_qorder()
        route_json = json.dumps(list(route)) if route else ""
        est = float(est)
        slot = None if slot is None else float(slot)
        self.conn.execute(
            "INSERT INTO tickets(id, business_day, service, origin, seq, number, state, "
            "priority, rank, issued_at, queued_at, qorder, appointment, slot, route, "
            "people_ahead, est_wait_s) VALUES "
            "(?, ?, ?, ?, ?, ?, 'issued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (tid, day, svc.id, svc.id, seq, number, priority, rank, now, now, qorder, booking, slot,
             route_json, ahead, est))
        # the row as a SELECT would read it back (RETURNING would cost a second pass)
        row = TicketRow(tid, number, svc.id, "issued", priority, day, now, ahead, est, None, 0,
                        booking, route_json, qorder, now, None, None, slot, rank)
        ticket = self._with_range(self._as_ticket(row), now)
        self._emit("ticket.issued", {
            "ticket_id": tid, "number": number, "service": svc.id, "priority": priority,
            "people_ahead": ahead, "est_wait_s": round(est, 1), "business_day": day,
            "appointment": booking, **self._range_data(ticket),
            **({"channel": channel} if channel else {})})
        return ticket

    def _next_seq(self, day: str, svc: Service) -> tuple[int, str]:
        if (day, svc.id) not in self._days.services:  # a service added to the config mid-day
            self.conn.execute("INSERT OR IGNORE INTO day_services(business_day, service, "
                              "prefix) VALUES (?, ?, ?)", (day, svc.id, svc.prefix))
            self._days.services.add((day, svc.id))
        # The next number is read, not counted: above the day's highest sequence of this
        # service (UNIQUE (business_day, origin, seq) index; voided tickets stay, so their
        # numbers stay spent) and above ``last_seq`` (a floor: v1 counted there). No
        # day_services write per issue: one B-tree page less in every issuing commit.
        seq, prefix = self.conn.execute(_NEXT_SEQ, (day, svc.id, day, svc.id)).fetchone()
        if seq >= 10 ** svc.number_width and self.cfg.engine.number_wrap == "refuse":
            raise E.NumbersExhausted(f"All {10 ** svc.number_width - 1} numbers of "
                                     f"{self._name(svc)} are used today.")
        return int(seq), str(prefix)

    def _format_seq(self, svc: Service, seq: int) -> str:
        cap = 10 ** svc.number_width - 1
        if seq > cap and self.cfg.engine.number_wrap == "wrap":
            seq = (seq - 1) % cap + 1  # operator chose short numbers over uniqueness of display
        return f"{seq:0{svc.number_width}d}"

    def confirm_printed(self, ticket_id: str) -> Ticket:
        """The ticket came out of the printer: it joins the queue (``waiting``)."""
        def run(now: float) -> Ticket:
            r = self._ticket_row(ticket_id)
            if r.state != "issued":
                raise E.BadState(f"Ticket {r.number} is {r.state.replace('_', '-')}, not awaiting "
                                 "print confirmation.")
            row = self._set_state(r, "waiting")
            self._emit("ticket.printed", _ref(r))
            return self._as_ticket(row)
        return self._run(run)

    def void(self, ticket_id: str, reason: str) -> Ticket:
        """The print failed: the number is spent and never shown."""
        def run(now: float) -> Ticket:
            r = self._ticket_row(ticket_id)
            if r.state != "issued":
                raise E.BadState(f"Ticket {r.number} is {r.state.replace('_', '-')}; only a ticket "
                                 "awaiting print confirmation can be voided.")
            return self._as_ticket(self._void(r, reason))
        return self._run(run)

    def _void(self, r: TicketRow, reason: str) -> TicketRow:
        row = self._set_state(r, "void", ended_at=self._cmd.now)
        if r.appointment is not None:  # a voided check-in can check in again
            self.conn.execute("UPDATE bookings SET state = 'booked', ticket_id = NULL "
                              "WHERE code = ?", (r.appointment,))
        self._emit("ticket.void", {**_ref(r), "reason": reason})
        return row

    def tick(self) -> list[Envelope]:
        """Roll the day when due and void tickets never confirmed; returns the events."""
        out: list[Envelope] = []

        def run(now: float) -> None:
            limit = now - self.cfg.engine.unconfirmed_timeout_s
            # just restarted: the kiosks' re-sent confirms get their full window first
            rows = [] if limit < self._up_since else self.conn.execute(
                f"SELECT {TICKET_COLS} FROM tickets WHERE state = 'issued' AND issued_at <= ? "
                "ORDER BY qorder", (limit,)).fetchall()
            for r in rows:
                self._void(TicketRow._make(r), f"not confirmed as printed within "
                                     f"{self.cfg.engine.unconfirmed_timeout_s:g} s")
            out.extend(self._cmd.events)
        self._run(run)
        return out

    # ------------------------------------------------------------------ appointments

    def check_in(self, code: str) -> Ticket:
        """Kiosk check-in by booking code: an ``issued`` ticket called at its slot."""
        def run(now: float) -> Ticket:
            row = self.conn.execute("SELECT service, slot, state, ticket_id FROM bookings "
                                    "WHERE code = ?", (code.strip(),)).fetchone()
            if row is None:
                raise E.UnknownBooking(f"No appointment with code {code!r}; please check the "
                                       "code or ask at reception.")
            service, slot, state, tid = row
            if state != "booked" and state != "missed":
                number = self._ticket_row(tid)[1] if tid else "?"
                raise E.BadState(f"Appointment {code} has already checked in (ticket {number}).")
            local = utc_datetime(slot).astimezone(self._tz)
            early, late = self.cfg.engine.appointment_early_s, self.cfg.engine.appointment_late_s
            if now < slot - early:
                opens = utc_datetime(slot - early).astimezone(self._tz)
                err = E.BookingWindow(f"Too early: your appointment is at {local:%H:%M} on "
                                      f"{local:%d %b}; check in from {opens:%H:%M}.")
                err.reason = "booking_too_early"  # the kiosk.refused reason
                raise err
            if now > slot + late or state == "missed":  # missed: its window ended
                err = E.BookingWindow(f"Too late: your appointment was at {local:%H:%M}; "
                                      "please ask at reception.")
                err.reason = "booking_too_late"
                raise err
            t = self._issue(now, self._service(service), None, self.rules.appointment_rank,
                            route_of(self.cfg, service), code.strip(), slot)
            self.conn.execute("UPDATE bookings SET state = 'checked_in', ticket_id = ? "
                              "WHERE code = ?", (t.id, code.strip()))
            return t
        try:
            return self._run(run)
        except E.DomainError as e:
            with self._lock:
                got = self.conn.execute("SELECT service FROM bookings WHERE code = ?",
                                        (code.strip(),)).fetchone()
            self._refused("" if got is None else str(got[0]), e, check_in=True)
            raise

