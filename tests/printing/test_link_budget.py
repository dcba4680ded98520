"""Link budget: the emulator reads no faster than the baud rate; the bank
ticket's transfer time is compared with the printer's print time (from the
profile's speed and the decoded ticket length), never with the wall clock."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tessera.drivers.escpos import EscposPrinter
from tessera.drivers.printer_profiles import get_profile
from tessera.printing.issuer import issuer_from_config


def issue_over(bank_cfg: Any, printer_cfg: Any, engine: Any, emulator_factory: Any, profile: str,
               baud: int) -> tuple[Any, Any, float]:
    emu = emulator_factory(baudrate=baud, width_dots=get_profile(profile).width_dots)
    cfg = printer_cfg(bank_cfg, url=emu.path, profile=profile, baudrate=baud)
    printer = EscposPrinter(emu.path, get_profile(profile), baudrate=baud,
                            status_timeout_ms=200)
    issuer = issuer_from_config(cfg, engine, printer=printer)
    start = time.monotonic()
    ticket = issuer.issue("cash")
    elapsed = time.monotonic() - start
    printer.close()
    assert emu.wait_tickets(1, timeout=1)
    return ticket, emu.tickets[0].record, elapsed


@pytest.mark.parametrize(("profile", "baud"), [
    ("XP-80C-CN", 115200), ("TM-T20II", 115200), ("XP-80C-CN", 9600),
])
@pytest.mark.timeout(60)
def test_bank_ticket_transfer_fits_the_print_time(  # type: ignore[no-untyped-def]
        bank_cfg, printer_cfg, engine, emulator_factory, profile, baud) -> None:
    ticket, rec, elapsed = issue_over(bank_cfg, printer_cfg, engine, emulator_factory,
                                      profile, baud)
    transfer_s = rec["bytes"] * 10 / baud
    print_s = get_profile(profile).print_time_s(rec["height_dots"])
    assert ticket.state == "waiting"
    assert transfer_s <= print_s, f"{rec['bytes']} B need {transfer_s:.2f}s > {print_s:.2f}s"
    assert elapsed >= 0.9 * transfer_s  # the emulator really throttles (a lower bound only)


@pytest.mark.timeout(60)
def test_slow_link_does_not_void_a_ticket_still_in_transfer(  # type: ignore[no-untyped-def]
        bank_cfg, printer_cfg, engine, emulator_factory) -> None:
    # ~3 KB of CJK raster at 9600 baud takes ~3 s, far beyond the 200 ms status
    # timeout: the after-job status must wait for the transfer, not void the ticket
    ticket, rec, elapsed = issue_over(bank_cfg, printer_cfg, engine, emulator_factory,
                                      "TM-T20II", 9600)
    assert ticket.state == "waiting"
    assert rec["bytes"] * 10 / 9600 > 2.0
    assert elapsed >= 0.9 * rec["bytes"] * 10 / 9600
