"""What a teller undoes or defers at a counter: undo of a no-show, pause after the customer.

- ``undo_no_show(ticket, counter=)``: a ticket closed as a no-show less than
  ``engine.no_show_undo_s`` ago returns to the head of its service's queue
  (``ticket.no_show_undone``); its no-show visit is kept as history with the
  outcome ``no_show_undone`` (``reason``: the counter that undid it), so reports no
  longer count it as a no-show. ``call_specific`` of such a ticket undoes the
  no-show and calls it in one transaction (the customer turned up at the counter).
- ``pause`` while the counter has a ticket (``engine.pause_while_called``):
  ``refuse`` raises :class:`~tessera.engine.errors.TicketOpen`; ``after_done``
  marks the counter pause-pending (``counter.pause_pending``) and pauses it in the
  transaction where DONE, NO-SHOW or TRANSFER ends that ticket (``counter.paused``
  with ``after`` = the ticket's number). RESUME (or NEXT) while pending cancels it
  (``counter.pause_cancelled``).

    engine.no_show("c1"); engine.undo_no_show("A001", counter="c1").state
    # -> 'waiting'
"""

from __future__ import annotations

from typing import Any

from tessera.engine import errors as E
from tessera.engine.core import EngineCore, _ref, utc_datetime
from tessera.engine.models import CounterState, Ticket
from tessera.engine.rows import TicketRow
from tessera.outbox import rfc3339


class CounterFlow(EngineCore):
    """Undo of a no-show and the deferred pause (mixed into the counter commands)."""

    # ------------------------------------------------------------------ undo no-show

    def undo_no_show(self, ticket: str, *, counter: str | None = None) -> Ticket:
        """Put no-show ticket ``ticket`` (its id or today's number, e.g. ``A017``) back at
        the head of its service's queue; ``counter``: who undid it (checked, recorded).

        Refused, changing nothing: ``unknown-ticket``, ``bad-state`` (not a no-show),
        ``undo-expired`` (older than ``engine.no_show_undo_s``, or of another day)."""
        def run(now: float) -> Ticket:
            if counter is not None:
                self._counter_row(counter)
            r = self._undoable(ticket, now)
            return self._as_ticket(self._requeue(r, now, counter, "front"))
        return self._run(run)

    def _undoable(self, ticket: str, now: float) -> TicketRow:
        """The no-show ticket ``ticket`` names, if it may still be undone at ``now``."""
        text = ticket.strip()
        found = self.conn.execute("SELECT id FROM tickets WHERE id = ?", (text,)).fetchone()
        if found is not None:
            r = self._ticket_row(str(found[0]))
        else:
            rows = self._tickets_numbered(self.business_day(now), text.upper())
            if not rows:
                raise E.UnknownTicket(f"No ticket {ticket} was issued today.")
            no_shows = [tid for tid, state in rows if state == "no_show"]
            r = self._ticket_row(no_shows[0] if no_shows else rows[0][0])
        if r.state != "no_show":
            raise E.BadState(f"Ticket {r.number} is {r.state.replace('_', '-')}, not a "
                             "no-show; only a no-show can be undone.")
        (ended_at,) = self.conn.execute("SELECT ended_at FROM tickets WHERE id = ?",
                                        (r.id,)).fetchone()
        tolerance = self.cfg.engine.no_show_undo_s
        if r.business_day != self.business_day(now) or ended_at is None \
                or now - float(ended_at) > tolerance:
            raise E.UndoExpired(f"Ticket {r.number} was a no-show more than {tolerance:g} s "
                                "ago (engine.no_show_undo_s); issue a new ticket instead.")
        return r

    def _requeue(self, r: TicketRow, now: float, counter: str | None, how: str) -> TicketRow:
        """Undo ``r``'s no-show: its last visit becomes ``no_show_undone`` (kept as
        history); the ticket waits again at the head of its queue with its first
        ``queued_at`` (its place), so its next visit is a new stay."""
        self.conn.execute(
            "UPDATE visits SET outcome = 'no_show_undone', reason = ? WHERE ticket_id = ? "
            "AND n = (SELECT MAX(n) FROM visits WHERE ticket_id = ?) AND outcome = 'no_show'",
            (counter, r.id, r.id))
        (qorder,) = self.conn.execute(
            "SELECT COALESCE(MIN(qorder), ?) - 1 FROM tickets WHERE state = 'waiting' "
            "AND service = ?", (r.qorder + 1, r.service)).fetchone()
        row = self._set_state(r, "waiting", qorder=qorder, counter=None, called_at=None,
                              serving_at=None, ended_at=None)
        if r.appointment is not None:
            self.conn.execute("UPDATE bookings SET state = 'checked_in' WHERE code = ? "
                              "AND state = 'no_show'", (r.appointment,))
        self._emit("ticket.no_show_undone", {
            **_ref(r), "counter": counter,
            "counter_number": self._counters[counter].number if counter else None,
            "no_show_counter": r.counter, "appointment": r.appointment, "then": how})
        return row

    # ------------------------------------------------------------------ deferred pause

    def _pause_with_ticket(self, counter: str, current: str) -> CounterState:
        """PAUSE while ``current`` is at the counter (``engine.pause_while_called``)."""
        num = self._counters[counter].number
        r = self._ticket_row(current)
        if self.cfg.engine.pause_while_called == "refuse":
            raise E.TicketOpen(f"Counter {num} is with {r.number}; press DONE, NO-SHOW or "
                               "TRANSFER first, then pause.")
        state, staff, _, _ = self._counter_row(counter)
        if not self._pause_pending(counter):
            self.conn.execute("UPDATE counters SET pause_pending = 1 WHERE id = ?", (counter,))
            self._cmd.after_commit.append(lambda: self._pending_pauses().add(counter))
            self._emit("counter.pause_pending", {
                "counter": counter, "counter_number": num, "staff": staff,
                "ticket_id": r.id, "number": r.number})
        return CounterState(counter, num, state, staff, current, pause_pending=True)

    def _pending_pauses(self) -> set[str]:
        """Counters with a pending pause, as committed (read once, then kept in step after
        each COMMIT): DONE, the hottest command, asks without a query."""
        pending: set[str] | None = getattr(self, "_pending_pause_ids", None)
        if pending is None:
            pending = {str(r[0]) for r in self.conn.execute(
                "SELECT id FROM counters WHERE pause_pending = 1")}
            self._pending_pause_ids = pending
        return pending

    def _pause_pending(self, counter: str) -> bool:
        return counter in self._pending_pauses()

    def _cancel_pending_pause(self, counter: str) -> None:
        """RESUME, OPEN or CLOSE while a pause is pending: the pause is off."""
        if self._pause_pending(counter):
            self.conn.execute("UPDATE counters SET pause_pending = 0 WHERE id = ?", (counter,))
            self._cmd.after_commit.append(lambda: self._pending_pauses().discard(counter))
            staff = self._counter_row(counter).staff
            self._emit("counter.pause_cancelled", {
                "counter": counter, "counter_number": self._counters[counter].number,
                "staff": staff})

    def _ticket_left(self, counter: str, r: TicketRow) -> None:
        """Ticket ``r`` left ``counter`` (DONE, NO-SHOW, TRANSFER), in that command's
        transaction: a pending pause takes effect now, before any new call."""
        if not self._pause_pending(counter):
            return
        state, staff, _, _ = self._counter_row(counter)
        self._cmd.after_commit.append(lambda: self._pending_pauses().discard(counter))
        self.conn.execute("UPDATE counters SET pause_pending = 0, state = CASE WHEN state = "
                          "'open' THEN 'paused' ELSE state END WHERE id = ?", (counter,))
        if state == "open":
            self._emit("counter.paused", {
                "counter": counter, "counter_number": self._counters[counter].number,
                "staff": staff, "after": r.number})

    # ------------------------------------------------------------------ alerts

    def _alert_data(self, data: dict[str, Any], now: float, scale: int) -> dict[str, Any]:
        """``feedback.alert``: enough for a manager to act on without a lookup (which
        ticket, counter, teller, when) and ``priority: "high"`` for consumers that sort."""
        tid = data.get("ticket_id")
        row = self.conn.execute("SELECT number FROM tickets WHERE id = ?", (tid,)).fetchone()
        counter = str(data["counter"])
        return {**data, "number": row[0] if row else None,
                "counter_number": self._counters[counter].number,
                "scale": scale, "at": rfc3339(utc_datetime(now)), "priority": "high"}

    def _tickets_numbered(self, day: str, number: str) -> list[tuple[str, str]]:
        raise NotImplementedError  # CounterCommands has it
