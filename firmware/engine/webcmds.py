"""What the web role asks of the engine: a ticket's live place and its phone rating.

    place = engine.ticket_place(ticket.id)
    (place.ticket.state, place.ahead)
    # -> ('waiting', 2)
    engine.rate_ticket(ticket.id, 5).status      # after DONE; a second time: AlreadyRated
    # -> 'bound'
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from tessera.engine import errors as E
from tessera.engine.counter_flow import CounterFlow
from tessera.engine.estimator import estimate_wait
from tessera.engine.models import Rating, TicketPlace
from tessera.engine.rows import TicketRow


class WebCommands(CounterFlow):
    """ticket_place / ticket_places (reads) and rate_ticket (a command)."""

    def ticket_place(self, ticket_id: str) -> TicketPlace:
        """The ticket's live place (UnknownTicket if there is none)."""
        got = self.ticket_places([ticket_id])
        if ticket_id not in got:
            raise E.UnknownTicket(f"There is no ticket with id {ticket_id!r}.")
        return got[ticket_id]

    def ticket_places(self, ticket_ids: Iterable[str]) -> dict[str, TicketPlace]:
        """The live places of the known ones of ``ticket_ids`` (one consistent read)."""
        ids = list(dict.fromkeys(ticket_ids))
        out: dict[str, TicketPlace] = {}
        with self._lock:
            now = self.clock.now().timestamp()
            self.conn.execute("BEGIN")
            try:
                rows: list[TicketRow] = []
                for tid in ids:
                    try:
                        rows.append(self._ticket_row(tid))
                    except E.UnknownTicket:
                        continue
                queues: dict[str, list[tuple[int, int]]] = {}
                for svc in {r.service for r in rows if r.state == "waiting"}:
                    queues[svc] = sorted(tuple(q) for q in self.conn.execute(
                        "SELECT rank, qorder FROM tickets WHERE state = 'waiting' AND "
                        "service = ?", (svc,)))
                rated = {r[0] for r in self.conn.execute(
                    "SELECT ticket_id FROM ratings WHERE status = 'bound' AND ticket_id IN "
                    f"({','.join('?' * len(rows))})", [r.id for r in rows])} if rows else set()
                for r in rows:
                    ahead, est, counter = 0, None, None
                    if r.state == "waiting":
                        ahead = bisect.bisect_left(queues[r.service], (r.rank, r.qorder))
                        busy = set(queues)
                        servers = self._servers(r.service, now, busy)
                        hist = self._history(r.service)
                        est = (ahead + 1) * hist.mean if not servers else \
                            estimate_wait(ahead, servers, hist)
                        est = round(float(est), 1)
                    if r.state in ("called", "serving") and r.counter in self._counters:
                        counter = self._counters[r.counter].number
                    out[r.id] = TicketPlace(self._as_ticket(r), ahead, est, counter,
                                            r.id in rated)
            finally:
                self.conn.execute("COMMIT")
        return out

    def rate_ticket(self, ticket_id: str, score: int, *, channel: str = "web") -> Rating:
        """The ticket's one rating, given after DONE on its own page (``channel``).

        Refused with ``bad-state`` before DONE, ``already-rated`` when the ticket has
        its rating (from the counter's buttons or an earlier phone rating),
        ``bad-score`` out of 1..the scale of the counter that served it
        (``counters[].rating_scale``, else ``engine.rating_scale``).
        """
        def run(now: float) -> Rating:
            r = self._ticket_row(ticket_id)
            if r.state != "done":
                raise E.BadState(f"Ticket {r.number} is {r.state.replace('_', '-')}; it can "
                                 "be rated once it is done.")
            scale = self.cfg.rating_scale(r.counter or "")
            if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= scale:
                raise E.BadScore(f"Score {score!r} is out of range; use 1 to {scale}.")
            if self.conn.execute("SELECT 1 FROM ratings WHERE ticket_id = ? AND status = "
                                 "'bound'", (r.id,)).fetchone():
                raise E.AlreadyRated(f"Ticket {r.number} has already been rated; thank you.")
            staff = self.conn.execute("SELECT COALESCE(staff, '') FROM tickets WHERE id = ?",
                                      (r.id,)).fetchone()[0]
            counter = r.counter or ""
            self.conn.execute("INSERT INTO ratings(ticket_id, counter, staff, service, score, "
                              "status, at, scale) VALUES (?, ?, ?, ?, ?, 'bound', ?, ?)",
                              (r.id, counter, staff, r.service, score, now, scale))
            data = {"ticket_id": r.id, "counter": counter, "staff": staff,
                    "service": r.service, "score": score, "scale": scale}
            self._emit("feedback.rated", {**data, "status": "bound", "channel": channel})
            if score == 1 and counter in self._counters:
                self._emit("feedback.alert", {**self._alert_data(data, now, scale),
                                              "channel": channel})
            return Rating(r.id, counter, staff, r.service, score, "bound")
        return self._run(run, roll=False)
