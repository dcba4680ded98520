"""What the wait estimator learns online from the store (docs/engine.md "Wait estimator").

Every figure is read from committed history (``visits``, ``tickets``,
``bookings``) of the last two business days with visits, so it survives a
restart, and kept for ``REFRESH_S`` of clock time (one short query batch a
minute, not one per command):

* ``cycle_s`` per service: the mean counter time per call (called → end of the
  stay, every outcome: done, routed, transferred, no-show after its recalls);
* ``gap_s``: the mean time from a counter's end of one stay to its next call,
  over calls of a ticket that was already waiting then (the teller's overhead
  and breaks taken while people waited; gaps over ``MAX_GAP_S`` are closings);
* ``ahead_per_s`` per (service, class rank): new tickets of a higher class
  issued in the last ``RATE_WINDOW_S`` (plus transfers to the front of the
  queue when ``engine.transfer_position = "front"``), per second;
* booked appointments of the service still to come (slot, not checked in),
  with the show rate of the day's past bookings;
* ``ratios``: for the predictive range, ``log((actual + 60) / (printed + 60))``
  of the last ``CALIBRATION`` tickets' first calls, by people-ahead band.

    model = WaitModel()
    load = model.load(conn, cfg, rules, "cash", rank, now)
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tessera.config import WEEKDAYS, BranchConfig, parse_hours
from tessera.engine.estimator import Load
from tessera.engine.policy import Rules

REFRESH_S = 60.0
RATE_WINDOW_S = 1800.0
MIN_RATE_WINDOW_S = 600.0
MAX_GAP_S = 1200.0
SHARE_PRIOR_S = 1200.0  # the configured weights count as this much observed counter time
MIN_CYCLES = 10  # fewer measured cycles of a service: no cycle term (the service mean)
MIN_GAPS = 10
CALIBRATION = 300
MIN_CALIBRATION = 30
HORIZON_S = 4 * 3600.0  # appointments further ahead than this are ignored
DEFAULT_SHOW_RATE = 0.9
BANDS = (0, 3, 11)  # people-ahead bands of the range calibration: 0-2, 3-10, 11+
Z80 = 1.2815515655446004  # the 90th percentile of the standard normal


def band_of(k: int) -> int:
    return sum(k >= b for b in BANDS) - 1


@dataclass
class Learned:
    """The figures of one refresh (see module docstring)."""

    until: float
    cycles: dict[str, float] = field(default_factory=dict)
    gap_s: float = 0.0
    issued: list[tuple[str, int, float]] = field(default_factory=list)  # service, rank, at
    front: list[tuple[str, float]] = field(default_factory=list)  # transfers to front
    since: float = 0.0  # earliest activity the rates can count from
    bookings: dict[str, list[float]] = field(default_factory=dict)
    show_rate: float = DEFAULT_SHOW_RATE
    ratios: dict[int, list[float]] = field(default_factory=dict)
    # counter -> service -> seconds of its calls made while all its services had people
    # waiting (the contested share, see ``_contested``)
    spent: dict[str, dict[str, float]] = field(default_factory=dict)


class WaitModel:
    """The learned terms, refreshed at most every ``REFRESH_S`` (module docstring)."""

    def __init__(self) -> None:
        self._learned: Learned | None = None

    def forget(self) -> None:
        self._learned = None

    def learned(self, conn: sqlite3.Connection, cfg: BranchConfig, now: float) -> Learned:
        got = self._learned
        if got is None or not (got.until - REFRESH_S <= now < got.until):
            got = self._learned = _learn(conn, cfg, now)
        return got

    def load(self, conn: sqlite3.Connection, cfg: BranchConfig, rules: Rules, service: str,
             rank: int, now: float) -> Load:
        m = self.learned(conn, cfg, now)
        lo = max(now - RATE_WINDOW_S, m.since)
        span = max(now - lo, MIN_RATE_WINDOW_S)
        # higher classes than ``rank`` (appointments come from the bookings below)
        ahead = sum(1 for s, r, at in m.issued
                    if s == service and r < min(rank, rules.appointment_rank) and at >= lo)
        ahead += sum(1 for s, at in m.front if s == service and at >= lo)
        sched: tuple[float, ...] = ()
        if rank > rules.appointment_rank:
            sched = tuple(x - now for x in m.bookings.get(service, ()) if now <= x)
        return Load(cycle_s=m.cycles.get(service), gap_s=m.gap_s, ahead_per_s=ahead / span,
                    scheduled=sched, scheduled_weight=m.show_rate)

    def shares(self, conn: sqlite3.Connection, cfg: BranchConfig, counter: str,
               weights: dict[str, float], busy: set[str], now: float) -> dict[str, float]:
        """The share of a counter's time each of its services in ``busy`` will get: the
        time it spent on each in calls made while all of its services had people
        waiting, the weights counting as ``SHARE_PRIOR_S`` of it (a counter's calls
        follow class, then wait × weight, not the weights alone)."""
        spent = self.learned(conn, cfg, now).spent.get(counter, {})
        total_w = sum(weights.values())
        mass = {s: spent.get(s, 0.0) + SHARE_PRIOR_S * w / total_w
                for s, w in weights.items() if s in busy}
        total = sum(mass.values())
        return {s: m / total for s, m in mass.items()}

    def interval(self, conn: sqlite3.Connection, cfg: BranchConfig, est_s: float, k: int,
                 now: float) -> tuple[float, float]:
        """The 80 % predictive range (s) around an estimate ``est_s`` with ``k`` ahead."""
        m = self.learned(conn, cfg, now)
        if not math.isfinite(est_s):
            return est_s, est_s
        xs = m.ratios.get(band_of(k)) or []
        if len(xs) < MIN_CALIBRATION:
            xs = sorted(x for v in m.ratios.values() for x in v)
        if len(xs) >= MIN_CALIBRATION:
            q10, q90 = _quantile(xs, 0.1), _quantile(xs, 0.9)
        else:  # too few measured waits: an Erlang(k+1)-like spread
            sd = 1.0 / math.sqrt(k + 1.0)
            q10, q90 = math.log(max(1.0 - Z80 * sd, 0.05)), math.log(1.0 + Z80 * sd)
        base = est_s + 60.0
        return max(0.0, base * math.exp(q10) - 60.0), max(0.0, base * math.exp(q90) - 60.0)


def _quantile(xs: list[float], q: float) -> float:
    """Linear-interpolated quantile of sorted ``xs``."""
    pos = q * (len(xs) - 1)
    i = int(pos)
    j = min(i + 1, len(xs) - 1)
    return xs[i] + (xs[j] - xs[i]) * (pos - i)


def _days(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT business_day FROM visits ORDER BY business_day DESC LIMIT 2")]


def _learn(conn: sqlite3.Connection, cfg: BranchConfig, now: float) -> Learned:
    out = Learned(until=now + REFRESH_S)
    days = _days(conn)
    marks = ",".join("?" * len(days))
    visits: list[tuple[str, str | None, float, float, float, str]] = []
    if days:
        visits = conn.execute(
            "SELECT service, counter, queued_at, called_at, ended_at, outcome FROM visits "
            f"WHERE business_day IN ({marks}) AND called_at IS NOT NULL AND ended_at <= ? "
            "ORDER BY called_at", (*days, now)).fetchall()
    per: dict[str, list[float]] = {}
    for service, _, _, called, ended, outcome in visits:
        if outcome != "void":
            per.setdefault(service, []).append(max(0.0, ended - called))
    out.cycles = {s: sum(xs[-500:]) / len(xs[-500:]) for s, xs in per.items()
                  if len(xs) >= MIN_CYCLES}
    last_end: dict[str, float] = {}
    gaps: list[float] = []
    for _, counter, queued, called, ended, outcome in visits:
        if counter is None or outcome == "void":
            continue
        prev = last_end.get(counter)
        if prev is not None and queued <= prev <= called and called - prev <= MAX_GAP_S:
            gaps.append(called - prev)
        last_end[counter] = ended
    out.spent = _contested(conn, cfg, visits, now)
    if len(gaps) >= MIN_GAPS:
        out.gap_s = sum(gaps[-300:]) / len(gaps[-300:])
    lo = now - RATE_WINDOW_S
    today = days[0] if days else None
    first = conn.execute("SELECT MIN(issued_at) FROM tickets WHERE business_day = "
                         "(SELECT MAX(business_day) FROM tickets)").fetchone()[0]
    out.since = float(first) if first is not None else now
    out.issued = [(s, int(r), float(at)) for s, r, at in conn.execute(
        "SELECT service, rank, queued_at FROM tickets WHERE business_day = "
        "(SELECT MAX(business_day) FROM tickets) AND issued_at >= ? AND state != 'void'",
        (lo,))]
    if cfg.engine.transfer_position == "front" and today is not None:
        out.front = [(str(s), float(at)) for s, at in conn.execute(
            "SELECT reason, ended_at FROM visits WHERE business_day = ? AND "
            "outcome = 'transferred' AND ended_at >= ?", (today, lo))]
    for service, slot in conn.execute(
            "SELECT service, slot FROM bookings WHERE state = 'booked' AND slot >= ? AND "
            "slot <= ?", (now - cfg.engine.appointment_late_s, now + HORIZON_S)):
        out.bookings.setdefault(service, []).append(float(slot))
    past = conn.execute(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE state != 'booked' AND state != 'no_show') "
        "FROM bookings WHERE slot >= ? AND slot < ?",
        (now - 86400.0, now - cfg.engine.appointment_late_s)).fetchone()
    if past[0] >= 5:
        out.show_rate = past[1] / past[0]
    rows = conn.execute(
        "SELECT t.people_ahead, t.est_wait_s, v.called_at - t.issued_at FROM visits v "
        "JOIN tickets t ON t.id = v.ticket_id WHERE v.n = 1 AND v.called_at IS NOT NULL "
        f"AND t.appointment IS NULL AND v.business_day IN ({marks}) ORDER BY v.called_at "
        "DESC LIMIT ?", (*days, CALIBRATION)).fetchall() if days else []
    for k, est, actual in rows:
        out.ratios.setdefault(band_of(int(k)), []).append(
            math.log((max(actual, 0.0) + 60.0) / (max(est, 0.0) + 60.0)))
    for xs in out.ratios.values():
        xs.sort()
    return out


def _contested(conn: sqlite3.Connection, cfg: BranchConfig,
               visits: list[tuple[str, str | None, float, float, float, str]],
               now: float) -> dict[str, dict[str, float]]:
    """Per counter serving several services: the seconds of its calls, per service, made
    at an instant when every one of its services had someone waiting (from each stay's
    queued_at and called_at; tickets still waiting count as not yet called)."""
    import bisect

    queued: dict[str, list[float]] = {}
    called: dict[str, list[float]] = {}
    for service, _, q, c, _, _ in visits:
        queued.setdefault(service, []).append(q)
        called.setdefault(service, []).append(c)
    for service, q in conn.execute("SELECT service, queued_at FROM tickets "
                                   "WHERE state = 'waiting'"):
        queued.setdefault(service, []).append(float(q))
    for xs in (*queued.values(), *called.values()):
        xs.sort()

    def waiting(service: str, t: float) -> bool:
        # someone joined before t and was not yet called at t (a stay called at t is the
        # one being called now)
        return (bisect.bisect_right(queued.get(service, []), t)
                - bisect.bisect_right(called.get(service, []), t)) > 0

    served = {c.id: [cs.service for cs in c.services] for c in cfg.counters
              if len(c.services) > 1}
    out: dict[str, dict[str, float]] = {}
    for service, counter, _, c, ended, outcome in visits:
        mine = served.get(counter or "")
        if mine is None or outcome == "void" or service not in mine:
            continue
        if all(s == service or waiting(s, c) for s in mine):
            spent = out.setdefault(counter or "", {})
            spent[service] = spent.get(service, 0.0) + max(0.0, ended - c)
    return out


def counter_spans(hours: dict[str, tuple[str, ...]], now: float,
                  tz: ZoneInfo) -> list[tuple[float, float]]:
    """Today's staffed spans (epoch s) of a counter's ``hours`` (the services' format);
    [] when it has none."""
    if not hours:
        return []
    local = datetime.fromtimestamp(now, UTC).astimezone(tz)
    day = local.date()
    spans = hours.get(WEEKDAYS[day.weekday()], hours.get("default", ()))
    out = []
    for span in spans:
        start, end = parse_hours(span)
        s = datetime.combine(day, start, tz)
        e = datetime.combine(day + timedelta(days=1) if end == time(0, 0) else day, end, tz)
        out.append((s.timestamp(), e.timestamp()))
    return sorted(out)


def staffing(hours: dict[str, tuple[str, ...]], now: float, tz: ZoneInfo,
             is_open: bool) -> tuple[float, float] | None:
    """``(start_s, stop_s)`` from now of a counter by its ``hours``: an open counter
    inside a span stops at its end (``(0, end)``); a closed one counts from the start of
    its next span today to its end; None when it is not expected to call (closed with
    no span to come, or no hours: then an open counter calls on, a closed one never)."""
    spans = counter_spans(hours, now, tz)
    if not spans:
        return (0.0, math.inf) if is_open else None
    for start, end in spans:
        if is_open and start <= now < end:
            return 0.0, end - now
        if not is_open and start > now:
            return start - now, end - now
    return (0.0, math.inf) if is_open else None
