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
        assert not printer.wait_tickets(1, timeout=0.5)  # type: ignore[attr-defined]
        # a member of staff reads 10:05 off their watch
        staff_time = f"{day.isoformat()} 10:05"
        branch.engine.set_clock(staff_time, staff="t-001")
        ok = kiosk.press(0)
        assert ok.ok, ok
        assert printer.wait_tickets(1)  # type: ignore[attr-defined]
        issued = datetime.fromisoformat(ok.ticket.issued_at)  # type: ignore[union-attr]
        assert timedelta(0) <= issued - (start + timedelta(minutes=5)) < timedelta(minutes=1)
        [event] = [e for e in branch.engine.events_since(0) if e["type"] == "clock.set"]
        assert event["data"]["staff"] == "t-001"
