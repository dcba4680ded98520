"""What each role reports as its retained ``state/*`` topics (``Branch.state_sources``).

The kiosk its printer (``state/printer``), the engine its queues and counters
(``state/queue-{service}``, ``state/counter-{counter}``), the display its boards
(``state/board``); ``tessera.roles.link`` publishes them on change and on every
connect (docs/mqtt.md).
"""

from __future__ import annotations

from tessera.identity import device_id
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
    """``state/queue-{service}``, ``state/counter-{counter}`` and ``state/kpi`` (the last
    closed business day's KPI summary, once a day has closed) from the engine."""
    device = device_id(branch.cfg, "engine")

    def report() -> State:
        snap = branch.engine.snapshot()
        for sid, q in snap["services"].items():
            yield device, f"queue-{sid}", {"service": sid, **q}
        for cid, c in snap["counters"].items():
            yield device, f"counter-{cid}", {"counter": cid, **c}
        kpi = getattr(branch.engine, "kpi_daily", None)  # the last closed day's KPIs
        if kpi is not None:
            yield device, "kpi", kpi
    return report


def display_state(branch: Branch, device: str) -> StateSource:
    def report() -> State:
        yield device, "board", branch.display.content()
    return report
