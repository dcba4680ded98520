"""Restart mid-day: the boards come back with the same content, rebuilt from the engine."""

from __future__ import annotations

from typing import Any

from display_helpers import BranchStandIn, make_config

from tessera.clock import VirtualClock
from tessera.display.link import BoardLink
from tessera.display.role import DisplayRole
from tessera.drivers.alpha import AlphaBoard
from tessera.sim.board import BoardEmulator

ADDRESSES = ("01", "11", "12", "13")


def role_on(emu: BoardEmulator, clock: VirtualClock, branch: BranchStandIn | None = None
            ) -> DisplayRole:
    cfg = make_config(url=emu.path)
    link = BoardLink(lambda: AlphaBoard.open(emu.path), clock, ping_interval_s=0)
    return DisplayRole(cfg, clock=clock, link=link,
                       snapshot=None if branch is None else branch.snapshot)


def board_texts(emu: BoardEmulator, role: DisplayRole) -> dict[str, str]:
    assert role.link is not None
    assert emu.wait_bytes(role.link.bytes_written)
    return {addr: emu.text(addr) for addr in ADDRESSES}


def run_morning(role: DisplayRole, branch: BranchStandIn, clock: VirtualClock) -> None:
    for env in (branch.open("c1"), branch.open("c2"), branch.open("c3")):
        role.on_event(env)
    steps: list[Any] = [("call", "c1", "A001"), ("call", "c2", "A002"), ("call", "c3", "B001"),
                        ("done", "c1"), ("call", "c1", "A003"), ("no_show", "c2"),
                        ("recall", "c1"), ("pause", "c3"), ("call", "c2", "A004")]
    for step in steps:
        clock.advance(40)
        role.tick()
        role.on_event(getattr(branch, step[0])(*step[1:]))


def test_restart_restores_every_board_from_the_engine(clock: VirtualClock) -> None:
    emu1 = BoardEmulator().start()
    try:
        first = role_on(emu1, clock)
        branch = BranchStandIn(first.cfg, clock)
        first.start(thread=False)
        run_morning(first, branch, clock)
        before = board_texts(emu1, first)
        # killed mid-day: no cleanup, the old link and port are simply abandoned
        del first
    finally:
        emu1.stop()
    assert before == {"01": "*A004 > 2\nA003 > 1\nB001 > 3\nA001 > 1", "11": "A003",
                      "12": "A004", "13": "paused"}

    clock.advance(3)  # still inside A004's highlight
    emu2 = BoardEmulator().start()  # the signs were power-cycled too: blank memory
    try:
        second = role_on(emu2, clock, branch)
        second.start(thread=False)
        assert board_texts(emu2, second) == before
        clock.advance(20)
        second.tick()
        after = board_texts(emu2, second)
        assert after["01"] == "A004 > 2\nA003 > 1\nB001 > 3\nA001 > 1"
        second.stop()
    finally:
        emu2.stop()


def test_restart_does_not_replay_announcements(clock: VirtualClock, tmp_path: Any,
                                               clips_dir: Any) -> None:
    from tessera.display.factory import build_announcer
    from tessera.drivers.audio import DirectoryOutput

    emu = BoardEmulator().start()
    try:
        cfg = make_config(url=emu.path, clips=clips_dir)
        branch = BranchStandIn(cfg, clock)
        branch.open("c1")
        branch.call("c1", "A001")
        out = DirectoryOutput(tmp_path / "sound")
        ann = build_announcer(cfg, clock, out=out, clips=clips_dir)
        role = DisplayRole(cfg, clock=clock, announcer=ann, snapshot=branch.snapshot,
                           link=BoardLink(lambda: AlphaBoard.open(emu.path), clock,
                                          ping_interval_s=0))
        role.start(thread=False)
        assert ann.drain(5)
        assert emu.wait_idle()
        assert emu.text("11") == "A001"
        assert out.played() == []
        role.stop()
    finally:
        emu.stop()


def test_build_role_runs_its_own_tick_thread(clock: VirtualClock, tmp_path: Any,
                                             clips_dir: Any) -> None:
    import time

    from tessera.display.factory import build_role
    from tessera.drivers.audio import DirectoryOutput

    emu = BoardEmulator().start()
    faults: list[str] = []
    try:
        cfg = make_config(url=emu.path, clips=clips_dir, out=tmp_path / "sound")
        branch = BranchStandIn(cfg, clock)
        role = build_role(cfg, clock, emit=lambda t, d: faults.append(t),
                          snapshot=branch.snapshot)
        role.start()
        role.on_event(branch.open("c2"))
        role.on_event(branch.call("c2", "B007"))
        assert role.announcer is not None and role.announcer.drain(10)
        clock.advance(11)  # the role's own thread notices the highlight ran out
        deadline = time.monotonic() + 5
        while emu.text("01") != "B007 > 2" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert emu.text("01") == "B007 > 2"
        assert emu.text("12") == "B007"
        role.stop()
        assert len(DirectoryOutput(tmp_path / "sound").played()) == 1
        assert faults == []
    finally:
        emu.stop()
