"""DLE EOT status: decoding by hand-built bytes, and the driver against the emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.drivers.escpos import (
    EscposPrinter,
    PrinterLinkError,
    PrinterState,
    parse_status,
    valid_status_byte,
)
from tessera.drivers.printer_profiles import get_profile

OK = 0b0001_0010  # fixed bits: bit 1 and bit 4 set


def test_fixed_bits_are_checked() -> None:
    assert valid_status_byte(OK)
    for bad in (0x00, 0xFF, OK | 0x01, OK | 0x80, OK & ~0x10, OK & ~0x02):
        assert not valid_status_byte(bad), hex(bad)


@pytest.mark.parametrize(("replies", "state"), [
    ((OK, OK, OK, OK), PrinterState.ONLINE),
    ((OK, OK, OK, OK | 0x0C), PrinterState.NEAR_END),
    ((OK | 0x08, OK | 0x20, OK, OK | 0x60), PrinterState.PAPER_OUT),
    ((OK | 0x08, OK | 0x04, OK, OK), PrinterState.COVER_OPEN),
    ((OK | 0x08, OK | 0x40, OK | 0x40, OK), PrinterState.OFFLINE),
    ((OK, OK, OK, 0x81), PrinterState.UNKNOWN),
])
def test_parse_status(replies: tuple[int, int, int, int], state: PrinterState) -> None:
    assert parse_status(*replies).state is state


@pytest.mark.parametrize(("sim", "state"), [
    ("online", PrinterState.ONLINE), ("near_end", PrinterState.NEAR_END),
    ("paper_out", PrinterState.PAPER_OUT), ("cover_open", PrinterState.COVER_OPEN),
    ("offline", PrinterState.OFFLINE), ("silent", PrinterState.UNKNOWN),
    ("garbage", PrinterState.UNKNOWN),
])
def test_driver_reads_every_emulated_state(emulator_factory, sim: str,  # type: ignore[no-untyped-def]
                                           state: PrinterState) -> None:
    emu = emulator_factory(state=sim)
    printer = EscposPrinter(emu.path, get_profile("TM-T20II"), status_timeout_ms=100)
    try:
        status = printer.status()
    finally:
        printer.close()
    assert status.state is state
    if state is PrinterState.UNKNOWN:
        assert not status.paper_ok and status.detail  # silence is never "paper OK"
    assert emu.status_queries >= 1


def test_missing_port_is_unknown_and_send_raises(tmp_path: Path) -> None:
    printer = EscposPrinter(str(tmp_path / "ttyUSB9"), get_profile("TM-T20II"))
    status = printer.status()
    assert status.state is PrinterState.UNKNOWN and "ttyUSB9" in status.detail
    with pytest.raises(PrinterLinkError, match="ttyUSB9"):
        printer.send(b"\x1b@")


@pytest.mark.timeout(30)
def test_reconnects_after_the_adapter_is_replugged(emulator_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    link = tmp_path / "printer-by-id"
    emu = emulator_factory(link_path=link)
    printer = EscposPrinter(str(link), get_profile("TM-T20II"), status_timeout_ms=100)
    try:
        assert printer.status().state is PrinterState.ONLINE
        emu.drop_line()
        assert printer.status().state is PrinterState.UNKNOWN
        emu.reconnect()  # same symlink, new pty: no restart of the driver
        assert printer.status().state is PrinterState.ONLINE
        printer.send(b"\x1b@back\n\x1dV\x00")
        assert emu.wait_tickets(1, timeout=10)
        assert emu.tickets[0].record["text"] == ["back"]
    finally:
        printer.close()


def test_loop_url_works_and_echo_is_not_a_status(tmp_path: Path) -> None:
    # loop:// echoes our own DLE EOT back: 0x10 breaks the fixed bits → UNKNOWN
    printer = EscposPrinter("loop://", get_profile("TM-T20II"), status_timeout_ms=50)
    assert printer.status().state is PrinterState.UNKNOWN
    printer.close()


def test_escpos_stdout_goes_to_the_log(capsys, caplog) -> None:  # type: ignore[no-untyped-def]
    from tessera.drivers.escpos import _captured_stdout

    with _captured_stdout():
        print("Capabilities profile warning")
    assert capsys.readouterr().out == ""
    assert "Capabilities profile warning" in caplog.text


@pytest.mark.timeout(30)
def test_network_printer_on_loopback() -> None:
    """tcp://host:port: the same driver code over a raw socket (port 9100 style)."""
    import socket
    import threading

    from tessera.sim.escpos_decoder import EscPosDecoder

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    printed: list[list[str]] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            dec = EscPosDecoder(576, on_status=lambda n: conn.sendall(bytes([OK | 0x0C]
                                                                            if n == 4 else [OK])))
            while data := conn.recv(4096):
                printed.extend(t.record["text"] for t in dec.feed(data))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    printer = EscposPrinter(f"tcp://127.0.0.1:{port}", get_profile("TM-T88V"))
    try:
        assert printer.link_kind == "network"
        assert printer.status().state is PrinterState.NEAR_END
        printer.send(b"\x1b@over tcp\n\x1dV\x00")
        assert printer.status().state is PrinterState.NEAR_END  # answered after the job
    finally:
        printer.close()
        thread.join(timeout=5)
        server.close()
    assert printed == [["over tcp"]]


@pytest.mark.parametrize(("profile", "expected"), [
    ("XP-80C-CN", bytes([0x1B, 0x42, 1, 2])),  # ESC B: 1 beep of 2 x 50 ms
    ("TM-T20II", bytes([0x10, 0x14, 1, 0, 1])),  # DLE DC4 fn=1: real-time pulse, pin 2
])
def test_beep_sends_the_models_buzzer_command(profile: str, expected: bytes) -> None:
    # loop:// hands back exactly what the driver wrote
    printer = EscposPrinter("loop://", get_profile(profile), status_timeout_ms=50)
    try:
        assert printer.beep() is True
        link = printer._require_link()
        got = bytes(b for _ in range(len(expected)) if (b := link.read_byte(0.5)) is not None)
        assert got == expected
    finally:
        printer.close()


def test_beep_on_a_model_without_buzzer_sends_nothing() -> None:
    printer = EscposPrinter("loop://", get_profile("PT-210"), status_timeout_ms=50)
    try:
        assert printer.beep() is False
        assert printer._link is None  # nothing was even opened
    finally:
        printer.close()


def test_emulator_counts_beeps() -> None:
    from tessera.sim.escpos_decoder import EscPosDecoder

    dec = EscPosDecoder(576)
    dec.feed(bytes([0x1B, 0x42, 3, 1]) + bytes([0x1B, 0x70, 0, 50, 100]) + b"\x1b@")
    assert dec.beeps == 4
    assert dec.stats["unknown"] == []


def test_the_emulator_never_replaces_a_file_that_is_not_its_symlink(tmp_path: Path) -> None:
    from tessera.sim.printer import PrinterEmulator

    precious = tmp_path / "printer"
    precious.write_text("keep me\n")
    with pytest.raises(FileExistsError, match="not a symlink"):
        PrinterEmulator(out_dir=tmp_path / "t", link_path=precious).start()
    assert precious.read_text() == "keep me\n"
    link = tmp_path / "link"
    with PrinterEmulator(out_dir=tmp_path / "t", link_path=link) as emu:
        assert link.is_symlink() and emu.path == str(link)
    assert not link.exists()
