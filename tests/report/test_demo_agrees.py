"""A report over a ``tessera demo`` database agrees with the demo's own summary.json on
every figure they share (issue 18: they used to disagree, 1,671.4 vs 1,623.0 s)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.cli import main

# summary.json key -> where the same figure is in `tessera report --json`
SHARED = {
    "issued": ("branch", "issued"), "served": ("branch", "served"),
    "no_show": ("branch", "no_shows"), "void": ("branch", "voided"),
    "transferred": ("branch", "transferred"), "recalled": ("branch", "recalls"),
    "left_unserved": ("branch", "left_unserved"), "turned_away": ("branch", "turned_away"),
    "mean_wait_s": ("branch", "wait", "mean_s"), "p90_wait_s": ("branch", "wait", "p90_s"),
    "mean_service_s": ("branch", "service_time", "mean_s"), "sla_pct": ("branch", "sla_pct"),
    "ratings.bound": ("branch", "ratings", "n"),
    "ratings.duplicate": ("branch", "ratings", "duplicate"),
    "ratings.unbound": ("branch", "ratings", "unbound"),
    "ratings.mean_score": ("branch", "ratings", "mean"),
    "ratings.satisfaction_pct": ("branch", "ratings", "satisfaction_pct"),
    "ratings.alerts": ("branch", "ratings", "alerts"),
}


@pytest.mark.timeout(240)
def test_report_over_a_demo_database_agrees_with_its_summary(
        tmp_path: Path, bank_config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--config", str(bank_config_path), "--minutes", "40", "--speed",
                 "max", "--out", str(out), "--seed", "5", "--plain", "--no-voice"]) == 0
    capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    days = summary["kpi_days"]
    assert main(["report", "--config", str(bank_config_path), "--db", str(out / "engine.db"),
                 "--from", days[0], "--to", days[-1], "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert summary["served"] > 10 and summary["mean_wait_s"] > 0  # a real day, not zeros
    for key, path in SHARED.items():
        mine = summary
        for part in key.split("."):
            mine = mine[part]
        theirs = report
        for part in path:
            theirs = theirs[part]
        assert mine == theirs, (key, mine, theirs)
    # and the event counts the summary takes from the outbox agree with the tables
    by_type = summary["events_by_type"]
    assert summary["issued"] == by_type["ticket.issued"]
    assert summary["void"] == by_type.get("ticket.void", 0)
    assert summary["no_show"] == by_type.get("ticket.no_show", 0)
