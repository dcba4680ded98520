"""Service insight: the KPIs of business days, as text, CSV, JSON, charts and HTML.

One definition of each KPI (docs/kpi.md) in :mod:`tessera.report.kpi`, read from the
engine store's v5 tables by :mod:`tessera.report.store_read` without writing beside
it. Charts and the HTML page (:mod:`tessera.report.render`) need the ``report``
extra (matplotlib); nothing else here does.

    kpis = report_for(Path("var/engine.db"), cfg, ["2026-03-02"])
    kpis["branch"]["wait"]["p90_s"]
    # -> 1201.4
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tessera.config import BranchConfig
from tessera.report.kpi import compute, daily_summary
from tessera.report.store_read import Facts, known_days, open_readonly, read_facts

__all__ = ["Facts", "compute", "daily_summary", "known_days", "open_readonly", "read_facts",
           "report_for"]


def report_for(db: Path, cfg: BranchConfig, days: list[str]) -> dict[str, Any]:
    """The KPIs of business days ``days`` of the store ``db``, read-only."""
    with open_readonly(db) as store:
        facts = read_facts(store.conn, days, cfg)
    facts.notes[:0] = store.notes
    return compute(facts, cfg)
