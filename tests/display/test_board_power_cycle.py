"""A sign that loses power while the line stays up comes back with factory memory
(no layout): the probe reads its memory configuration (F$), notices, and the link
re-sends everything at once. Emulator on a real pty; the driver-only cases use a
transport that answers F$ with a table built by hand (checksums added up here)."""

from __future__ import annotations

from typing import Any

import pytest
from display_helpers import BranchStandIn
from test_board_emulator import make_role, settle

from tessera.clock import VirtualClock
from tessera.display.role import DisplayRole
from tessera.drivers import alpha
from tessera.drivers.alpha import AlphaBoard, BoardLine
from tessera.sim.board import BoardEmulator

BOARDS = ("01", "11", "12", "13")


def cs(body: bytes) -> bytes:
    total = 0
    for value in body:
        total = (total + value) % 0x10000
    return f"{total:04X}".encode()


def shown(emu: BoardEmulator) -> dict[str, str]:
    return {a: emu.text(a) for a in BOARDS}


def start(role: DisplayRole, branch: BranchStandIn) -> None:
    role.start(thread=False)
    for env in (branch.open("c1"), branch.open("c2"), branch.call("c1", "A001"),
                branch.call("c2", "A002")):
        role.on_event(env)


@pytest.mark.timeout(60)
def test_power_cycled_signs_get_layout_content_and_brightness_back_at_the_next_ping(
        emulator: BoardEmulator, clock: VirtualClock) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    schedule = 'brightness = { "07:00" = 100, "10:00" = 72 }'
    role = make_role(emulator.path, clock, events, ping=5, board_extra=schedule, sign="solar")
    branch = BranchStandIn(role.cfg, clock)
    start(role, branch)
    role.tick()  # first probe of every board: the tables read back as configured
    settle(emulator, role)
    before = shown(emulator)
    assert before == {"01": "*A002 > 2\n*A001 > 1", "11": "A001", "12": "A002",
                      "13": "closed"}
    assert events == []
    blanks = {a: emulator.blanks(a) for a in BOARDS}

    emulator.power_cycle()  # the line stays up; every sign comes back empty
    assert shown(emulator) == dict.fromkeys(BOARDS, "")
    assert {emulator.signs[a].brightness for a in BOARDS} == {100}

    clock.advance(6)  # the next ping, still inside both highlights
    role.tick()
    assert [(t, d["state"], d["detail"]) for t, d in events] == [
        e for a in BOARDS for e in (
            ("device.fault", "memory-lost", f"board {a}: answers without its layout "
                                            "(power cycle?)"),
            ("device.recovered", "ok", f"board {a}: content re-sent"))]
    settle(emulator, role)
    assert shown(emulator) == before  # layout and current content back, as they were
    assert {emulator.signs[a].brightness for a in BOARDS} == {72}
    # the resend is one memory configuration and one layout per sign
    assert {a: emulator.blanks(a) - blanks[a] for a in BOARDS} == dict.fromkeys(BOARDS, 2)
    assert emulator.rejected == {}
    assert role.link is not None and role.link.memory_resyncs == 4

    # from here on: plain calls never blank, and pings find the tables intact again
    blanks = {a: emulator.blanks(a) for a in BOARDS}
    for i in (3, 4, 5):
        role.on_event(branch.call("c1", f"A00{i}"))
        clock.advance(11)  # past the highlight (and past a ping)
        role.tick()
    settle(emulator, role)
    assert emulator.text("01") == "A005 > 1\nA004 > 1\nA003 > 1\nA002 > 2"
    assert {a: emulator.blanks(a) - blanks[a] for a in BOARDS} == dict.fromkeys(BOARDS, 0)
    assert len(events) == 8 and role.link.memory_resyncs == 4
    assert role.link.faulted() == [] and emulator.rejected == {}


@pytest.mark.timeout(60)
def test_only_the_power_cycled_sign_is_resent(emulator: BoardEmulator,
                                              clock: VirtualClock) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    role = make_role(emulator.path, clock, events, ping=5)
    branch = BranchStandIn(role.cfg, clock)
    start(role, branch)
    role.tick()
    settle(emulator, role)
    before, blanks = shown(emulator), {a: emulator.blanks(a) for a in BOARDS}
    emulator.power_cycle("12")
    clock.advance(6)
    role.tick()
    settle(emulator, role)
    assert [(t, d["detail"]) for t, d in events] == [
        ("device.fault", "board 12: answers without its layout (power cycle?)"),
        ("device.recovered", "board 12: content re-sent")]
    assert shown(emulator) == before
    assert {a: emulator.blanks(a) - blanks[a] for a in BOARDS} == {"01": 0, "11": 0,
                                                                  "12": 2, "13": 0}


def test_a_tx_only_line_cannot_see_a_power_cycle(emulator: BoardEmulator,
                                                 clock: VirtualClock) -> None:
    """The documented limit of ping_interval_s = 0: nothing is read, nothing noticed."""
    events: list[tuple[str, dict[str, Any]]] = []
    role = make_role(emulator.path, clock, events, ping=0)
    branch = BranchStandIn(role.cfg, clock)
    start(role, branch)
    settle(emulator, role)
    emulator.power_cycle()
    clock.advance(60)
    role.tick()
    settle(emulator, role)
    assert role.link is not None and role.link.pings == 0 and events == []
    assert emulator.text("11") == ""  # stays dark until a restart or a line fault


def test_a_sign_that_answers_only_the_time_is_not_faulted(emulator: BoardEmulator,
                                                          clock: VirtualClock) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    emulator.time_only.add("11")  # older firmware: no memory configuration read
    role = make_role(emulator.path, clock, events, ping=5)
    branch = BranchStandIn(role.cfg, clock)
    start(role, branch)
    for _ in range(alpha.TABLE_MISSES_MAX + 1):
        clock.advance(6)
        role.tick()
    settle(emulator, role)
    assert events == [] and role.link is not None and role.link.faulted() == []
    assert emulator.text("11") == "A001"


def test_a_twenty_line_hall_table_is_read_back_within_the_reply_time(
        emulator: BoardEmulator) -> None:
    board = AlphaBoard.open(emulator.path, hall_lines=20)
    try:
        board.show_lines("01", [BoardLine("A001 → 1", True)])
        assert emulator.wait_idle()
        assert len(emulator.signs["01"].files) == 41
        assert board.probe("01") == alpha.PROBE_OK
        emulator.power_cycle("01")
        assert board.probe("01") == alpha.PROBE_LOST
        emulator.silent.add("01")
        assert board.probe("01") == alpha.PROBE_SILENT
    finally:
        board.close()


# ------------------------------------------------------------------ driver, by hand


class TableSign:
    """A transport playing one sign that answers F$ with ``table`` (None: no answer)."""

    def __init__(self, table: bytes | None) -> None:
        self.table = table
        self.requests: list[bytes] = []
        self._out = b""

    def write(self, data: bytes, /) -> int:
        if b"\x02F" in data:
            self.requests.append(data)
            if self.table is not None and b"\x02F$\x03" in data:
                body = b"\x02E$" + self.table + b"\x03"
                self._out += b"\x00" * 5 + b"\x01000" + body + cs(body) + b"\x04"
        return len(data)

    def read(self, size: int = 1, /) -> bytes:
        out, self._out = self._out[:size], self._out[size:]
        return out

    def flush(self) -> None: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


def quick(sign: TableSign) -> AlphaBoard:
    return AlphaBoard(transport=sign, reply_timeout=0.05, memory_settle_s=0.0, char_s=0.0)


# a counter board as the driver configures it: TEXT A of 64 bytes, STRING 1 of 16
COUNTER_TABLE = b"AAU0040FF00" + b"1BL00100000"


@pytest.mark.parametrize(("table", "found"), [
    (COUNTER_TABLE, alpha.PROBE_OK),
    (b"1BL00100000" + b"AAU0040FF00" + b"ZBL00100000", alpha.PROBE_OK),  # order, extras
    (b"AAU0080FF00" + b"1BL00200000", alpha.PROBE_OK),  # rounded up by the sign
    (b"", alpha.PROBE_LOST),  # factory memory: no files
    (b"AAU0040FF00", alpha.PROBE_LOST),  # the STRING is gone
    (b"AAU0040FF00" + b"1AU0010FF00", alpha.PROBE_LOST),  # '1' is a TEXT file now
    (b"AAU0020FF00" + b"1BL00100000", alpha.PROBE_LOST),  # layout file too small
])
def test_probe_compares_the_table_with_what_was_configured(table: bytes, found: str) -> None:
    board = quick(TableSign(table))
    board.show_field("11", "A001")
    assert board.probe("11") == found


def test_probe_of_an_address_never_configured_only_asks_for_an_answer() -> None:
    assert quick(TableSign(b"")).probe("11") == alpha.PROBE_OK
    assert quick(TableSign(None)).probe("11") == alpha.PROBE_SILENT


def test_a_sign_reporting_its_table_its_own_way_is_resent_once_then_trusted(
        caplog: pytest.LogCaptureFixture) -> None:
    """Never read back as written, twice right after a configuration: stop comparing,
    so a sign that reports its table differently cannot be resent at every ping."""
    sign = TableSign(b"AAU0010FF00")  # too small to be ours, whatever we send
    board = quick(sign)
    board.show_field("11", "A001")
    assert board.probe("11") == alpha.PROBE_LOST
    board.show_field("11", "A001", full=True)  # what the link does on PROBE_LOST
    assert board.probe("11") == alpha.PROBE_OK
    assert "never reports the memory configuration" in caplog.text
    assert board.probe("11") == alpha.PROBE_OK


def test_a_real_power_cycle_is_still_seen_after_a_good_read_back() -> None:
    sign = TableSign(COUNTER_TABLE)
    board = quick(sign)
    board.show_field("11", "A001")
    assert board.probe("11") == alpha.PROBE_OK
    sign.table = b""
    assert board.probe("11") == alpha.PROBE_LOST
    sign.table = COUNTER_TABLE  # the link re-sent everything
    board.show_field("11", "A001", full=True)
    assert board.probe("11") == alpha.PROBE_OK
    sign.table = b""  # and it happens again later
    assert board.probe("11") == alpha.PROBE_LOST


def test_time_only_sign_falls_back_to_the_time_read(caplog: pytest.LogCaptureFixture) -> None:
    class TimeSign(TableSign):
        def write(self, data: bytes, /) -> int:
            super().write(data)
            if b"\x02F \x03" in data:
                body = b"\x02E 1030\x03"
                self._out += b"\x01000" + body + cs(body) + b"\x04"
            return len(data)

    sign = TimeSign(None)
    board = quick(sign)
    board.show_field("11", "A001")
    for _ in range(alpha.TABLE_MISSES_MAX):
        assert board.probe("11") == alpha.PROBE_OK
    assert len(sign.requests) == 2 * alpha.TABLE_MISSES_MAX  # F$, then F<space>, each time
    assert "not the memory configuration read" in caplog.text
    assert board.probe("11") == alpha.PROBE_OK
    assert sign.requests[-1].endswith(b"\x02F \x03" + cs(b"\x02F \x03") + b"\x04")
    assert len(sign.requests) == 2 * alpha.TABLE_MISSES_MAX + 1  # the time only, from now


def test_a_sign_that_answered_the_table_before_is_silent_without_a_second_read() -> None:
    sign = TableSign(COUNTER_TABLE)
    board = quick(sign)
    board.show_field("11", "A001")
    assert board.probe("11") == alpha.PROBE_OK
    sign.table = None
    before = len(sign.requests)
    assert board.probe("11") == alpha.PROBE_SILENT
    assert len(sign.requests) == before + 1  # one read per probe, no time fallback
