"""Bad input is a clear error at start-up, never at the first customer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tessera.config import load_config
from tessera.drivers.escpos_layout import FontMissingError, TicketRenderer
from tessera.errors import ConfigError
from tessera.printing.checks import config_errors, port_errors
from tessera.printing.issuer import issuer_from_config

ROOT = Path(__file__).resolve().parents[2]


def bank_with(tmp_path: Path, printer: str = "", ticket: str = "") -> Path:
    """examples/bank.toml with lines replaced in [kiosk.printer] / [ticket]."""
    text = (ROOT / "examples" / "bank.toml").read_text(encoding="utf-8")
    text = text.replace('storage]\ndir = "../var/bank"', f'storage]\ndir = "{tmp_path}"')
    if printer:
        text = text.replace("[kiosk.printer]\n", f"[kiosk.printer]\n{printer}\n")
        text = text.replace('profile = "TM-T20II"', "", 1) if "profile" in printer else text
    if ticket:
        text = text.replace("[ticket]\n", f"[ticket]\n{ticket}\n")
        if "qr =" in ticket:
            text = text.replace('qr = "https://q.acme-bank.example/t/{ticket_id}"\n', "")
    path = tmp_path / "branch.toml"
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return err.value.errors


def test_examples_pass(bank_cfg, clinic_cfg) -> None:  # type: ignore[no-untyped-def]
    assert config_errors(bank_cfg) == [] and config_errors(clinic_cfg) == []


def test_missing_font(tmp_path: Path) -> None:
    errs = errors_of(bank_with(tmp_path, ticket='font = "/nonexistent/wqy.ttc"'))
    assert errs == ["ticket.font: /nonexistent/wqy.ttc does not exist; install fonts-wqy-microhei "
                    "(apt-get install fonts-wqy-microhei) or point ticket.font at a readable "
                    "TTF/TTC with CJK glyphs"]


def test_unreadable_or_corrupt_font(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.ttf"
    bogus.write_bytes(b"not a font at all")
    errs = errors_of(bank_with(tmp_path, ticket=f'font = "{bogus}"'))
    assert len(errs) == 1 and errs[0].startswith(f"ticket.font: cannot read font '{bogus}'")
    if os.geteuid() != 0:  # root reads anything
        bogus.chmod(0)
        assert "cannot read" in errors_of(bank_with(tmp_path, ticket=f'font = "{bogus}"'))[0]
    with pytest.raises(FontMissingError, match="fonts-wqy-microhei"):
        TicketRenderer(str(bogus), 576)


def test_unknown_profile(tmp_path: Path) -> None:
    errs = errors_of(bank_with(tmp_path, printer='profile = "TM-T99"'))
    assert errs == ["kiosk.printer.profile: unknown printer profile 'TM-T99'; known: "
                    "PT-210, TM-T20II, TM-T88V, XP-80C-CN"]


def test_template_naming_an_unknown_field(tmp_path: Path) -> None:
    errs = errors_of(bank_with(tmp_path, ticket='qr = "https://x/t/{ticket}"\n'
                                                'extra_line = "{prio}"'))
    assert len(errs) == 2
    assert errs[0].startswith("ticket.qr: unknown field {ticket} in 'https://x/t/{ticket}'; "
                              "did you mean {ticket_id}? known fields: ticket_id, number")
    assert errs[1].startswith("ticket.extra_line: unknown field {prio}")


def test_malformed_template(tmp_path: Path) -> None:
    errs = errors_of(bank_with(tmp_path, ticket='qr = "https://x/t/{ticket_id"'))
    assert len(errs) == 1 and errs[0].startswith("ticket.qr: malformed template")


def test_qr_payload_too_long_for_the_module_size(tmp_path: Path) -> None:
    long_url = "https://q.acme-bank.example/" + "x" * 120 + "/{ticket_id}"
    errs = errors_of(bank_with(tmp_path, ticket=f'qr = "{long_url}"\nqr_module = 12'))
    assert len(errs) == 1
    assert "needs a QR" in errs[0] and "lower ticket.qr_module" in errs[0]
    assert errs[0].startswith("ticket.qr: the longest payload (")
    # the same template fits with smaller modules
    load_config(bank_with(tmp_path, ticket=f'qr = "{long_url}"\nqr_module = 3'))


def test_qr_payload_too_long_for_any_qr(tmp_path: Path) -> None:
    errs = errors_of(bank_with(tmp_path, ticket='qr = "' + "x" * 3000 + '{ticket_id}"'))
    assert errs == ["ticket.qr: a payload of 3036 bytes does not fit any QR code; "
                    "shorten the template"]


def test_modes_checked_against_profile_and_link(bank_cfg, printer_cfg) -> None:  # type: ignore[no-untyped-def]
    errs = config_errors(printer_cfg(bank_cfg, mode="raster"))
    assert errs and errs[0].startswith("kiosk.printer.mode: full raster sends ~50 KB")
    assert config_errors(printer_cfg(bank_cfg, mode="raster", url="tcp://10.0.0.9:9100")) == []
    errs = config_errors(printer_cfg(bank_cfg, mode="text"))
    assert errs == ["kiosk.printer.mode: a TM-T20II has no Chinese ROM font, so mode 'text' "
                    "cannot print the CJK names; use mode 'auto'"]
    assert config_errors(printer_cfg(bank_cfg, mode="text", profile="XP-80C-CN")) == []
    errs = config_errors(printer_cfg(bank_cfg, url="usb://4b8:e15"))
    assert errs == ["kiosk.printer.url: 'usb://4b8:e15' is not usb://VID:PID (4 hex digits each)"]


def test_port_that_does_not_exist(bank_cfg, printer_cfg, engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = printer_cfg(bank_cfg, url=str(tmp_path / "ttyUSB7"))
    assert port_errors(cfg) == [f"kiosk.printer.url: {tmp_path / 'ttyUSB7'} does not exist; "
                                "check the cable and `ls /dev/serial/by-id/`"]
    with pytest.raises(ConfigError, match="ttyUSB7 does not exist"):
        issuer_from_config(cfg, engine)
    assert port_errors(printer_cfg(bank_cfg, url="")) != []
    assert port_errors(printer_cfg(bank_cfg, url="tcp://127.0.0.1:9100")) == []
