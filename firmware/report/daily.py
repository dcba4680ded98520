"""The engine's KPI summary of a business day it has just closed (``kpi.daily`` and the
retained ``state/kpi``): :func:`tessera.report.kpi.compute` over that day's rows, read
through the engine's own connection inside the day-roll transaction (so the tickets
the roll voided are in it), then :func:`tessera.report.kpi.daily_summary`.

    summary = closed_day_summary(engine.conn, "2026-03-02", cfg)
    summary["served"]
    # -> 412
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tessera.config import BranchConfig
from tessera.report.kpi import compute, daily_summary
from tessera.report.store_read import read_facts


def closed_day_summary(conn: sqlite3.Connection, day: str, cfg: BranchConfig) -> dict[str, Any]:
    return daily_summary(compute(read_facts(conn, [day], cfg), cfg))
