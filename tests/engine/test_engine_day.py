"""Business day roll (configured time, DST, restarts) and clock trust."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from engine_support import make_config

from tessera.clock import VirtualClock
from tessera.engine import Engine
from tessera.engine.day import trust_check
from tessera.engine.errors import ClockUntrusted

Opener = Callable[..., Engine]


def _rolls(engine: Engine) -> list[str]:
    return [e["data"]["business_day"] for e in engine.events_since(0) if e["type"] == "day.rolled"]


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
         second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_day_rolls_at_the_configured_local_time(open_engine: Opener) -> None:
    clock = VirtualClock(_utc(2026, 3, 2, 2, 59, 0))  # GMT: local == UTC
    engine = open_engine(make_config(), clock)
    t1 = engine.issue("cash")
    assert (t1.business_day, t1.number) == ("2026-03-01", "A001")
    assert engine.issue("cash").number == "A002"
    clock.advance(59)
    engine.tick()
    assert _rolls(engine) == ["2026-03-01"]
    clock.advance(1)  # 03:00:00 local
    engine.tick()
    assert _rolls(engine) == ["2026-03-01", "2026-03-02"]
    t2 = engine.issue("cash")
    assert (t2.business_day, t2.number) == ("2026-03-02", "A001")
    # unfinished tickets of the old day were voided with a reason, each by one event
    assert engine.get_ticket(t1.id).state == "void"
    voids = [e["data"] for e in engine.events_since(0) if e["type"] == "ticket.void"]
    assert {v["ticket_id"] for v in voids} >= {t1.id}
    assert all(v["reason"] == "the business day ended" for v in voids)


@pytest.mark.parametrize(("rollover", "before", "after", "day"), [
    # spring forward 29 Mar 2026: 03:00 BST is 02:00 UTC
    ("03:00", _utc(2026, 3, 29, 1, 59, 59), _utc(2026, 3, 29, 2, 0, 0), "2026-03-29"),
    # 01:30 does not exist that night: the day rolls at 02:00 BST (01:00 UTC)
    ("01:30", _utc(2026, 3, 29, 0, 59, 59), _utc(2026, 3, 29, 1, 0, 0), "2026-03-29"),
    # fall back 25 Oct 2026: 03:00 GMT is 03:00 UTC
    ("03:00", _utc(2026, 10, 25, 2, 59, 59), _utc(2026, 10, 25, 3, 0, 0), "2026-10-25"),
])
def test_day_roll_across_dst(open_engine: Opener, rollover: str, before: datetime,
                             after: datetime, day: str) -> None:
    clock = VirtualClock(before)
    engine = open_engine(make_config(rollover=rollover), clock)
    prev = (datetime.fromisoformat(day) - timedelta(days=1)).date().isoformat()
    assert engine.issue("cash").business_day == prev
    clock.set(after)
    assert engine.issue("cash").business_day == day
    assert _rolls(engine) == [prev, day]


def test_ambiguous_rollover_time_rolls_once(open_engine: Opener) -> None:
    # 01:30 happens twice on 25 Oct 2026 (BST, then GMT): one roll only
    clock = VirtualClock(_utc(2026, 10, 25, 0, 29))  # 01:29 BST
    engine = open_engine(make_config(rollover="01:30"), clock)
    engine.tick()
    for _ in range(12):  # through 01:30 BST, 01:00-01:59 GMT, to 02:29 GMT
        clock.advance(600)
        engine.issue("cash")
    assert _rolls(engine) == ["2026-10-24", "2026-10-25"]
    numbers = [(e["data"]["business_day"], e["data"]["number"])
               for e in engine.events_since(0) if e["type"] == "ticket.issued"]
    assert len(numbers) == len(set(numbers))


@pytest.mark.parametrize("restart_at", [-5.0, 5.0])
def test_restart_just_before_and_after_the_roll(tmp_path: Path, restart_at: float) -> None:
    cfg = make_config()
    roll = _utc(2026, 3, 2, 3, 0, 0)
    clock = VirtualClock(roll - timedelta(seconds=30))
    db = tmp_path / "engine.db"
    e1 = Engine.open(cfg, clock, db, trust=lambda: True)
    a = e1.issue("cash")
    e1.confirm_printed(a.id)
    e1.close()
    clock.set(roll + timedelta(seconds=restart_at))
    e2 = Engine.open(cfg, clock, db, trust=lambda: True)
    e2.tick()
    clock.set(roll + timedelta(seconds=10))
    e2.tick()
    e2.close()
    e3 = Engine.open(cfg, clock, db, trust=lambda: True)  # and once more after the roll
    e3.tick()
    b = e3.issue("cash")
    assert _rolls(e3) == ["2026-03-01", "2026-03-02"]
    assert (b.business_day, b.number) == ("2026-03-02", "A001")
    assert e3.get_ticket(a.id).state == "void"
    e3.close()


def test_clock_jumping_backwards(open_engine: Opener) -> None:
    clock = VirtualClock(_utc(2026, 3, 2, 3, 0, 5))
    engine = open_engine(make_config(), clock)
    engine.issue("cash")
    clock.set(_utc(2026, 3, 2, 2, 50))  # back across the roll time
    with pytest.raises(ClockUntrusted) as ei:
        engine.issue("cash")
    assert ei.value.code == "clock-untrusted"
    assert "earlier than the last recorded activity" in str(ei.value)
    engine.tick()  # other commands go on, and the day never rolls back
    assert _rolls(engine) == ["2026-03-02"]
    clock.set(_utc(2026, 3, 2, 3, 1))  # time is sane again
    t = engine.issue("cash")
    assert (t.business_day, t.number) == ("2026-03-02", "A002")


def test_allow_untrusted_issues_but_marks_events_unsynced(open_engine: Opener) -> None:
    clock = VirtualClock(_utc(2026, 3, 2, 10))
    cfg = make_config(clock_toml='trust = "always"\nallow_untrusted = true')
    engine = open_engine(cfg, clock, trust=lambda: False)
    t = engine.issue("cash")
    issued = [e for e in engine.events_since(0) if e["type"] == "ticket.issued"]
    assert t.state == "issued" and issued[0]["clock"] == "unsynced"


def test_flag_file_trust(open_engine: Opener, tmp_path: Path) -> None:
    flag = tmp_path / "synced"
    cfg = make_config(clock_toml=f'trust = "flag-file"\nsync_flag = "{flag}"')
    engine = open_engine(cfg, VirtualClock(_utc(2026, 3, 2, 10)), trust=trust_check(cfg))
    with pytest.raises(ClockUntrusted, match="does not exist"):
        engine.issue("cash")
    # the refused command changed nothing; the refusal has its own record (issue 15)
    assert [e["type"] for e in engine.events_since(0)] == ["kiosk.refused"]
    flag.touch()
    assert engine.issue("cash").number == "A001"


def test_timedatectl_trust_is_injectable() -> None:
    cfg = make_config(clock_toml='trust = "timedatectl"')
    calls: list[list[str]] = []

    def run(answer: str) -> Callable[[list[str]], str]:
        def _run(cmd: list[str]) -> str:
            calls.append(cmd)
            return answer
        return _run

    assert trust_check(cfg, run=run("yes\n"))() is True
    assert trust_check(cfg, run=run("no\n"))() is False
    assert calls[0] == ["timedatectl", "show", "-p", "NTPSynchronized", "--value"]
