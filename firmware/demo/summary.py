"""The day's figures, computed from the engine's database (not from memory).

Everything comes from the outbox table (the durable event stream), so the
summary also proves the events made it to disk; ``duplicate_numbers`` counts
numbers issued twice in one business day and must be 0.

    summarize(Path("out/engine.db"))["issued"]
    # -> 2987
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from tessera.stats import percentile


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


def summarize(db_path: Path, *, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Figures for summary.json from the engine database at ``db_path``."""
    events = load_events(db_path)
    by_type = Counter(e["type"] for e in events)
    waits = [float(e["data"]["wait_s"]) for e in events
             if e["type"] == "ticket.called" and e["data"].get("wait_s") is not None]
    services = [float(e["data"]["service_s"]) for e in events
                if e["type"] == "ticket.done" and e["data"].get("service_s") is not None]
    rated = [e["data"] for e in events if e["type"] == "feedback.rated"]
    bound = [r for r in rated if r.get("status") == "bound"]
    seqs = [int(e["seq"]) for e in events]
    out: dict[str, Any] = {
        "issued": by_type["ticket.issued"],
        "printed": by_type["ticket.printed"],
        "called": by_type["ticket.called"],
        "served": by_type["ticket.done"],
        "no_show": by_type["ticket.no_show"],
        # bookings never checked in by the end of their window (issue 15)
        "appointments_missed": by_type["appointment.missed"],
        "void": by_type["ticket.void"],
        "transferred": by_type["ticket.transferred"],
        "recalled": by_type["ticket.recalled"],
        "mean_wait_s": round(sum(waits) / len(waits), 1) if waits else 0.0,
        "p90_wait_s": round(percentile(waits, 0.9), 1),
        "mean_service_s": round(sum(services) / len(services), 1) if services else 0.0,
        "ratings": {
            "bound": len(bound),
            "duplicate": sum(1 for r in rated if r.get("status") == "duplicate"),
            "unbound": sum(1 for r in rated if r.get("status") == "unbound"),
            "mean_score": round(sum(float(r["score"]) for r in bound) / len(bound), 2)
            if bound else None,
            "alerts": by_type["feedback.alert"],
        },
        "duplicate_numbers": duplicate_numbers(events, db_path),
        "events_in_db": len(events),
        "seq_gaps": (seqs[-1] - seqs[0] + 1 - len(seqs)) if seqs else 0,
        "events_by_type": dict(sorted(by_type.items())),
    }
    if extra:
        out.update(extra)
    return out
