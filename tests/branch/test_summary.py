"""summary.json figures come from the database's event stream."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tessera.demo.summary import summarize
from tessera.outbox import Outbox


def _day(path: Path, numbers: list[str]) -> None:
    ob = Outbox.open(path, tenant="t", branch="b", device="engine")
    ts = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    for i, n in enumerate(numbers):
        ob.append("ticket.issued", {"ticket_id": str(i), "number": n, "service": "cash",
                                    "business_day": "2026-03-02"}, ts=ts)
        ob.append("ticket.called", {"ticket_id": str(i), "number": n, "counter": "c1",
                                    "wait_s": 60.0 * (i + 1)}, ts=ts)
        ob.append("ticket.done", {"ticket_id": str(i), "number": n, "counter": "c1",
                                  "service_s": 100.0}, ts=ts)
    ob.append("feedback.rated", {"ticket_id": "0", "score": 5, "status": "bound"}, ts=ts)
    ob.append("feedback.rated", {"ticket_id": "0", "score": 1, "status": "duplicate"}, ts=ts)
    ob.conn.close()


def test_summary_figures(tmp_path: Path) -> None:
    db = tmp_path / "engine.db"
    _day(db, [f"A{i:03d}" for i in range(1, 11)])
    s = summarize(db, extra={"events_published": 32})
    assert (s["issued"], s["served"], s["no_show"], s["void"]) == (10, 10, 0, 0)
    assert s["mean_wait_s"] == 330.0
    assert s["p90_wait_s"] == 546.0  # tessera.stats.percentile: 540 + 0.1 x 60
    assert s["mean_service_s"] == 100.0
    assert s["ratings"]["bound"] == 1 and s["ratings"]["duplicate"] == 1
    assert s["duplicate_numbers"] == 0
    assert s["events_in_db"] == 32 and s["seq_gaps"] == 0
    assert s["events_published"] == 32


def test_duplicate_numbers_are_detected(tmp_path: Path) -> None:
    db = tmp_path / "engine.db"
    _day(db, ["A001", "A002", "A001"])
    assert summarize(db)["duplicate_numbers"] == 1
