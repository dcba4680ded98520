"""Wait estimates: when will the (k+1)-th free counter slot come up?

Model (documented in docs/engine.md). A new ticket with ``k`` people ahead
starts when the counters serving its service have produced ``k + 1`` free
slots. Counter ``j`` (capacity share ``f_j``: 1 when it serves only this
service, its weight share otherwise) produces slots as a renewal process:

* an idle counter offers one slot at once, then one per service time;
* a busy counter whose customer has been served for ``a_j`` seconds frees
  after a residual ``R_j`` drawn from the recent service times longer than
  ``a_j`` (so a counter stuck with a long case counts for little), then one
  per service time.

The expected number of slots by time ``t`` is
``N(t) = Σ f_j (F_j(t) + ∫₀ᵗ F_j(u) du / s̄)`` where ``F_j`` is the CDF of
``R_j`` (``F = 1`` for an idle counter) and ``s̄`` the mean of recent service
times. The estimate is the ``t`` with ``N(t) = k + 1`` (bisection). For
exponential service times this is exactly the Erlang mean ``(k+1)·s̄/c``;
with heavy-tailed times the elapsed times of busy counters make it better
than that plain queue-length predictor.

What a ticket prints is ``combined_wait``: with someone ahead and the learned
terms active, the mean of this model and the queue-length predictor
(``queue_length_wait``, a forecast combination; docs/engine.md).

    >>> h = ServiceHistory([240.0] * 50)
    >>> round(estimate_wait(0, [Server(1.0, None)], h))
    0
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MIN_SAMPLES = 5  # below this many observed service times, assume exponential(default)
MIN_TAIL = 8  # residuals estimated from fewer longer samples fall back to memoryless


@dataclass(frozen=True)
class Server:
    """A counter serving the service: capacity share and elapsed service (None = idle).

    ``start_s``/``stop_s``: seconds from now when it starts / stops calling (a counter
    due to open later, or to close: ``counters[].hours``); by default, now / never.
    ``history``: the service times of the customer it serves now when that is another
    service (a shared counter), for that customer's residual; None = this service's.
    """

    share: float
    elapsed_s: float | None
    start_s: float = 0.0
    stop_s: float = math.inf
    history: ServiceHistory | None = None
    weight_share: float | None = None  # the configured weight share (QL's c); None = share


class ServiceHistory:
    """Recent service times of one service, sorted, with prefix sums."""

    def __init__(self, samples: Iterable[float], default_s: float = 300.0, *,
                 presorted: bool = False) -> None:
        xs = list(samples) if presorted else sorted(max(0.0, float(x)) for x in samples)
        self.default_s = default_s
        self.empirical = len(xs) >= MIN_SAMPLES
        self.samples = xs
        self._prefix: list[float] | None = None
        n = len(xs)
        total = math.fsum(xs)
        # shrink towards the configured default while there are few samples
        mean = (total + default_s * MIN_SAMPLES) / (n + MIN_SAMPLES) if n < 50 else total / n
        # a history of zero-length services (call and done at the same instant, e.g.
        # under a virtual clock) must not divide by zero downstream: one second floor
        self.mean = max(mean, 1.0)

    @property
    def prefix(self) -> list[float]:
        """Prefix sums of ``samples``, built on first use (only busy counters need them)."""
        if self._prefix is None:
            self._prefix = [0.0, *itertools.accumulate(self.samples)]
        return self._prefix

    def slots_busy(self, elapsed: float, t: float) -> float:
        """E[slots by t] of a counter busy for ``elapsed`` seconds."""
        return self._slots(bisect.bisect_right(self.samples, elapsed), elapsed, t)

    def _slots(self, i: int, elapsed: float, t: float) -> float:
        xs, pre, n = self.samples, self.prefix, len(self.samples)
        tail = n - i
        if not self.empirical or tail < MIN_TAIL:
            return t / self.mean  # memoryless: F(t) + ∫F/m == t/m exactly
        j = bisect.bisect_right(xs, elapsed + t)
        done = j - i  # samples finishing by t
        # ∫0^t F(u) du = t - E[min(R, t)]
        sum_min = (pre[j] - pre[i]) - done * elapsed + (n - j) * t
        return done / tail + (t - sum_min / tail) / self.mean


class _Slots:
    """N(t) with each busy counter's position in the sorted history looked up once.

    With a :class:`Load`, each counter's slots come ``gap_s`` after its customer
    leaves, and later ones one per ``cycle_s + gap_s`` (a cycle: the counter's time
    per call, whatever its outcome, plus the teller's overhead before the next NEXT).
    """

    def __init__(self, servers: Sequence[Server], hist: ServiceHistory,
                 load: Load | None = None) -> None:
        self.hist = hist
        always = [s for s in servers if s.start_s <= 0 and s.stop_s == math.inf]
        self.idle = sum(s.share for s in always if s.elapsed_s is None)
        self.gap = 0.0 if load is None else load.gap_s
        cycle = hist.mean if load is None or load.cycle_s is None else load.cycle_s
        self.period = max(cycle + self.gap, 1.0)
        self.plain = load is None or (load.cycle_s is None and load.gap_s == 0.0)
        self.busy = [(s.share, bisect.bisect_right(hist.samples, s.elapsed_s), s.elapsed_s)
                     for s in always if s.elapsed_s is not None
                     and (self.plain or s.history is None)]
        # busy with another service's customer: that service's residual, then our cycles
        self.other = [(s.share, bisect.bisect_right(s.history.samples, s.elapsed_s),
                       s.elapsed_s, s.history)
                      for s in always if s.elapsed_s is not None and not self.plain
                      and s.history is not None]
        # counters due to open or close: evaluated one by one
        self.windowed = [(s.share, bisect.bisect_right(hist.samples, s.elapsed_s)
                          if s.elapsed_s is not None else 0, s.elapsed_s, s.start_s, s.stop_s)
                         for s in servers if s.start_s > 0 or s.stop_s < math.inf]

    def __call__(self, t: float) -> float:
        h = self.hist
        total = 0.0
        for share, i, elapsed, start, stop in self.windowed:
            tt = min(t, stop)  # a counter that closed makes no more calls
            if elapsed is None:
                if tt >= start:
                    total += share * (1.0 + (tt - start) / (h.mean if self.plain
                                                            else self.period))
            elif self.plain:
                total += share * h._slots(i, elapsed, tt)
            elif tt > self.gap:
                total += share * self._busy(i, elapsed, tt - self.gap)
        if self.plain:
            total += self.idle * (1.0 + t / h.mean)
            for share, i, elapsed in self.busy:
                total += share * h._slots(i, elapsed, t)
            return total
        total += self.idle * (1.0 + t / self.period)
        u = t - self.gap  # a busy counter's slot comes gap_s after its customer leaves
        if u <= 0:
            return total
        for share, i, elapsed in self.busy:
            total += share * self._busy(i, elapsed, u)
        for share, i, elapsed, other in self.other:
            total += share * self._busy(i, elapsed, u, other)
        return total

    def _busy(self, i: int, elapsed: float, u: float,
              hist: ServiceHistory | None = None) -> float:
        """F(u) + ∫₀ᵘ F / period for a counter busy for ``elapsed`` s (residual from
        ``hist``, default this service's)."""
        h = self.hist if hist is None else hist
        xs, n = h.samples, len(h.samples)
        tail = n - i
        if not h.empirical or tail < MIN_TAIL:
            f = -math.expm1(-u / h.mean)  # memoryless residual, mean s̄
            return f + (u - h.mean * f) / self.period
        pre = h.prefix
        j = bisect.bisect_right(xs, elapsed + u)
        done = j - i
        sum_min = (pre[j] - pre[i]) - done * elapsed + (n - j) * u
        return done / tail + (u - sum_min / tail) / self.period


@dataclass(frozen=True)
class Load:
    """What a ticket will wait behind beyond the people ahead now (docs/engine.md).

    ``cycle_s``: the counters' mean time per call of this service, every outcome
    (done, transfer, no-show with its recalls); None = the mean service time.
    ``gap_s``: the teller's mean time from the end of one customer to the next
    NEXT while people were waiting. ``ahead_per_s``: the rate of new tickets that
    will be called before this one (higher classes, transfers to the front).
    ``scheduled``: seconds from now of known arrivals that will be called before it
    (booked appointments), each counting ``scheduled_weight`` (their show rate).
    """

    cycle_s: float | None = None
    gap_s: float = 0.0
    ahead_per_s: float = 0.0
    scheduled: tuple[float, ...] = ()
    scheduled_weight: float = 1.0


MAX_LOAD = 0.9  # arrivals ahead may take at most this share of the counters' slots


def estimate_wait(k_ahead: int, servers: Sequence[Server], hist: ServiceHistory,
                  load: Load | None = None) -> float:
    """Expected wait (s) of a ticket with ``k_ahead`` people ahead; inf if no counter.

    Without ``load`` it is the plain renewal model (the M/M/c figures); with it the
    ticket also waits for ``load``'s arrivals ahead, and each slot costs a cycle.
    """
    capacity = sum(s.share for s in servers)
    if capacity <= 0:
        return math.inf
    wait = _solve(k_ahead, servers, hist, load, capacity)
    if math.isinf(wait) and any(s.stop_s < math.inf for s in servers):
        # every counter closes before this ticket's turn: the estimate as if they stayed
        # (the closing is the branch's to handle, an infinite figure helps nobody)
        wait = _solve(k_ahead, [Server(s.share, s.elapsed_s, s.start_s) for s in servers],
                      hist, load, capacity)
    return wait


def _solve(k_ahead: int, servers: Sequence[Server], hist: ServiceHistory, load: Load | None,
           capacity: float) -> float:
    slots = _Slots(servers, hist, load)
    lam = 0.0
    sched: tuple[float, ...] = ()
    weight = 1.0
    if load is not None:
        # a ticket called ahead takes the first counter that frees, whatever its share:
        # of each of its slots only the counters' mean share would have been ours
        mean_share = capacity / len(servers)
        lam = min(load.ahead_per_s * mean_share, MAX_LOAD * capacity / slots.period)
        sched = tuple(sorted(x for x in load.scheduled if x >= 0))
        weight = load.scheduled_weight * mean_share
    need0 = k_ahead + 1.0

    def excess(t: float) -> float:
        need = need0 + lam * t
        if sched:
            need += weight * bisect.bisect_right(sched, t)
        return slots(t) - need

    f_lo = excess(0.0)
    if f_lo >= 0:
        return 0.0
    lo, hi = 0.0, slots.period * need0 / capacity
    f_hi = excess(hi)
    for _ in range(64):
        if f_hi >= 0:
            break
        lo, f_lo = hi, f_hi
        hi *= 2.0
        f_hi = excess(hi)
    else:
        return math.inf
    # Illinois regula falsi: N(t) is increasing and nearly linear, so few steps suffice
    side = 0
    for _ in range(60):
        mid = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        f_mid = excess(mid)
        if abs(f_mid) < 1e-6 or hi - lo < 1e-4 * hi:
            return mid
        if f_mid < 0:
            lo, f_lo = mid, f_mid
            if side == -1:
                f_hi /= 2
            side = -1
        else:
            hi, f_hi = mid, f_mid
            if side == 1:
                f_lo /= 2
            side = 1
    return (lo + hi) / 2


QL_WEIGHT = 0.5  # the combination's weight on the queue-length predictor, k >= 1


def queue_length_wait(k_ahead: int, servers: Sequence[Server], hist: ServiceHistory) -> float:
    """The queue-length predictor ``(k+1)·s̄/c`` (Ibrahim & Whitt): ``c`` the counters
    calling now (``start_s <= 0``), a shared one by its configured weight share; inf
    with none."""
    c = sum(s.share if s.weight_share is None else s.weight_share
            for s in servers if s.start_s <= 0)
    return (k_ahead + 1) * hist.mean / c if c > 0 else math.inf


def combined_wait(k_ahead: int, servers: Sequence[Server], hist: ServiceHistory,
                  load: Load | None = None) -> float:
    """The printed estimate: with the learned terms active (``load`` with a measured
    cycle) and someone ahead, the mean of the model's ``estimate_wait`` and the
    queue-length predictor (``QL_WEIGHT``; a forecast combination, docs/engine.md);
    else the model alone (the M/M/c figures, a ticket with nobody ahead).

        >>> h = ServiceHistory([300.0] * 60)
        >>> s = [Server(1.0, None), Server(0.5, None, weight_share=1.0)]
        >>> round(combined_wait(3, s, h, Load(cycle_s=300.0)))  # model 500, QL 600
        550
    """
    model = estimate_wait(k_ahead, servers, hist, load)
    if k_ahead < 1 or load is None or load.cycle_s is None or not math.isfinite(model):
        return model
    ql = queue_length_wait(k_ahead, servers, hist)
    if not math.isfinite(ql):
        return model
    return (1.0 - QL_WEIGHT) * model + QL_WEIGHT * ql


def plain_estimate(k_ahead: int, servers: int, mean_service_s: float) -> float:
    """The plain queue-length predictor (k+1)/(c·μ), for comparison."""
    return (k_ahead + 1) * mean_service_s / servers
