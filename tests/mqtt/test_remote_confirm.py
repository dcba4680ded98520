"""A kiosk's confirm of a printed ticket is re-sent until it lands, across a restart too
(issue 12: a printed number must never be voided because an answer was lost)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tessera.engine.errors import BadState
from tessera.engine.models import Ticket
from tessera.roles.remote import EngineUnreachable, RemoteEngine, RemoteRefused


class ScriptedEngine:
    """A ``Requester`` answering from a script: ``None`` is a lost answer (timeout)."""

    def __init__(self, script: list[dict[str, Any] | None]) -> None:
        self.script = script
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []

    def request(self, name: str, args: dict[str, Any], *, timeout: float | None = None,
                command_id: str | None = None) -> dict[str, Any]:
        self.calls.append((name, args, command_id))
        answer = self.script.pop(0) if self.script else None
        if answer is None:
            return {"id": command_id, "status": "error", "code": "timeout", "detail": "",
                    "result": {}}
        return answer


TICKET = Ticket(id="t1", number="A001", service="cash", state="waiting", priority=None,
                business_day="2026-03-02", issued_at="2026-03-02T08:00:00Z", people_ahead=0,
                est_wait_s=0.0, counter=None, recalls=0, appointment=None)
DONE = {"id": "confirm.t1", "status": "done", "code": "ok", "detail": "",
        "result": msgspec.to_builtins(TICKET)}


def test_confirm_is_resent_with_one_id_until_answered(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tessera.roles.remote.CONFIRM_PAUSE_S", 0.0)
    engine = ScriptedEngine([None, None, DONE])
    remote = RemoteEngine(engine, pending=tmp_path / "pending.json")
    assert remote.confirm_printed("t1") == TICKET  # the engine's own model, decoded
    assert [c[2] for c in engine.calls] == ["confirm.t1"] * 3  # the same command each time
    assert json.loads((tmp_path / "pending.json").read_text()) == []


def test_a_restarted_kiosk_sends_the_confirms_left_pending(tmp_path: Path) -> None:
    path = tmp_path / "pending.json"
    first = RemoteEngine(ScriptedEngine([None]), pending=path)

    def crash_during_confirm() -> None:  # the kiosk dies with the answer still missing
        try:
            first.confirm_printed("t1")
        except EngineUnreachable:
            pass

    first.close()  # stops re-sending after the current attempt (as a process exit would)
    crash_during_confirm()
    assert json.loads(path.read_text()) == ["t1"]
    engine = ScriptedEngine([DONE])
    again = RemoteEngine(engine, pending=path)
    again.resume_pending()
    deadline = time.monotonic() + 5
    while json.loads(path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.calls == [("confirm-printed", {"ticket_id": "t1"}, "confirm.t1")]
    assert json.loads(path.read_text()) == []


def test_a_refused_confirm_is_not_retried(tmp_path: Path) -> None:
    refused = {"id": "confirm.t1", "status": "rejected", "code": "bad-state",
               "detail": "Ticket A001 is void", "result": {}}
    engine = ScriptedEngine([refused])
    remote = RemoteEngine(engine, pending=tmp_path / "p.json")
    with pytest.raises(BadState) as refused_as:  # the engine's own error class ...
        remote.confirm_printed("t1")
    assert isinstance(refused_as.value, RemoteRefused) and refused_as.value.code == "bad-state"
    assert len(engine.calls) == 1 and json.loads((tmp_path / "p.json").read_text()) == []
