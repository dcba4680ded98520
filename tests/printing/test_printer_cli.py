"""``tessera printer test`` and ``tessera sim printer`` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tessera.cli import main


@pytest.mark.timeout(60)
def test_printer_test_prints_on_the_emulator(emulator, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["printer", "test", "--port", emulator.path, "--profile", "XP-80C-CN",
                 "--baud", "115200"]) == 0
    assert emulator.wait_tickets(1, timeout=10)
    rec = emulator.tickets[0].record
    assert "T000" in rec["text"] and "测试票" in rec["text"]
    assert rec["qr"] == ["https://tessera.example/t/00000000-0000-7000-8000-000000000000"]
    out = capsys.readouterr().out
    assert "status before: online" in out and "status after: online" in out


@pytest.mark.timeout(30)
def test_printer_test_fails_clearly_on_a_paperless_printer(emulator_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    emu = emulator_factory(state="paper_out")
    assert main(["printer", "test", "--port", emu.path, "--baud", "115200"]) == 1
    assert "paper out: load a new roll" in capsys.readouterr().out


def test_printer_test_rejects_an_unknown_profile(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["printer", "test", "--port", "loop://", "--profile", "TM-X"]) == 2
    assert "unknown printer profile 'TM-X'" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_sim_printer_command_serves_a_pty(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tessera", "sim", "printer", "--out", str(tmp_path),
         "--duration", "20"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/pts/")
        assert main(["printer", "test", "--port", port, "--baud", "115200"]) == 0
        line = proc.stdout.readline()
        assert line.startswith("ticket: ") and "T000" in line
        record = json.loads((tmp_path / "ticket-0001.json").read_text(encoding="utf-8"))
        assert "T000" in record["text"] and (tmp_path / "ticket-0001.png").is_file()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_emulator_does_not_import_the_driver_or_encoder() -> None:
    code = ("import sys, tessera.sim.printer; "
            "bad = [m for m in sys.modules if m == 'escpos' or m.startswith(('escpos.', "
            "'tessera.printing', 'tessera.drivers.escpos'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------ issue 16


def _config_with_printer(tmp_path: Path, url: str, baud: int) -> Path:
    text = (Path(__file__).resolve().parents[2] / "examples" / "bank.toml").read_text()
    text = text.replace('url = "/dev/ttyUSB0"', f'url = "{url}"', 1)
    text = text.replace("baudrate = 115200", f"baudrate = {baud}", 1)
    path = tmp_path / "branch.toml"
    path.write_text(text)
    return path


@pytest.mark.timeout(30)
def test_printer_test_sends_nothing_to_a_faulted_printer(emulator_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    import time

    from tessera.sim.printer import PrinterSimState

    emu = emulator_factory(state="cover_open")
    assert main(["printer", "test", "--port", emu.path, "--baud", "115200"]) == 1
    captured = capsys.readouterr()
    assert "status before: cover_open" in captured.out
    assert "not sent: a faulted printer keeps the job" in captured.err
    assert emu.held == bytearray()  # nothing waiting in the printer's buffer
    emu.state = PrinterSimState.ONLINE  # cover closed: nothing prints
    time.sleep(0.5)
    assert emu.tickets == []


@pytest.mark.timeout(30)
def test_printer_test_refuses_a_silent_printer_unless_no_status(emulator_factory,  # type: ignore[no-untyped-def]
                                                               capsys) -> None:
    emu = emulator_factory(state="silent")
    assert main(["printer", "test", "--port", emu.path]) == 1
    assert "--no-status" in capsys.readouterr().err
    assert emu.tickets == []
    assert main(["printer", "test", "--port", emu.path, "--no-status"]) == 1  # sent, unconfirmed
    assert emu.wait_tickets(1, timeout=10)


@pytest.mark.timeout(60)
def test_printer_test_config_uses_the_configs_port_and_baud(emulator, tmp_path,  # type: ignore[no-untyped-def]
                                                            capsys) -> None:
    import termios

    cfg = _config_with_printer(tmp_path, emulator.path, 9600)
    assert main(["printer", "test", "--config", str(cfg)]) == 0
    assert emulator.wait_tickets(1, timeout=10)
    assert "sent " in (out := capsys.readouterr().out) and "at 9600 baud" in out
    # the pty keeps the line speed the driver set: the config's, not the profile's 38400
    attrs = termios.tcgetattr(emulator._slave)
    assert attrs[4] == termios.B9600 and attrs[5] == termios.B9600
    # the bank template, not the built-in test one
    assert any("Acme" in line for line in emulator.tickets[0].record["text"])


def test_printer_test_config_port_check_names_the_cable(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = _config_with_printer(tmp_path, "/dev/ttyUSB9", 9600)
    assert main(["printer", "test", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "kiosk.printer.url: /dev/ttyUSB9 does not exist; check the cable" in err
    assert "could not open port" not in err  # never pyserial's raw error


def test_printer_test_port_without_permission_names_dialout(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import os

    dev = tmp_path / "ttyFAKE"
    dev.write_bytes(b"")
    dev.chmod(0)
    if os.access(dev, os.W_OK):  # running as root: permissions do not apply
        pytest.skip("root can open anything")
    assert main(["printer", "test", "--port", str(dev)]) == 2
    assert "dialout" in capsys.readouterr().err


def test_printer_test_without_port_or_config(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["printer", "test"]) == 2
    assert "--port: give the printer's device path" in capsys.readouterr().err
