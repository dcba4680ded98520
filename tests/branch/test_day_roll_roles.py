"""The business day at the counters (issue 15), through the objects ``tessera run`` builds
(``build_branch``: engine, counter role, GPIO panel on gpiozero mock pins, dispatcher):
a receptionist logged in across the day roll keeps the patient she called, finishes it
and logs out by holding DONE; a 24-hour service keeps its queue."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tessera.clock import VirtualClock
from tessera.config import parse_config
from tessera.roles.branch import Branch
from tessera.wiring import build_branch

TOML = """
[branch]
tenant = "city-health"
branch = "clinic-north"
timezone = "Europe/London"
day_rollover = "03:00"

[clock]
trust = "always"

[storage]
dir = "{dir}"

[gpio]
pin_factory = "mock"
debounce_ms = 1
hold_ms = 1000
repeat_ms = 1

[[services]]
id = "reception"
prefix = "R"
names = {{ en = "Reception" }}

[[services]]
id = "emergency"
prefix = "E"
names = {{ en = "Emergency" }}
at_day_end = "carry"

[[counters]]
id = "desk"
number = 1
services = [{{ service = "reception" }}, {{ service = "emergency" }}]
rating_scale = 3
panel = {{ next = 5, recall = 6, no_show = 19, done = 26, ratings = [20, 21, 16], login = true }}

[[staff]]
id = "r-amara"
code = "1323"
"""


@contextmanager
def clinic(tmp_path: Path, clock: VirtualClock) -> Iterator[Branch]:
    cfg = parse_config(TOML.format(dir=tmp_path / "var"), base_dir=tmp_path)
    branch = build_branch(cfg, clock, roles=("engine", "counter"))
    try:
        yield branch
    finally:
        branch.close()


class Panel:
    """The desk's buttons on the branch's own mock pin factory, one press at a time."""

    def __init__(self, branch: Branch) -> None:
        self.branch = branch
        self.pins = branch.factories["main"]
        panel = branch.cfg.counter("desk").panel
        assert panel is not None
        self.cfg = panel
        self.n = branch.router.handled

    def press(self, pin: int | None, *, hold_s: float = 0.0) -> None:
        from tessera.sim.scenario import press_pin

        assert pin is not None, "the panel has no such key"
        press_pin(self.pins.pin(pin), hold_s=hold_s, settle_s=0.005)
        self.n += 1
        assert self.branch.router.wait_for(self.n, timeout_s=30)

    def log_in(self, code: str) -> None:
        for d in code:
            self.press(self.cfg.ratings[int(d) - 1])
        self.press(self.cfg.done)


def _events(branch: Branch, type_: str) -> list[dict[str, Any]]:
    return [e["data"] for e in branch.engine.events_since(0) if e["type"] == type_]


def _counter(branch: Branch) -> dict[str, Any]:
    state: dict[str, Any] = branch.engine.snapshot()["counters"]["desk"]
    return state


@pytest.mark.timeout(120)
def test_logged_in_across_the_roll_finish_then_log_out(tmp_path: Path, mock_pins: Any) -> None:
    # the night the clocks go forward: the day rolls at 03:00 BST = 02:00 UTC
    clock = VirtualClock(datetime(2026, 3, 29, 1, 30, tzinfo=UTC))
    with clinic(tmp_path, clock) as branch:
        engine, role = branch.engine, branch.counters["desk"]
        for service in ("reception", "reception", "emergency"):
            engine.confirm_printed(engine.issue(service).id)
        panel = Panel(branch)
        panel.log_in("1323")
        assert _counter(branch)["staff"] == "r-amara"
        panel.press(panel.cfg.next)
        assert role.current == "R001"
        clock.set(datetime(2026, 3, 29, 2, 0, 5, tzinfo=UTC))
        branch.tick()  # the day rolls while R001 stands at the desk
        assert [d["business_day"] for d in _events(branch, "day.rolled")][-1] == "2026-03-29"
        assert _counter(branch)["current"]["number"] == "R001"
        assert [d["number"] for d in _events(branch, "ticket.void")] == ["R002"]
        assert [d["number"] for d in _events(branch, "ticket.carried")] == ["R001", "E001"]
        panel.press(panel.cfg.done, hold_s=1.5)  # logout refused: R001 is still here
        assert role.refusals.get("ticket_open") == 1 and not role.logged_out
        panel.press(panel.cfg.done)  # DONE: R001 ends normally, in the new day
        [done] = _events(branch, "ticket.done")
        assert (done["number"], done["staff"]) == ("R001", "r-amara")
        panel.press(panel.cfg.done, hold_s=1.5)  # and now the logout goes through
        assert role.logged_out and _counter(branch)["state"] == "closed"
        assert [d["staff"] for d in _events(branch, "counter.closed")] == ["r-amara"]
        # the emergency queue was kept: the next receptionist calls E001 first
        panel.log_in("1323")
        panel.press(panel.cfg.next)
        assert role.current == "E001"
        assert engine.issue("emergency").number == "E002"


@pytest.mark.timeout(120)
def test_a_stale_ticket_on_the_panel_never_blocks_the_logout(tmp_path: Path,
                                                             mock_pins: Any) -> None:
    # the panel's own record of its ticket can be behind the engine (here: a ticket
    # ended by a supervisor's command the panel never saw): the engine decides
    clock = VirtualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    with clinic(tmp_path, clock) as branch:
        engine, role = branch.engine, branch.counters["desk"]
        engine.confirm_printed(engine.issue("reception").id)
        panel = Panel(branch)
        panel.log_in("1323")
        panel.press(panel.cfg.next)
        assert role.current == "R001"
        engine.done("desk")
        assert branch.bus.drain() and role.current is None  # the panel followed the event
        role.current = "R001"  # as if the event had not reached it
        panel.press(panel.cfg.done, hold_s=1.5)
        assert role.logged_out and _counter(branch)["state"] == "closed"
        assert "ticket_open" not in role.refusals
