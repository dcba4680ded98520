"""Appointment check-in: a booking code typed by the scanner into the kiosk's input prints
the appointment's ticket; an unknown code is refused with a buzz and prints nothing."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from tessera.config import load_config
from tessera.demo.rig import sim_rig


@pytest.mark.timeout(120)
def test_scanned_booking_code_prints_the_appointment(tmp_path: Path,
                                                     bank_config_path: Path) -> None:
    with sim_rig(load_config(bank_config_path), tmp_path, voice=False) as rig:
        kiosk = rig.branch.kiosk
        assert kiosk is not None
        rig.clock.advance(3600)  # 10:00
        rig.branch.engine.book("BK-7731", "loans", rig.clock.now() + timedelta(minutes=10))

        assert rig.scan("BK-7731")
        assert kiosk.last is not None and kiosk.last.ok, kiosk.last
        assert rig.printer.wait_tickets(1)
        assert kiosk.last.ticket is not None and kiosk.last.ticket.appointment == "BK-7731"
        assert kiosk.last.number in rig.printer.tickets[0].record["text"]
        # the slip and that it was checked in, on paper (issue 15; "—" prints as "-")
        assert "Appointment 10:10 - checked in" in rig.printer.tickets[0].record["text"]

        beeps = kiosk.issuer.beeps  # type: ignore[attr-defined]
        assert rig.scan("NOPE-0000")
        assert kiosk.last.code == "unknown-booking"
        assert kiosk.issuer.beeps == beeps + 1  # type: ignore[attr-defined]
        # the bank's TM-T20II beeps through its drawer-kick port: the emulator hears it
        deadline = time.monotonic() + 5
        while rig.printer.beeps < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rig.printer.beeps == 1
        assert rig.scan("BK-7731")  # a second scan of the same code
        assert kiosk.last.code == "bad-state"
        # no second ticket: each refused code got a refusal slip saying why (issue 15)
        assert rig.printer.wait_tickets(3)
        slips = [" ".join(t.record["text"]) for t in rig.printer.tickets[1:]]
        # (the English line goes as ROM text: its dash prints as "-")
        assert "Booking code not found - please check it or ask at reception" in slips[0]
        assert "This booking is already checked in" in slips[1], slips
        assert len(rig.printer.tickets) == 3
