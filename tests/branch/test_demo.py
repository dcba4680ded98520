"""`tessera demo` end to end on a short span: real engine, printer and board emulators on
ptys, mock GPIO pins, WAV files; summary.json checked against the database.

Brokers here are the fixture's throw-away mosquittos (anonymous on 127.0.0.1): this file
tests the client side, not the broker's security. The generated broker files are run
exactly as shipped, as Debian runs them, by tests/branch/test_shipped_broker.py and
tests/branch/test_shapes.py.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tessera.cli import main

KEYS = ("issued", "served", "no_show", "void", "mean_wait_s", "p90_wait_s", "mean_service_s",
        "ratings", "duplicate_numbers", "events_in_db")


def _db_events(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        (n,) = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
    finally:
        conn.close()
    return int(n)


@pytest.mark.timeout(240)
def test_demo_short_span_writes_consistent_summary(
        tmp_path: Path, bank_config_path: Path, clips_cache: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(clips_cache))
    out = tmp_path / "demo"
    rc = main(["demo", "--config", str(bank_config_path), "--minutes", "45", "--speed", "max",
               "--out", str(out), "--seed", "3", "--plain"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert all(k in summary for k in KEYS)
    assert "events_published" not in summary  # no --broker
    assert summary["duplicate_numbers"] == 0
    assert summary["issued"] > 0 and summary["served"] > 0
    assert summary["seq_gaps"] == 0 and summary["bus_lost_events"] == 0
    assert summary["events_in_db"] == _db_events(out / "engine.db")
    # every confirmed ticket went through the pty and was decoded into a PNG, and so did
    # every refusal slip (issue 15)
    assert len(list((out / "tickets").glob("*.png"))) == \
        summary["printed"] + summary["kiosk_slips"]
    assert len(list((out / "wav").glob("*.wav"))) >= summary["called"] > 0
    assert list((out / "board").glob("hall-*.png"))
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("demo ") for line in lines)  # plain progress, not a TTY
    # the web role served the day on a free port and said where
    assert any(line.startswith("web: http://127.0.0.1:") and "/display" in line
               and "/manage" in line for line in lines), lines[:3]
    assert json.loads(lines[-2])["issued"] == summary["issued"]


@pytest.mark.mqtt
@pytest.mark.timeout(240)
def test_demo_publishes_the_stream_to_a_broker(tmp_path: Path, bank_config_path: Path,
                                               clips_cache: Path, mosquitto: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(clips_cache))
    broker = mosquitto()
    out = tmp_path / "demo"
    rc = main(["demo", "--minutes", "20", "--speed", "max", "--out", str(out), "--plain",
               "--no-voice", "--broker", f"mqtt://{broker.host}:{broker.port}"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["events_published"] == summary["events_in_db"] > 0
