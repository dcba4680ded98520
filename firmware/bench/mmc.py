"""M/M/c (and M/G/c) queues in virtual time, to check the wait estimator.

``erlang_c_wait`` is the textbook mean wait; ``simulate_mean_wait`` the same
queue simulated; ``estimator_trace`` replays a FCFS multi-counter queue and,
for every arrival that has to wait, records the people ahead ``k``, the
actual wait, the engine estimator's prediction (from what the engine would
know: elapsed service of busy counters and recent completed service times)
and the plain predictor ``(k+1)·s̄/c``. With ``oracle_futures`` it also
records, for chosen arrivals, the *oracle*: the Monte Carlo conditional mean
of the wait given the exact state at arrival (each counter's elapsed service,
``k``) and the TRUE service distribution (``oracle_wait``). Under squared
error no predictor that knows at most that state beats it (up to MC noise).

    >>> round(erlang_c_wait(1.0, 0.25, 5), 3)
    2.216
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import math
import random
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Container, Sequence
from dataclasses import dataclass
from statistics import NormalDist

from tessera.engine.estimator import (
    MIN_TAIL,
    Server,
    ServiceHistory,
    estimate_wait,
    plain_estimate,
)


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


class ServiceDist(ABC):
    """A service-time distribution: ``dist(rng)`` draws one time; ``sf``/``isf`` (the
    survival function and its inverse) let ``residuals`` draw the rest of a
    service already ``elapsed`` long exactly, by inverse CDF.

        >>> d = lognormal(4.0, 1.5)
        >>> round(d.isf(d.sf(3.0)), 9)
        3.0
        >>> min(d.residuals(random.Random(1), 30.0, 100)) >= 0
        True
    """

    mean: float

    @abstractmethod
    def __call__(self, rng: random.Random) -> float: ...

    @abstractmethod
    def sf(self, x: float) -> float:
        """P(S > x)."""

    @abstractmethod
    def isf(self, q: float) -> float:
        """The x with P(S > x) = q, for 0 < q < 1."""

    def tail_draws(self, rng: random.Random, tail: float, n: int) -> list[float]:
        """``n`` draws of ``isf(tail·U)``, U uniform on (0, 1): S given P(S > s) < tail."""
        return [self.isf(tail * _open01(rng)) for _ in range(n)]

    def sample(self, rng: random.Random, n: int) -> list[float]:
        """``n`` independent service times."""
        return self.tail_draws(rng, 1.0, n)

    def residuals(self, rng: random.Random, elapsed: float, n: int) -> list[float]:
        """``n`` draws of S - elapsed with S conditional on S > elapsed."""
        tail = max(self.sf(elapsed), _TINY)
        return [max(x - elapsed, 0.0) for x in self.tail_draws(rng, tail, n)]


_TINY = 1e-300  # sf floor: a service far in the tail still gets a finite residual
_UNIT = 2.0 ** -52


def _open01(rng: random.Random) -> float:
    """Uniform on the open interval (0, 1): isf is undefined at 0 and 1."""
    return (rng.getrandbits(52) + 0.5) * _UNIT


@dataclass(frozen=True)
class Exponential(ServiceDist):
    mean: float

    def __call__(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean)

    def sf(self, x: float) -> float:
        return math.exp(-max(x, 0.0) / self.mean)

    def isf(self, q: float) -> float:
        return -self.mean * math.log(q)


@dataclass(frozen=True)
class Lognormal(ServiceDist):
    mean: float
    mu: float
    sigma: float

    def __call__(self, rng: random.Random) -> float:
        return rng.lognormvariate(self.mu, self.sigma)

    def sf(self, x: float) -> float:
        if x <= 0:
            return 1.0
        return 0.5 * math.erfc((math.log(x) - self.mu) / (self.sigma * math.sqrt(2.0)))

    def isf(self, q: float) -> float:
        return math.exp(self.mu - self.sigma * _STD_NORMAL.inv_cdf(q))

    def tail_draws(self, rng: random.Random, tail: float, n: int) -> list[float]:
        # isf inlined: the oracle draws millions of these
        exp, inv, bits = math.exp, _STD_NORMAL.inv_cdf, rng.getrandbits
        mu, sigma, scale = self.mu, self.sigma, tail * _UNIT
        return [exp(mu - sigma * inv((bits(52) + 0.5) * scale)) for _ in range(n)]


_STD_NORMAL = NormalDist()


def exponential(mean: float) -> Exponential:
    return Exponential(mean)


def lognormal(mean: float, cv: float) -> Lognormal:
    sigma2 = math.log(1 + cv * cv)
    return Lognormal(mean, math.log(mean) - sigma2 / 2, math.sqrt(sigma2))


class Empirical(ServiceDist):
    """The engine's own model of a service: resample its recent service times.

    A residual with fewer than ``MIN_TAIL`` longer samples is memoryless, as
    in the estimator. ``oracle_wait`` under this model is the exact
    conditional mean the engine could compute from what it knows.
    """

    def __init__(self, hist: ServiceHistory) -> None:
        self.samples, self.mean = hist.samples, hist.mean
        self._memoryless = Exponential(hist.mean)  # too few samples, or too short a tail
        self._exp = None if hist.empirical else self._memoryless

    def __call__(self, rng: random.Random) -> float:
        return self.sample(rng, 1)[0]

    def sf(self, x: float) -> float:
        if self._exp is not None:
            return self._exp.sf(x)
        return 1.0 - bisect.bisect_right(self.samples, x) / len(self.samples)

    def isf(self, q: float) -> float:
        if self._exp is not None:
            return self._exp.isf(q)
        n = len(self.samples)
        return self.samples[min(n - 1, max(0, math.ceil(n * (1.0 - q)) - 1))]

    def sample(self, rng: random.Random, n: int) -> list[float]:
        if self._exp is not None:
            return self._exp.sample(rng, n)
        return rng.choices(self.samples, k=n)

    def residuals(self, rng: random.Random, elapsed: float, n: int) -> list[float]:
        tail = self.samples[bisect.bisect_right(self.samples, elapsed):]
        if self._exp is not None or len(tail) < MIN_TAIL:
            return self._memoryless.sample(rng, n)
        return [x - elapsed for x in rng.choices(tail, k=n)]


def oracle_wait(k: int, elapsed: Sequence[float | None], service: ServiceDist,
                rng: random.Random, futures: int) -> tuple[float, float]:
    """Monte Carlo mean and variance of the wait of a FCFS arrival with ``k`` ahead.

    ``elapsed`` holds each counter's elapsed service (None = idle). Each of
    ``futures`` futures draws every busy counter's residual given its elapsed
    time, then serves the ``k`` people ahead with fresh service times at
    whichever counter frees first; the wait is when the ``k + 1``-th slot
    comes up. Returns (sample mean, sample variance) of the waits.
    """
    if futures < 2:
        raise ValueError(f"oracle futures must be >= 2, got {futures}")
    if not elapsed:
        return math.inf, 0.0
    cols = [service.residuals(rng, e, futures) for e in elapsed if e is not None]
    idle = [0.0] * (len(elapsed) - len(cols))
    fresh = service.sample(rng, futures * k)
    replace = heapq.heapreplace
    total = total2 = 0.0
    for f, free in enumerate(zip(*cols, strict=True) if cols else [()] * futures):
        heap = [*free, *idle]
        heapq.heapify(heap)
        for s in fresh[f * k:(f + 1) * k]:
            replace(heap, heap[0] + s)
        w = heap[0]
        total += w
        total2 += w * w
    mean = total / futures
    return mean, max(total2 - futures * mean * mean, 0.0) / (futures - 1)


@dataclass(frozen=True)
class Row:
    k: int
    actual: float
    estimate: float
    plain: float
    # set only on the arrivals the oracle ran on (estimator_trace's oracle_futures):
    oracle: float | None = None  # MC E[wait | exact state], true service distribution
    oracle_var: float | None = None  # MC Var[wait | exact state], same futures
    oracle_history: float | None = None  # MC E[wait | state], the engine's model (Empirical)
    estimate_known: float | None = None  # estimate_wait given the true distribution


KNOWN_SAMPLES = 100_000  # size of the "true distribution" history for Row.estimate_known


def estimator_trace(n: int, lam: float, c: int, service: ServiceDist, seed: int, *,
                    window: int = 500, default_s: float = 4.0, warmup: int = 1000,
                    max_k: int = 20, oracle_futures: int = 0,
                    oracle_ks: Container[int] = range(8, 13),
                    oracle_every: int = 1) -> list[Row]:
    """Replay a FCFS c-counter queue; one Row per arrival that must wait (k ≤ max_k).

    With ``oracle_futures > 0`` every ``oracle_every``-th row whose ``k`` is in
    ``oracle_ks`` also gets the oracle columns (``oracle_wait`` under the true
    distribution and under the engine's own model, and the engine's estimator
    fed the true distribution), drawn from their own random streams: the
    trace itself does not depend on the oracle settings.
    """
    rng = random.Random(seed)
    orng = random.Random(f"oracle-{seed}")
    known = ServiceHistory(service.sample(random.Random(f"known-{seed}"), KNOWN_SAMPLES)
                           if oracle_futures > 0 else (), default_s)
    t = 0.0
    jobs: list[deque[tuple[float, float]]] = [deque() for _ in range(c)]  # (start, end)
    free_at = [0.0] * c
    history: deque[float] = deque()
    ranked: list[float] = []  # history, sorted
    hist = ServiceHistory((), default_s)
    finishing: list[tuple[float, float]] = []  # (end, duration) not yet completed
    queued: list[float] = []  # start times of customers still waiting
    rows: list[Row] = []
    eligible = 0  # rows the oracle could run on, to pick every oracle_every-th
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
            elapsed = [_elapsed(q, t) for q in jobs]
            servers = [Server(1.0, e) for e in elapsed]
            row = Row(k, start - t, estimate_wait(k, servers, hist),
                      plain_estimate(k, c, hist.mean))
            if oracle_futures > 0 and k in oracle_ks:
                if eligible % oracle_every == 0:
                    mean, var = oracle_wait(k, elapsed, service, orng, oracle_futures)
                    own, _ = oracle_wait(k, elapsed, Empirical(hist), orng, oracle_futures)
                    row = dataclasses.replace(row, oracle=mean, oracle_var=var,
                                              oracle_history=own,
                                              estimate_known=estimate_wait(k, servers, known))
                eligible += 1
            rows.append(row)
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
    """{k: (samples, RMSE / mean actual wait)} over the rows where ``field`` is set.

    To compare predictors on the same arrivals, pass only rows that have all of them.
    """
    out: dict[int, tuple[int, float]] = {}
    have = [r for r in rows if getattr(r, field) is not None]
    for k in sorted({r.k for r in have}):
        sel = [r for r in have if r.k == k]
        mean = sum(r.actual for r in sel) / len(sel)
        mse = sum((getattr(r, field) - r.actual) ** 2 for r in sel) / len(sel)
        out[k] = (len(sel), math.sqrt(mse) / mean)
    return out
