"""Paper out in the middle of the day: tickets refused, LED and event show it; refill →
issuing resumes with the next number (none lost, none reused)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import cast

import pytest

from tessera.config import load_config
from tessera.demo.rig import sim_rig
from tessera.drivers.gpio import Lamp
from tessera.sim.printer import PrinterSimState


def _events(db: Path) -> list[dict[str, object]]:
    conn = sqlite3.connect(db)
    try:
        return [json.loads(b) for (b,) in conn.execute("SELECT body FROM outbox ORDER BY seq")]
    finally:
        conn.close()


@pytest.mark.timeout(120)
def test_paper_out_refuses_then_refill_resumes(tmp_path: Path, bank_config_path: Path) -> None:
    base = load_config(bank_config_path)
    with sim_rig(base, tmp_path, voice=False) as rig:
        kiosk = rig.branch.kiosk
        assert kiosk is not None
        lamps = cast(dict[str, Lamp], kiosk.leds)  # the wiring's GPIO lamps
        rig.clock.advance(3 * 3600)  # 12:00
        for _ in range(3):
            assert rig.press("main", 17)
        assert rig.printer.wait_tickets(3)
        assert lamps["ready"].is_lit and not lamps["printer_fault"].is_lit

        rig.printer.state = PrinterSimState.PAPER_OUT
        for _ in range(2):
            assert rig.press("main", 17)
            assert kiosk.last is not None and not kiosk.last.ok
        assert kiosk.signal == "printer"  # the fault lamp flickers the refusal (issue 15)
        assert kiosk.wait_signal_end()  # then shows the steady state
        assert lamps["printer_fault"].is_lit and not lamps["ready"].is_lit
        assert len(rig.printer.tickets) == 3  # nothing printed while out of paper

        rig.printer.state = PrinterSimState.ONLINE  # refilled
        assert rig.press("main", 17)
        assert kiosk.last is not None and kiosk.last.ok
        assert rig.printer.wait_tickets(4)
        assert lamps["ready"].is_lit and not lamps["printer_fault"].is_lit
        printed = [t.record["text"] for t in rig.printer.tickets]
        engine_db, kiosk_db = rig.engine_db(), rig.out / "kiosk-main.db"

    issued = [e["data"]["number"] for e in _events(engine_db)  # type: ignore[index]
              if e["type"] == "ticket.issued"]
    assert issued == ["A001", "A002", "A003", "A004"]  # no number lost or skipped
    assert not [e for e in _events(engine_db) if e["type"] == "ticket.void"]
    assert "A004" in printed[3]
    device = [(e["type"], e["data"]["kind"], e["data"]["state"])  # type: ignore[index]
              for e in _events(kiosk_db)]
    assert device == [("device.fault", "printer", "paper_out"),
                      ("device.recovered", "printer", "online")]
