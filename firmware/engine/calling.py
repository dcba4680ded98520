"""Counter commands: calling, recall, serving, done, no-show, transfer, counters, ratings."""

from __future__ import annotations

import json
from typing import Any

from tessera.engine import errors as E
from tessera.engine.core import _ref
from tessera.engine.counter_flow import CounterFlow
from tessera.engine.models import CounterState, Rating, Ticket
from tessera.engine.policy import Candidate, choose, next_streak
from tessera.engine.rows import TICKET_COLS, TicketRow


class CounterCommands(CounterFlow):
    """call_next / call_specific / recall / start / done / no_show / transfer / open_counter /
    close_counter / pause / resume / rate.

        engine.call_next("c1").state
        # -> 'called'
    """

    # ------------------------------------------------------------------ calling

    def call_next(self, counter: str) -> Ticket:
        """Call the next ticket for ``counter`` by the calling policy (see policy.py)."""
        def run(now: float) -> Ticket:
            c = self._counter_ready(counter)
            weights = {cs.service: cs.weight for cs in self._counters[counter].services}
            marks = ",".join("?" * len(weights))
            rows = {t.id: t for t in map(TicketRow._make, self.conn.execute(
                f"SELECT {TICKET_COLS} FROM tickets "
                f"WHERE state = 'waiting' AND service IN ({marks})", tuple(weights)))}
            cands = [Candidate(r.id, r.service, r.rank, r.qorder, r.queued_at, r.slot)
                     for r in rows.values()]
            chosen = choose(cands, now=now, weights=weights, streak=c.priority_streak,
                            rules=self.rules)
            if chosen is None:
                names = ", ".join(self._name(self._services[s])
                                  for s in weights)
                raise E.QueueEmpty(f"No one is waiting for {names}.")
            return self._call(now, counter, c.staff, rows[chosen.id],
                              next_streak(c.priority_streak, chosen, self.rules))
        return self._run(run)

    def call_specific(self, counter: str, number: str) -> Ticket:
        """Call ticket ``number`` (e.g. ``A017``) out of order."""
        def run(now: float) -> Ticket:
            c = self._counter_ready(counter)
            rows = self._tickets_numbered(self.business_day(now), number.strip().upper())
            if not rows:
                raise E.UnknownTicket(f"No ticket {number} was issued today.")
            waiting = [r for r in rows if r[1] == "waiting"]
            if not waiting and rows[0][1] == "no_show":  # the customer turned up after all
                r = self._requeue(self._undoable(number, now), now, counter, "called")
                return self._call(now, counter, c.staff, r, c.priority_streak)
            if not waiting:
                raise E.BadState(f"Ticket {number} is {rows[0][1].replace('_', '-')}, "
                                 "not waiting.")
            return self._call(now, counter, c.staff, self._ticket_row(waiting[0][0]),
                              c.priority_streak)
        return self._run(run)

    def _tickets_numbered(self, day: str, number: str) -> list[tuple[str, str]]:
        """(id, state) of the day's tickets shown as ``number``, newest first.

        A number is the issuing service's prefix of the day plus its sequence, so it is
        looked up through the UNIQUE (business_day, origin, seq) index; with
        ``number_wrap = "wrap"`` every sequence that displays alike is tried.
        """
        seqs: list[tuple[str, int]] = []
        for origin, prefix, top_seq in self.conn.execute(
                "SELECT service, prefix, (SELECT MAX(seq) FROM tickets t WHERE t.business_day "
                "= d.business_day AND t.origin = d.service) FROM day_services d "
                "WHERE business_day = ?", (day,)):
            digits = number[len(prefix):] if number.startswith(prefix) else ""
            if top_seq is None or not (digits.isascii() and digits.isdigit()):
                continue
            svc = self._services.get(origin)
            cap = 10 ** (svc.number_width if svc else len(digits)) - 1
            step = cap if self.cfg.engine.number_wrap == "wrap" else top_seq + 1
            seqs += [(origin, s) for s in range(int(digits), top_seq + 1, max(step, 1))]
        rows = [tuple(r) for origin, seq in seqs for r in self.conn.execute(
            "SELECT id, state, qorder FROM tickets WHERE business_day = ? AND origin = ? "
            "AND seq = ? AND number = ?", (day, origin, seq, number))]
        if not rows:  # a width changed mid-day: scan the day's tickets (a typo lands here)
            rows = [tuple(r) for r in self.conn.execute(
                "SELECT id, state, qorder FROM tickets WHERE business_day = ? AND number = ?",
                (day, number))]
        rows.sort(key=lambda r: r[2], reverse=True)
        return [(r[0], r[1]) for r in rows]

    def _call(self, now: float, counter: str, staff: str, r: TicketRow,
              streak: int) -> Ticket:
        if self._pause_pending(counter):  # left from a ticket the day's end voided
            self._cancel_pending_pause(counter)
        row = self._set_state(r, "called", counter=counter, called_at=now, serving_at=None,
                              staff=staff)
        self.conn.execute("UPDATE counters SET current = ?, priority_streak = ? WHERE id = ?",
                          (r.id, streak, counter))
        self._emit("ticket.called", self._call_data(r, counter, staff, now))
        return self._as_ticket(row)

    def _call_data(self, r: TicketRow, counter: str, staff: str,
                   now: float) -> dict[str, Any]:
        return {**_ref(r), "counter": counter,
                "counter_number": self._counters[counter].number, "staff": staff,
                "wait_s": round(max(0.0, now - r.queued_at), 1)}

    def recall(self, counter: str) -> Ticket:
        """Announce the current ticket again."""
        def run(now: float) -> Ticket:
            c, r = self._active(counter)
            row = self.conn.execute(f"UPDATE tickets SET recalls = recalls + 1 WHERE id = ? "
                                    f"RETURNING {TICKET_COLS}", (r.id,)).fetchone()
            data = self._call_data(r, counter, c.staff, now)
            data["recalls"] = r.recalls + 1
            self._emit("ticket.recalled", data)
            return self._as_ticket(TicketRow._make(row))
        return self._run(run)

    def start(self, counter: str) -> Ticket:
        """The called customer arrived: ``called`` → ``serving``."""
        def run(now: float) -> Ticket:
            _, r = self._active(counter)
            if r.state != "called":
                raise E.BadState(f"Ticket {r.number} is already being served.")
            return self._as_ticket(self._serve(now, counter, r))
        return self._run(run)

    def _serve(self, now: float, counter: str, r: TicketRow) -> TicketRow:
        row = self._set_state(r, "serving", serving_at=now)
        self._emit_serving(r, counter)
        return row

    def _emit_serving(self, r: TicketRow, counter: str) -> None:
        self._emit("ticket.serving", {**_ref(r), "counter": counter})

    def done(self, counter: str) -> Ticket:
        """Service finished (passing through ``serving`` if START was skipped); a routed
        ticket joins its next service, keeping its number."""
        def run(now: float) -> Ticket:
            c, r = self._active(counter)
            # called → serving → done/waiting is one UPDATE: the passage through serving
            # is never visible outside this transaction, only its event is
            served = {"serving_at": now} if r.state == "called" else {}
            if served:
                self._emit_serving(r, counter)
            assert r.called_at is not None  # a counter's current ticket was called
            service_s = max(0.0, now - r.called_at)
            self.conn.execute(
                "INSERT INTO service_times(service, id, seconds) SELECT ?, COALESCE(MAX(id), 0) "
                "+ 1, ? FROM service_times WHERE service = ?", (r.service, service_s, r.service))
            if r.service in self._times:  # else it is read from the table when first needed
                svc_id = r.service
                self._cmd.after_commit.append(lambda: self._add_service_time(svc_id, service_s))
            route = json.loads(r.route) if r.route else []
            nxt = route[0] if route else None
            self._end_visit(r._replace(serving_at=r.serving_at or now),
                            "done" if nxt is None else "routed", staff=c.staff)
            if nxt is None:
                row = self._set_state(r, "done", **served, ended_at=now)
            else:
                qorder = self._next_qorder()
                row = self._set_state(r, "waiting", service=nxt, queued_at=now, qorder=qorder,
                                route=json.dumps(route[1:]) if route[1:] else "",
                                serving_at=None)
            self.conn.execute(
                "UPDATE counters SET current = NULL, last_done = ?, last_done_at = ?, "
                "last_done_service = ?, last_done_staff = staff WHERE id = ?",
                (r.id, now, r.service, counter))
            self._emit("ticket.done", {
                **_ref(r), "counter": counter,
                "counter_number": self._counters[counter].number, "staff": c.staff,
                "service_s": round(service_s, 1), "next_service": nxt})
            self._ticket_left(counter, r)
            return self._as_ticket(row)
        return self._run(run)

    def no_show(self, counter: str) -> Ticket:
        """The called customer did not come."""
        def run(now: float) -> Ticket:
            c, r = self._active(counter)
            self._end_visit(r, "no_show", staff=c.staff)
            row = self._set_state(r, "no_show", ended_at=now)
            self.conn.execute("UPDATE counters SET current = NULL WHERE id = ?", (counter,))
            if r.appointment is not None:
                self.conn.execute("UPDATE bookings SET state = 'no_show' WHERE code = ?",
                                  (r.appointment,))
            self._emit("ticket.no_show", {
                **_ref(r), "counter": counter,
                "counter_number": self._counters[counter].number, "appointment": r.appointment})
            self._ticket_left(counter, r)
            return self._as_ticket(row)
        return self._run(run)

    def transfer(self, counter: str, service: str) -> Ticket:
        """Send the current ticket to ``service`` (front/back: ``engine.transfer_position``)."""
        svc = self._service(service)

        def run(now: float) -> Ticket:
            c, r = self._active(counter)
            if r.service == svc.id:
                raise E.BadState(f"Ticket {r.number} is already in "
                                 f"{self._name(svc)}.")
            position = self.cfg.engine.transfer_position
            if position == "front":
                (qorder,) = self.conn.execute(
                    "SELECT COALESCE(MIN(qorder), 1) - 1 FROM tickets WHERE state = 'waiting' "
                    "AND service = ?", (svc.id,)).fetchone()
                queued_at = r.queued_at
            else:
                qorder = self._next_qorder()
                queued_at = now
            self._end_visit(r, "transferred", staff=c.staff, reason=svc.id)
            # a transfer to a later step of the ticket's route skips the steps before it
            route = json.loads(r.route) if r.route else []
            rest = route[route.index(svc.id) + 1:] if svc.id in route else route
            row = self._set_state(r, "waiting", service=svc.id, qorder=qorder,
                                  queued_at=queued_at, serving_at=None,
                                  route=json.dumps(rest) if rest else "")
            self.conn.execute("UPDATE counters SET current = NULL WHERE id = ?", (counter,))
            self._emit("ticket.transferred", {
                "ticket_id": r.id, "number": r.number, "from_service": r.service,
                "to_service": svc.id,
                "counter": counter, "position": position})
            self._ticket_left(counter, r)
            return self._as_ticket(row)
        return self._run(run)

    # ------------------------------------------------------------------ counters

    def open_counter(self, counter: str, staff: str | None = None) -> CounterState:
        return self._counter_change(counter, "open", staff)

    def close_counter(self, counter: str) -> CounterState:
        return self._counter_change(counter, "closed", None)

    def pause(self, counter: str) -> CounterState:
        return self._counter_change(counter, "paused", None)

    def resume(self, counter: str) -> CounterState:
        return self._counter_change(counter, "open", None, resume=True)

    def _counter_change(self, counter: str, target: str, staff: str | None,
                        resume: bool = False) -> CounterState:
        def run(now: float) -> CounterState:
            state, old_staff, current, _ = self._counter_row(counter)
            num = self._counters[counter].number
            if target == "paused" and state == "closed":
                raise E.CounterClosed(f"Counter {num} is closed; open it first.")
            if resume and state == "closed":
                raise E.CounterClosed(f"Counter {num} is closed; open it instead of resuming.")
            if target == "closed" and current is not None:
                number = self._ticket_row(current)[1]
                raise E.CounterBusy(f"Counter {num} is still with {number}; finish it before "
                                    "closing.")
            if target == "paused" and current is not None and state == "open":
                return self._pause_with_ticket(counter, current)  # refused, or after it
            if target != "paused":
                self._cancel_pending_pause(counter)
            new_staff = old_staff if staff is None else staff
            if state != target or new_staff != old_staff:
                self.conn.execute("UPDATE counters SET state = ?, staff = ?, priority_streak = "
                                  "CASE WHEN ? = 'closed' THEN 0 ELSE priority_streak END "
                                  "WHERE id = ?", (target, new_staff, target, counter))
                kind = {"open": "resumed" if state == "paused" else "opened",
                        "closed": "closed", "paused": "paused"}[target]
                self._emit(f"counter.{kind}", {"counter": counter, "counter_number": num,
                                               "staff": new_staff})
            return CounterState(counter, num, target, new_staff, current)
        return self._run(run)

    # ------------------------------------------------------------------ feedback

    def rate(self, counter: str, score: int) -> Rating:
        """A satisfaction press: binds to the counter's last DONE within the window, until
        the counter calls its next ticket (then ``unbound``)."""
        scale = self.cfg.rating_scale(counter)  # the counter's own, else engine.rating_scale

        def run(now: float) -> Rating:
            if counter not in self._counters:
                self._counter_row(counter)
            if not isinstance(score, int) or not 1 <= score <= scale:
                raise E.BadScore(f"Score {score!r} is out of range; use 1 to {scale}.")
            staff, last, at, service, served_by, current = self.conn.execute(
                "SELECT staff, last_done, last_done_at, last_done_service, last_done_staff, "
                "current FROM counters WHERE id = ?", (counter,)).fetchone()
            # the window closes when the counter calls its next ticket: a press while the
            # next customer stands there is never credited to (nor raises an alert
            # against the teller of) the previous one
            if last is None or current is not None or \
                    now - at > self.cfg.engine.feedback_window_s:
                status, tid, service = "unbound", None, None
            else:
                if served_by is not None:  # who served it, even if the shift changed since
                    staff = served_by
                rated = self.conn.execute("SELECT 1 FROM ratings WHERE ticket_id = ? AND "
                                          "status = 'bound'", (last,)).fetchone()
                status, tid = ("duplicate" if rated else "bound"), last
            self.conn.execute("INSERT INTO ratings(ticket_id, counter, staff, service, score, "
                              "status, at, scale) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              (tid, counter, staff, service, score, status, now, scale))
            data = {"ticket_id": tid, "counter": counter, "staff": staff, "service": service,
                    "score": score, "scale": scale}
            self._emit("feedback.rated", {**data, "status": status})
            if status == "bound" and score == 1:
                self._emit("feedback.alert", self._alert_data(data, now, scale))
            return Rating(tid, counter, staff, service, score, status)
        return self._run(run, roll=False)

