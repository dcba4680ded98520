"""M/M/c (and M/G/c) queues in virtual time, to check the wait estimator.

``erlang_c_wait`` is the textbook mean wait; ``simulate_mean_wait`` the same
queue simulated; ``estimator_trace`` replays a FCFS multi-counter queue and,
for every arrival that has to wait, records the people ahead ``k``, the
actual wait, the engine estimator's prediction (from what the engine would
know: elapsed service of busy counters and recent completed service times)
and the plain predictor ``(k+1)·s̄/c``.

    >>> round(erlang_c_wait(1.0, 0.25, 5), 3)
    2.216
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tessera.engine.estimator import Server, ServiceHistory, estimate_wait, plain_estimate

Sampler = Callable[[random.Random], float]


def erlang_c_wait(lam: float, mu: float, c: int) -> float:
    """Mean wait in queue of M/M/c (Erlang C)."""
    a = lam / mu
    if a >= c:
        return math.inf
    head = sum(a ** k / math.factorial(k) for k in range(c))
    tail = a ** c / math.factorial(c) / (1 - a / c)
    return tail / (head + tail) / (c * mu - lam)


def simulate_mean_wait(n: int, lam: float, mu: float, c: int, seed: int,
                       warmup: int = 10_000) -> float:
    """Mean wait of ``n`` FCFS customers of an M/M/c queue (after ``warmup``)."""
    rng = random.Random(seed)
    t, total = 0.0, 0.0
    free = [0.0] * c
    for i in range(n + warmup):
        t += rng.expovariate(lam)
        f = heapq.heappop(free)
        start = f if f > t else t
        if i >= warmup:
            total += start - t
        heapq.heappush(free, start + rng.expovariate(mu))
    return total / n


def exponential(mean: float) -> Sampler:
    return lambda rng: rng.expovariate(1.0 / mean)


def lognormal(mean: float, cv: float) -> Sampler:
    sigma2 = math.log(1 + cv * cv)
    mu, sigma = math.log(mean) - sigma2 / 2, math.sqrt(sigma2)
    return lambda rng: rng.lognormvariate(mu, sigma)


@dataclass(frozen=True)
class Row:
    k: int
    actual: float
    estimate: float
    plain: float


def estimator_trace(n: int, lam: float, c: int, service: Sampler, seed: int, *,
                    window: int = 500, default_s: float = 4.0, warmup: int = 1000,
                    max_k: int = 20) -> list[Row]:
    """Replay a FCFS c-counter queue; one Row per arrival that must wait (k ≤ max_k)."""
    rng = random.Random(seed)
    t = 0.0
    jobs: list[deque[tuple[float, float]]] = [deque() for _ in range(c)]  # (start, end)
    free_at = [0.0] * c
    history: deque[float] = deque()
    ranked: list[float] = []  # history, sorted
    hist = ServiceHistory((), default_s)
    finishing: list[tuple[float, float]] = []  # (end, duration) not yet completed
    queued: list[float] = []  # start times of customers still waiting
    rows: list[Row] = []
    for i in range(n):
        t += rng.expovariate(lam)
        changed = False
        while finishing and finishing[0][0] <= t:
            d = heapq.heappop(finishing)[1]
            history.append(d)
            bisect.insort(ranked, d)
            if len(history) > window:
                del ranked[bisect.bisect_left(ranked, history.popleft())]
            changed = True
        if changed:
            hist = ServiceHistory(ranked, default_s, presorted=True)
        while queued and queued[0] <= t:
            heapq.heappop(queued)
        j = min(range(c), key=free_at.__getitem__)
        start = max(t, free_at[j])
        s = service(rng)
        k = len(queued)
        if start > t and i >= warmup and k <= max_k:
            servers = [Server(1.0, _elapsed(q, t)) for q in jobs]
            rows.append(Row(k, start - t, estimate_wait(k, servers, hist),
                            plain_estimate(k, c, hist.mean)))
        if start > t:
            heapq.heappush(queued, start)
        heapq.heappush(finishing, (start + s, s))
        jobs[j].append((start, start + s))
        free_at[j] = start + s
    return rows


def _elapsed(q: deque[tuple[float, float]], t: float) -> float | None:
    """Elapsed service of the counter's job in progress at ``t`` (None = idle)."""
    while q and q[0][1] <= t:
        q.popleft()
    if q and q[0][0] <= t:
        return t - q[0][0]
    return None


def rmse_by_k(rows: list[Row], field: str = "estimate") -> dict[int, tuple[int, float]]:
    """{k: (samples, RMSE / mean actual wait)}."""
    out: dict[int, tuple[int, float]] = {}
    for k in sorted({r.k for r in rows}):
        sel = [r for r in rows if r.k == k]
        mean = sum(r.actual for r in sel) / len(sel)
        mse = sum((getattr(r, field) - r.actual) ** 2 for r in sel) / len(sel)
        out[k] = (len(sel), math.sqrt(mse) / mean)
    return out
