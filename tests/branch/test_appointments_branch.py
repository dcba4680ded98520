"""Appointments through the roles (issue 15): a booking code typed into the kiosk's
scanner input, the desk's NEXT on a mock pin calling the due appointment before the
priority walk-in, and a booking never checked in counted as missed by the branch tick."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tessera.config import load_config
from tessera.demo.rig import sim_rig


@pytest.mark.timeout(180)
def test_a_due_appointment_is_called_before_a_priority_walk_in_and_a_missed_one_counts(
        tmp_path: Path, clinic_config_path: Path) -> None:
    with sim_rig(load_config(clinic_config_path), tmp_path, voice=False) as rig:
        engine, kiosk, bus = rig.branch.engine, rig.branch.kiosk, rig.branch.bus
        assert kiosk is not None
        seen: list[dict[str, Any]] = []
        bus.subscribe(seen.append)
        rig.clock.advance(3600)  # 09:00
        engine.book("K1", "reception", rig.clock.now() + timedelta(minutes=10))
        engine.book("K2", "reception", rig.clock.now() + timedelta(minutes=30))
        assert rig.scan("K1")  # 10 min early: inside the 20 min early window
        assert kiosk.last is not None and kiosk.last.ok, kiosk.last
        assert kiosk.last.ticket is not None
        appointment = kiosk.last.ticket.number
        normal, prio = rig.cfg.kiosk.buttons  # reception, reception/priority
        assert prio.priority == "priority"
        numbers = []
        for b in (prio, normal):
            assert rig.press(rig.cfg.kiosk.device, b.pin)
            assert kiosk.last is not None and kiosk.last.ok, kiosk.last
            numbers.append(kiosk.last.number)
        assert rig.printer.wait_tickets(3)
        rig.clock.advance(600)  # 09:10: the appointment's slot
        desk = rig.cfg.counter("desk")
        panel = desk.panel
        assert panel is not None and panel.next is not None and panel.done is not None
        called = []
        for _ in range(3):
            assert rig.press(desk.device, panel.next)
            assert bus.drain(10.0)
            called.append(rig.branch.counters["desk"].current)
            assert rig.press(desk.device, panel.done)
            assert bus.drain(10.0)
        assert called == [appointment, *numbers]  # before the priority walk-in who came first

        rig.clock.advance(35 * 60)  # 09:45: K2's window (slot + 15 min) has ended
        rig.branch.tick()
        assert bus.drain(10.0)
        missed = [e["data"] for e in seen if e["type"] == "appointment.missed"]
        assert [(m["code"], m["service"]) for m in missed] == [("K2", "reception")]
        assert rig.scan("K2")
        assert kiosk.last is not None and kiosk.last.code == "booking-window", kiosk.last
        assert engine.snapshot()["no_shows"] == {"walk_in": 0, "appointment": 1}
