"""Helpers shared by the display tests: a config builder and a small stand-in
for the engine's events and snapshot (the shapes in docs/contracts.md)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tessera.clock import VirtualClock
from tessera.config import BranchConfig, parse_config

START = datetime(2026, 3, 2, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai

CONFIG = """
[branch]
tenant = "acme"
branch = "b1"
timezone = "Asia/Shanghai"
languages = ["zh", "en"]
[[services]]
id = "cash"
prefix = "A"
names = {{ zh = "现金", en = "Cash" }}
[[services]]
id = "loans"
prefix = "B"
names = {{ zh = "贷款", en = "Loans" }}
[[counters]]
id = "c1"
number = 1
services = [{{ service = "cash" }}]
board_address = "11"
[[counters]]
id = "c2"
number = 2
services = [{{ service = "cash" }}, {{ service = "loans" }}]
board_address = "12"
[[counters]]
id = "c3"
number = 3
services = [{{ service = "loans" }}]
board_address = "13"
[board]
url = "{url}"
hall_address = "01"
history = 4
highlight_s = 10
ping_interval_s = {ping}
{board_extra}
[voice]
clips_dir = "{clips}"
output = "dir:{out}"
max_age_s = 60
{extra}
"""


def make_config(*, url: str = "", clips: Path | str = "", out: Path | str = "/tmp/x",
                ping: float = 0, extra: str = "", board_extra: str = "") -> BranchConfig:
    return parse_config(CONFIG.format(url=url, clips=clips, out=out, ping=ping, extra=extra,
                                      board_extra=board_extra))


class BranchStandIn:
    """Produces contract-shaped events and keeps the snapshot the engine would report."""

    def __init__(self, cfg: BranchConfig, clock: VirtualClock) -> None:
        self.cfg, self.clock = cfg, clock
        self.seq = itertools.count(1)
        self.counters: dict[str, dict[str, Any]] = {
            c.id: {"number": c.number, "state": "closed", "staff": "", "current": None}
            for c in cfg.counters}
        self.recent: list[dict[str, Any]] = []
        self.tickets: dict[str, dict[str, Any]] = {}

    def _env(self, etype: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"v": 1, "id": f"e{next(self.seq)}", "type": etype, "seq": 0,
                "ts": self.clock.now().isoformat().replace("+00:00", "Z"), "data": data}

    def open(self, counter: str) -> dict[str, Any]:
        self.counters[counter]["state"] = "open"
        return self._env("counter.opened", {"counter": counter, "staff": "",
                                            "counter_number": self.cfg.counter(counter).number})

    def pause(self, counter: str) -> dict[str, Any]:
        self.counters[counter]["state"] = "paused"
        return self._env("counter.paused", {"counter": counter, "staff": "",
                                            "counter_number": self.cfg.counter(counter).number})

    def call(self, counter: str, number: str) -> dict[str, Any]:
        tid = f"t-{number}"
        cno = self.cfg.counter(counter).number
        self.tickets[tid] = {"ticket_id": tid, "number": number, "service": "cash",
                             "state": "called", "recalls": 0}
        self.counters[counter]["current"] = self.tickets[tid]
        self.recent = [r for r in self.recent if r["ticket_id"] != tid]
        self.recent.insert(0, {"ticket_id": tid, "number": number, "service": "cash",
                               "counter": counter, "counter_number": cno,
                               "ts": self.clock.now().isoformat(), "recalls": 0})
        return self._env("ticket.called", {"ticket_id": tid, "number": number,
                                           "service": "cash", "counter": counter,
                                           "counter_number": cno, "staff": "", "wait_s": 30})

    def recall(self, counter: str) -> dict[str, Any]:
        cur = self.counters[counter]["current"]
        cur["recalls"] += 1
        return self._env("ticket.recalled", {**{k: cur[k] for k in ("ticket_id", "number")},
                                             "service": "cash", "counter": counter,
                                             "counter_number": self.cfg.counter(counter).number,
                                             "staff": "", "wait_s": 30,
                                             "recalls": cur["recalls"]})

    def no_show(self, counter: str) -> dict[str, Any]:
        cur = self.counters[counter]["current"]
        self.counters[counter]["current"] = None
        self.recent = [r for r in self.recent if r["ticket_id"] != cur["ticket_id"]]
        return self._env("ticket.no_show", {"ticket_id": cur["ticket_id"],
                                            "number": cur["number"], "service": "cash",
                                            "counter": counter, "appointment": None,
                                            "counter_number": self.cfg.counter(counter).number})

    def done(self, counter: str) -> dict[str, Any]:
        cur = self.counters[counter]["current"]
        self.counters[counter]["current"] = None
        return self._env("ticket.done", {"ticket_id": cur["ticket_id"], "number": cur["number"],
                                         "service": "cash", "counter": counter, "staff": "",
                                         "counter_number": self.cfg.counter(counter).number,
                                         "service_s": 60, "next_service": None})

    def snapshot(self) -> dict[str, Any]:
        return {"queues": {}, "counters": self.counters, "recent_calls": list(self.recent)}
