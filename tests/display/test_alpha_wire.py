"""Issue 16 on the Alpha wire: Set Dimming Register per sign type, the hall
board as STRING files in a TEXT layout written once, the pause after E$, an
RS-485 line that echoes our own transmission, TX-only lines. Expected frames
are built by hand here (checksums added up byte by byte), never by the framer."""

from __future__ import annotations

import os
import threading
import time
import tty
from typing import Any

import pytest
import serial
from display_helpers import BranchStandIn, make_config

from tessera.clock import VirtualClock
from tessera.display.link import BoardLink
from tessera.display.role import DisplayRole
from tessera.drivers import alpha
from tessera.drivers.alpha import AlphaBoard, BoardLine
from tessera.sim.board import BoardEmulator

HEAD = b"\x00\x00\x00\x00\x00\x01Z"


def cs(body: bytes) -> bytes:
    total = 0
    for value in body:
        total = (total + value) % 0x10000
    return f"{total:04X}".encode()


def packet(addr: bytes, body: bytes) -> bytes:
    return HEAD + addr + body + cs(body) + b"\x04"


class Capture:
    """A transport that keeps every write (each write as it came)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self.writes.append(bytes(data))
        return len(data)

    def read(self, size: int = 1, /) -> bytes:
        return b""

    def flush(self) -> None: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


# ------------------------------------------------------------------ dimming


@pytest.mark.parametrize(("percent", "level"), [
    (100, b"00"), (90, b"01"), (86, b"01"), (72, b"02"), (60, b"03"), (44, b"04"), (0, b"04"),
])
def test_solar_sign_gets_set_dimming_register(percent: int, level: bytes) -> None:
    cap = Capture()
    board = AlphaBoard(transport=cap, sign="solar")
    body = b"\x02E/FF" + level + b"\x03"
    assert board.set_brightness("01", percent) == len(packet(b"01", body))
    assert cap.writes == [packet(b"01", body)]


@pytest.mark.parametrize("sign", ["betabrite", "alpha-2.0"])
def test_signs_that_cannot_dim_get_nothing(sign: str) -> None:
    cap = Capture()
    board = AlphaBoard(transport=cap, sign=sign)
    assert board.set_brightness("01", 40) == 0
    assert cap.writes == []
    with pytest.raises(ValueError):
        board.set_brightness("01", 120)


def test_emulator_rejects_the_old_percent_frame_and_takes_the_register(
        emulator: BoardEmulator) -> None:
    with serial.serial_for_url(emulator.path, baudrate=19200) as port:  # not 9600: see below
        port.write(packet(b"01", b"\x02E/32\x03"))  # the old "E/ + percent in hex"
        port.write(packet(b"01", b"\x02E/FF02\x03"))
    assert emulator.wait_rejected(1) and emulator.wait_frames(1)
    assert emulator.rejected == {"bad-dimming": 1}
    assert emulator.signs["01"].brightness == 72


# ------------------------------------------------------------------ hall layout


def hall_layout_by_hand() -> tuple[bytes, bytes]:
    """E$ and layout of a 2-line hall board, written out from the protocol."""
    # per line: red (0x1C '1') call STRING, green (0x1C '2') call STRING; lines split by CR
    layout = (b"\x1c1\x101" b"\x1c2\x103" b"\x0d" b"\x1c1\x102" b"\x1c2\x104")
    size = f"{len(layout):04X}".encode()
    memory = (b"\x02E$" + b"AAU" + size + b"FF00"
              + b"1BL0010" b"0000" + b"2BL0010" b"0000" + b"3BL0010" b"0000"
              + b"4BL0010" b"0000" + b"\x03")
    return packet(b"01", memory), packet(b"01", b"\x02AA\x1b0b" + layout + b"\x03")


def string(label: bytes, text: bytes) -> bytes:
    return packet(b"01", b"\x02G" + label + text + b"\x03")


def test_hall_board_first_write_then_strings_only(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr("tessera.drivers.alpha.time.sleep", pauses.append)
    cap = Capture()
    board = AlphaBoard(transport=cap, hall_lines=2)
    memory, layout = hall_layout_by_hand()
    board.show_lines("01", [BoardLine("A001 → 1", True)])
    assert cap.writes == [memory, layout + string(b"1", b"A001 > 1") + string(b"3", b"")
                          + string(b"2", b"") + string(b"4", b"")]
    # the E$ went alone, then the line time of its bytes (7E1: 10 bits) plus 1 s
    assert pauses == [pytest.approx(len(memory) * 10 / 9600 + 1.0)]
    cap.writes.clear()
    # a second call: the first line moves down, still red; two STRINGs change
    board.show_lines("01", [BoardLine("A002 → 2", True), BoardLine("A001 → 1", True)])
    assert cap.writes == [string(b"1", b"A002 > 2") + string(b"2", b"A001 > 1")]
    cap.writes.clear()
    # the highlight ends: red empties, green fills; no TEXT write, so no blank
    board.show_lines("01", [BoardLine("A002 → 2"), BoardLine("A001 → 1")])
    assert cap.writes == [string(b"1", b"") + string(b"3", b"A002 > 2")
                          + string(b"2", b"") + string(b"4", b"A001 > 1")]
    assert b"\x02A" not in b"".join(cap.writes)


def test_flash_wraps_only_the_red_string_in_the_layout() -> None:
    payload = alpha.hall_layout_payload(1, flash=True)
    assert payload == b"\x1c1\x071\x101\x070\x1c2\x102"


def test_counter_board_sends_e_dollar_alone_then_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr("tessera.drivers.alpha.time.sleep", pauses.append)
    cap = Capture()
    board = AlphaBoard(transport=cap, char_s=11 / 19200)  # 8E1 at 19200: 11 bits a char
    board.show_field("12", "A023")
    memory = packet(b"12", b"\x02E$AAU0040FF001BL00100000\x03")
    layout = packet(b"12", b"\x02AA\x1b0b\x1c3\x101\x03")
    text = packet(b"12", b"\x02G1A023\x03")
    assert cap.writes == [memory, layout, text]
    assert pauses == [pytest.approx(len(memory) * 11 / 19200 + 1.0)]
    board.show_field("12", "A024")
    assert cap.writes[-1] == packet(b"12", b"\x02G1A024\x03") and len(pauses) == 1


def test_content_right_after_e_dollar_is_dropped_by_a_real_sign(emulator: BoardEmulator) -> None:
    """The emulator's busy window: why the driver pauses (the old driver sent both at once)."""
    memory, layout = hall_layout_by_hand()
    with serial.serial_for_url(emulator.path, baudrate=19200) as port:  # not 9600: see below
        port.write(memory + layout)
    assert emulator.wait_rejected(1)
    assert emulator.rejected == {"busy-after-memory-config": 1}
    time.sleep(emulator.memory_busy_s + 0.1)  # the sign has finished with that E$
    # (the raw port used 19200: a pty refuses a second open asking for nothing new)
    board = AlphaBoard.open(emulator.path, hall_lines=2)
    try:
        board.show_lines("01", [BoardLine("A001 → 1", True)])
        assert emulator.wait_idle()
        assert emulator.text("01") == "*A001 > 1"
        assert emulator.rejected == {"busy-after-memory-config": 1}
    finally:
        board.close()


# ------------------------------------------------------------------ blanks per call


def test_plain_calls_never_blank_the_hall_board(emulator: BoardEmulator,
                                                clock: VirtualClock) -> None:
    cfg = make_config(url="unused", ping=0)
    link = BoardLink(lambda: AlphaBoard.open(emulator.path, hall_lines=cfg.board.history),
                     clock, ping_interval_s=0)
    role = DisplayRole(cfg, clock=clock, link=link)
    branch = BranchStandIn(cfg, clock)
    role.start(thread=False)
    role.on_event(branch.open("c1"))
    assert emulator.wait_bytes(link.bytes_written) and emulator.wait_idle()
    start_blanks = emulator.blanks("01")
    assert start_blanks == 2  # start-up: E$ and the layout, once
    for i in range(1, 6):
        role.on_event(branch.call("c1", f"A00{i}"))
        clock.advance(11)  # past the highlight: red -> green
        role.tick()
    assert emulator.wait_bytes(link.bytes_written) and emulator.wait_idle()
    assert emulator.blanks("01") == start_blanks  # 0 blanks per call
    assert emulator.text("01") == "A005 > 1\nA004 > 1\nA003 > 1\nA002 > 1"
    assert emulator.rejected == {}
    role.stop()


# ------------------------------------------------------------------ echo and TX-only


def test_ping_skips_the_echo_of_its_own_request() -> None:
    emu = BoardEmulator(echo=True).start()
    try:
        board = AlphaBoard.open(emu.path)
        try:
            assert board.ping("11") is True
            emu.silent.add("11")
            assert board.ping("11") is False  # only our echo came back: no answer
        finally:
            board.close()
    finally:
        emu.stop()


def test_read_packet_on_an_echoing_pty_line() -> None:
    """A pty plays the adapter by hand: echo first, then the sign's reply."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    try:
        board = AlphaBoard.open(os.ttyname(slave))
        # the probe reads the memory configuration (F$); the sign answers E$ + its table
        request = packet(b"11", b"\x02F$\x03")
        assert request == alpha.read_special_frame("11", "$")
        body = b"\x02E$AAU0040FF001BL00100000\x03"
        reply = b"\x00" * 5 + b"\x01000" + body + cs(body) + b"\x04"

        def sign() -> None:
            got = b""
            while len(got) < len(request):
                got += os.read(master, 64)
            assert got == request
            os.write(master, got)  # the echo, EOT included
            time.sleep(0.02)
            os.write(master, reply)

        t = threading.Thread(target=sign)
        t.start()
        try:
            assert board.ping("11") is True
        finally:
            t.join(timeout=5)
            board.close()
    finally:
        os.close(master)
        os.close(slave)


def test_tx_only_line_never_holds_a_board_back(clock: VirtualClock) -> None:
    emu = BoardEmulator().start()
    emu.answer = False  # nothing on this line ever answers
    events: list[tuple[str, dict[str, Any]]] = []
    try:
        cfg = make_config(url="unused", ping=0)
        link = BoardLink(lambda: AlphaBoard.open(emu.path, hall_lines=cfg.board.history),
                         clock, ping_interval_s=0, emit=lambda t, d: events.append((t, d)))
        role = DisplayRole(cfg, clock=clock, link=link)
        branch = BranchStandIn(cfg, clock)
        role.start(thread=False)
        role.on_event(branch.open("c1"))
        for i in range(1, 4):
            role.on_event(branch.call("c1", f"A00{i}"))
            clock.advance(60)
            role.tick()
        assert link.faulted() == [] and link.pings == 0 and events == []
        assert emu.wait_bytes(link.bytes_written) and emu.wait_idle()
        assert emu.text("11") == "A003"
        role.stop()
    finally:
        emu.stop()


@pytest.mark.timeout(120)
def test_bench_board_reports_bytes_and_blanks_per_call(clips_dir: Any) -> None:
    from tessera.bench.board import bench_board

    (clips_dir.parent / "wav").mkdir(exist_ok=True)
    result = bench_board(3, 9600, clips_dir)
    assert result["blanks_per_call"] == 0.0
    assert result["bytes_per_call"] > result["board_bytes_per_call"] > 0  # + highlight end
    assert result["board_rejected_frames"] == 0.0
