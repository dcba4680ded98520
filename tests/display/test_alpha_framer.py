"""Alpha framer: exact bytes against hand-built frames; checksums computed here."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.drivers import alpha
from tessera.drivers.alpha import BoardAddressError, BoardLine

HEAD = b"\x00\x00\x00\x00\x00\x01Z"


def cs(body: bytes) -> bytes:
    """Independent checksum: add the byte values one by one, keep 16 bits."""
    total = 0
    for value in body:
        total = (total + value) % 0x10000
    return f"{total:04X}".encode()


def test_write_string_frame_matches_hand_computed_bytes() -> None:
    # STX G 1 A 0 2 3 ETX = 2+71+49+65+48+50+51+3 = 339 = 0x0153
    expected = HEAD + b"11" + b"\x02G1A023\x03" + b"0153" + b"\x04"
    assert alpha.write_string_frame("11", "1", "A023") == expected


def test_write_text_frame_with_two_coloured_lines() -> None:
    lines = [BoardLine("A023 → 3", highlight=True), BoardLine("B002 → 1")]
    body = (b"\x02AA\x1b0b" + b"\x1c1A023 > 3" + b"\x0d" + b"\x1c2B002 > 1" + b"\x03")
    expected = HEAD + b"01" + body + cs(body) + b"\x04"
    frame = alpha.write_text_frame("01", "A", alpha.text_payload(lines))
    assert frame == expected


def test_flash_wraps_only_the_highlighted_line() -> None:
    payload = alpha.text_payload([BoardLine("A1", True), BoardLine("A2")], flash=True)
    assert payload == b"\x1c1\x071A1\x070\x0d\x1c2A2"


def test_memory_brightness_and_read_frames() -> None:
    body = b"\x02E$AAU0040FF001BL00100000\x03"
    assert alpha.memory_frame("11", [("A", "A", 64), ("1", "B", 16)]) == \
        HEAD + b"11" + body + cs(body) + b"\x04"
    # Set Dimming Register: E / threshold FF, level 04 (44 %, the nearest to 50 %)
    body = b"\x02E/FF04\x03"
    assert alpha.brightness_frame("0a", 50) == HEAD + b"0A" + body + cs(body) + b"\x04"
    body = b"\x02F \x03"
    assert alpha.read_special_frame("FF") == HEAD + b"FF" + body + cs(body) + b"\x04"


def test_counter_board_layout_calls_the_string_file() -> None:
    memory, layout = alpha.field_layout_frames("12")
    body = b"\x02AA\x1b0b\x1c3\x101\x03"
    assert layout == HEAD + b"12" + body + cs(body) + b"\x04"
    assert memory.startswith(HEAD + b"12\x02E$")


@pytest.mark.parametrize("bad", ["00", "1", "100", "G1", "", " 1", "０1"])
def test_address_out_of_range_is_refused(bad: str) -> None:
    with pytest.raises(BoardAddressError, match=r"01\.\.FF"):
        alpha.write_string_frame(bad, "1", "A001")


def test_brightness_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        alpha.brightness_frame("01", 101)


def test_undisplayable_text_is_replaced_visibly() -> None:
    assert alpha.sign_text("请 A023 号") == b"? A023 ?"
    assert alpha.sign_text("A023 → 3") == b"A023 > 3"
    assert alpha.sign_text("tab\there\x07") == b"tab?here?"  # control codes never leak


def test_parse_reply_checks_checksum_and_terminator() -> None:
    body = b"\x02E 1030\x03"
    good = b"\x00" * 5 + b"\x01000" + body + cs(body) + b"\x04"
    assert alpha.parse_reply(good) == ("E", b" 1030")
    assert alpha.parse_reply(good.replace(cs(body), b"0000")) is None
    assert alpha.parse_reply(good[:-1]) is None
    assert alpha.parse_reply(b"") is None


def _decode(frame: bytes) -> tuple[str, bytes]:
    """Test-side decoder: split a frame and verify it without the driver's helpers."""
    assert frame[:5] == b"\x00" * 5 and frame[5:7] == b"\x01Z"
    address, rest = frame[7:9].decode(), frame[9:]
    assert rest[-1:] == b"\x04"
    body, check = rest[:-5], rest[-5:-1]
    assert body[:1] == b"\x02" and body[-1:] == b"\x03"
    assert cs(body) == check
    return address, body[1:-1]


@settings(max_examples=60, deadline=None)
@given(address=st.integers(1, 255), text=st.text(max_size=40))
def test_any_text_frames_to_seven_bit_printable_bytes(address: int, text: str) -> None:
    frame = alpha.write_string_frame(f"{address:02x}", "1", text)
    addr, data = _decode(frame)
    assert addr == f"{address:02X}"
    assert data[:2] == b"G1"
    shown = data[2:]
    assert len(shown) == len(text)  # every character shows as something, none dropped
    assert all(0x20 <= b <= 0x7E for b in shown)
