"""Helpers shared by the report tests: a small branch and a hand-built day on a real
engine store (VirtualClock, real SQLite file), driven through the engine's commands."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tessera.clock import VirtualClock
from tessera.config import BranchConfig, load_config
from tessera.engine import Engine, always_trusted

__all__ = ["DAY", "TOML", "Branch", "fixture_day", "open_branch"]

TOML = """
[branch]
tenant = "acme"
branch = "b1"
timezone = "Europe/London"
day_rollover = "03:00"
languages = ["zh", "en"]

[clock]
trust = "always"

[storage]
dir = "store"

[[services]]
id = "cash"
prefix = "A"
names = { en = "Cash", zh = "现金" }
sla_wait_s = 300

[[services]]
id = "loans"
prefix = "C"
names = { en = "Loans", zh = "贷款" }
sla_wait_s = 600

[[counters]]
id = "c1"
number = 1
services = [{ service = "cash" }]
staff = "t-1"
rating_scale = 3

[[counters]]
id = "c2"
number = 2
services = [{ service = "cash" }, { service = "loans" }]
staff = "t-2"
"""

DAY = "2026-03-02"  # a Monday; London is on GMT, so local time = UTC
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Branch:
    cfg_path: Path
    cfg: BranchConfig
    clock: VirtualClock
    engine: Engine
    est: dict[str, float] = field(default_factory=dict)  # printed estimate by number

    @property
    def db(self) -> Path:
        return self.cfg.path(self.cfg.storage.dir) / "engine.db"

    def at(self, t: float) -> None:
        """Move the clock to ``t`` seconds after 09:00 of the fixture day."""
        target = START + timedelta(seconds=t)
        self.clock.advance((target - self.clock.now()).total_seconds())

    def issue(self, service: str, priority: str | None = None, confirm: bool = True) -> str:
        t = self.engine.issue(service, priority=priority)
        if confirm:
            self.engine.confirm_printed(t.id)
        self.est[t.number] = t.est_wait_s
        return t.id

    def refuse(self, day: str, service: str, reason: str, at: float) -> None:
        """A kiosk refusal row as the kiosk writes it (table refusals, schema v5)."""
        conn = sqlite3.connect(self.db)
        try:
            with conn:
                conn.execute("INSERT INTO refusals(business_day, at, service, reason, device) "
                             "VALUES (?, ?, ?, ?, 'kiosk-main')", (day, at, service, reason))
        finally:
            conn.close()


def open_branch(tmp_path: Path, toml: str = TOML, start: datetime = START) -> Branch:
    cfg_path = tmp_path / "branch.toml"
    cfg_path.write_text(toml)
    cfg = load_config(cfg_path)
    clock = VirtualClock(start)
    engine = Engine.open(cfg, clock, trust=always_trusted)
    return Branch(cfg_path, cfg, clock, engine)


def fixture_day(tmp_path: Path) -> Branch:
    """The hand-built day of test_kpi (times in s after 09:00; its numbers are worked out
    by hand there). The engine is closed after the next day's roll at 03:00."""
    b = open_branch(tmp_path)
    e = b.engine
    e.open_counter("c1", staff="t-1")
    e.open_counter("c2", staff="t-2")
    e.book("BK1", "loans", datetime(2026, 3, 2, 11, 0, tzinfo=UTC))  # never checked in
    b.issue("cash")                      # A001
    b.issue("cash")                      # A002
    b.issue("cash", priority="priority")  # A003
    b.issue("loans")                     # C001
    a4 = b.issue("cash", confirm=False)  # A004: the print failed
    e.void(a4, "paper out")
    b.at(60)
    assert e.call_next("c1").number == "A003"  # the priority class first
    b.at(90)
    e.start("c1")
    b.at(100)
    e.call_specific("c2", "A001")
    b.at(130)
    e.start("c2")
    b.at(300)
    e.done("c1")
    b.at(310)
    assert e.rate("c1", 3).status == "bound"  # top of c1's 3-point scale
    b.at(400)
    e.call_specific("c1", "A002")
    b.at(430)
    e.done("c2")
    b.at(440)
    assert e.rate("c2", 1).status == "bound"  # lowest of 5: a complaint
    b.at(460)
    e.no_show("c1")
    b.at(500)
    e.call_specific("c2", "C001")
    b.at(520)
    e.recall("c2")
    b.at(540)
    e.transfer("c2", "cash")  # first transfer (to the back of cash)
    b.at(600)
    e.call_specific("c1", "C001")
    b.at(660)
    e.transfer("c1", "loans")  # second transfer
    b.at(700)
    e.call_specific("c2", "C001")
    b.at(710)
    e.start("c2")
    b.at(1010)
    e.done("c2")
    b.at(1020)
    assert e.rate("c2", 5).status == "bound"
    b.at(1030)
    assert e.rate("c2", 4).status == "duplicate"
    b.at(1100)
    b.issue("cash")  # A005: still waiting at the day's end
    b.at(2000)
    assert e.rate("c1", 2).status == "unbound"  # no ticket in c1's window
    b.refuse(DAY, "cash", "closed", START.timestamp() + 3000)
    b.refuse(DAY, "loans", "past_closing", START.timestamp() + 3100)
    b.at(18 * 3600 + 5)  # 03:00:05 the next morning: the day rolls
    e.tick()
    e.close()
    return b
