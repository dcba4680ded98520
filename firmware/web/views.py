"""What the web pages show, as typed records built from the engine's answers.

The engine's ``snapshot`` is decoded once, here, into :class:`Snapshot`
(msgspec, unknown keys ignored, wrong shapes refused), so nothing past this
module handles loose dicts; the pages get plain JSON-ready dicts built from
these records.

    snap = decode_snapshot(engine.snapshot())
    hall_view(cfg, snap)["services"][0]["names"]
    # -> {'zh': '现金业务', 'en': 'Cash'}
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from tessera.config import BranchConfig
from tessera.engine.models import TicketPlace

HISTORY = 8  # calls shown on the hall display (the newest highlighted)


class ServiceState(msgspec.Struct, frozen=True):
    waiting: int
    est_wait_s: float
    open: bool


class CurrentTicket(msgspec.Struct, frozen=True):
    ticket_id: str
    number: str
    service: str
    state: str
    recalls: int = 0


class CounterView(msgspec.Struct, frozen=True):
    number: int
    state: str
    staff: str | None = None
    current: CurrentTicket | None = None


class Call(msgspec.Struct, frozen=True):
    ticket_id: str
    number: str
    service: str
    counter: str | None
    counter_number: int
    ts: str
    recalls: int = 0


class Snapshot(msgspec.Struct, frozen=True):
    business_day: str
    services: dict[str, ServiceState]
    counters: dict[str, CounterView]
    recent_calls: list[Call]


def decode_snapshot(raw: Mapping[str, object]) -> Snapshot:
    """The engine's snapshot as a :class:`Snapshot` (msgspec.ValidationError if malformed)."""
    return msgspec.convert(dict(raw), Snapshot)


def _names(cfg: BranchConfig, service: str) -> dict[str, str]:
    try:
        svc = cfg.service(service)
    except KeyError:
        return {lang: service for lang in cfg.branch.languages}
    return {lang: svc.name(lang) for lang in cfg.branch.languages}


def hall_view(cfg: BranchConfig, snap: Snapshot) -> dict[str, object]:
    """The hall display's state: calls (newest first), queues per service, languages."""
    calls = [{"ticket_id": c.ticket_id, "number": c.number, "counter": c.counter_number,
              "service": c.service, "names": _names(cfg, c.service), "ts": c.ts,
              "recalls": c.recalls} for c in snap.recent_calls[:HISTORY]]
    services = [{"id": s.id, "names": _names(cfg, s.id),
                 "waiting": snap.services[s.id].waiting,
                 "est_wait_min": round(snap.services[s.id].est_wait_s / 60),
                 "open": snap.services[s.id].open}
                for s in cfg.services if s.id in snap.services]
    return {"business_day": snap.business_day, "languages": list(cfg.branch.languages),
            "branch": cfg.branch.name, "calls": calls, "services": services}


def console_view(cfg: BranchConfig, snap: Snapshot, alerts: list[dict[str, object]],
                 now_s: float) -> dict[str, object]:
    """The supervisor console's state: queues, counters, alerts (every text is data: the
    page sets it with textContent, never as HTML)."""
    from datetime import datetime

    view = hall_view(cfg, snap)
    sla = {s.id: s.sla_wait_s for s in cfg.services}
    counters = []
    for c in cfg.counters:
        cv = snap.counters.get(c.id)
        if cv is None:
            continue
        counters.append({"id": c.id, "number": cv.number, "state": cv.state,
                         "staff": cv.staff or "",
                         "ticket": cv.current.number if cv.current else "",
                         "ticket_state": cv.current.state if cv.current else "",
                         "ticket_id": cv.current.ticket_id if cv.current else ""})
    called_at = {c.ticket_id: c.ts for c in snap.recent_calls}
    for row in counters:
        ts = called_at.get(str(row["ticket_id"]))
        row["since_s"] = round(now_s - datetime.fromisoformat(ts).timestamp()) if ts else None
    over = [{"kind": "sla", "service": s["id"], "detail": f"estimated wait "
             f"{s['est_wait_min']} min is over the SLA of {sla[str(s['id'])] / 60:.0f} min"}
            for s in view["services"]  # type: ignore[attr-defined]
            if float(s["est_wait_min"]) * 60 > sla[str(s["id"])] and int(s["waiting"]) > 0]
    view["counters"] = counters
    view["alerts"] = [*alerts, *over]
    view["service_ids"] = [s.id for s in cfg.services]
    return view


def ticket_view(cfg: BranchConfig, place: TicketPlace, today: str) -> dict[str, object]:
    """One ticket's page: its own number, state and place, and nothing of anyone else."""
    t = place.ticket
    state = "past" if t.business_day != today and t.state not in ("done",) else t.state
    return {"number": t.number, "service": t.service, "names": _names(cfg, t.service),
            "state": state, "ahead": place.ahead,
            "est_wait_min": None if place.est_wait_s is None else round(place.est_wait_s / 60),
            "counter": place.counter_number, "rated": place.rated,
            # the scale of the counter that served it (the engine checks the same)
            "rating_scale": cfg.rating_scale(t.counter or ""),
            "languages": list(cfg.branch.languages)}
