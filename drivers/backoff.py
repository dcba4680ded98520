"""Retry delays: the one home of Tessera's backoff (MQTT reconnects, board retries, the
display's wait for the engine).

``Backoff`` is the state of one retrying thing: the first retry after ``lo``, each
further one twice as late, never later than ``hi``; ``reset()`` when it works again.

    >>> b = Backoff(0.5, 4.0)
    >>> [b.next() for _ in range(5)]
    [0.5, 1.0, 2.0, 4.0, 4.0]
    >>> b.reset(); b.next()
    0.5

``backoff_delay`` is the stateless form with jitter, for many devices that must not
retry in lockstep (a branch's Pis reconnecting after a power cut).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """Doubling delays from ``lo`` to ``hi`` (seconds)."""

    lo: float
    hi: float
    delay: float = 0.0  # the last delay handed out; 0 before the first retry

    def next(self) -> float:
        """The delay before the next retry (``lo`` first, then doubling up to ``hi``)."""
        self.delay = self.lo if self.delay <= 0 else min(self.delay * 2, self.hi)
        return self.delay

    def reset(self) -> None:
        """It worked: the next failure starts again from ``lo``."""
        self.delay = 0.0


def backoff_delay(attempt: int, lo: float, hi: float, rng: random.Random | None = None, *,
                  since_s: float | None = None) -> float:
    """Equal-jitter exponential backoff: half fixed, half random, capped at ``hi``.

    With ``since_s`` (how long the link has been down) the cap is also a quarter of
    that, never under ``lo``: a peer that is back after an outage of T is found
    within about T/4, so a short outage never costs the full ``hi``.
    """
    if since_s is not None:
        hi = min(hi, max(lo, since_s / 4))
    base = min(hi, lo * (2 ** min(attempt, 30)))
    r = (rng or random).random()
    return float(base / 2 + r * base / 2)
