"""What the encoder sends through the driver is what the emulator decodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pyzbar import pyzbar

from tessera.drivers.escpos import EscposPrinter, PrinterState
from tessera.drivers.escpos_encoder import TicketEncoder
from tessera.drivers.escpos_layout import TicketRenderer
from tessera.drivers.printer_profiles import get_profile
from tessera.printing.template import TicketTemplate
from tessera.sim.escpos_decoder import EscPosDecoder

FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
QR_URL = "https://q.acme-bank.example/t/"


def qr_url(ticket_id: str) -> str:
    """The mobile-ticket link examples/bank.toml's QR carries (web.base_url): the id and
    its signature under the branch's secret (tessera.web.links)."""
    from tessera.config import load_config
    from tessera.web.links import LinkSigner

    cfg = load_config(Path(__file__).resolve().parents[2] / "examples" / "bank.toml")
    return QR_URL + LinkSigner.for_config(cfg).ref(ticket_id)


def print_ticket(cfg: Any, profile_name: str, emu: Any, ticket: Any,
                 mode: str = "auto") -> tuple[bytes, Any]:
    profile = get_profile(profile_name)
    printer = EscposPrinter(emu.path, profile, baudrate=115200)
    try:
        data = TicketEncoder(profile, TicketRenderer(FONT, profile.width_dots), mode).encode(
            TicketTemplate(cfg).doc(ticket))
        printer.send(data)
        assert emu.wait_tickets(1, timeout=20)
        assert printer.status(wait_s=2).state is PrinterState.ONLINE
    finally:
        printer.close()
    return data, emu.tickets[0]


def qr_from_png(path: str) -> list[str]:
    return [c.data.decode() for c in pyzbar.decode(Image.open(path).convert("L"))]


@pytest.mark.timeout(60)
def test_cjk_printer_gets_everything_as_text(bank_cfg, printer_cfg, emulator_factory,  # type: ignore[no-untyped-def]
                                            sample_ticket) -> None:
    cfg = printer_cfg(bank_cfg, profile="XP-80C-CN")
    emu = emulator_factory(width_dots=576)
    data, printed = print_ticket(cfg, "XP-80C-CN", emu, sample_ticket)
    rec = printed.record
    assert "A023" in rec["text"]
    assert "现金业务" in rec["text"] and "Cash & Deposits" in rec["text"]
    assert "前面还有 7 人" in rec["text"]
    number = next(line for line in rec["lines"] if line["text"] == "A023")
    assert number["width"] == number["height"] == 6
    assert rec["chinese_mode_on"] == rec["chinese_mode_off"] >= 4
    assert rec["raster_bands"] == 0
    assert rec["qr"] == [qr_url(sample_ticket.id)]
    assert qr_from_png(rec["png"]) == [qr_url(sample_ticket.id)]
    assert rec["bytes"] == len(data)
    assert Path(rec["png"]).with_suffix(".json").is_file()


@pytest.mark.timeout(60)
def test_latin_printer_gets_cjk_as_raster_bands(bank_cfg, printer_cfg, emulator_factory,  # type: ignore[no-untyped-def]
                                               sample_ticket) -> None:
    cfg = printer_cfg(bank_cfg, profile="TM-T20II")
    emu = emulator_factory(width_dots=576)
    data, printed = print_ticket(cfg, "TM-T20II", emu, sample_ticket)
    rec = printed.record
    assert "A023" in rec["text"] and "Cash & Deposits" in rec["text"]
    assert "People ahead: 7" in rec["text"] and "Acme Bank Pudong Branch" in rec["text"]
    assert not any("现" in t for t in rec["text"])  # CJK never went out as text
    assert rec["chinese_mode_on"] == 0
    assert rec["raster_bands"] >= 5  # branch, service, ahead, wait, footer
    assert qr_from_png(rec["png"]) == [qr_url(sample_ticket.id)]
    assert len(data) <= 4096


@pytest.mark.timeout(60)
def test_58mm_printer_without_native_qr_prints_a_scannable_raster_qr(  # type: ignore[no-untyped-def]
        bank_cfg, printer_cfg, emulator_factory, sample_ticket) -> None:
    cfg = printer_cfg(bank_cfg, profile="PT-210")
    emu = emulator_factory(width_dots=384, cutter=False)  # the PT-210 has a tear bar only
    data, printed = print_ticket(cfg, "PT-210", emu, sample_ticket)
    assert printed.record["qr"] == []  # no GS ( k sent
    # no GS V: the job ends with ESC J 96 (12 mm at 8 dots/mm) past the tear bar
    assert bytes([0x1D, 0x56]) not in data and data.endswith(bytes([0x1B, 0x4A, 96]))
    assert printed.record["cut"] == "tear" and printed.record["feed_after_dots"] >= 96
    assert emu._decoder.ignored_cuts == 0
    assert qr_from_png(printed.record["png"]) == [qr_url(sample_ticket.id)]


@pytest.mark.timeout(60)
def test_full_raster_mode_round_trip(bank_cfg, printer_cfg, emulator_factory,  # type: ignore[no-untyped-def]
                                     sample_ticket) -> None:
    cfg = printer_cfg(bank_cfg, profile="TM-T20II", mode="raster")
    emu = emulator_factory(width_dots=576)
    data, printed = print_ticket(cfg, "TM-T20II", emu, sample_ticket, mode="raster")
    assert printed.record["text"] == []
    assert qr_from_png(printed.record["png"]) == [qr_url(sample_ticket.id)]
    assert len(data) > 20_000


def test_decoder_result_does_not_depend_on_how_bytes_are_chunked(  # type: ignore[no-untyped-def]
        bank_cfg, printer_cfg, sample_ticket) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    profile = get_profile("XP-80C-CN")
    data = TicketEncoder(profile, TicketRenderer(FONT, 576)).encode(
        TicketTemplate(printer_cfg(bank_cfg, profile="XP-80C-CN")).doc(sample_ticket))
    whole = EscPosDecoder(576).feed(data)[0].record

    @settings(max_examples=25, deadline=None)
    @given(st.lists(st.integers(min_value=1, max_value=len(data) - 1), max_size=12))
    def check(cuts: list[int]) -> None:
        dec, out, prev = EscPosDecoder(576), [], 0
        for c in [*sorted(set(cuts)), len(data)]:
            out += dec.feed(data[prev:c])
            prev = c
        assert len(out) == 1 and out[0].record == whole

    check()


def test_decoder_handles_gs_l_graphics_and_four_byte_gb18030() -> None:
    # GS ( L fn 112: store a 16x2 graphic, then fn 50: print it
    store = bytes([0x1D, 0x28, 0x4C, 14, 0, 48, 112, 48, 1, 1, 49, 16, 0, 2, 0,
                   0xFF, 0x00, 0x00, 0xFF])
    show = bytes([0x1D, 0x28, 0x4C, 2, 0, 48, 50])
    emoji_ish = "㐀".encode("gb18030")  # CJK extension A: a 4-byte GB18030 sequence
    assert len(emoji_ish) == 4
    data = (b"\x1b@" + store + show + b"\x1c&" + emoji_ish + "汉".encode("gb18030")
            + b"\x1c.\n\x1dV\x00")
    (ticket,) = EscPosDecoder(576).feed(data)
    assert ticket.record["graphics"] == 1
    assert ticket.record["text"] == ["㐀汉"]
    assert ticket.record["unknown"] == []
