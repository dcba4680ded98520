"""Byte-exact encoder tests; expected bytes are written out by hand from the
Epson ESC/POS reference, never produced by the encoder itself."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from PIL import Image

from tessera.drivers.escpos_encoder import (
    EncodeError,
    TicketEncoder,
    feed,
    qr_native,
    raster,
    size,
    split_for_latin_printer,
)
from tessera.drivers.escpos_layout import QR, Align, Gap, Line, TicketDoc, TicketRenderer
from tessera.drivers.printer_profiles import get_profile
from tessera.printing.template import TicketTemplate

FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
ESC_INIT = bytes([0x1B, 0x40])
CUT = bytes([0x1D, 0x56, 65, 16])


def encoder(profile: str, mode: str = "auto") -> TicketEncoder:
    p = get_profile(profile)
    return TicketEncoder(p, TicketRenderer(FONT, p.width_dots), mode)


def test_feed_splits_at_255_dots() -> None:
    assert feed(300) == bytes([0x1B, 0x4A, 255, 0x1B, 0x4A, 45])
    assert feed(0) == b""


def test_native_size_is_gs_bang_with_both_nibbles() -> None:
    assert size(1) == bytes([0x1D, 0x21, 0x00])
    assert size(6) == bytes([0x1D, 0x21, 0x55])


def test_native_qr_sequence() -> None:
    payload = b"https://q.example/t/42"
    n = len(payload) + 3
    expected = (
        bytes([0x1D, 0x28, 0x6B, 4, 0, 49, 65, 50, 0])  # model 2
        + bytes([0x1D, 0x28, 0x6B, 3, 0, 49, 67, 6])  # module 6 dots
        + bytes([0x1D, 0x28, 0x6B, 3, 0, 49, 69, 49])  # error level M
        + bytes([0x1D, 0x28, 0x6B, n, 0, 49, 80, 48]) + payload  # store
        + bytes([0x1D, 0x28, 0x6B, 3, 0, 49, 81, 48])  # print
    )
    assert qr_native(payload.decode(), 6, "M") == expected


def test_raster_crops_to_ink_and_turns_blank_rows_into_feed() -> None:
    img = Image.new("1", (32, 12), 1)
    for x in (8, 9, 15):  # ink only in the second byte column, rows 2 and 11
        img.putpixel((x, 2), 0)
    img.putpixel((8, 11), 0)
    expected = (
        bytes([0x1B, 0x4A, 2])  # 2 blank rows on top: paper feed
        + bytes([0x1D, 0x76, 0x30, 0, 1, 0, 1, 0]) + bytes([0b11000001])
        + bytes([0x1B, 0x4A, 8])  # 8 blank rows inside: a feed, not zeros
        + bytes([0x1D, 0x76, 0x30, 0, 1, 0, 1, 0]) + bytes([0b10000000])
    )
    assert raster(img) == expected


def test_cjk_line_on_a_cjk_printer_is_native_text_in_chinese_mode() -> None:
    doc = TicketDoc("t", (), (Line("现金 A1"),))
    expected = (ESC_INIT + bytes([0x1B, 0x61, 1])  # centre
                + bytes([0x1C, 0x26]) + "现金 A1".encode("gb18030") + bytes([0x1C, 0x2E, 0x0A])
                + CUT)
    assert encoder("XP-80C-CN").encode(doc) == expected


def test_ascii_number_uses_native_size_and_resets_it() -> None:
    doc = TicketDoc("t", (), (Line("A023", scale=6), Line("next", align=Align.LEFT),
                              Gap(10)))
    expected = (ESC_INIT + bytes([0x1B, 0x61, 1, 0x1D, 0x21, 0x55]) + b"A023\n"
                + bytes([0x1B, 0x61, 0, 0x1D, 0x21, 0x00]) + b"next\n"
                + bytes([0x1B, 0x4A, 10]) + CUT)
    assert encoder("TM-T20II").encode(doc) == expected


def test_qr_is_native_when_the_profile_has_it() -> None:
    doc = TicketDoc("t", (), (QR("ABC", module=4, error="L"),))
    # ISO/IEC 18004 quiet zone: 4 modules x 4 dots = ESC J 16 above and below
    expected = (ESC_INIT + bytes([0x1B, 0x61, 1]) + bytes([0x1B, 0x4A, 16])
                + bytes([0x1D, 0x28, 0x6B, 4, 0, 49, 65, 50, 0])
                + bytes([0x1D, 0x28, 0x6B, 3, 0, 49, 67, 4])
                + bytes([0x1D, 0x28, 0x6B, 3, 0, 49, 69, 48])
                + bytes([0x1D, 0x28, 0x6B, 6, 0, 49, 80, 48]) + b"ABC"
                + bytes([0x1D, 0x28, 0x6B, 3, 0, 49, 81, 48])
                + bytes([0x1B, 0x4A, 16]) + CUT)
    assert encoder("TM-T20II").encode(doc) == expected


def test_qr_is_raster_without_native_support() -> None:
    data = encoder("PT-210").encode(TicketDoc("t", (), (QR("ABC"),)))
    assert bytes([0x1D, 0x28, 0x6B]) not in data
    assert bytes([0x1D, 0x76, 0x30, 0]) in data


def test_cjk_on_a_latin_printer_is_raster_never_chinese_mode() -> None:
    data = encoder("TM-T20II").encode(TicketDoc("t", (), (Line("现金业务"),)))
    assert bytes([0x1C, 0x26]) not in data
    assert data.count(bytes([0x1D, 0x76, 0x30, 0])) == 1
    assert "现".encode("gb18030") not in data


def test_text_mode_refuses_content_that_needs_raster() -> None:
    with pytest.raises(EncodeError, match="mode 'auto'"):
        encoder("TM-T20II", "text").encode(TicketDoc("t", (), (Line("现金业务"),)))


def test_mixed_lines_are_split_by_script_for_latin_printers() -> None:
    texts = [x.text for x in split_for_latin_printer(Line("请留意叫号屏幕 / Please watch"))]
    assert texts == ["请留意叫号屏幕", "Please watch"]
    texts = [x.text for x in split_for_latin_printer(Line("Acme Bank 浦东支行"))]
    assert texts == ["Acme Bank", "浦东支行"]


def test_byte_budgets_for_the_example_tickets(bank_cfg, clinic_cfg, sample_ticket,  # type: ignore[no-untyped-def]
                                              printer_cfg) -> None:
    def size_of(cfg: Any, profile: str, mode: str = "auto", ticket: Any = sample_ticket) -> int:
        c = printer_cfg(cfg, profile=profile)
        return len(encoder(profile, mode).encode(TicketTemplate(c).doc(ticket)))

    assert size_of(bank_cfg, "XP-80C-CN") <= 1024
    assert size_of(bank_cfg, "TM-T20II") <= 4096
    clinic_ticket = dataclasses.replace(sample_ticket, service="reception", number="R007")
    assert size_of(clinic_cfg, "TM-T20II", ticket=clinic_ticket) <= 1024
    assert size_of(bank_cfg, "TM-T20II", "raster") > 10 * size_of(bank_cfg, "XP-80C-CN")


def test_a_printer_without_cutter_feeds_to_the_tear_bar() -> None:
    doc = TicketDoc("t", (), (Line("HI"),))
    # PT-210: no GS V; ESC J 96 = 12 mm at 8 dots/mm brings the last line past the bar
    centre = bytes([0x1B, 0x61, 1])  # ESC a 1: lines are centred by default
    assert encoder("PT-210").encode(doc) == ESC_INIT + centre + b"HI\n" + bytes([0x1B, 0x4A, 96])
    # a printer with a cutter: GS V 65 16 (feed 16 dots to the cutter, then cut)
    assert encoder("TM-T20II").encode(doc) == ESC_INIT + centre + b"HI\n" + CUT
    raster_job = encoder("PT-210", "raster").encode(doc)
    assert raster_job.endswith(bytes([0x1B, 0x4A, 96])) and bytes([0x1D, 0x56]) not in raster_job


def test_raster_qr_has_a_four_module_quiet_zone() -> None:
    doc = TicketDoc("t", (), (QR("ABC", module=5, error="L"),))
    data = encoder("PT-210").encode(doc)
    # ESC J 20 (4 modules x 5 dots), then the raster code, then ESC J 20 again
    assert data.startswith(ESC_INIT + bytes([0x1B, 0x4A, 20]))
    assert data.endswith(bytes([0x1B, 0x4A, 20]) + bytes([0x1B, 0x4A, 96]))
