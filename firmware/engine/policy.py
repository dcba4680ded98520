"""Calling policy: which waiting ticket a counter's NEXT takes.

1. Priority classes first, in ``engine.priority_order`` (rank 0 is highest),
   then appointments whose slot has come, then everyone else.
2. Anti-starvation: after ``starvation_after`` consecutive priority-class
   calls at this counter, the longest-waiting normal ticket goes next if it
   has waited more than ``starvation_wait_s``.
3. Within the top class: each service's head of line (FIFO by queue order;
   appointments by slot) competes on ``wait × weight`` of the counter's
   service weights; ties go to the earlier queue order.
4. Appointments not yet due are called early only when nobody else is
   eligible (the counter would otherwise be idle).

    choose(cands, now=t, weights={"cash": 2.0}, streak=0, rules=rules).id
    # -> 'tk-1'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """A waiting ticket as the policy sees it."""

    id: str
    service: str
    rank: int  # < n_classes: priority class; == n_classes: appointment; > : normal
    qorder: int
    queued_at: float
    slot: float | None


@dataclass(frozen=True)
class Rules:
    n_classes: int
    starvation_after: int
    starvation_wait_s: float

    @property
    def appointment_rank(self) -> int:
        return self.n_classes

    @property
    def normal_rank(self) -> int:
        return self.n_classes + 1


def _order_key(c: Candidate) -> tuple[float, int]:
    return (c.slot if c.slot is not None else 0.0, c.qorder)


def heads(cands: list[Candidate]) -> dict[str, Candidate]:
    """The head of line of each service among ``cands`` (same class assumed)."""
    out: dict[str, Candidate] = {}
    for c in cands:
        h = out.get(c.service)
        if h is None or _order_key(c) < _order_key(h):
            out[c.service] = c
    return out


def choose(cands: list[Candidate], *, now: float, weights: dict[str, float], streak: int,
           rules: Rules) -> Candidate | None:
    """The ticket NEXT should call, or None when nobody is waiting."""
    if not cands:
        return None
    due = [c for c in cands if c.slot is None or c.slot <= now]
    if not due:  # only early appointments: the counter is idle, take the earliest slot
        return min(cands, key=_order_key)
    normals = [c for c in due if c.rank >= rules.normal_rank]
    if streak >= rules.starvation_after and normals:
        oldest = max(heads(normals).values(), key=lambda c: (now - c.queued_at, -c.qorder))
        if now - oldest.queued_at > rules.starvation_wait_s:
            return oldest
    top = min(c.rank for c in due)
    lines = heads([c for c in due if c.rank == top])
    return max(lines.values(),
               key=lambda c: (max(now - c.queued_at, 0.0) * weights.get(c.service, 1.0),
                              -c.qorder))


def next_streak(streak: int, chosen: Candidate, rules: Rules) -> int:
    """The counter's consecutive-priority-call count after calling ``chosen``."""
    return streak + 1 if chosen.rank < rules.n_classes else 0
