"""`tessera demo --seed N --speed max` plays the same simulated day every run.

Real threads (dispatcher, bus worker, board, check-in reader) race with the
scenario; the hands wait for each press's effect and drain the bus before the
scenario reads a role or moves the clock, so the engine's decisions only depend
on the seed. A different seed must give a different day (else the test proves
nothing about the seed).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tessera.cli import main

DOMAIN = ("issued", "printed", "called", "served", "no_show", "void", "transferred",
          "mean_wait_s", "p90_wait_s", "mean_service_s", "ratings", "duplicate_numbers",
          "events_in_db")


def _demo(out: Path, config: Path, seed: int) -> dict[str, Any]:
    rc = main(["demo", "--config", str(config), "--minutes", "90", "--speed", "max",
               "--out", str(out), "--seed", str(seed), "--plain", "--no-voice"])
    assert rc == 0
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    assert summary["lost_presses"] == 0 and summary["bus_drain_timeouts"] == 0
    return summary


def _tickets(out: Path, sim_start: str) -> list[tuple[Any, ...]]:
    """Every ticket's number, service, priority, fate and times (s from the day's start)."""
    t0 = datetime.fromisoformat(sim_start).timestamp()
    conn = sqlite3.connect(out / "engine.db")
    try:
        rows = conn.execute(
            "SELECT number, service, priority, state, counter, recalls, appointment, "
            "issued_at, called_at, ended_at FROM tickets ORDER BY issued_at, number").fetchall()
    finally:
        conn.close()
    return [(*r[:7], *(None if t is None else round(t - t0, 3) for t in r[7:])) for r in rows]


def _calls(out: Path) -> list[tuple[str, str]]:
    """The call order: (number, counter) of every ticket.called event, in commit order."""
    conn = sqlite3.connect(out / "engine.db")
    try:
        rows = conn.execute("SELECT type, body FROM outbox ORDER BY seq").fetchall()
    finally:
        conn.close()
    out_: list[tuple[str, str]] = []
    for type_, body in rows:
        if type_ == "ticket.called":
            data = json.loads(body).get("data", {})
            out_.append((str(data.get("number")), str(data.get("counter"))))
    return out_


@pytest.mark.timeout(120)
def test_same_seed_same_day_other_seed_other_day(
        tmp_path: Path, bank_config_path: Path, clips_cache: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(clips_cache))
    a = _demo(tmp_path / "a", bank_config_path, seed=11)
    b = _demo(tmp_path / "b", bank_config_path, seed=11)
    assert a["served"] > 10 and a["ratings"]["bound"] > 0  # a day worth comparing
    assert {k: a[k] for k in DOMAIN} == {k: b[k] for k in DOMAIN}
    assert a["scenario"] == b["scenario"]
    assert a["counter_refused"] == b["counter_refused"]
    assert a["kiosk_refused"] == b["kiosk_refused"]
    assert _tickets(tmp_path / "a", a["sim_start"]) == _tickets(tmp_path / "b", b["sim_start"])
    assert _calls(tmp_path / "a") == _calls(tmp_path / "b")

    c = _demo(tmp_path / "c", bank_config_path, seed=12)
    assert _tickets(tmp_path / "c", c["sim_start"]) != _tickets(tmp_path / "a", a["sim_start"])
