"""Tickets show what matters and never run past the paper (issue 15): the priority class,
an appointment's slot and 'checked in'; long text wrapped, then shrunk; ``config check``
warns about names that cannot fit within those rules."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tessera.config import BranchConfig, load_config
from tessera.drivers.escpos_encoder import TicketEncoder
from tessera.drivers.escpos_layout import MARGIN, TicketRenderer, rom_width
from tessera.drivers.printer_profiles import get_profile
from tessera.engine import Ticket
from tessera.errors import ConfigError
from tessera.printing.checks import config_warnings
from tessera.printing.template import TicketTemplate
from tessera.sim.escpos_decoder import EscPosDecoder

FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
ROOT = Path(__file__).resolve().parents[2]
LONG_EN = "International Remittances, Foreign Exchange and Trade Finance Services"


def _with_names(cfg: BranchConfig, en: str, profile: str) -> BranchConfig:
    rep = msgspec.structs.replace
    svc = rep(cfg.services[0], names={"zh": "国际汇款与外汇及贸易融资服务中心", "en": en})
    printer = rep(cfg.kiosk.printer, profile=profile)
    return rep(cfg, services=(svc, *cfg.services[1:]), kiosk=rep(cfg.kiosk, printer=printer))


def _decoded(cfg: BranchConfig, ticket: Ticket, profile_name: str) -> list[Any]:
    """What an independent ESC/POS decoder sees, element by element (no cut)."""
    profile = get_profile(profile_name)
    data = TicketEncoder(profile, TicketRenderer(FONT, profile.width_dots)).encode(
        TicketTemplate(cfg).doc(ticket))
    cut = data.rfind(b"\x1dV")
    dec = EscPosDecoder(width_dots=profile.width_dots)
    dec.feed(data[:cut] if cut >= 0 else data)
    dec._flush_line()
    return list(dec.elements)


@pytest.mark.parametrize("profile", ["PT-210", "TM-T20II"])
def test_nothing_is_wider_than_the_paper(bank_cfg: BranchConfig, sample_ticket: Ticket,
                                         profile: str) -> None:
    cfg = _with_names(bank_cfg, LONG_EN, profile)
    width = get_profile(profile).width_dots
    elements = _decoded(cfg, dataclasses.replace(sample_ticket, priority="priority"), profile)
    texts = [e.data for e in elements if e.kind == "text"]
    for line in texts:  # ROM text: 12 dots a character times its width multiplier
        assert rom_width(line["text"], line["width"]) <= width, line
    for e in elements:
        if e.kind == "image":
            assert e.image.width <= width
    # nothing was cut off: every word of the name is on the paper, in order
    printed = " ".join(t["text"] for t in texts)
    assert " ".join(LONG_EN.split()) in printed.replace("  ", " ")


def test_wrap_first_then_shrink() -> None:
    r = TicketRenderer(FONT, 384)
    room = 384 - 2 * MARGIN
    two = r.fit(_line("Foreign Exchange Desk", 2))
    assert len(two) == 2 and all(x.scale == 2 for x in two)  # wrapped, size kept
    shrunk = r.fit(_line(LONG_EN, 2))
    assert all(x.scale == 1 for x in shrunk)  # three lines at 2x: shrunk instead
    word = r.fit(_line("Supercalifragilisticexpialidocious" * 2, 1))
    assert len(word) >= 2  # a word wider than the paper is broken, never cut
    for x in (*two, *shrunk, *word):
        assert r.text_width(x.text, x.scale) <= room
    cjk = r.fit(_line("国际汇款与外汇及贸易融资服务中心", 2))
    assert "".join(x.text for x in cjk) == "国际汇款与外汇及贸易融资服务中心"


def _line(text: str, scale: int) -> Any:
    from tessera.drivers.escpos_layout import Line
    return Line(text, scale=scale)


def test_priority_class_and_appointment_are_on_the_ticket(
        bank_cfg: BranchConfig, sample_ticket: Ticket) -> None:
    template = TicketTemplate(bank_cfg)
    vip = [x.text for x in template.labels(dataclasses.replace(sample_ticket, priority="vip"))]
    assert vip == ["贵宾 / VIP"]
    appt = dataclasses.replace(sample_ticket, appointment="BK-1",
                               slot="2026-11-30T02:30:00.000Z")
    assert [x.text for x in template.labels(appt)] == ["预约 10:30 · 已签到",
                                                       "Appointment 10:30 — checked in"]
    rep = msgspec.structs.replace
    named = rep(bank_cfg, ticket=rep(bank_cfg.ticket,
                                     priority_names={"vip": {"zh": "尊享", "en": "Gold"}}))
    assert [x.text for x in TicketTemplate(named).labels(
        dataclasses.replace(sample_ticket, priority="vip"))] == ["尊享 / Gold"]
    assert [x.text for x in template.labels(sample_ticket, reprint=True)] == ["补打 / REPRINT"]


def _bank_text(tmp_path: Path, *, profile: str = "TM-T20II", ticket: str = "",
               loans_en: str = "Loans") -> Path:
    text = (ROOT / "examples" / "bank.toml").read_text(encoding="utf-8")
    text = text.replace('profile = "TM-T20II"', f'profile = "{profile}"', 1)
    text = text.replace('en = "Loans"', f'en = "{loans_en}"', 1)
    text = text.replace('storage]\ndir = "../var/bank"', f'storage]\ndir = "{tmp_path}"')
    if ticket:
        text = text.replace("[ticket]\n", f"[ticket]\n{ticket}\n")
    path = tmp_path / "branch.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_check_warns_about_a_name_too_long_for_the_paper(tmp_path: Path) -> None:
    path = _bank_text(tmp_path, profile="PT-210",
                      loans_en="Mortgage-And-Consumer-Credit-Consultations-Department")
    cfg = load_config(path)  # a warning, not an error: it loads
    (warning,) = config_warnings(cfg)
    assert warning.startswith("services[2].names.en: ") and "PT-210" in warning
    run = subprocess.run([sys.executable, "-m", "tessera", "config", "check", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "warning: services[2].names.en:" in run.stderr
    assert config_warnings(load_config(ROOT / "examples" / "bank.toml")) == []


@pytest.mark.parametrize(("ticket", "path"), [
    ('priority_names = { gold = { en = "Gold" } }', "ticket.priority_names.gold: unknown"),
    ('priority_names = { vip = { en = " " } }', "ticket.priority_names.vip.en: empty"),
    ('priority_names = { vip = "VIP" }', "ticket.priority_names.vip"),
])
def test_priority_names_are_validated_with_their_path(tmp_path: Path, ticket: str,
                                                      path: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_bank_text(tmp_path, ticket=ticket))
    assert any(e.startswith(path) for e in err.value.errors), err.value.errors
