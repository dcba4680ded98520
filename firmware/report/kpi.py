"""The KPIs of a range of business days: one definition of each (docs/kpi.md).

Pure computations over :class:`tessera.report.store_read.Facts`: ``tessera report``,
the demo's ``summary.json`` and the engine's daily ``kpi.daily`` summary all call
:func:`compute` (or :func:`daily_summary`), so they cannot disagree. Percentiles come
from :func:`tessera.stats.percentile` only.

    kpis = compute(facts, cfg)
    kpis["services"]["cash"]["sla_pct"]
    # -> 93.8
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from tessera.config import BranchConfig
from tessera.report.store_read import Facts, RatingFact, TicketFact, VisitFact
from tessera.stats import percentile

KPI_VERSION = 1
WAIT_BINS_MIN = (0, 5, 10, 15, 20, 30, 45, 60, 90, 120)  # histogram edges; the last is open
SERVED = frozenset({"done", "routed"})  # a visit ended by DONE (routed: on to the next service)
Block = dict[str, Any]


def stats(xs: list[float]) -> dict[str, float | int | None]:
    """n, mean, median (p50), p90 and max of ``xs`` in seconds (None when there are none)."""
    if not xs:
        return {"n": 0, "mean_s": None, "p50_s": None, "p90_s": None, "max_s": None}
    return {"n": len(xs), "mean_s": round(statistics.fmean(xs), 1),
            "p50_s": round(percentile(xs, 0.5), 1), "p90_s": round(percentile(xs, 0.9), 1),
            "max_s": round(max(xs), 1)}


def wait_histogram(xs: list[float]) -> dict[str, Any]:
    """Counts of waits per bin ``[edge, next edge)`` minutes (the last bin is open)."""
    counts = [0] * len(WAIT_BINS_MIN)
    for x in xs:
        i = len(WAIT_BINS_MIN) - 1
        while i > 0 and x < WAIT_BINS_MIN[i] * 60:
            i -= 1
        counts[i] += 1
    return {"edges_min": list(WAIT_BINS_MIN), "counts": counts}


def pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def visit_wait(v: VisitFact) -> float | None:
    """A visit's own wait: its call − when it joined this queue."""
    return None if v.called_at is None else max(0.0, v.called_at - v.queued_at)


def service_time(v: VisitFact) -> float | None:
    """Service time of a visit ended by DONE: DONE − service start (START). A DONE without
    START (panels without a START key) stores its own time as the start: such a visit
    counts from its call, as the engine's ``service_s`` and the wait estimate do."""
    if v.outcome not in SERVED:
        return None
    if v.serving_at is not None and v.serving_at < v.ended_at:
        return v.ended_at - v.serving_at
    return None if v.called_at is None else max(0.0, v.ended_at - v.called_at)


def ticket_waits(tickets: Iterable[TicketFact],
                 visits: Iterable[VisitFact]) -> dict[str, float]:
    """Each called ticket's waiting time: its first call − its issue."""
    first: dict[str, float] = {}
    for v in visits:
        if v.called_at is not None and (v.ticket_id not in first
                                        or v.called_at < first[v.ticket_id]):
            first[v.ticket_id] = v.called_at
    return {t.id: max(0.0, first[t.id] - t.issued_at) for t in tickets if t.id in first}


def ratings_block(rs: list[RatingFact], served: int) -> Block:
    """Satisfaction of one entity. Scores are compared only within their own scale: the
    satisfaction rate is the share of bound ratings in the top two scores of their scale;
    ``mean`` is the raw mean only when every rating is on one scale (else None)."""
    bound = [r for r in rs if r.status == "bound"]
    by_scale: dict[str, dict[str, int]] = {}
    for r in bound:
        dist = by_scale.setdefault(str(r.scale), {str(s): 0 for s in range(1, r.scale + 1)})
        dist[str(r.score)] = dist.get(str(r.score), 0) + 1
    scales = {r.scale for r in bound}
    complaints = sum(1 for r in bound if r.score == 1)
    return {
        "n": len(bound), "alerts": complaints, "complaints": complaints,
        "mean": round(statistics.fmean(r.score for r in bound), 2)
        if bound and len(scales) == 1 else None,
        "response_pct": pct(len(bound), served),
        "satisfaction_pct": pct(sum(1 for r in bound if r.score >= r.scale - 1), len(bound)),
        "by_scale": dict(sorted(by_scale.items(), key=lambda kv: int(kv[0]))),
        "duplicate": sum(1 for r in rs if r.status == "duplicate"),
        "unbound": sum(1 for r in rs if r.status == "unbound"),
    }


def visits_block(vs: list[VisitFact], rs: list[RatingFact],
                 sla_of: Callable[[str], float]) -> Block:
    """The KPIs every entity (branch, service, counter, staff, hour class) has (one pass
    over the visits: a month is ~100 k of them)."""
    waits: list[float] = []
    times: list[float] = []
    called = served = no_shows = transferred = recalls = unserved = above = 0
    slas: dict[str, float] = {}
    for v in vs:
        recalls += v.recalls
        if v.called_at is not None:
            called += 1
            w = v.called_at - v.queued_at
            waits.append(w if w > 0.0 else 0.0)
            sla = slas.get(v.service)
            if sla is None:
                sla = slas[v.service] = sla_of(v.service)
            if w > sla:
                above += 1
        o = v.outcome
        if o in SERVED:
            served += 1
            t = service_time(v)
            if t is not None:
                times.append(t)
        elif o == "no_show":
            no_shows += 1
        elif o == "transferred":
            transferred += 1
        elif o == "void":
            unserved += 1
    return {
        "visits": len(vs), "called": called, "served": served,
        "no_shows": no_shows, "no_show_pct": pct(no_shows, called),
        "transferred": transferred, "recalls": recalls, "left_unserved": unserved,
        "wait": stats(waits), "service_time": stats(times),
        "sla_pct": pct(called - above, called), "above_sla": above,
        "ratings": ratings_block(rs, served),
    }


class LocalHours:
    """``HH:00`` of an epoch second in the branch's zone, cached per quarter hour (every
    UTC offset and DST change in use falls on a quarter hour): a month's ~500 k
    timestamps cost ~3 k zone conversions."""

    def __init__(self, cfg: BranchConfig) -> None:
        self._tz = cfg.tz
        self._cache: dict[int, str] = {}

    def __call__(self, epoch: float) -> str:
        q = int(epoch // 900)
        got = self._cache.get(q)
        if got is None:
            got = self._cache[q] = f"{datetime.fromtimestamp(q * 900, self._tz):%H}:00"
        return got


def _local(epoch: float, cfg: BranchConfig) -> datetime:
    return datetime.fromtimestamp(epoch, cfg.tz)


def _group(items: Iterable[Any], key: Callable[[Any], str | None]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = defaultdict(list)
    for x in items:
        k = key(x)
        if k is not None:
            out[k].append(x)
    return out


def compute(facts: Facts, cfg: BranchConfig) -> dict[str, Any]:
    """Every KPI of ``facts`` (docs/kpi.md), as one JSON-ready dict."""
    services = {s.id: s for s in cfg.services}
    default_sla = min((s.sla_wait_s for s in cfg.services), default=900.0)

    def sla_of(service: str) -> float:
        svc = services.get(service)
        return svc.sla_wait_s if svc is not None else default_sla

    tickets, visits, ratings = facts.tickets, facts.visits, facts.ratings
    by_id = {t.id: t for t in tickets}
    waits = ticket_waits(tickets, visits)
    queued = {v.ticket_id for v in visits}
    voids = [t for t in tickets if t.state == "void"]
    unserved = {v.ticket_id for v in visits if v.outcome == "void"}
    branch = visits_block(visits, ratings, sla_of)
    branch["wait"] = stats(list(waits.values()))  # the branch's wait is per ticket
    branch.update(
        issued=len(tickets), arrived=sum(1 for t in tickets if t.state != "void" or t.id
                                         in queued),
        voided=len(voids),
        voided_by_reason=dict(sorted(Counter(
            "day_end" if t.id in unserved else "not_printed" for t in voids).items())),
        turned_away=len(facts.refusals), estimate=_estimate(tickets, waits))

    refused_by = _group(facts.refusals, lambda r: r.service)
    issued_by = Counter(t.origin for t in tickets)
    arrived_by = Counter(t.origin for t in tickets if t.state != "void" or t.id in queued)
    v_by_svc = _group(visits, lambda v: v.service)
    r_by_svc = _group(ratings, lambda r: r.service)
    out_services = {}
    for sid in [*services, *sorted(set(v_by_svc) - set(services))]:
        block = visits_block(v_by_svc.get(sid, []), r_by_svc.get(sid, []), sla_of)
        svc = services.get(sid)
        block.update(issued=issued_by[sid], arrived=arrived_by[sid],
                     wait_histogram=wait_histogram([w for v in v_by_svc.get(sid, [])
                                                    if (w := visit_wait(v)) is not None]),
                     turned_away=dict(sorted(Counter(
                         r.reason for r in refused_by.get(sid, [])).items())),
                     sla_wait_s=svc.sla_wait_s if svc else None,
                     sla_target_pct=round(svc.sla_target * 100, 1) if svc else None)
        out_services[sid] = block

    def per(vkey: Callable[[VisitFact], str | None],
            rkey: Callable[[RatingFact], str | None]) -> dict[str, Block]:
        vg, rg = _group(visits, vkey), _group(ratings, rkey)
        return {k: visits_block(vg.get(k, []), rg.get(k, []), sla_of)
                for k in sorted(set(vg) | set(rg))}

    status = Counter(r.status for r in ratings)
    appt = _appointments(facts, sla_of)
    hours = _hours(facts, cfg)
    single = facts.days[0] if len(facts.days) == 1 else None
    return {
        "v": KPI_VERSION, "from": facts.days[0] if facts.days else None,
        "to": facts.days[-1] if facts.days else None, "days": list(facts.days),
        "timezone": cfg.branch.timezone, "day_rollover": cfg.branch.day_rollover,
        "empty": not (tickets or facts.refusals or ratings or facts.bookings),
        "notes": list(facts.notes),
        "branch": branch, "services": out_services,
        "counters": per(lambda v: v.counter, lambda r: r.counter),
        "staff": per(lambda v: (v.staff or "-") if v.counter else None,
                     lambda r: r.staff or "-"),
        "priority": {p: visits_block(vs, [], sla_of) for p, vs in sorted(
            _group(visits, lambda v: v.priority).items())},
        "appointments": appt,
        "turned_away": {"by_reason": dict(sorted(Counter(r.reason for r in facts.refusals)
                                                 .items())),
                        "by_service": {s: len(rs) for s, rs in sorted(refused_by.items())}},
        "complaints": [_complaint(r, by_id, cfg) for r in sorted(ratings, key=lambda r: r.at)
                       if r.status == "bound" and r.score == 1],
        "hours": hours, "daily": _daily(facts, sla_of),
        # the keys of tessera.engine.report.day_report (a contract: kept)
        "business_day": single, "issued": len(tickets), "wait": branch["wait"],
        "no_shows": {"walk_in": sum(1 for v in visits if v.outcome == "no_show"
                                    and v.appointment is None),
                     "appointment": appt["no_shows"]},
        "voided": len(voids), "ratings": dict(sorted(status.items())),
        "issued_by_hour": {h: x["issued"] for h, x in hours.items() if x["issued"]},
        "peak_hours": dict(sorted(((h, x["issued"]) for h, x in hours.items()
                                   if x["issued"]), key=lambda kv: (-kv[1], kv[0]))[:5]),
    }


def _estimate(tickets: list[TicketFact], waits: dict[str, float]) -> Block:
    """Printed estimate vs actual wait: mean absolute error and bias (actual − printed)."""
    errs = [waits[t.id] - t.est_wait_s for t in tickets if t.id in waits]
    if not errs:
        return {"n": 0, "mae_s": None, "bias_s": None}
    return {"n": len(errs), "mae_s": round(statistics.fmean(abs(e) for e in errs), 1),
            "bias_s": round(statistics.fmean(errs), 1)}


def _appointments(facts: Facts, sla_of: Callable[[str], float]) -> Block:
    """Appointment tickets as one class, and the bookings of the range: a booking never
    checked in by the end of its window (the engine marks it ``missed`` then, in its tick
    and at the day roll) counts among the appointment no-shows; one still ``booked`` may
    yet check in."""
    vs = [v for v in facts.visits if v.appointment is not None]
    block = visits_block(vs, [], sla_of)
    missed = sum(1 for b in facts.bookings if b.state == "missed")
    called_no_show = block["no_shows"]
    block.update(booked=len(facts.bookings),
                 checked_in=sum(1 for b in facts.bookings if b.ticket_id is not None),
                 missed=missed, called_no_shows=called_no_show,
                 no_shows=called_no_show + missed)
    return block


def _hours(facts: Facts, cfg: BranchConfig) -> dict[str, Block]:
    """Per local hour of day: arrivals (by issue), served (by DONE), the counters that
    called or served in that hour (open counters), and the visits' waits."""
    hour = LocalHours(cfg)
    queued = {v.ticket_id for v in facts.visits}
    issued: Counter[str] = Counter()
    arrived: Counter[str] = Counter()
    for t in facts.tickets:
        h = hour(t.issued_at)
        issued[h] += 1
        if t.state != "void" or t.id in queued:
            arrived[h] += 1
    served: Counter[str] = Counter()
    counters: dict[str, set[str]] = defaultdict(set)
    waits: dict[str, list[float]] = defaultdict(list)
    for v in facts.visits:
        end = hour(v.ended_at)
        if v.outcome in SERVED:
            served[end] += 1
        if v.counter is not None and v.called_at is not None:
            h = hour(v.called_at)
            counters[h].add(v.counter)
            counters[end].add(v.counter)
            waits[h].append(max(0.0, v.called_at - v.queued_at))
    keys = sorted(set(issued) | set(served) | set(counters))
    days = max(1, len(facts.days))
    return {h: {"issued": issued[h], "arrived": arrived[h], "served": served[h],
                "counters": len(counters[h]), "arrived_per_day": round(arrived[h] / days, 1),
                "wait": stats(waits[h])} for h in keys}


def _daily(facts: Facts, sla_of: Callable[[str], float]) -> dict[str, Block]:
    """Per business day: the branch's headline figures and each service's service level."""
    vg = _group(facts.visits, lambda v: v.business_day)
    tg = _group(facts.tickets, lambda t: t.business_day)
    out = {}
    for day in facts.days:
        vs, ts = vg.get(day, []), tg.get(day, [])
        block = visits_block(vs, [], sla_of)
        queued = {v.ticket_id for v in vs}
        waits = ticket_waits(ts, vs)
        out[day] = {
            "arrived": sum(1 for t in ts if t.state != "void" or t.id in queued),
            "served": block["served"], "no_shows": block["no_shows"],
            "wait": stats(list(waits.values())), "sla_pct": block["sla_pct"],
            "services": _sla_by_service(vs, sla_of),
        }
    return out


def _sla_by_service(vs: list[VisitFact], sla_of: Callable[[str], float]
                    ) -> dict[str, float | None]:
    """Each service's service level (``sla_pct`` of :func:`visits_block`), in one pass."""
    called: Counter[str] = Counter()
    within: Counter[str] = Counter()
    for v in vs:
        called[v.service] += 0
        if v.called_at is not None:
            called[v.service] += 1
            if v.called_at - v.queued_at <= sla_of(v.service):
                within[v.service] += 1
    return {s: pct(within[s], called[s]) for s in sorted(called)}


def _complaint(r: RatingFact, by_id: dict[str, TicketFact], cfg: BranchConfig) -> Block:
    t = by_id.get(r.ticket_id or "")
    return {"ticket_id": r.ticket_id, "number": t.number if t else None,
            "counter": r.counter, "staff": r.staff, "service": r.service,
            "score": r.score, "scale": r.scale, "at": _local(r.at, cfg).isoformat()}


def daily_summary(kpis: dict[str, Any]) -> dict[str, Any]:
    """The compact form the engine publishes at a day's close (``kpi.daily``,
    retained ``state/kpi``): the branch's figures and each service's and counter's
    headline numbers, computed by :func:`compute` like every report."""
    b = kpis["branch"]

    def head(x: Block) -> Block:
        return {"served": x["served"], "no_shows": x["no_shows"],
                "wait_mean_s": x["wait"]["mean_s"], "wait_p90_s": x["wait"]["p90_s"],
                "service_mean_s": x["service_time"]["mean_s"], "sla_pct": x["sla_pct"],
                "ratings": x["ratings"]["n"],
                "satisfaction_pct": x["ratings"]["satisfaction_pct"],
                "complaints": x["ratings"]["complaints"]}

    return {
        "v": kpis["v"], "business_day": kpis["from"],
        "issued": b["issued"], "arrived": b["arrived"], "served": b["served"],
        "no_shows": kpis["no_shows"], "turned_away": kpis["turned_away"]["by_reason"],
        "left_unserved": b["left_unserved"], "transferred": b["transferred"],
        "recalls": b["recalls"], "voided": b["voided"],
        "wait": b["wait"], "service_time": b["service_time"], "sla_pct": b["sla_pct"],
        "above_sla": b["above_sla"],
        "ratings": {k: b["ratings"][k] for k in ("n", "response_pct", "satisfaction_pct",
                                                 "complaints", "unbound", "duplicate")},
        "estimate": b["estimate"],
        "services": {s: head(x) for s, x in kpis["services"].items()},
        "counters": {c: head(x) for c, x in kpis["counters"].items()},
    }
