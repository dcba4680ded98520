"""The display role against the Alpha emulator on a real pty."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import serial
from display_helpers import BranchStandIn, make_config

from tessera.clock import VirtualClock
from tessera.display.link import BoardLink
from tessera.display.role import DisplayRole
from tessera.drivers.alpha import AlphaBoard
from tessera.sim.board import BoardEmulator


def make_role(emu_path: Any, clock: VirtualClock, events: list[tuple[str, dict[str, Any]]],
              *, ping: float = 0, board_extra: str = "", sign: str = "betabrite") -> DisplayRole:
    cfg = make_config(url="unused", ping=ping, board_extra=board_extra)
    path = emu_path if callable(emu_path) else (lambda: emu_path)
    link = BoardLink(lambda: AlphaBoard.open(path(), sign=sign), clock, ping_interval_s=ping,
                     emit=lambda t, d: events.append((t, d)))
    return DisplayRole(cfg, clock=clock, link=link)


def settle(emu: BoardEmulator, role: DisplayRole) -> None:
    """Wait until the emulator has parsed every byte the role wrote."""
    assert role.link is not None
    if role.link.pings == 0:  # exact: every byte written was content
        assert emu.wait_bytes(role.link.bytes_written)
    assert emu.wait_idle()


def test_calls_recalls_and_no_show_reach_hall_and_counter_boards(
        emulator: BoardEmulator, clock: VirtualClock) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    role = make_role(emulator.path, clock, events)
    branch = BranchStandIn(role.cfg, clock)
    role.start(thread=False)
    for env in (branch.open("c1"), branch.open("c2"), branch.call("c1", "A001")):
        role.on_event(env)
    clock.advance(5)
    role.on_event(branch.call("c2", "A002"))
    clock.advance(20)  # both highlights expired
    role.tick()
    role.on_event(branch.recall("c1"))  # re-highlights A001 in place
    role.on_event(branch.call("c1", "A003"))  # c1 moves on: A001 stays in history
    role.on_event(branch.no_show("c2"))  # A002 vanishes from the hall board
    settle(emulator, role)
    assert emulator.text("01") == "*A003 > 1\n*A001 > 1"
    assert emulator.text("11") == "A003"
    assert emulator.text("12") == "---"
    assert emulator.text("13") == "closed"
    clock.advance(11)
    role.tick()
    role.on_event(branch.pause("c2"))
    settle(emulator, role)
    assert emulator.text("01") == "A003 > 1\nA001 > 1"
    assert emulator.text("12") == "paused"
    assert emulator.rejected == {}
    assert events == []
    png = emulator.render_png("01", Path(os.environ.get("TMPDIR", "/tmp")) / "hall-test.png")
    assert png.stat().st_size > 100


def test_hall_history_is_bounded_and_newest_first(emulator: BoardEmulator,
                                                  clock: VirtualClock) -> None:
    role = make_role(emulator.path, clock, [])
    branch = BranchStandIn(role.cfg, clock)
    role.start(thread=False)
    role.on_event(branch.open("c1"))
    for i in range(1, 7):
        role.on_event(branch.call("c1", f"A{i:03d}"))
        clock.advance(30)
        role.tick()
    settle(emulator, role)
    assert emulator.text("01").splitlines() == [f"A{i:03d} > 1" for i in (6, 5, 4, 3)]


def test_bad_checksum_and_malformed_frames_are_rejected_and_counted(
        emulator: BoardEmulator) -> None:
    board = AlphaBoard.open(emulator.path)
    board.show_field("11", "A001")
    assert emulator.wait_frames(3)
    with serial.serial_for_url(emulator.path, baudrate=9600) as port:
        body = b"\x02G1A999\x03"
        good = sum(body) & 0xFFFF
        port.write(b"\x00" * 5 + b"\x01Z11" + body + b"%04X" % (good ^ 1) + b"\x04")
        port.write(b"\x00" * 5 + b"\x01Z11G1A999\x03" + b"0000\x04")  # no STX
        port.write(b"\x00" * 5 + b"\x01Z11\x02Q1A999\x03"
                   + b"%04X" % (sum(b"\x02Q1A999\x03") & 0xFFFF) + b"\x04")  # unknown cmd
        port.flush()
    assert emulator.wait_rejected(3)
    assert emulator.rejected == {"bad-checksum": 1, "no-stx": 1, "bad-command": 1}
    assert emulator.text("11") == "A001"  # content untouched by the rejected frames


def test_silent_board_faults_then_recovers_with_full_content(
        emulator: BoardEmulator, clock: VirtualClock) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    role = make_role(emulator.path, clock, events, ping=5)
    branch = BranchStandIn(role.cfg, clock)
    role.start(thread=False)
    role.on_event(branch.open("c1"))
    role.on_event(branch.call("c1", "A001"))
    emulator.silent.add("11")
    clock.advance(6)
    role.tick()
    assert [(t, d["detail"]) for t, d in events] == [
        ("device.fault", "board 11: does not answer read-back requests")]
    assert role.link is not None and role.link.faulted() == ["11"]
    role.on_event(branch.call("c1", "A002"))  # kept as desired content while faulted
    emulator.signs.pop("11")  # the sign lost power: memory and text gone
    emulator.silent.clear()
    for _ in range(3):  # backoff: the first retry is due after 0.5 s
        clock.advance(1)
        role.tick()
    assert [t for t, _ in events] == ["device.fault", "device.recovered"]
    settle(emulator, role)
    assert emulator.text("11") == "A002"
    assert emulator.signs["11"].memory  # layout and memory configuration re-sent


@pytest.mark.timeout(30)
def test_line_drop_faults_retries_and_resends_everything(clock: VirtualClock) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    emu = BoardEmulator().start()
    where = {"path": emu.path}
    role = make_role(lambda: where["path"], clock, events, ping=5)
    branch = BranchStandIn(role.cfg, clock)
    role.start(thread=False)
    role.on_event(branch.open("c1"))
    role.on_event(branch.call("c1", "A001"))
    settle(emu, role)
    emu.stop()  # the adapter was unplugged
    role.on_event(branch.call("c1", "A002"))
    clock.advance(6)
    role.tick()
    assert events and events[0][0] == "device.fault" and events[0][1]["state"] == "line-down"
    for _ in range(3):
        clock.advance(1)
        role.tick()  # reopening keeps failing, with growing backoff
    assert [t for t, _ in events] == ["device.fault"]
    emu2 = BoardEmulator().start()
    try:
        where["path"] = emu2.path
        for _ in range(40):
            clock.advance(1)
            role.tick()
        assert "device.recovered" in [t for t, _ in events]
        settle(emu2, role)
        assert emu2.text("01") == "A002 > 1\nA001 > 1"  # highlight ran out meanwhile
        assert emu2.text("11") == "A002"
        assert emu2.text("12") == "closed"
    finally:
        emu2.stop()


def test_brightness_follows_the_time_of_day(emulator: BoardEmulator,
                                            clock: VirtualClock) -> None:
    # Set Dimming Register levels: 100/86/72/58/44 %; 40 % is sent as the nearest, 44 %
    schedule = 'brightness = { "07:00" = 100, "10:00" = 86, "19:00" = 40 }'
    role = make_role(emulator.path, clock, [], board_extra=schedule, sign="solar")
    role.start(thread=False)
    role.tick()  # 10:30 in Shanghai
    settle(emulator, role)
    assert {a: emulator.signs[a].brightness for a in ("01", "11", "12", "13")} == \
        dict.fromkeys(("01", "11", "12", "13"), 86)
    clock.advance(9 * 3600)  # 19:30
    role.tick()
    settle(emulator, role)
    assert emulator.signs["01"].brightness == 44
    assert emulator.rejected == {}


def test_a_sign_that_cannot_dim_gets_no_brightness_frame(emulator: BoardEmulator,
                                                         clock: VirtualClock) -> None:
    schedule = 'brightness = { "07:00" = 100, "10:00" = 40 }'
    role = make_role(emulator.path, clock, [], board_extra=schedule)  # a BetaBrite
    role.start(thread=False)
    role.tick()
    settle(emulator, role)
    assert emulator.text("13") == "closed"
    assert {a: emulator.signs[a].brightness for a in ("01", "11")} == {"01": 100, "11": 100}


@pytest.mark.timeout(30)
def test_sim_board_command_prints_the_pty_and_shows_content(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "tessera", "sim", "board", "--duration", "3",
         "--out", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/")
        board = AlphaBoard.open(path)
        board.show_field("12", "A042")
        board.close()
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert "[12] A042" in out
    assert (tmp_path / "12.txt").read_text() == "A042\n"
    assert (tmp_path / "12.png").stat().st_size > 100
