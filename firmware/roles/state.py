"""What each role reports as its retained ``state/*`` topics (``Branch.state_sources``).

The kiosk its printer (``state/printer``), the engine its queues and counters
(``state/queue-{service}``, ``state/counter-{counter}``), the display its boards
(``state/board``); ``tessera.roles.link`` publishes them on change and on every
connect (docs/mqtt.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tessera.engine.live import CHANGE_S, CHANGE_SHARE, LiveEstimate, LiveGate
from tessera.identity import device_id
from tessera.outbox import rfc3339
from tessera.roles.branch import Branch, State, StateSource

# what the kiosk's last printer status read means for the retained state/printer
_PRINTER_STATE = {
    "ok": {"paper": "ok", "cover": "closed", "online": True},
    "near_end": {"paper": "near-end", "cover": "closed", "online": True},
    "out": {"paper": "out", "cover": "closed", "online": True},
    "cover_open": {"paper": "unknown", "cover": "open", "online": True},
    "offline": {"paper": "unknown", "cover": "unknown", "online": False},
}


def kiosk_state(branch: Branch) -> StateSource:
    device = device_id(branch.cfg, "kiosk")

    def report() -> State:
        kiosk = branch.kiosk
        assert kiosk is not None
        state = kiosk.printer_state
        info = _PRINTER_STATE.get(state, {"paper": "unknown", "cover": "unknown",
                                          "online": False})
        yield device, "printer", {"state": state, **info}
    return report


def engine_state(branch: Branch) -> StateSource:
    """``state/queue-{service}``, ``state/counter-{counter}``, ``state/kpi`` (the last
    closed business day's KPI summary, once a day has closed) and the live estimates
    ``state/wait-{service}`` from the engine. Estimates are held (``LiveGate``) until they
    move by more than a minute and a tenth, so a queue that does not move sends nothing."""
    device = device_id(branch.cfg, "engine")
    gate = LiveGate()
    new_ticket: dict[str, tuple[int, float]] = {}  # service -> (waiting, est) as sent
    # the live estimates are recomputed when the engine committed something (the queue or
    # a counter moved) or every LIVE_REFRESH_S, not at every 1 s tick
    cached: list[Any] = [None, []]  # [(last outbox seq, refresh slot), shown]

    def report() -> State:
        snap = branch.engine.snapshot()
        for sid, q in snap["services"].items():
            sent = new_ticket.get(sid)
            est = float(q["est_wait_s"])
            if sent is not None and sent[0] == q["waiting"] and not _moved(sent[1], est):
                q = {**q, "est_wait_s": sent[1]}
            else:
                new_ticket[sid] = (q["waiting"], est)
            yield device, f"queue-{sid}", {"service": sid, **q}
        for cid, c in snap["counters"].items():
            yield device, f"counter-{cid}", {"counter": cid, **c}
        kpi = getattr(branch.engine, "kpi_daily", None)  # the last closed day's KPIs
        if kpi is not None:
            yield device, "kpi", kpi
        live = getattr(branch.engine, "live_estimates", None)
        if live is None:  # a remote engine: its own process publishes these
            return
        key = (branch.engine.outbox.last_seq(),
               int(branch.engine.clock.now().timestamp() // LIVE_REFRESH_S))
        if cached[0] != key:
            cached[0], cached[1] = key, gate.hold(live())
        shown = cached[1]
        for svc in branch.cfg.services:
            yield device, f"wait-{svc.id}", wait_state(svc.id, shown)
    return report


LIVE_REFRESH_S = 15.0


def _moved(sent: float, now: float) -> bool:
    off = abs(now - sent)
    return off > CHANGE_S and off > CHANGE_SHARE * max(now, sent)


def wait_state(service: str, shown: list[LiveEstimate]) -> dict[str, Any]:
    """The body of ``state/wait-{service}`` (docs/mqtt.md "Live wait estimates")."""
    return {"service": service, "tickets": [
        {"ticket_id": e.ticket_id, "number": e.number, "priority": e.priority,
         "people_ahead": e.people_ahead, "est_wait_s": e.est_wait_s,
         "est_low_s": e.est_low_s, "est_high_s": e.est_high_s,
         "at": rfc3339(datetime.fromtimestamp(e.at, UTC))}
        for e in shown if e.service == service]}


def display_state(branch: Branch, device: str) -> StateSource:
    def report() -> State:
        yield device, "board", branch.display.content()
    return report
