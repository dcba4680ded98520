"""Calling policy: which waiting ticket a counter's NEXT takes.

1. Priority classes first, in ``engine.priority_order`` (rank 0 is highest),
   then everyone else. A checked-in appointment whose slot has come ranks
   with the highest class: a walk-in of any priority class never passes a
   due appointment (in one service, rank-0 walk-ins such as an emergency go
   first, then due appointments by slot).
2. Anti-starvation: after ``starvation_after`` consecutive calls of priority
   classes or due appointments at this counter, the longest-waiting normal
   ticket goes next if it has waited more than ``starvation_wait_s``.
3. Within the top class: each service's head of line (FIFO by queue order;
   appointments by slot) competes on ``wait × weight`` of the counter's
   service weights, an appointment's wait counted from its slot (from
   check-in if later); ties go to the earlier queue order.
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


def _since(c: Candidate) -> float:
    """Since when ``c`` has been waiting to be called: an appointment from its slot
    (from its check-in when that came later)."""
    return c.queued_at if c.slot is None else max(c.queued_at, c.slot)


def _rank(c: Candidate, rules: Rules) -> int:
    """``c``'s class for calling (``c`` is due): a due appointment is in the top class."""
    return 0 if c.rank == rules.appointment_rank and c.slot is not None else c.rank


def call_rank(c: Candidate, rules: Rules, now: float) -> int:
    """Where ``c`` stands among the classes at ``now``, as :func:`choose` ranks it: a due
    appointment with the top class, one not yet due after everyone (called early only
    when nobody else is eligible), every other ticket by its own class."""
    if c.rank == rules.appointment_rank and c.slot is not None:
        return 0 if c.slot <= now else rules.normal_rank + 1
    return c.rank


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
    ranks = [_rank(c, rules) for c in due]
    top = min(ranks)
    lines = heads([c for c, r in zip(due, ranks, strict=True) if r == top])
    return max(lines.values(),
               key=lambda c: (max(now - _since(c), 0.0) * weights.get(c.service, 1.0),
                              -c.qorder))


def next_streak(streak: int, chosen: Candidate, rules: Rules) -> int:
    """The counter's count of consecutive calls ahead of normal tickets (priority
    classes and appointments) after calling ``chosen``."""
    return streak + 1 if chosen.rank <= rules.appointment_rank else 0
