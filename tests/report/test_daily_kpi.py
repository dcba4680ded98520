"""At a business day's close the engine publishes the day's KPI summary: a ``kpi.daily``
event in the roll's transaction and the retained ``engine/state/kpi``, both computed by
the same KPI code as ``tessera report`` over that day."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from report_support import DAY, fixture_day

from tessera.clock import VirtualClock
from tessera.report import daily_summary, report_for
from tessera.wiring import build_branch


def _events(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    try:
        return [json.loads(b) for (b,) in conn.execute("SELECT body FROM outbox ORDER BY seq")]
    finally:
        conn.close()


def test_the_day_close_publishes_the_days_kpis(tmp_path: Path) -> None:
    b = fixture_day(tmp_path)
    events = _events(b.db)
    [kpi] = [e for e in events if e["type"] == "kpi.daily"]
    expected = daily_summary(report_for(b.db, b.cfg, [DAY]))
    assert kpi["data"] == json.loads(json.dumps(expected))
    assert kpi["data"]["business_day"] == DAY
    # it counts the ticket the roll voided (A005, left unserved), and comes right before
    # the roll into the next day
    assert kpi["data"]["left_unserved"] == 1 and kpi["data"]["served"] == 3
    types = [e["type"] for e in events]
    i = types.index("kpi.daily")
    assert types[i + 1] == "day.rolled" and events[i + 1]["data"]["business_day"] == "2026-03-03"
    assert types[i - 1] == "ticket.void" and events[i - 1]["data"]["number"] == "A005"
    assert kpi["data"]["ratings"]["satisfaction_pct"] == round(200 / 3, 1)
    assert kpi["data"]["counters"]["c2"]["complaints"] == 1


def test_the_retained_state_kpi_comes_from_the_store_after_a_restart(tmp_path: Path) -> None:
    b = fixture_day(tmp_path)
    [kpi] = [e["data"] for e in _events(b.db) if e["type"] == "kpi.daily"]
    # the engine as `tessera run engine` builds it, on the same store, a day later
    branch = build_branch(b.cfg, VirtualClock(b.clock.now()), roles=("engine",))
    try:
        parts = {(dev, part): value for source in branch.state_sources
                 for dev, part, value in source()}
    finally:
        branch.close()
    assert parts[("engine", "kpi")] == kpi
    assert ("engine", "queue-cash") in parts  # beside the other retained engine parts


def test_no_state_kpi_before_any_day_closed(tmp_path: Path) -> None:
    from report_support import open_branch

    b = open_branch(tmp_path)
    b.engine.close()
    branch = build_branch(b.cfg, b.clock, roles=("engine",))
    try:
        parts = [part for source in branch.state_sources for _, part, _ in source()]
    finally:
        branch.close()
    assert "kpi" not in parts and "queue-cash" in parts
