"""Day KPIs from the engine's outbox: waits, service times, SLA, no-shows, ratings, peaks.

Computed from the events (the same facts HQ receives), so a report can be
rebuilt from any copy of the event stream.

    >>> kpis = day_report(engine.events_since(0), cfg, "2026-03-02")
    >>> kpis["services"]["cash"]["sla_pct"]
    93.8
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from tessera.config import BranchConfig

Envelope = dict[str, Any]


def days_in(events: list[Envelope]) -> list[str]:
    return [e["data"]["business_day"] for e in events if e["type"] == "day.rolled"]


def events_of_day(events: list[Envelope], day: str) -> list[Envelope]:
    """The events between the roll into ``day`` and the next roll (outbox order)."""
    out: list[Envelope] = []
    current = None
    for e in events:
        if e["type"] == "day.rolled":
            current = e["data"]["business_day"]
            continue
        if current == day:
            out.append(e)
    return out


def _stats(xs: list[float]) -> dict[str, float | int | None]:
    if not xs:
        return {"n": 0, "mean_s": None, "p50_s": None, "p90_s": None}
    q = statistics.quantiles(xs, n=10) if len(xs) > 1 else [xs[0]] * 9
    return {"n": len(xs), "mean_s": round(statistics.fmean(xs), 1),
            "p50_s": round(statistics.median(xs), 1), "p90_s": round(q[8], 1)}


def _ratings(scores: list[int], alerts: int) -> dict[str, Any]:
    return {"n": len(scores), "mean": round(statistics.fmean(scores), 2) if scores else None,
            "alerts": alerts}


def day_report(events: list[Envelope], cfg: BranchConfig, day: str) -> dict[str, Any]:
    """KPIs of business day ``day`` per branch, service, counter and staff."""
    evs = events_of_day(events, day)
    waits: dict[str, list[float]] = defaultdict(list)
    service_s: dict[tuple[str, str], list[float]] = defaultdict(list)  # (kind, key)
    issued: Counter[str] = Counter()
    no_shows = {"walk_in": 0, "appointment": 0}
    voids = 0
    peaks: Counter[str] = Counter()
    scores: dict[tuple[str, str], list[int]] = defaultdict(list)
    alerts: Counter[tuple[str, str]] = Counter()
    first_call: set[str] = set()
    rating_status: Counter[str] = Counter()
    for e in evs:
        d, t = e["data"], e["type"]
        if t == "ticket.issued":
            issued[d["service"]] += 1
            ts = datetime.fromisoformat(e["ts"]).astimezone(cfg.tz)
            peaks[f"{ts:%H}:00"] += 1
        elif t == "ticket.called" and d["ticket_id"] not in first_call:
            first_call.add(d["ticket_id"])
            waits[d["service"]].append(float(d["wait_s"]))
        elif t == "ticket.done":
            for kind in ("service", "counter", "staff"):
                key = d[kind] if kind != "staff" else (d["staff"] or "-")
                service_s[kind, key].append(float(d["service_s"]))
        elif t == "ticket.no_show":
            no_shows["appointment" if d["appointment"] else "walk_in"] += 1
        elif t == "ticket.void":
            voids += 1
        elif t == "feedback.rated":
            rating_status[d["status"]] += 1
            if d["status"] == "bound":
                for kind in ("service", "counter", "staff"):
                    scores[kind, d[kind] or "-"].append(int(d["score"]))
        elif t == "feedback.alert":
            for kind in ("service", "counter", "staff"):
                alerts[kind, d[kind] or "-"] += 1
    services = {}
    for svc in cfg.services:
        w = waits.get(svc.id, [])
        within = sum(1 for x in w if x <= svc.sla_wait_s)
        services[svc.id] = {
            "issued": issued[svc.id], "wait": _stats(w),
            "service_time": _stats(service_s.get(("service", svc.id), [])),
            "sla_wait_s": svc.sla_wait_s, "sla_target_pct": round(svc.sla_target * 100, 1),
            "sla_pct": round(100 * within / len(w), 1) if w else None,
            "ratings": _ratings(scores.get(("service", svc.id), []),
                                alerts[("service", svc.id)])}

    def per(kind: str) -> dict[str, Any]:
        keys = {k for (kk, k) in service_s if kk == kind} | {k for (kk, k) in scores if kk == kind}
        return {k: {"service_time": _stats(service_s.get((kind, k), [])),
                    "ratings": _ratings(scores.get((kind, k), []), alerts[(kind, k)])}
                for k in sorted(keys)}

    all_waits = [x for xs in waits.values() for x in xs]
    return {
        "business_day": day, "issued": sum(issued.values()), "wait": _stats(all_waits),
        "no_shows": no_shows, "voided": voids, "ratings": dict(rating_status),
        "peak_hours": dict(sorted(peaks.items(), key=lambda kv: (-kv[1], kv[0]))[:5]),
        "issued_by_hour": dict(sorted(peaks.items())),
        "services": services, "counters": per("counter"), "staff": per("staff"),
    }
