"""The day's figures, computed from the engine's database (not from memory).

The KPIs are those of ``tessera report`` (one computation, docs/kpi.md); the event
counts come from the outbox table (the durable event stream), so the summary also
proves the events made it to disk; ``duplicate_numbers`` counts numbers issued
twice in one business day and must be 0.

    summarize(Path("out/engine.db"), cfg)["issued"]
    # -> 2987
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from tessera.config import BranchConfig


def load_events(db_path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT body FROM outbox ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [json.loads(r[0]) for r in rows]


def duplicate_numbers(events: list[dict[str, Any]], db_path: Path | None = None) -> int:
    """Numbers issued more than once in a business day (events, and tickets table if any)."""
    seen = Counter((e["data"].get("business_day"), e["data"].get("number"))
                   for e in events if e["type"] == "ticket.issued")
    dupes = sum(n - 1 for n in seen.values() if n > 1)
    if db_path is not None:
        dupes = max(dupes, _table_duplicates(db_path))
    return dupes


def _table_duplicates(db_path: Path) -> int:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(tickets)")}
        if not {"number", "business_day"} <= cols:
            return 0
        row = conn.execute(
            "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM tickets "
            "GROUP BY business_day, number HAVING n > 1)").fetchone()
        return int(row[0])
    finally:
        conn.close()


def summarize(db_path: Path, cfg: BranchConfig, *,
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Figures for summary.json from the engine database at ``db_path``.

    The service figures (served, no-shows, voids, transfers, recalls, waits, service
    times, ratings) are the branch KPIs of ``tessera report`` over every business day
    in the store (:func:`tessera.report.kpi.compute`, docs/kpi.md): the two cannot
    disagree. The event counts prove the event stream made it to disk."""
    from tessera.report import compute, known_days, open_readonly, read_facts
    from tessera.report.period import days_between

    events = load_events(db_path)
    by_type = Counter(e["type"] for e in events)
    with open_readonly(db_path) as store:
        known = known_days(store.conn)
        days = days_between(known[0], known[-1]) if known else []
        k = compute(read_facts(store.conn, days, cfg), cfg)
    b = k["branch"]
    seqs = [int(e["seq"]) for e in events]
    out: dict[str, Any] = {
        "issued": b["issued"],
        "printed": by_type["ticket.printed"],
        "called": by_type["ticket.called"],
        "served": b["served"],
        "no_show": b["no_shows"],
        # bookings never checked in by the end of their window (issue 15)
        "appointments_missed": by_type["appointment.missed"],
        "void": b["voided"],
        "transferred": b["transferred"],
        "recalled": b["recalls"],
        "left_unserved": b["left_unserved"],
        "turned_away": b["turned_away"],
        "mean_wait_s": b["wait"]["mean_s"] if b["wait"]["n"] else 0.0,
        "p90_wait_s": b["wait"]["p90_s"] if b["wait"]["n"] else 0.0,
        "mean_service_s": b["service_time"]["mean_s"] if b["service_time"]["n"] else 0.0,
        "sla_pct": b["sla_pct"],
        "ratings": {
            "bound": b["ratings"]["n"],
            "duplicate": b["ratings"]["duplicate"],
            "unbound": b["ratings"]["unbound"],
            # a raw mean only when every rating is on one scale (docs/kpi.md)
            "mean_score": b["ratings"]["mean"],
            "satisfaction_pct": b["ratings"]["satisfaction_pct"],
            "alerts": b["ratings"]["alerts"],
        },
        "kpi_days": k["days"],
        "duplicate_numbers": duplicate_numbers(events, db_path),
        "events_in_db": len(events),
        "seq_gaps": (seqs[-1] - seqs[0] + 1 - len(seqs)) if seqs else 0,
        "events_by_type": dict(sorted(by_type.items())),
    }
    if extra:
        out.update(extra)
    return out
