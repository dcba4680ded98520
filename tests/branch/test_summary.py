"""summary.json figures: the KPIs of ``tessera report`` (one computation, docs/kpi.md) over
a real engine store, and the event counts of its outbox."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from tessera.clock import VirtualClock
from tessera.config import BranchConfig, parse_config
from tessera.demo.summary import summarize
from tessera.engine import Engine, always_trusted

TOML = """
[branch]
tenant = "t"
branch = "b"
timezone = "UTC"

[clock]
trust = "always"

[[services]]
id = "cash"
prefix = "A"
names = { en = "Cash" }

[[counters]]
id = "c1"
number = 1
services = [{ service = "cash" }]
staff = "t-1"
"""


def _day(tmp_path: Path, n: int = 10) -> tuple[Path, BranchConfig]:
    """``n`` tickets issued at 09:00; ticket i is called at 60 + 100 i s and done 100 s
    later (no START): waits 60, 160, ..., service 100 s each. A001 is rated 5, then 1."""
    cfg = parse_config(TOML, base_dir=tmp_path)
    db = tmp_path / "engine.db"
    clock = VirtualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    e = Engine.open(cfg, clock, db, trust=always_trusted)
    e.open_counter("c1")
    for _ in range(n):
        e.confirm_printed(e.issue("cash").id)
    clock.advance(60)
    for i in range(n):
        e.call_next("c1")
        clock.advance(100)
        e.done("c1")
        if i == 0:
            e.rate("c1", 5)
            e.rate("c1", 1)  # a second press: duplicate
    e.close()
    return db, cfg


def test_summary_figures(tmp_path: Path) -> None:
    db, cfg = _day(tmp_path)
    s = summarize(db, cfg, extra={"events_published": 32})
    assert (s["issued"], s["served"], s["no_show"], s["void"]) == (10, 10, 0, 0)
    assert s["mean_wait_s"] == 510.0  # (60 + 960) / 2
    assert s["p90_wait_s"] == 870.0  # tessera.stats.percentile: rank 8.1 -> 860 + 0.1 x 100
    assert s["mean_service_s"] == 100.0
    assert s["ratings"]["bound"] == 1 and s["ratings"]["duplicate"] == 1
    assert s["ratings"]["mean_score"] == 5.0 and s["ratings"]["satisfaction_pct"] == 100.0
    assert s["duplicate_numbers"] == 0 and s["seq_gaps"] == 0
    assert s["events_in_db"] == sum(s["events_by_type"].values())
    assert s["events_published"] == 32 and s["kpi_days"] == ["2026-03-02"]


def test_duplicate_numbers_are_detected(tmp_path: Path) -> None:
    db, cfg = _day(tmp_path, 3)
    conn = sqlite3.connect(db)
    with conn:  # a damaged store: A001 a second time (another sequence)
        conn.execute("INSERT INTO tickets(id, business_day, service, origin, seq, number, state, "
                     "rank, issued_at, queued_at, qorder) SELECT 'x', business_day, service, "
                     "origin, 99, number, 'done', rank, issued_at, queued_at, 999 FROM tickets "
                     "WHERE number = 'A001'")
    conn.close()
    assert summarize(db, cfg)["duplicate_numbers"] == 1
