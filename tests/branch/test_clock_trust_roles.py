"""The kiosk under an untrusted clock (issue 15), through the objects ``tessera run --sim``
builds (``build_branch(sim=True)``: engine, kiosk, printer emulator on a pty): an offline
Pi whose time was never confirmed refuses the press and prints nothing; once a member
of staff sets the time, the same press prints a ticket stamped with that time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from tessera.clock import VirtualClock
from tessera.config import load_config
from tessera.demo.setup import demo_config, first_weekday
from tessera.roles.branch import Branch
from tessera.wiring import build_branch


@contextmanager
def offline_bank(tmp_path: Path, bank: Path, start: datetime) -> Iterator[tuple[Branch, object]]:
    from tessera.sim.board import BoardEmulator
    from tessera.sim.printer import PrinterEmulator

    base = load_config(bank)
    printer = PrinterEmulator()
    printer.start()
    board = BoardEmulator(baudrate=base.board.baudrate).start()
    rep = msgspec.structs.replace
    cfg = demo_config(base, out=tmp_path, printer_url=printer.path, board_url=board.path)
    # the bank's own policy is timedatectl; a flag file that never appears is the same
    # "no NTP" without asking this machine's timedatectl
    cfg = rep(cfg, clock=rep(cfg.clock, trust="flag-file", allow_untrusted=False,
                             sync_flag=str(tmp_path / "never-synced")),
              voice=rep(cfg.voice, enabled=False))
    branch = build_branch(cfg, VirtualClock(start), sim=True)
    try:
        yield branch, printer
    finally:
        branch.close()
        board.stop()
        printer.stop()


@pytest.mark.timeout(120)
def test_the_kiosk_refuses_until_staff_set_the_time(tmp_path: Path,
                                                    bank_config_path: Path) -> None:
    tz = load_config(bank_config_path).tz
    day = first_weekday(datetime.now(tz).date() + timedelta(days=1))
    start = datetime.combine(day, datetime.min.time(), tz) + timedelta(hours=10)
    with offline_bank(tmp_path, bank_config_path, start) as (branch, printer):
        kiosk = branch.kiosk
        assert kiosk is not None
        refused = kiosk.press(0)
        assert (refused.ok, refused.code) == (False, "clock-untrusted")
        assert "does not exist" in refused.detail and "tessera clock set" in refused.detail
        # no number was reserved
        assert not [e for e in branch.engine.events_since(0) if e["type"].startswith("ticket.")]
        # the customer is told why on paper (a slip, issue 15), with no number on it
        assert printer.wait_tickets(1)  # type: ignore[attr-defined]
        slip = printer.tickets[0].record["text"]  # type: ignore[attr-defined]
        assert "please ask staff" in " ".join(slip), slip
        assert not [t for t in slip if t[:1] == "A" and t[1:].isdigit()], slip
        # a member of staff reads 10:05 off their watch
        staff_time = f"{day.isoformat()} 10:05"
        branch.engine.set_clock(staff_time, staff="t-001")
        ok = kiosk.press(0)
        assert ok.ok, ok
        assert printer.wait_tickets(2)  # type: ignore[attr-defined]
        issued = datetime.fromisoformat(ok.ticket.issued_at)  # type: ignore[union-attr]
        assert timedelta(0) <= issued - (start + timedelta(minutes=5)) < timedelta(minutes=1)
        [event] = [e for e in branch.engine.events_since(0) if e["type"] == "clock.set"]
        assert event["data"]["staff"] == "t-001"


DESK_TOML = """
[branch]
tenant = "city-health"
branch = "clinic-north"
timezone = "Europe/London"

[clock]
trust = "flag-file"
sync_flag = "{dir}/never-synced"

[storage]
dir = "{dir}/var"

[gpio]
pin_factory = "mock"
debounce_ms = 1
hold_ms = 1000
repeat_ms = 1

[[services]]
id = "reception"
prefix = "R"
names = {{ en = "Reception" }}

[[counters]]
id = "desk"
number = 1
services = [{{ service = "reception" }}]
rating_scale = 3

[counters.panel]
next = 5
recall = 6
transfer = 13
no_show = 19
done = 26
ratings = [20, 21, 16]
login = true

[[staff]]
id = "r-amara"
code = "1323"
"""


@pytest.mark.timeout(120)
def test_staff_set_the_clock_on_a_login_panel(tmp_path: Path, mock_pins: object) -> None:
    """Code on the rating buttons, hold NEXT: clock entry from the counter's clock
    (08:00 after the power cut); RECALL +1 h, NEXT +1 min, NO-SHOW -1 min; DONE sets it."""
    from datetime import UTC

    from tessera.config import parse_config
    from tessera.engine.errors import ClockUntrusted
    from tessera.sim.scenario import press_pin

    cfg = parse_config(DESK_TOML.format(dir=tmp_path), base_dir=tmp_path)
    branch = build_branch(cfg, VirtualClock(datetime(2026, 3, 27, 8, 0, tzinfo=UTC)),
                          roles=("engine", "counter"))
    try:
        engine, role, pins = branch.engine, branch.counters["desk"], branch.factories["main"]
        panel = cfg.counter("desk").panel
        assert panel is not None
        n = branch.router.handled

        def press(pin: int | None, hold_s: float = 0.0) -> None:
            nonlocal n
            assert pin is not None, "the panel has no such key"
            press_pin(pins.pin(pin), hold_s=hold_s, settle_s=0.005)
            n += 1
            assert branch.router.wait_for(n, timeout_s=30)

        with pytest.raises(ClockUntrusted):
            engine.issue("reception")
        press(panel.next)  # NEXT with nothing typed: still refused, no clock entry
        assert role.refusals["logged_out"] == 1 and role.clock_entry is None
        def enter() -> None:
            for d in "1323":
                press(panel.ratings[int(d) - 1])
            press(panel.next, hold_s=1.5)
            assert role.board_text() == "T08:00" and role.logged_out

        enter()
        press(panel.recall)
        press(panel.done, hold_s=1.5)  # a held DONE leaves, setting nothing
        assert role.clock_entry is None and role.board_text() == "LOGIN"
        assert not [e for e in engine.events_since(0) if e["type"] == "clock.set"]
        enter()
        for pin in (panel.recall, panel.recall, panel.next, panel.next, panel.next,
                    panel.no_show, panel.transfer, panel.recall):
            press(pin)
        assert role.board_text() == "T10:02"
        press(panel.ratings[0])  # a digit does nothing here
        assert role.board_text() == "T10:02"
        press(panel.done)
        assert role.clock_entry is None and role.board_text() == "SET"
        [event] = [e for e in engine.events_since(0) if e["type"] == "clock.set"]
        assert (event["data"]["staff"], event["data"]["time"]) == (
            "r-amara", "2026-03-27T10:02:00.000Z")
        t = engine.issue("reception")
        assert t.number == "R001" and t.issued_at.startswith("2026-03-27T10:02")
        assert role.logged_out  # setting the clock logs nobody in
    finally:
        branch.close()
