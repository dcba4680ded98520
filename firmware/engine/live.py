"""Live wait estimates: every waiting ticket's expected time to its call, from now.

A waiting ticket's people ahead are the waiting tickets of its service that
the calling policy takes first: a higher class, or its own class and earlier
in line (``policy._order_key``, the order ``policy.heads`` uses: by appointment slot,
then queue order). The
estimate is the engine's estimator (``core._estimate``'s terms) for that
``k`` and class, refreshed whenever it is asked; ``LiveGate`` decides which
changes are worth a message (docs/mqtt.md "Live wait estimates").

    for e in engine.live_estimates():
        e.number, e.people_ahead, e.est_wait_s
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tessera.engine.estimator import Load, Server, combined_wait
from tessera.engine.policy import Candidate, _order_key, call_rank

if TYPE_CHECKING:
    from tessera.engine.core import EngineCore

CHANGE_S = 60.0  # a published estimate moves when it is this far off...
CHANGE_SHARE = 0.1  # ...and this share of itself


@dataclass(frozen=True)
class LiveEstimate:
    """One waiting ticket's estimate as of ``at`` (epoch s): seconds from then to its call.

    ``est_low_s``/``est_high_s``: the 80 % range (``engine.wait_range``), else None.
    """

    ticket_id: str
    number: str
    service: str
    priority: str | None
    people_ahead: int
    est_wait_s: float
    est_low_s: float | None
    est_high_s: float | None
    waited_s: float
    at: float


def live_estimates(core: EngineCore, now: float,
                   service: str | None = None) -> list[LiveEstimate]:
    """Every waiting ticket's live estimate (of ``service``, or all), in calling order per
    service. Runs inside the caller's lock/transaction."""
    rows = core.conn.execute(
        "SELECT id, number, service, priority, rank, qorder, queued_at, slot FROM tickets "
        "WHERE state = 'waiting'" + (" AND service = ?" if service else ""),
        (service,) if service else ()).fetchall()
    by_service: dict[str, list[tuple[Candidate, str, str | None]]] = {}
    for tid, number, svc, prio, rank, qorder, queued_at, slot in rows:
        by_service.setdefault(svc, []).append(
            (Candidate(tid, svc, rank, qorder, queued_at, slot), number, prio))
    out: list[LiveEstimate] = []
    for svc, group in sorted(by_service.items()):
        if svc not in core._services:
            continue
        # the order NEXT calls them in (a due appointment ranks with the top class)
        group.sort(key=lambda g: (call_rank(g[0], core.rules, now), *_order_key(g[0])))
        hist = core._history(svc)
        cache: dict[int, tuple[list[Server], Load]] = {}
        for k, (cand, number, prio) in enumerate(group):
            got = cache.get(cand.rank)
            if got is None:
                busy = {s for s, g in by_service.items() if any(c.rank <= cand.rank for c, _, _
                                                                  in g)}
                servers = core._servers(svc, now, busy)
                load = core._waits.load(core.conn, core.cfg, core.rules, svc, cand.rank, now)
                got = cache[cand.rank] = (servers, load)
            servers, load = got
            if servers:
                est = combined_wait(k, servers, hist, load)
            else:
                est = (k + 1) * hist.mean
            low = high = None
            if core.cfg.engine.wait_range:
                low, high = core._waits.interval(core.conn, core.cfg, est, k, now)
                low, high = round(low, 1), round(high, 1)
            out.append(LiveEstimate(cand.id, number, svc, prio, k, round(est, 1), low, high,
                                    round(max(0.0, now - cand.queued_at), 1), now))
    return out


class LiveGate:
    """Which live estimates to publish: a ticket's figures are re-sent only when its
    estimate moved by more than ``CHANGE_S`` and ``CHANGE_SHARE`` of itself since it was
    last sent (or its people ahead changed); between, the last sent figures stand.

        gate = LiveGate()
        shown = gate.hold(engine.live_estimates())
    """

    def __init__(self) -> None:
        self._sent: dict[str, LiveEstimate] = {}

    def hold(self, current: list[LiveEstimate]) -> list[LiveEstimate]:
        out = []
        for e in current:
            last = self._sent.get(e.ticket_id)
            if last is None or moved(last, e):
                self._sent[e.ticket_id] = last = e
            out.append(last)
        live = {e.ticket_id for e in current}
        for tid in [t for t in self._sent if t not in live]:
            del self._sent[tid]
        return out


def moved(last: LiveEstimate, now: LiveEstimate) -> bool:
    """Whether ``now`` differs enough from ``last`` (as published) to be sent."""
    if last.people_ahead != now.people_ahead:
        return True
    # the published figure counts down by itself: compare with what it says now
    expected = max(0.0, last.est_wait_s - (now.at - last.at))
    off = abs(now.est_wait_s - expected)
    return off > CHANGE_S and off > CHANGE_SHARE * max(now.est_wait_s, expected)
