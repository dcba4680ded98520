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
