"""The kiosk of ``tessera run`` (sim rig: mock pins, printer emulator on a pty, virtual
clock) refuses, says why, records it, and reprints (issue 15)."""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tessera.config import BranchConfig, load_config
from tessera.demo.rig import SimRig, sim_rig
from tessera.sim.printer import PrinterSimState

LOANS_LED, REPRINT_PIN = 9, 10  # free pins of examples/bank.toml


def _cfg(bank_config_path: Path) -> BranchConfig:
    base = load_config(bank_config_path)
    rep = msgspec.structs.replace
    buttons = tuple(rep(b, led=LOANS_LED) if b.service == "loans" else b
                    for b in base.kiosk.buttons)
    return rep(base, kiosk=rep(base.kiosk, buttons=buttons, reprint_pin=REPRINT_PIN))


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _events(db: Path, type_: str) -> list[dict[str, Any]]:
    return [json.loads(b) for (b,) in _rows(db, "SELECT body FROM outbox ORDER BY seq")
            if json.loads(b)["type"] == type_]


def _printed(rig: SimRig) -> list[str]:
    return [" ".join(t.record["text"]) for t in rig.printer.tickets]


def _intervals(pin: Any, after_s: float) -> list[float]:
    """Times between the lamp's changes, read from the mock pin's own record."""
    time.sleep(after_s)
    return [s.timestamp for s in pin.states[2:]]


@pytest.mark.timeout(180)
def test_past_closing_slip_record_and_the_button_lights_again(
        tmp_path: Path, bank_config_path: Path) -> None:
    with sim_rig(_cfg(bank_config_path), tmp_path, voice=False) as rig:
        kiosk, engine = rig.branch.kiosk, rig.branch.engine
        assert kiosk is not None
        rig.clock.advance(7 * 3600)  # 16:00; loans closes at 16:30, 900 s a customer
        kiosk.refresh()
        lamp = kiosk.button_leds[2]
        assert lamp.is_lit  # type: ignore[attr-defined]
        issued = 0
        for _ in range(30):  # customers until the wait runs past 16:30
            assert rig.press("main", 22) and kiosk.last is not None
            if not kiosk.last.ok:
                break
            issued += 1
        assert kiosk.last is not None and kiosk.last.reason == "past_closing", kiosk.last
        assert rig.printer.wait_tickets(issued + 1)  # the slip says why, on paper
        assert "Loans closes at 16:30 - please come back tomorrow" in _printed(rig)[issued]
        assert not lamp.is_lit  # type: ignore[attr-defined]
        rig.clock.advance(60)
        kiosk.refresh()
        assert not lamp.is_lit  # type: ignore[attr-defined]  # still past closing

        # the loans counters serve: a new ticket fits before 16:30 again
        served = 0
        for _ in range(issued):
            for c in ("c5", "c6"):
                try:
                    engine.call_next(c)
                except Exception:  # closed, or nobody left for it
                    continue
                engine.done(c)
                served += 1
            kiosk.refresh()
            if lamp.is_lit:  # type: ignore[attr-defined]
                break
        assert lamp.is_lit and 0 < served < issued  # type: ignore[attr-defined]
        assert rig.press("main", 22) and kiosk.last is not None and kiosk.last.ok, kiosk.last
        db = rig.engine_db()

    assert _rows(db, "SELECT service, reason, device FROM refusals") == [
        ("loans", "past_closing", "kiosk-main")]
    (evt,) = _events(db, "kiosk.refused")
    assert (evt["data"]["service"], evt["data"]["reason"]) == ("loans", "past_closing")
    numbers = [e["data"]["number"] for e in _events(db, "ticket.issued")]
    assert numbers == [f"C{i:03d}" for i in range(1, issued + 2)]  # no number spent


@pytest.mark.timeout(180)
def test_closed_service_prints_when_it_opens_again(tmp_path: Path,
                                                   bank_config_path: Path) -> None:
    with sim_rig(_cfg(bank_config_path), tmp_path, voice=False) as rig:
        kiosk = rig.branch.kiosk
        assert kiosk is not None
        rig.clock.advance(3 * 3600 + 15 * 60)  # 12:15: loans' lunch break
        kiosk.refresh()
        assert not kiosk.button_leds[2].is_lit  # type: ignore[attr-defined]
        assert rig.press("main", 22)
        assert kiosk.last is not None and kiosk.last.reason == "service_closed"
        assert rig.printer.wait_tickets(1)
        assert "Loans is closed - please come back at 13:30" in _printed(rig)[0]
        assert kiosk.signal == "closed"
        db = rig.engine_db()
    assert _rows(db, "SELECT service, reason FROM refusals") == [("loans", "service_closed")]
    assert not _events(db, "ticket.issued")


@pytest.mark.timeout(180)
def test_printer_fault_is_reported_once_and_the_lamps_say_which(
        tmp_path: Path, bank_config_path: Path) -> None:
    with sim_rig(_cfg(bank_config_path), tmp_path, voice=False) as rig:
        kiosk = rig.branch.kiosk
        assert kiosk is not None
        rig.clock.advance(3 * 3600)  # 12:00
        factory = rig.branch.factories["main"]
        fault_pin, ready_pin = factory.pin(15), factory.pin(4)

        rig.printer.state = PrinterSimState.PAPER_OUT
        fault_pin.clear_states()
        assert rig.press("main", 17)
        assert kiosk.last is not None and kiosk.last.reason == "printer_fault"
        printer_blinks = _intervals(fault_pin, 1.0)
        assert kiosk.wait_signal_end()
        assert kiosk.leds["printer_fault"].is_lit  # type: ignore[attr-defined]
        assert not rig.printer.tickets  # no slip: the printer cannot print

        rig.printer.state = PrinterSimState.ONLINE
        kiosk.refresh()
        rig.clock.advance(5 * 3600)  # 17:00: cash closed
        ready_pin.clear_states()
        assert rig.press("main", 17)
        assert kiosk.last is not None and kiosk.last.reason == "service_closed"
        closed_blinks = _intervals(ready_pin, 2.0)
        db = rig.engine_db()

    # distinct patterns: a fast flicker for the printer, a slow even blink for closed
    assert len(printer_blinks) >= 4 and len(closed_blinks) >= 2, (printer_blinks,
                                                                   closed_blinks)
    assert statistics.median(printer_blinks) < 0.3 < statistics.median(closed_blinks)
    rows = _rows(db, "SELECT service, reason, key FROM refusals ORDER BY id")
    assert [r[:2] for r in rows] == [("cash", "printer_fault"), ("cash", "service_closed")]
    assert rows[0][2].startswith("kiosk-main.") and rows[1][2] is None


@pytest.mark.timeout(180)
def test_held_reprint_button_prints_the_same_number(tmp_path: Path,
                                                    bank_config_path: Path) -> None:
    cfg = _cfg(bank_config_path)
    hold_s = cfg.gpio.hold_ms / 1000 + 0.3
    with sim_rig(cfg, tmp_path, voice=False) as rig:
        kiosk = rig.branch.kiosk
        assert kiosk is not None
        rig.clock.advance(3600)  # 10:00
        assert rig.press("main", REPRINT_PIN, hold_s=hold_s)  # nothing issued yet
        assert kiosk.reprints == 0 and not rig.printer.tickets
        assert rig.press("main", 24)  # cash, priority class
        assert rig.printer.wait_tickets(1)
        number = kiosk.last.number if kiosk.last else None
        assert number == "A001"
        first = _printed(rig)[0]
        assert "Priority" in first  # the class, from its built-in label

        assert rig.press("main", REPRINT_PIN)  # a tap: nothing
        assert kiosk.reprints == 0
        assert rig.press("main", REPRINT_PIN, hold_s=hold_s)  # held: a reprint
        assert rig.printer.wait_tickets(2)
        again = _printed(rig)[1]
        assert "A001" in again and "REPRINT" in again and "Priority" in again
        assert kiosk.reprints == 1
        assert rig.branch.bus.drain()  # its ticket.reprinted reached the kiosk: no 2nd copy
        time.sleep(0.5)
        assert len(rig.printer.tickets) == 2

        # a teller's `reprint` (as the command server runs it for a counter device):
        # the kiosk prints it from the event
        rig.branch.engine.reprint(kiosk.last.ticket.id)  # type: ignore[union-attr]
        assert rig.printer.wait_tickets(3)
        assert "A001" in _printed(rig)[2] and "REPRINT" in _printed(rig)[2]
        assert rig.branch.bus.drain()
        assert kiosk.reprints == 2 and len(rig.printer.tickets) == 3
        db = rig.engine_db()

    assert [e["data"]["number"] for e in _events(db, "ticket.reprinted")] == ["A001"] * 2
    assert _rows(db, "SELECT number, state FROM tickets") == [("A001", "waiting")]


@pytest.mark.parametrize(("line", "path"), [
    ("reprint_pin = 17", "kiosk.reprint_pin: pin 17 already used by kiosk.buttons[0]"),
    ("reprint_pin = 99", "kiosk.reprint_pin"),
    ('reprint_pin = "ten"', "kiosk.reprint_pin"),
])
def test_reprint_pin_is_validated_with_its_path(tmp_path: Path, bank_config_path: Path,
                                                line: str, path: str) -> None:
    from tessera.errors import ConfigError

    text = bank_config_path.read_text(encoding="utf-8").replace(
        'checkin = "stdin"\n', f'checkin = "stdin"\n{line}\n', 1)
    cfg_path = tmp_path / "branch.toml"
    cfg_path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(cfg_path)
    assert any(e.startswith(path) for e in err.value.errors), err.value.errors
