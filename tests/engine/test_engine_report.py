"""``tessera report``: a day's KPIs computed from the engine's events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_support import BASE_TOML, START

from tessera.cli import main
from tessera.clock import VirtualClock
from tessera.config import load_config
from tessera.engine import Engine


def test_report_kpis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = BASE_TOML.format(position="back", engine_extra="", cash_extra="sla_wait_s = 300")
    cfg_path = tmp_path / "branch.toml"
    cfg_path.write_text(text + '\n[storage]\ndir = "store"\n')
    cfg = load_config(cfg_path)
    clock = VirtualClock(START)  # 09:00 local (GMT)
    engine = Engine.open(cfg, clock, trust=lambda: True)
    engine.open_counter("c2", staff="t-7")
    ids = []
    for _ in range(3):
        t = engine.issue("cash")
        engine.confirm_printed(t.id)
        ids.append(t.id)
    clock.advance(100)
    engine.call_next("c2")  # waited 100 s
    clock.advance(200)
    engine.done("c2")  # served 200 s
    engine.rate("c2", 1)
    clock.advance(3600)  # 10:05
    engine.call_next("c2")  # waited 3900 s: outside the 300 s SLA
    engine.no_show("c2")
    engine.void(engine.issue("accounts").id, "paper out")
    engine.close()

    assert main(["report", "--config", str(cfg_path), "--json"]) == 0
    k = json.loads(capsys.readouterr().out)
    assert k["business_day"] == "2026-03-02" and k["issued"] == 4
    cash = k["services"]["cash"]
    assert cash["issued"] == 3 and cash["wait"]["n"] == 2
    assert cash["wait"]["mean_s"] == pytest.approx((100 + 3900) / 2)
    assert cash["sla_pct"] == 50.0 and cash["service_time"]["mean_s"] == 200.0
    assert {k: cash["ratings"][k] for k in ("n", "mean", "alerts")} == {
        "n": 1, "mean": 1.0, "alerts": 1}  # the keys of before (more were added)
    assert k["staff"]["t-7"]["service_time"]["n"] == 1
    assert k["counters"]["c2"]["ratings"]["alerts"] == 1
    assert k["no_shows"] == {"walk_in": 1, "appointment": 0} and k["voided"] == 1
    assert k["issued_by_hour"] == {"09:00": 3, "10:00": 1}

    assert main(["report", "--config", str(cfg_path)]) == 0
    assert "cash" in capsys.readouterr().out
    # a day with no data is an empty report that says so (issue 18; it was exit 2 before)
    assert main(["report", "--config", str(cfg_path), "--day", "2020-01-01"]) == 0
    assert "no data" in capsys.readouterr().out
