"""Real-time commands on the wire: buffer clear before a void, refusal beep in a
fault, no-cutter job end. Expected bytes are written out by hand from the Epson
ESC/POS reference (DLE DC4 fn=1 / fn=8, DLE ENQ n), never taken from the driver;
the printer side is a real pty (the emulator, or the test reading the master)."""

from __future__ import annotations

import dataclasses
import os
import select
import tty
from collections.abc import Iterator
from typing import Any

import pytest

from tessera.drivers.escpos import EscposPrinter
from tessera.drivers.printer_profiles import PROFILES, get_profile
from tessera.printing.issuer import TicketIssuer, TicketNotPrinted, issuer_from_config
from tessera.sim.printer import PrinterSimState

DC4_CLEAR = bytes([0x10, 0x14, 8, 1, 3, 20, 1, 6, 2, 8])  # DLE DC4 fn=8 d1..d7
CLEAR_REPLY = bytes([0x37, 0x25, 0x00])
ENQ_CLEAR = bytes([0x10, 0x05, 2])  # DLE ENQ 2
DC4_PULSE = bytes([0x10, 0x14, 1, 0, 1])  # DLE DC4 fn=1, pin 2, 100 ms
ESC_B = bytes([0x1B, 0x42, 1, 2])  # ESC B: 1 beep of 2 x 50 ms


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    try:
        yield master, os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def read_exactly(fd: int, n: int, timeout: float = 2.0) -> bytes:
    got = b""
    while len(got) < n:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            break
        got += os.read(fd, n - len(got))
    return got


def nothing_more(fd: int, wait: float = 0.2) -> bool:
    return not select.select([fd], [], [], wait)[0]


# ------------------------------------------------------------------ bytes per model


@pytest.mark.parametrize(("profile", "during_fault", "expected"), [
    ("TM-T20II", False, DC4_PULSE), ("TM-T20II", True, DC4_PULSE),
    ("TM-T88V", True, DC4_PULSE),
    ("XP-80C-CN", False, ESC_B),
    ("XP-80C-CN", True, b""),  # buffered only: it would fire when the fault clears
    ("PT-210", False, b""), ("PT-210", True, b""),
])
def test_refusal_beep_bytes(pty_pair: tuple[int, str], profile: str, during_fault: bool,
                            expected: bytes) -> None:
    master, path = pty_pair
    printer = EscposPrinter(path, get_profile(profile), status_timeout_ms=50)
    try:
        assert printer.beep(during_fault=during_fault) is bool(expected)
        assert read_exactly(master, len(expected)) == expected
        assert nothing_more(master)
    finally:
        printer.close()


def test_dle_dc4_8_clear_waits_for_the_clear_response(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    printer = EscposPrinter(path, get_profile("TM-T20II"), status_timeout_ms=300)
    try:
        import threading

        result: list[bool] = []
        t = threading.Thread(target=lambda: result.append(printer.clear_job()))
        t.start()
        assert read_exactly(master, len(DC4_CLEAR)) == DC4_CLEAR
        os.write(master, CLEAR_REPLY)
        t.join(timeout=5)
        assert result == [True]
        # the response was consumed: the next status read sees only status bytes
        t = threading.Thread(target=lambda: result.append(printer.status().ready))
        t.start()
        for n in (1, 2, 3, 4):
            assert read_exactly(master, 3) == bytes([0x10, 0x04, n])
            os.write(master, bytes([0x12]))
        t.join(timeout=5)
        assert result == [True, True]
    finally:
        printer.close()


def test_dle_enq_2_clear_and_a_model_without_clear(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    xp = EscposPrinter(path, get_profile("XP-80C-CN"), status_timeout_ms=50)
    try:
        assert xp.clear_job() is True
        assert read_exactly(master, 3) == ENQ_CLEAR
        assert nothing_more(master)
    finally:
        xp.close()
    pt = EscposPrinter(path, get_profile("PT-210"), status_timeout_ms=50)
    try:
        assert pt.clear_job() is False
        assert nothing_more(master)
        assert "reloaded" in pt.profile.clear_note
    finally:
        pt.close()


def test_cutter_flags_follow_python_escpos_capabilities() -> None:
    """The profile's cutter flag is the capabilities data, not a hand-kept guess."""
    from escpos.capabilities import get_profile as escpos_profile

    for p in PROFILES.values():
        features = escpos_profile(p.escpos_profile).features
        assert p.cutter == bool(features.get("paperFullCut") or features.get("paperPartCut")), \
            p.name
        assert p.cutter or p.tear_feed_dots > 0, p.name
        assert p.clear is not None or p.clear_note, p.name  # a model without clear says so


# ------------------------------------------------------------------ emulator scenarios


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, type_: str, data: dict[str, Any]) -> None:
        self.seen.append((type_, data))


def _issuer(bank_cfg, printer_cfg, engine, emu, profile) -> TicketIssuer:  # type: ignore[no-untyped-def]
    cfg = printer_cfg(bank_cfg, url=emu.path, status_timeout_ms=300, profile=profile.name)
    printer = EscposPrinter(emu.path, profile, status_timeout_ms=300)
    return issuer_from_config(cfg, engine, printer=printer, on_device_event=Events())


def _printed_numbers(emu: Any) -> list[str]:
    return [line for t in emu.tickets for line in t.record["text"] if line.startswith("A0")]


@pytest.mark.parametrize("profile_name", ["TM-T20II", "XP-80C-CN"])
@pytest.mark.timeout(60)
def test_paper_out_mid_job_then_reload_never_prints_the_voided_number(  # type: ignore[no-untyped-def]
        bank_cfg, printer_cfg, engine, emulator_factory, tickets_of, profile_name) -> None:
    profile = get_profile(profile_name)
    emu = emulator_factory()
    emu.paper_out_after_bytes = 200  # the roll ends inside the first ticket
    issuer = _issuer(bank_cfg, printer_cfg, engine, emu, profile)
    with pytest.raises(TicketNotPrinted) as err:
        issuer.issue("cash")
    assert err.value.reason == "printer-paper-out"
    assert emu.clears == 1 and emu.held == bytearray()
    emu.state = PrinterSimState.ONLINE  # paper reloaded
    second = issuer.issue("cash")
    assert emu.wait_tickets(1)
    assert second.number == "A002"
    assert _printed_numbers(emu) == ["A002"]  # A001 (void) never reaches paper
    assert ("ticket.void", "A001", "printer-paper-out") in tickets_of(engine)


@pytest.mark.timeout(60)
def test_without_a_clear_the_emulator_prints_the_buffered_void(  # type: ignore[no-untyped-def]
        bank_cfg, printer_cfg, engine, emulator_factory, caplog) -> None:
    """The control case: the emulator's buffer really holds the job (what a real
    printer does), so the clear above is what keeps the voided number off paper."""
    profile = dataclasses.replace(get_profile("TM-T20II"), clear=None,
                                  clear_note="this model cannot clear its buffer")
    emu = emulator_factory()
    emu.paper_out_after_bytes = 200
    issuer = _issuer(bank_cfg, printer_cfg, engine, emu, profile)
    with pytest.raises(TicketNotPrinted):
        issuer.issue("cash")
    assert emu.clears == 0 and len(emu.held) > 0
    assert "voided ticket A001 may still print: this model cannot clear" in caplog.text
    emu.state = PrinterSimState.ONLINE
    assert emu.wait_tickets(1)
    assert _printed_numbers(emu) == ["A001"]


@pytest.mark.parametrize(("profile_name", "now", "after_reload"), [
    ("TM-T20II", 1, 0),  # DLE DC4 1 sounds during the fault; nothing queued
    ("XP-80C-CN", 0, 0),  # no real-time buzzer: nothing sent, nothing fires later
])
@pytest.mark.timeout(30)
def test_refusal_beep_during_paper_out(emulator_factory, profile_name: str, now: int,  # type: ignore[no-untyped-def]
                                       after_reload: int) -> None:
    import time

    emu = emulator_factory(state="paper_out")
    printer = EscposPrinter(emu.path, get_profile(profile_name), status_timeout_ms=200)
    try:
        assert printer.status().state.value == "paper_out"
        printer.beep(during_fault=True)
        printer.status()  # a round trip: everything sent so far has been received
        assert emu.realtime_beeps == now and emu.beeps == now
        emu.state = PrinterSimState.ONLINE
        time.sleep(0.3)
        printer.status()
        assert emu.beeps == now + after_reload
    finally:
        printer.close()


@pytest.mark.parametrize(("profile_name", "heard"), [("TM-T20II", 1), ("XP-80C-CN", 0)])
@pytest.mark.timeout(30)
def test_kiosk_refusal_during_a_fault_beeps_only_in_real_time(  # type: ignore[no-untyped-def]
        bank_cfg, printer_cfg, engine, emulator_factory, profile_name: str, heard: int) -> None:
    import time

    from tessera.printing.issuer import PrinterNotReady
    from tessera.roles.kiosk_issuer import KioskIssuer

    emu = emulator_factory(state="paper_out")
    kiosk = KioskIssuer(_issuer(bank_cfg, printer_cfg, engine, emu, get_profile(profile_name)),
                        engine)
    with pytest.raises(PrinterNotReady):
        kiosk.issue("cash")
    kiosk.beep()  # what KioskRole._refuse does
    kiosk.refresh()  # a status round trip: the beep (if any) has arrived
    assert emu.realtime_beeps == heard and emu.held == bytearray()
    emu.state = PrinterSimState.ONLINE  # paper reloaded: no queued beep fires now
    time.sleep(0.3)
    kiosk.refresh()
    assert emu.beeps == heard
