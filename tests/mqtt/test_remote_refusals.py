"""A refusal a kiosk on its own Pi decided reaches the engine once: kept in a file first,
re-sent under ``refusal.{key}`` through an outage, a lost answer and a kiosk restart
(issue 15). The engine side is the real one: the command server's decode and call
table, a real store; only the transport is a script (down, then up)."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tessera.clock import VirtualClock
from tessera.config import parse_config
from tessera.engine import Engine, always_trusted
from tessera.engine.errors import DomainError
from tessera.mqtt.command_schema import CommandResponse, decode_args
from tessera.mqtt.commands import CALLS, _done
from tessera.roles.remote import RemoteEngine

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONFIG = """
[branch]
tenant = "acme"
branch = "b1"
[clock]
trust = "always"
[[services]]
id = "cash"
prefix = "A"
names = { en = "Cash" }
[kiosk]
buttons = [{ pin = 17, service = "cash" }]
"""


class FlakyLink:
    """A ``Requester`` to a real engine: ``down`` requests time out unseen, ``lose`` runs
    them and loses the answer; answers are replayed by command id as the server does."""

    def __init__(self, engine: Engine, *, down: int = 0, lose: int = 0) -> None:
        self.engine, self.down, self.lose = engine, down, lose
        self.replay: dict[str, dict[str, Any]] = {}
        self.sent: list[str | None] = []

    def request(self, name: str, args: dict[str, Any], *, timeout: float | None = None,
                command_id: str | None = None) -> dict[str, Any]:
        self.sent.append(command_id)
        if self.down > 0:
            self.down -= 1
            return {"id": command_id, "status": "error", "code": "timeout", "detail": ""}
        cid = command_id or "x"
        if cid not in self.replay:
            try:
                result = CALLS[name](self.engine, decode_args(name, json.dumps(args).encode()))
                answer = _done(cid, result)
            except DomainError as e:  # as the command server answers it
                answer = CommandResponse(cid, "rejected", e.code, str(e))
            self.replay[cid] = msgspec.to_builtins(answer)
        if self.lose > 0:
            self.lose -= 1
            return {"id": command_id, "status": "error", "code": "timeout", "detail": ""}
        return self.replay[cid]


def _wait_empty(path: Path) -> bool:
    deadline = time.monotonic() + 10
    while json.loads(path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(json.loads(path.read_text()) == [])


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    return engine.conn.execute("SELECT service, reason, key FROM refusals").fetchall()


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    e = Engine.open(parse_config(CONFIG), VirtualClock(START), tmp_path / "engine.db",
                    trust=always_trusted)
    yield e
    e.close()


def test_a_report_through_an_outage_and_a_lost_answer_lands_once(
        tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tessera.roles.remote.CONFIRM_PAUSE_S", 0.0)
    path = tmp_path / "kiosk-main.pending-refusals.json"
    link = FlakyLink(engine, down=3, lose=1)
    remote = RemoteEngine(link, pending_refusals=path)
    remote.report_refusal("kiosk-main.1", "cash", "printer_fault", "2026-03-02T09:00:00Z")
    assert [r["key"] for r in json.loads(path.read_text())] == ["kiosk-main.1"] or \
        not json.loads(path.read_text())  # kept before it returns (maybe already sent)
    assert _wait_empty(path)
    remote.close()
    assert set(link.sent) == {"refusal.kiosk-main.1"} and len(link.sent) == 5
    assert _rows(engine) == [("cash", "printer_fault", "kiosk-main.1")]


def test_a_restarted_kiosk_sends_what_it_left_and_the_engine_keeps_it_once(
        tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tessera.roles.remote.CONFIRM_PAUSE_S", 0.0)
    path = tmp_path / "kiosk-main.pending-refusals.json"
    first = RemoteEngine(FlakyLink(engine, lose=10 ** 6), pending_refusals=path)
    first.report_refusal("kiosk-main.2", "", "engine_unreachable", "2026-03-02T09:01:00Z")
    deadline = time.monotonic() + 10
    while not _rows(engine) and time.monotonic() < deadline:
        time.sleep(0.01)
    first.close()  # the kiosk dies: the engine kept it, the answer never came back
    time.sleep(0.05)
    assert [r["key"] for r in json.loads(path.read_text())] == ["kiosk-main.2"]

    link = FlakyLink(engine)  # the restarted kiosk, a fresh link (no replay memory)
    again = RemoteEngine(link, pending_refusals=path)
    again.resume_pending()
    assert _wait_empty(path)
    again.close()
    assert link.sent == ["refusal.kiosk-main.2"]
    assert _rows(engine) == [("", "engine_unreachable", "kiosk-main.2")]  # once
    db = sqlite3.connect(tmp_path / "engine.db")
    try:
        (n,) = db.execute("SELECT COUNT(*) FROM outbox WHERE type = 'kiosk.refused'").fetchone()
    finally:
        db.close()
    assert n == 1


def test_a_report_the_engine_refuses_for_good_is_not_retried(
        tmp_path: Path, engine: Engine) -> None:
    path = tmp_path / "p.json"
    link = FlakyLink(engine)
    remote = RemoteEngine(link, pending_refusals=path)
    remote.report_refusal("kiosk-main.3", "cash", "bored", "2026-03-02T09:00:00Z")
    assert _wait_empty(path)  # bad-refusal: dropped (logged), it can never be kept
    remote.close()
    assert link.sent == ["refusal.kiosk-main.3"] and _rows(engine) == []
