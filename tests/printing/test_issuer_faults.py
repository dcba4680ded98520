"""Fault matrix on a real pty with the real engine: printer state before and
after a ticket → the engine outcome and the device event."""

from __future__ import annotations

from typing import Any

import pytest

from tessera.drivers.escpos import EscposPrinter
from tessera.drivers.printer_profiles import get_profile
from tessera.printing.issuer import (
    PrinterNotReady,
    TicketIssuer,
    TicketNotPrinted,
    issuer_from_config,
)


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, type_: str, data: dict[str, Any]) -> None:
        self.seen.append((type_, data))

    def states(self) -> list[tuple[str, str]]:
        return [(t, d["state"]) for t, d in self.seen]


def make_issuer(bank_cfg, printer_cfg, engine, emu, events) -> TicketIssuer:  # type: ignore[no-untyped-def]
    cfg = printer_cfg(bank_cfg, url=emu.path, status_timeout_ms=100)
    printer = EscposPrinter(emu.path, get_profile("TM-T20II"), status_timeout_ms=100)
    return issuer_from_config(cfg, engine, printer=printer, on_device_event=events)


@pytest.mark.parametrize(("state", "reason"), [
    ("cover_open", "printer-cover-open"), ("paper_out", "printer-paper-out"),
    ("offline", "printer-offline"), ("silent", "printer-unknown"),
    ("garbage", "printer-unknown"),
])
@pytest.mark.timeout(30)
def test_not_ready_before_means_no_number_reserved(  # type: ignore[no-untyped-def]
        bank_cfg, printer_cfg, engine, emulator_factory, tickets_of, state, reason) -> None:
    emu, events = emulator_factory(state=state), Events()
    issuer = make_issuer(bank_cfg, printer_cfg, engine, emu, events)
    with pytest.raises(PrinterNotReady) as err:
        issuer.issue("cash")
    assert err.value.reason == reason
    assert tickets_of(engine) == []  # nothing reserved, nothing to void
    assert emu.tickets == []
    expected = "unknown" if state in ("silent", "garbage") else state
    assert events.states() == [("device.fault", expected)]
    assert events.seen[0][1]["kind"] == "printer" and events.seen[0][1]["detail"]


@pytest.mark.timeout(30)
def test_recovery_is_reported_and_numbering_goes_on(  # type: ignore[no-untyped-def]
        bank_cfg, printer_cfg, engine, emulator_factory, tickets_of) -> None:
    emu, events = emulator_factory(state="cover_open"), Events()
    issuer = make_issuer(bank_cfg, printer_cfg, engine, emu, events)
    with pytest.raises(PrinterNotReady):
        issuer.issue("cash")
    emu.state = emu.state.__class__("online")
    ticket = issuer.issue("cash")
    assert ticket.number == "A001" and ticket.state == "waiting"
    assert events.states() == [("device.fault", "cover_open"), ("device.recovered", "online")]
    assert tickets_of(engine) == [("ticket.issued", "A001", None),
                                  ("ticket.printed", "A001", None)]


@pytest.mark.timeout(30)
def test_near_end_before_and_after_is_a_warning_only(  # type: ignore[no-untyped-def]
        bank_cfg, printer_cfg, engine, emulator_factory, tickets_of) -> None:
    emu, events = emulator_factory(state="online"), Events()
    emu.state_after_cut = emu.state.__class__("near_end")
    issuer = make_issuer(bank_cfg, printer_cfg, engine, emu, events)
    first = issuer.issue("cash")
    second = issuer.issue("cash")  # near-end before: still issues
    assert (first.state, second.state) == ("waiting", "waiting")
    assert events.states() == [("device.fault", "near_end")]  # reported once
    assert [t for t, _, _ in tickets_of(engine)].count("ticket.printed") == 2
    assert "A002" in emu.tickets[1].record["text"]


@pytest.mark.parametrize(("after", "reason"), [
    ("paper_out", "printer-paper-out"), ("cover_open", "printer-cover-open"),
])
@pytest.mark.timeout(30)
def test_fault_during_the_job_voids_the_ticket(  # type: ignore[no-untyped-def]
        bank_cfg, printer_cfg, engine, emulator_factory, tickets_of, after, reason) -> None:
    emu, events = emulator_factory(state="online"), Events()
    emu.state_after_cut = emu.state.__class__(after)
    issuer = make_issuer(bank_cfg, printer_cfg, engine, emu, events)
    with pytest.raises(TicketNotPrinted) as err:
        issuer.issue("cash")
    assert err.value.reason == reason and err.value.ticket.number == "A001"
    assert tickets_of(engine) == [("ticket.issued", "A001", None),
                                  ("ticket.void", "A001", reason)]
    assert events.states() == [("device.fault", after)]
    # the voided number is spent: the next ticket (after the fix) is A002
    emu.state = emu.state.__class__("online")
    assert issuer.issue("cash").number == "A002"
    assert events.states()[-1] == ("device.recovered", "online")


@pytest.mark.timeout(30)
def test_line_dropped_mid_job_voids_the_ticket(  # type: ignore[no-untyped-def]
        bank_cfg, printer_cfg, engine, emulator_factory, tickets_of) -> None:
    emu, events = emulator_factory(state="online"), Events()
    issuer = make_issuer(bank_cfg, printer_cfg, engine, emu, events)
    emu.drop_after_bytes = emu.bytes_received + 200  # status queries so far + 200 job bytes
    with pytest.raises(TicketNotPrinted) as err:
        issuer.issue("cash")
    assert err.value.reason in ("printer-link-lost", "printer-no-status")
    assert tickets_of(engine) == [("ticket.issued", "A001", None),
                                  ("ticket.void", "A001", err.value.reason)]
    assert emu.tickets == []  # never cut
    assert events.states() == [("device.fault", "unknown")]
    with pytest.raises(PrinterNotReady):  # still down: nothing more is reserved
        issuer.issue("cash")
    assert len(tickets_of(engine)) == 2


@pytest.mark.timeout(30)
def test_silent_printer_can_be_allowed_explicitly(  # type: ignore[no-untyped-def]
        bank_cfg, printer_cfg, engine, emulator_factory, tickets_of) -> None:
    emu, events = emulator_factory(state="silent"), Events()
    cfg = printer_cfg(bank_cfg, url=emu.path, status_timeout_ms=50, require_status=False)
    printer = EscposPrinter(emu.path, get_profile("TM-T20II"), status_timeout_ms=50)
    issuer = issuer_from_config(cfg, engine, printer=printer, on_device_event=events)
    assert issuer.issue("cash").state == "waiting"
    assert emu.wait_tickets(1, timeout=10)
    assert events.states() == [("device.fault", "unknown")]
